"""Every archkit model through every surgery: it stays correct, or the change is reported skipped with a reason."""

import pytest
import torch

from archkit.models import (
    VQVAE2,
    FunctionApproximator,
    FunctionApproximatorConfig,
    GatedPixelCNN,
    GatedPixelCNNConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
    VQVAE2Config,
    create_model,
    example_inputs_for,
    list_models,
)
from archkit.surgery import (
    decompose,
    freeze_bn,
    fuse_bn,
    is_batchnorm,
    lowrank,
    randomize_bn_stats,
    replace_norm,
    to_selu,
)
from archkit.surgery.guard import flat_output, relative_error


def _seq(**kw):
    return lambda: SequenceClassifier(
        SequenceClassifierConfig(in_features=3, num_classes=3, hidden=8, conv_channels=6, conv_stride=2, **kw)
    )


MODELS = {
    **{name: (lambda name=name: create_model(name)) for name in list_models()},
    "seq": _seq(),
    "seq-fcn": _seq(fcn_channels=4),
    "seq-conv": _seq(frontend="conv", pool="mean"),
    "seq-conv-bn": _seq(frontend="conv", conv_norm="batch", pool="max"),
    "seq-conv-bn-fcn-bi": _seq(frontend="conv", conv_norm="batch", fcn_channels=4, bidirectional=True, layers=1),
    "seq-conv-fcn": _seq(frontend="conv", fcn_channels=4),
    "pixelcnn": lambda: GatedPixelCNN(GatedPixelCNNConfig(num_codes=8, channels=8, layers=2, dropout=0.0)),
    "pixelcnn-class-cond": lambda: GatedPixelCNN(
        GatedPixelCNNConfig(
            num_codes=8, channels=8, layers=2, dropout=0.0, num_classes=3, cond_num_codes=5, cond_scale=2
        )
    ),
    "vqvae2": lambda: VQVAE2(
        VQVAE2Config(in_channels=1, hidden_channels=8, res_blocks=1, res_channels=4, code_dim=4, num_codes=8)
    ),
    "vqvae2-bn": lambda: VQVAE2(
        VQVAE2Config(
            in_channels=1, hidden_channels=8, res_blocks=1, res_channels=4, code_dim=4, num_codes=8, norm="batch"
        )
    ),
    "function": lambda: FunctionApproximator(
        FunctionApproximatorConfig(in_dim=2, hidden=8, layers=2, features=["sin"])
    ),
}
OPS = ["fuse_bn", "freeze_bn", "replace_norm", "to_selu", "lowrank", "decompose"]
_SHAPES = {"resnet-digits": [1, 8, 8], "resnet50": [3, 32, 32]}


def _build(name):
    torch.manual_seed(0)
    model = randomize_bn_stats(MODELS[name](), seed=1).eval()
    batch = 1 if name == "resnet50" else 2
    inputs = example_inputs_for(model, batch, seed=0, input_shape=_SHAPES.get(name))
    fresh = example_inputs_for(model, batch, seed=7, input_shape=_SHAPES.get(name))  # not the one surgery saw
    return model, inputs, fresh


def _out(model, inputs):
    with torch.no_grad():
        return flat_output(model.eval()(*inputs))


def _future_leak(model, inputs):
    codes, *cond = inputs
    base = _out(model, inputs).view(codes.shape[0], -1, codes[0].numel())
    worst = 0.0
    for pos in (3, codes[0].numel() - 1):
        changed = codes.clone()
        changed.view(codes.shape[0], -1)[:, pos] = (changed.view(codes.shape[0], -1)[:, pos] + 1) % 8
        diff = (_out(model, (changed, *cond)).view_as(base) - base).abs()
        worst = max(worst, diff[:, :, : pos + 1].max().item())
    return worst


def _every_bn_accounted(model, report, actions):
    names = {n for n, m in model.named_modules() if is_batchnorm(m)}
    seen = {c.name: c for c in report.changes}
    assert names <= set(seen), (names - set(seen), report.to_table())
    for n in names:
        assert seen[n].action in actions or (seen[n].action == "skipped" and seen[n].reason), report.to_table()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "resnet50" else n for n in MODELS])
def test_model_survives_surgery(name, op):
    model, inputs, fresh = _build(name)
    ref, ref_fresh = _out(model, inputs), _out(model, fresh)
    if op == "fuse_bn":
        new, report = fuse_bn(model)
        _every_bn_accounted(model, report, {"folded"})
        assert report.model_rel_error is not None and report.model_rel_error <= 1e-5, report.to_table()
        assert relative_error(ref_fresh, _out(new, fresh)) <= 1e-5, report.to_table()
    elif op == "freeze_bn":
        new, report = freeze_bn(model)
        _every_bn_accounted(model, report, {"frozen"})
        assert torch.equal(_out(new, fresh), ref_fresh)
        assert all(not p.requires_grad for m in new.modules() if is_batchnorm(m) for p in m.parameters())
    elif op in ("replace_norm", "to_selu"):
        new, report = replace_norm(model, "group", num_groups=2) if op == "replace_norm" else to_selu(model)
        _every_bn_accounted(model, report, {"replaced"})
        out = _out(new, fresh)
        assert out.shape == ref_fresh.shape and torch.isfinite(out).all(), report.to_table()
    else:
        operation = lowrank if op == "lowrank" else decompose
        new, report = operation(model, energy=1.0)  # full rank: exact up to rounding
        assert report.model_rel_error is not None, report.to_table()
        assert report.model_rel_error <= 1e-4 and relative_error(ref_fresh, _out(new, fresh)) <= 1e-4, report.to_table()
        assert all(c.reason for c in report.skipped)
        lossy, report = operation(model, rank=1, example_inputs=inputs)  # lossy: the error is what the report says
        if report.changed:
            assert relative_error(ref, _out(lossy, inputs)) == pytest.approx(report.model_rel_error, rel=1e-6)
    if isinstance(model, GatedPixelCNN):
        assert _future_leak(model, fresh) == 0.0
        assert _future_leak(new, fresh) == 0.0, report.to_table()
