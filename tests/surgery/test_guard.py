"""Surgery knows what it may touch: each case here once gave a silently wrong model or a crash inside torch."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from archkit.models import (
    GatedPixelCNN,
    GatedPixelCNNConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
    example_inputs_for,
)
from archkit.surgery import (
    decompose,
    freeze_bn,
    fuse_bn,
    lowrank,
    output_error,
    randomize_bn_stats,
    replace_norm,
    to_selu,
)
from archkit.surgery.guard import NormIdentity, weight_reason


def _run(model, *x):
    with torch.no_grad():
        return model.eval()(*x)


def _fuse_is_exact_or_skipped(model, x, reason_words, without_inputs=True):
    model = randomize_bn_stats(model, seed=5).eval()
    ref = _run(model, x)
    fused, report = fuse_bn(model, example_inputs=x)
    assert output_error(ref, _run(fused, x))[1] <= 1e-5, report.to_table()
    assert report.skipped and not report.by_action("folded"), report.to_table()
    assert reason_words in report.skipped[0].reason, report.to_table()
    if not without_inputs:
        return report
    # without example inputs the rule alone must refuse it too (the whole-model check is a second line)
    fused, report = fuse_bn(model)
    assert output_error(ref, _run(fused, x))[1] <= 1e-5, report.to_table()
    return report


class Standardized(nn.Conv2d):
    """Weight standardization: forward uses a function of .weight, not .weight itself."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class Untraceable(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.body = nn.ModuleList(layers)

    def forward(self, x):
        if x.sum() > 1e9:  # data-dependent branch: torch.fx cannot trace this container
            return x
        for layer in self.body:
            x = layer(x)
        return x


class Scale(nn.Module):
    def forward(self, w):
        return w * 1.5


def _parametrized():
    conv = nn.Conv2d(3, 4, 3)
    parametrize.register_parametrization(conv, "weight", Scale())
    return conv


@pytest.mark.parametrize(
    "make_conv, words",
    [
        (lambda: parametrizations.weight_norm(nn.Conv2d(3, 4, 3)), "parametrized"),
        (_parametrized, "parametrized"),
        (lambda: torch.nn.utils.weight_norm(nn.Conv2d(3, 4, 3)), "not a plain initialized parameter"),
        (lambda: torch.nn.utils.spectral_norm(nn.Conv2d(3, 4, 3)), "not a plain initialized parameter"),
    ],
)
# Checkpoints still carry the deprecated torch.nn.utils.weight_norm hooks, so surgery must recognise them.
@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")
def test_reparametrized_conv_is_not_folded(make_conv, words):
    _fuse_is_exact_or_skipped(nn.Sequential(make_conv(), nn.BatchNorm2d(4)), torch.randn(2, 3, 6, 6), words)


def test_tied_conv_is_not_folded():
    a, b = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)
    b.weight = a.weight
    _fuse_is_exact_or_skipped(nn.Sequential(a, nn.BatchNorm2d(3), nn.ReLU(), b), torch.randn(2, 3, 5, 5), "tied")


def test_subclass_overriding_forward_in_untraceable_container():
    model = Untraceable(Standardized(3, 4, 3), nn.BatchNorm2d(4))
    # the container cannot be traced; the BN is only reachable through the chain/child walk
    report = _fuse_is_exact_or_skipped(nn.Sequential(model), torch.randn(2, 3, 6, 6), "")
    assert "could not be traced" in report.skipped[0].reason or "not a plain Conv2d" in report.skipped[0].reason
    seq = nn.Sequential(Standardized(3, 4, 3), nn.BatchNorm2d(4), Untraceable(nn.ReLU()))
    report = _fuse_is_exact_or_skipped(seq, torch.randn(2, 3, 6, 6), "not a plain Conv2d")


def test_masked_conv_is_left_alone_by_every_surgery():
    class MaskedConv(nn.Conv2d):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            mask = torch.ones_like(self.weight)
            mask[:, :, 1, 1:] = 0
            mask[:, :, 2:] = 0
            self.register_buffer("mask", mask)

        def forward(self, x):
            return self._conv_forward(x, self.weight * self.mask, self.bias)

    model = nn.Sequential(MaskedConv(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), MaskedConv(4, 4, 3))
    _fuse_is_exact_or_skipped(model, torch.randn(2, 3, 6, 6), "mask")
    for op in (lowrank, decompose):
        _new, report = op(model, rank=1)
        assert not report.changed and all("mask" in c.reason for c in report.skipped), report.to_table()


@pytest.mark.parametrize(
    "model, x, words",
    [
        (nn.Sequential(nn.Linear(7, 5), nn.BatchNorm1d(5)), torch.randn(4, 5, 7), "3-D input"),
        (nn.Sequential(nn.ReLU(), nn.BatchNorm1d(6), nn.Linear(6, 4)), torch.randn(4, 6, 6), "3-D input"),
    ],
)
def test_linear_bn_on_3d_input_is_skipped(model, x, words):
    # Without example_inputs, fuse_bn learns each BN's input rank from the 2-D input it guesses for a
    # first Linear and folds (exact for 2-D inputs); a model fed 3-D inputs needs example_inputs.
    _fuse_is_exact_or_skipped(model, x, words, without_inputs=False)


def test_linear_bn_needs_inputs_to_fold():
    model = randomize_bn_stats(nn.Sequential(nn.Linear(7, 5), nn.BatchNorm1d(5)), 1).eval()
    x = torch.randn(4, 7)
    fused, report = fuse_bn(model, example_inputs=x)
    assert len(report.by_action("folded")) == 1
    assert output_error(_run(model, x), _run(fused, x))[1] <= 1e-5


@pytest.mark.parametrize(
    "cfg",
    [dict(fcn_channels=4), dict(frontend="conv", conv_norm="batch", conv_channels=6, conv_stride=2, fcn_channels=4)],
)
def test_sequence_classifier_masked_batchnorm(cfg):
    model = SequenceClassifier(SequenceClassifierConfig(in_features=3, num_classes=2, hidden=8, **cfg))
    model = randomize_bn_stats(model, 2).eval()
    x, lengths = example_inputs_for(model, batch_size=3, seed=4)
    assert int(lengths.min()) < x.shape[1]  # padding is exercised
    ref = _run(model, x, lengths)
    fused, report = fuse_bn(model)
    n_bn = 3 * bool(cfg.get("fcn_channels")) + 2 * (cfg.get("conv_norm") == "batch")
    assert len(report.by_action("folded")) == n_bn, report.to_table()
    assert output_error(ref, _run(fused, x, lengths))[1] <= 1e-5
    assert all(isinstance(m, NormIdentity) for m in fused.fcn.norms)  # keeps the norm(h, mask) signature
    # the padded steps still do not matter after folding
    x2 = x.clone()
    x2[2, int(lengths[2]) :] = 100.0
    assert output_error(_run(fused, x, lengths), _run(fused, x2, lengths))[1] <= 1e-6
    for op, kwargs in ((to_selu, {}), (replace_norm, dict(norm="identity"))):
        new, report = op(model, **kwargs)
        assert _run(new, x, lengths).shape == ref.shape, report.to_table()
    for norm in ("group", "layer"):
        new, report = replace_norm(model, norm=norm, num_groups=2)
        assert len(report.skipped) == n_bn and "extra arguments ['mask']" in report.skipped[0].reason
        torch.testing.assert_close(_run(new, x, lengths), ref)
    frozen, report = freeze_bn(model)
    assert len(report.by_action("frozen")) == n_bn, report.to_table()
    frozen.train()
    torch.testing.assert_close(frozen(x, lengths), ref, rtol=0, atol=0)


def _future_leak(model, codes, *cond):
    """Largest change of a logit at an earlier raster position when a later code changes."""
    worst = 0.0
    h, w = codes.shape[1:]
    with torch.no_grad():
        base = model(codes, *cond)
        for pos in (5, h * w // 2, h * w - 1):
            changed = codes.clone()
            changed.view(codes.shape[0], -1)[:, pos] = (changed.view(codes.shape[0], -1)[:, pos] + 1) % 8
            diff = (model(changed, *cond) - base).abs().amax(1).reshape(codes.shape[0], -1)
            worst = max(worst, diff[:, : pos + 1].max().item())  # at the position itself, too
    return worst


def test_lowrank_keeps_pixelcnn_causal():
    model = GatedPixelCNN(
        GatedPixelCNNConfig(
            num_codes=8, channels=8, layers=3, dropout=0.0, num_classes=3, cond_num_codes=5, cond_scale=2
        )
    ).eval()
    codes, *cond = example_inputs_for(model, batch_size=2, input_shape=[6, 6])
    assert len(cond) == 2 and _future_leak(model, codes, *cond) == 0.0
    for op in (lowrank, decompose):
        new, report = op(model, rank=1)
        assert report.changed, report.to_table()  # plain convs (h_out, head, the conditioning net) still change
        assert all("ShiftedConv2d" not in c.detail for c in report.changed)
        shifted = [c for c in report.skipped if "ShiftedConv2d" in c.reason]
        assert shifted, report.to_table()
        assert _future_leak(new, codes, *cond) == 0.0, report.to_table()


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, dropout=0.0),
        lambda: nn.Sequential(nn.Linear(8, 8), nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, dropout=0.0)),
    ],
)
def test_lowrank_on_attention_skips_weights_read_directly(make):
    model = make().eval()
    x = torch.randn(2, 5, 8)
    ref = _run(model, x)
    for inputs in (x, None):
        new, report = lowrank(model, energy=1.0, example_inputs=inputs)
        out = _run(new, x)
        assert output_error(ref, out)[1] <= 1e-4, report.to_table()
        reasons = {c.name: c.reason for c in report.skipped}
        assert any(n.endswith("out_proj") for n in reasons), report.to_table()
        assert all(
            "MultiheadAttention" in r or "torch.nn layer" in r or "not cheaper" in r or "never called" in r
            for r in reasons.values()
        ), report.to_table()


def test_multihead_attention_alone():
    model = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    q = torch.randn(2, 4, 8)
    new, report = lowrank(model, rank=2, example_inputs=(q, q, q))
    assert not report.changed and "out_proj" in report.skipped[0].name
    torch.testing.assert_close(new(q, q, q)[0], model(q, q, q)[0])


def test_fold_that_fails_the_model_check_is_undone(monkeypatch):
    """The whole-model check is the last line: force a wrong fold past the rules and see it undone."""
    import archkit.surgery.bnfold as bnfold
    import archkit.surgery.bngraph as bngraph

    def wrong(layer, scale, shift):
        with torch.no_grad():
            layer.weight.mul_(2.0)

    monkeypatch.setattr(bnfold, "fold_into_producer", wrong)
    monkeypatch.setattr(bngraph, "fold_into_producer", wrong)
    monkeypatch.setattr(bnfold, "local_error", lambda layer, role, scale, shift, fold: (fold(), 0.0)[1])
    model = randomize_bn_stats(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)), 0
    ).eval()
    x = torch.randn(2, 3, 8, 8)
    fused, report = fuse_bn(model, example_inputs=x)
    assert len(report.skipped) == 2 and all("undone" in c.reason for c in report.skipped), report.to_table()
    assert output_error(_run(model, x), _run(fused, x))[1] == 0.0
    assert isinstance(fused[1], nn.BatchNorm2d) and isinstance(fused[4], nn.BatchNorm2d)


def test_weight_reason_accepts_plain_layers():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose1d(4, 2, 3), nn.Linear(3, 2))
    assert all(weight_reason(n, m, model) is None for n, m in model.named_children())


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_freeze_and_replace_norm_keep_the_model_dtype(dtype):
    model = randomize_bn_stats(
        nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4, affine=False)
        ),
        0,
    )
    model = model.to(dtype).eval()
    x = torch.randn(2, 3, 6, 6, dtype=dtype)
    ref = _run(model, x)
    frozen, _ = freeze_bn(model)
    assert all(t.dtype == dtype for t in frozen.state_dict().values() if t.is_floating_point())
    frozen.train()
    torch.testing.assert_close(frozen(x), ref, rtol=0, atol=0)  # same values, same dtype: bit-identical
    for norm in ("group", "layer", "identity"):
        new, _report = replace_norm(model, norm=norm, num_groups=2)
        assert all(t.dtype == dtype for t in new.state_dict().values() if t.is_floating_point()), norm
        assert _run(new, x).dtype == dtype
    if dtype == torch.float64:  # float64 gains are copied without a float32 round trip
        grouped, _ = replace_norm(model, "group", num_groups=2)
        assert torch.equal(grouped[1].weight, model[1].weight)
