import pytest
import torch
from torch import nn

from archkit.layers import DecomposedConv2d, LowRankConv2d, LowRankLinear
from archkit.models import create_model, example_input
from archkit.surgery import decompose, lowrank, output_error


def _net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=2, dilation=2),
        nn.ReLU(),  # 0: KxK, stride 2, dilation
        nn.Conv2d(16, 24, 1),
        nn.ReLU(),  # 2: 1x1
        nn.Conv2d(24, 24, 3, padding=1, groups=4),
        nn.ReLU(),  # 4: grouped
        nn.Conv2d(24, 32, (3, 5), stride=(1, 2), padding=(1, 2)),
        nn.ReLU(),  # 6: rectangular KxK
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 40),
        nn.ReLU(),
        nn.Linear(40, 2),  # 10: linear, 12: tiny linear
    )


def test_full_rank_lowrank_is_exact_and_left_alone_when_not_cheaper():
    net, x = _net().eval(), torch.randn(2, 3, 20, 20)
    new, report = lowrank(net, energy=1.0, example_inputs=x)
    # full rank never saves MACs for these shapes, so nothing may be replaced
    assert not report.changed
    assert all("not cheaper" in c.reason for c in report.skipped if c.name in ("2", "10", "12"))
    assert output_error(net(x), new(x))[1] == 0.0


def test_lowrank_full_rank_exact_where_cheaper():
    wide = nn.Sequential(nn.Conv2d(64, 64, 1, stride=2), nn.Flatten(), nn.Linear(64 * 16, 8)).eval()
    with torch.no_grad():  # rank-8 weights: full numerical rank 8 saves MACs and is exact
        wide[0].weight.copy_((torch.randn(64, 8) @ torch.randn(8, 64)).reshape(64, 64, 1, 1))
    x = torch.randn(3, 64, 8, 8)
    new, report = lowrank(wide, energy=1.0, example_inputs=x)
    assert isinstance(new[0], LowRankConv2d) and new[0].rank <= 9
    assert isinstance(new[2], nn.Linear)  # 1024->8: rank 8 would cost more than dense
    assert output_error(wide(x), new(x))[1] <= 1e-5
    assert report.changes[0].metrics["rel_error"] <= 1e-5


def test_decompose_exact_on_rank_limited_kernel_with_stride_padding_dilation():
    # full rank never saves MACs (min(a,b)(a+b) >= ab), so build a kernel of separable rank 3:
    # energy=1.0 must find it, replace the layer, and reproduce it exactly
    v, h = torch.randn(3, 32, 5), torch.randn(16, 3, 5)
    big = nn.Sequential(nn.Conv2d(32, 16, 5, stride=2, padding=3, dilation=2)).eval()
    with torch.no_grad():
        big[0].weight.copy_(torch.einsum("rcy,orx->ocyx", v, h))
    xb = torch.randn(2, 32, 19, 17)
    new, report = decompose(big, energy=1.0, example_inputs=xb)
    assert isinstance(new[0], DecomposedConv2d) and new[0].rank == 3
    assert output_error(big(xb), new(xb))[1] <= 1e-5
    assert report.changes[0].metrics["macs_saved"] > 0
    net, x = _net().eval(), torch.randn(2, 3, 20, 20)
    # the original model is untouched (inplace=False)
    new2, _ = decompose(net, rank=1, example_inputs=x)
    assert isinstance(net[0], nn.Conv2d) and isinstance(new2[0], DecomposedConv2d)


def test_report_lists_every_considered_layer_with_reasons():
    net, x = _net(), torch.randn(1, 3, 20, 20)
    _, rep = lowrank(net, energy=0.5, example_inputs=x)
    assert [c.name for c in rep.changes] == ["0", "2", "4", "6", "10", "12"]
    reasons = {c.name: c.reason for c in rep.skipped}
    assert "groups=4" in reasons["4"] and "3x3 kernel" in reasons["0"] and "3x5 kernel" in reasons["6"]
    _, rep = decompose(net, energy=0.5, example_inputs=x)
    assert [c.name for c in rep.changes] == ["0", "2", "4", "6"]
    reasons = {c.name: c.reason for c in rep.skipped}
    assert "groups=4" in reasons["4"] and "1-D" in reasons["2"]
    for c in rep.changed:
        assert {"rank", "energy", "macs_saved", "rel_error", "new_shape"} <= set(c.metrics)
    assert "factorized" in lowrank(net, rank=1)[1].to_table()


def test_energy_selects_smallest_rank_reaching_threshold():
    lin = nn.Sequential(nn.Linear(50, 60))
    s = torch.linalg.svdvals(lin[0].weight.double())
    kept = (s**2).cumsum(0) / (s**2).sum()
    for energy in (0.3, 0.6):
        _, rep = lowrank(lin, energy=energy)
        r, e = rep.changes[0].metrics["rank"], rep.changes[0].metrics["energy"]
        assert e >= energy and (r == 1 or kept[r - 2] < energy)
        assert e == pytest.approx(kept[r - 1].item())


def test_rank_dict_and_layers_selection():
    net, x = _net(), torch.randn(1, 3, 20, 20)
    new, rep = decompose(net, rank={"6": 2}, example_inputs=x)
    assert isinstance(new[6], DecomposedConv2d) and new[6].rank == 2 and isinstance(new[0], nn.Conv2d)
    assert "rank dict" in {c.name: c.reason for c in rep.skipped}["0"]
    new, rep = lowrank(net, rank=2, layers=["1?"])
    assert isinstance(new[10], LowRankLinear) and isinstance(new[2], nn.Conv2d)
    assert "not selected" in {c.name: c.reason for c in rep.skipped}["2"]
    with pytest.raises(ValueError, match="not lowrank candidates"):
        lowrank(net, rank={"nope": 2})


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(rank=0),
        dict(rank=-1),
        dict(rank=True),
        dict(energy=0.0),
        dict(energy=1.2),
        dict(rank=None, energy=None),
        dict(rank={"10": 0}),
    ],
)
def test_bad_arguments_rejected(kwargs):
    with pytest.raises(ValueError, match=r"rank|energy"):
        lowrank(_net(), **kwargs)
    with pytest.raises(ValueError, match=r"rank|energy"):
        decompose(
            _net(),
            **{k: ({"6": v} if isinstance(v, dict) else v) for k, v in kwargs.items()}
            | ({"rank": {"6": 0}} if isinstance(kwargs.get("rank"), dict) else {}),
        )


def test_builtin_model_converts_and_runs():
    model, x = create_model("resnet-digits").eval(), example_input("resnet-digits", 2)
    new, rep = decompose(model, rank=2, example_inputs=x)
    new, rep2 = lowrank(new, rank=2, example_inputs=x)
    assert new(x).shape == model(x).shape
    assert rep.changed and rep2.changed
    # lowrank does not re-factorize the 1-D convs inside DecomposedConv2d
    assert not any("vertical" in c.name or "horizontal" in c.name for c in rep2.changes)


def test_nonlinear_decompose_notes_fine_tune():
    new, rep = decompose(_net(), rank=2, act="relu")
    assert isinstance(new[0].act, nn.ReLU) and any("fine-tune" in n for n in rep.notes)
