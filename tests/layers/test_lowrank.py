import pytest
import torch
from torch import nn

from archkit.layers import LowRankConv2d, LowRankLinear
from archkit.layers.lowrank import choose_rank, retained_energy
from archkit.surgery import output_error


def test_linear_full_rank_is_exact():
    dense = nn.Linear(37, 23)
    low = LowRankLinear.from_dense(dense)
    assert low.rank == 23
    x = torch.randn(8, 37)
    assert output_error(dense(x), low(x))[1] <= 1e-5


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation",
    [(1, 1, 0, 1), (1, 2, 0, 1), (3, 2, 1, 1), (3, 1, 2, 2), ((3, 5), (2, 1), (1, 2), (1, 2))],
)
def test_conv_full_rank_is_exact(kernel, stride, padding, dilation):
    dense = nn.Conv2d(6, 9, kernel, stride, padding, dilation)
    low = LowRankConv2d.from_dense(dense)
    x = torch.randn(2, 6, 13, 11)
    assert output_error(dense(x), low(x))[1] <= 1e-5


def test_truncated_rank_matches_best_approximation():
    dense = nn.Linear(20, 16, bias=False)
    low = LowRankLinear.from_dense(dense, rank=4)
    approx = low.second.weight @ low.first.weight
    s = torch.linalg.svdvals(dense.weight.double())
    # Eckart-Young: the Frobenius error of the best rank-4 approximation is the tail of the spectrum
    err = (dense.weight.double() - approx.double()).norm()
    assert err.item() == pytest.approx(s[4:].norm().item(), rel=1e-4)


def test_energy_picks_smallest_sufficient_rank():
    s = torch.tensor([4.0, 2.0, 1.0, 1.0])  # energies 16, 4, 1, 1 of 22
    kept = retained_energy(s)
    for energy in (0.5, 16 / 22, 0.8, 20 / 22, 0.95, 1.0):
        r = choose_rank(s, energy=energy)
        assert kept[r - 1] >= energy - 1e-9
        assert r == 1 or kept[r - 2] < energy
    assert choose_rank(s, energy=0.8) == 2
    assert choose_rank(s, rank=99) == 4


def test_from_dense_energy_on_known_spectrum():
    u, _ = torch.linalg.qr(torch.randn(10, 10))
    v, _ = torch.linalg.qr(torch.randn(12, 12))
    s = torch.tensor([10.0, 5.0, 3.0, 1.0] + [0.1] * 6)
    dense = nn.Linear(12, 10)
    with torch.no_grad():
        dense.weight.copy_(u @ torch.diag(s) @ v[:10])
    total = (s**2).sum()
    assert LowRankLinear.from_dense(dense, energy=(100 / total).item() - 1e-4).rank == 1
    assert LowRankLinear.from_dense(dense, energy=(125 / total).item() + 1e-4).rank == 3


@pytest.mark.parametrize("rank,energy", [(0, None), (-2, None), (2.5, None), (None, 0.0), (None, 1.5), (None, -0.1)])
def test_bad_rank_or_energy_rejected(rank, energy):
    with pytest.raises(ValueError, match=r"rank|energy"):
        LowRankLinear.from_dense(nn.Linear(4, 4), rank=rank, energy=energy)


def test_grouped_conv_rejected():
    with pytest.raises(ValueError, match="groups=2"):
        LowRankConv2d.from_dense(nn.Conv2d(4, 4, 1, groups=2))


def test_shapes_and_rank_property():
    layer = LowRankConv2d(8, 12, rank=3, kernel_size=3, stride=2)
    assert layer(torch.randn(1, 8, 9, 9)).shape == nn.Conv2d(8, 12, 3, 2, 1)(torch.randn(1, 8, 9, 9)).shape
    assert layer.rank == 3
    with pytest.raises(ValueError, match="rank"):
        LowRankLinear(4, 4, rank=0)
