import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archkit.layers import ConvNormAct, FrozenBatchNorm
from archkit.models import create_model, example_input
from archkit.surgery import fuse_bn, is_batchnorm, output_error, randomize_bn_stats


def _check_exact(model: nn.Module, x: torch.Tensor, expect_folded: int, expect_skipped: int = 0):
    model = randomize_bn_stats(model, seed=3).eval()
    with torch.no_grad():
        ref = model(x)
    fused, report = fuse_bn(model, example_inputs=x)
    assert len(report.by_action("folded")) == expect_folded, report.to_table()
    assert len(report.skipped) == expect_skipped, report.to_table()
    with torch.no_grad():
        out = fused(x)
    _, rel = output_error(ref, out)
    assert rel <= 1e-5, (rel, report.to_table())
    remaining = sum(is_batchnorm(m) for m in fused.modules())
    assert remaining == expect_skipped
    return fused, report


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_conv_bn_all_ranks(dim):
    conv = getattr(nn, f"Conv{dim}d")(4, 6, 3, padding=1, groups=2)
    bn = getattr(nn, f"BatchNorm{dim}d")(6)
    x = torch.randn(2, 4, *([5] * dim))
    _check_exact(nn.Sequential(conv, bn, nn.ReLU()), x, expect_folded=1)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_convtranspose_bn_with_groups(dim):
    convt = getattr(nn, f"ConvTranspose{dim}d")(4, 6, 2, stride=2, groups=2, bias=False)
    x = torch.randn(2, 4, *([3] * dim))
    _check_exact(nn.Sequential(convt, getattr(nn, f"BatchNorm{dim}d")(6)), x, expect_folded=1)


def test_linear_bn1d_and_bn1d_linear():
    _check_exact(nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7)), torch.randn(4, 5), expect_folded=1)
    _fused, report = _check_exact(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(5), nn.Linear(5, 3)), torch.randn(4, 5), 1)
    assert report.changes[0].detail == "1 -> 2"


@pytest.mark.parametrize(
    "conv_kwargs",
    [
        dict(kernel_size=1),
        dict(kernel_size=3, padding=0, stride=2, dilation=2, groups=2),
        dict(kernel_size=3, padding=1, padding_mode="reflect"),
        dict(kernel_size=3, padding="valid"),
    ],
)
def test_bn_conv_backward_fold_is_exact(conv_kwargs):
    model = nn.Sequential(nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 6, **conv_kwargs))
    fused, report = _check_exact(model, torch.randn(2, 4, 9, 9), expect_folded=1)
    assert isinstance(fused[1], nn.Identity) and "->" in report.changes[0].detail


def test_skip_bn_before_zero_padded_conv():
    model = nn.Sequential(nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 6, 3, padding=1))
    _, report = _check_exact(model, torch.randn(2, 4, 6, 6), expect_folded=0, expect_skipped=1)
    assert "zero-padded" in report.skipped[0].reason


class SharedBNOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn, self.conv1, self.conv2 = nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.bn(torch.relu(x))
        return self.conv1(y) + self.conv2(y)


class ConcatBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.bn, self.act = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 1), nn.BatchNorm2d(4), nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(torch.cat([self.a(x), self.b(x)], 1)))


class ConvOutputReused(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        return torch.relu(self.bn(y)) + y


class SharedBNModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.bn = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

    def forward(self, x):
        return self.bn(self.c1(x)) + self.bn(self.c2(x))


class FunctionalBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.register_buffer("mean", torch.randn(3))
        self.register_buffer("var", torch.rand(3) + 0.5)

    def forward(self, x):
        return F.batch_norm(self.conv(x), self.mean, self.var, training=False)


@pytest.mark.parametrize(
    "model, words",
    [(SharedBNOutput(), "shared by 2 consumers"), (ConcatBN(), "concat"), (ConvOutputReused(), "also used elsewhere")],
)
def test_skip_cases_have_reasons(model, words):
    _, report = _check_exact(
        model,
        torch.randn(2, model.bn.num_features if isinstance(model, SharedBNOutput) else 3, 5, 5),
        expect_folded=0,
        expect_skipped=1,
    )
    assert words in report.skipped[0].reason, report.to_table()


def test_functional_bn_is_reported_and_left_alone():
    model = FunctionalBN().eval()
    x = torch.randn(2, 3, 4, 4)
    fused, report = fuse_bn(model)
    assert len(report.skipped) == 1 and "functionally" in report.skipped[0].reason
    torch.testing.assert_close(fused(x), model(x))


class ConvBNShared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.out = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = self.bn(self.conv(x))
        return self.out(y) + y


def test_shared_bn_output_still_folds_into_its_producer():
    _check_exact(ConvBNShared(), torch.randn(2, 3, 5, 5), expect_folded=1)


class SharedBNMixed(SharedBNModule):
    def forward(self, x):
        return self.bn(self.c1(x)) + self.bn(torch.relu(x))


def test_shared_bn_module_folds_into_every_producer_or_none():
    _, report = _check_exact(SharedBNModule(), torch.randn(2, 3, 5, 5), expect_folded=1)
    assert report.changes[0].detail == "c1 <- bn, c2 <- bn"
    _, report = _check_exact(SharedBNMixed(), torch.randn(2, 3, 5, 5), expect_folded=0, expect_skipped=1)
    assert "called 2x and not every call can be folded" in report.skipped[0].reason


def test_train_mode_bn_is_skipped():
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)).train()
    fused, report = fuse_bn(model)
    assert len(report.skipped) == 1 and "train mode" in report.skipped[0].reason
    assert isinstance(fused[1], nn.BatchNorm2d)


def test_frozen_batchnorm_folds():
    bn = FrozenBatchNorm.from_batchnorm(randomize_bn_stats(nn.BatchNorm2d(4), 1))
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), bn)
    _check_exact(model, torch.randn(2, 3, 5, 5), expect_folded=1)


@pytest.mark.parametrize("name", ["resnet-digits", "resnet50"])
def test_resnet_folds_every_bn_exactly(name):
    model = create_model(name)
    x = example_input(name, 1 if name == "resnet50" else 4)
    if name == "resnet50":
        x = x[:, :, :64, :64]
    fused, report = _check_exact(model, x, expect_folded=sum(is_batchnorm(m) for m in model.modules()))
    assert type(fused) is type(model) and hasattr(fused, "config")
    # ResNet.forward checks its input, so torch.fx walks it child by child: every BN folds, nothing to alarm about
    assert not any("torch.fx" in n or "trace" in n for n in report.notes), report.notes
    assert report.changes[0].detail == "stem.0.conv <- stem.0.norm"


@pytest.mark.parametrize("order, folded", [("conv-norm-act", 3), ("norm-act-conv", 2), ("conv", 0)])
def test_conv_norm_act_orders(order, folded):
    model = nn.Sequential(*[ConvNormAct(8, 8, 1, order=order) for _ in range(3)])
    skipped = 1 if order == "norm-act-conv" else 0  # the first pre-activation BN sees the raw input
    _fused, report = _check_exact(model, torch.randn(2, 8, 4, 4), expect_folded=folded, expect_skipped=skipped)
    if order == "norm-act-conv":
        assert "preceded by the input" in report.skipped[0].reason
        assert report.by_action("folded")[0].detail == "0.conv <- 1.norm"
    if order == "conv":
        assert "no BatchNorm" in report.notes[0]


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

    def forward(self, x):
        if x.sum() > 1e9:  # data-dependent control flow: torch.fx cannot trace this
            return x
        return self.bn(self.conv(x))


def test_sequential_walk_fallback_and_opaque_scopes():
    model = nn.Sequential(
        nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), Untraceable(), nn.ReLU(), nn.BatchNorm2d(3), nn.Conv2d(3, 2, 1)
    )
    _fused, report = _check_exact(model, torch.randn(2, 3, 4, 4), expect_folded=2, expect_skipped=1)
    assert "could not be traced" in report.skipped[0].reason


def test_inplace_and_copy_semantics():
    model = randomize_bn_stats(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)), 0).eval()
    before = model[0].weight.clone()
    fused, _ = fuse_bn(model)
    assert fused is not model and isinstance(model[1], nn.BatchNorm2d) and torch.equal(model[0].weight, before)
    same, _ = fuse_bn(model, inplace=True)
    assert same is model and isinstance(model[1], nn.Identity)


def test_no_bn_returns_unchanged_with_note():
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())
    out, report = fuse_bn(model)
    assert out is not model and not report.changes and "no BatchNorm" in report.notes[0]
    assert torch.equal(out[0].weight, model[0].weight)


def test_bad_input_errors():
    with pytest.raises(TypeError, match=r"'model' must be a torch.nn.Module, got str"):
        fuse_bn("resnet")
    scripted = torch.jit.script(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)).eval())
    with pytest.raises(TypeError, match="inplace=True cannot edit a TorchScript module"):
        fuse_bn(scripted, inplace=True)


def test_a_skip_inside_an_untraceable_module_is_explained():
    class Checks(nn.Module):  # data-dependent control flow: torch.fx cannot trace it
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm2d(3)
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                x = x + 1
            return self.conv(torch.relu(self.bn(x)))

    model = Checks().eval()
    _fused, report = fuse_bn(model, example_inputs=torch.randn(2, 3, 6, 6))
    assert [c.name for c in report.skipped] == ["bn"]
    assert any("analysed child by child: torch.fx cannot trace" in n for n in report.notes), report.notes
