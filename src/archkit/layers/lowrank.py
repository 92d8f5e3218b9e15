"""Low-rank (truncated SVD) linear and conv layers: one dense layer as two thin ones through `rank` units.

W (m x n) ~= U_k S_k V_k^T costs k(m + n) multiply-adds per output position instead of m*n
(the Fast R-CNN fully-connected trick); exact at full rank.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import same_padding


def check_rank_energy(rank: int | None, energy: float | None) -> None:
    """Reject rank <= 0 / non-int and energy outside (0, 1] with a message naming the argument."""
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0):
        raise ValueError(f"rank: expected a positive int or None, got {rank!r}")
    if energy is not None and (
        isinstance(energy, bool) or not isinstance(energy, (int, float)) or not 0.0 < float(energy) <= 1.0
    ):
        raise ValueError(f"energy: expected a float in (0, 1], got {energy!r}")


def retained_energy(singular_values: torch.Tensor) -> torch.Tensor:
    """Fraction of the squared-singular-value energy kept by ranks 1..len(S) (non-decreasing, ends at 1)."""
    sq = singular_values.double() ** 2
    total = sq.sum()
    if total <= 0:  # an all-zero weight: any rank is exact
        return torch.ones_like(sq)
    return (sq.cumsum(0) / total).clamp(max=1.0)


def check_dense_conv(layer: object, verb: str) -> None:
    """Raise a clear error unless `layer` is an ungrouped, zero-padded nn.Conv2d that `verb` can split."""
    if not isinstance(layer, nn.Conv2d):
        raise TypeError(f"layer: expected nn.Conv2d, got {type(layer).__name__}")
    if layer.groups != 1:
        raise ValueError(f"layer: grouped convolutions (groups={layer.groups}) cannot be {verb}; expected groups=1")
    if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
        raise ValueError(
            f"layer: expected numeric zero padding, got padding={layer.padding!r} padding_mode={layer.padding_mode!r}"
        )


def conv_geometry(layer: nn.Conv2d) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(stride, padding, dilation) of a conv that passed `check_dense_conv`, each as an (h, w) pair."""
    s, p, d = layer.stride, layer.padding, layer.dilation
    assert not isinstance(p, str)  # refused by check_dense_conv
    return (s[0], s[1]), (p[0], p[1]), (d[0], d[1])


def choose_rank(singular_values: torch.Tensor, rank: int | None = None, energy: float | None = None) -> int:
    """`rank` (capped at full rank) if given, else the smallest rank whose retained energy >= `energy`;
    full rank when both are None."""
    check_rank_energy(rank, energy)
    full = len(singular_values)
    if rank is not None:
        return min(rank, full)
    if energy is None:
        return full
    kept = retained_energy(singular_values)
    # small tolerance: energy=1.0 must not fail on float rounding of the cumulative sum
    return min(int((kept < float(energy) - 1e-12).sum().item()) + 1, full)


def svd_factors(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A, B, S) with matrix ~= A @ B, A = U_k sqrt(S_k) (m x k), B = sqrt(S_k) V_k^T (k x n); SVD in float64."""
    u, s, vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank], s


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")


class LowRankLinear(nn.Module):
    """Linear(in, rank, no bias) then Linear(rank, out): a rank-limited `nn.Linear`."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True) -> None:
        super().__init__()
        _check_positive(in_features=in_features, out_features=out_features, rank=rank)
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)

    @property
    def rank(self) -> int:
        return self.first.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))

    @classmethod
    def from_dense(cls, layer: nn.Linear, rank: int | None = None, energy: float | None = None) -> LowRankLinear:
        """Initialize from the truncated SVD of `layer.weight` (full rank when rank and energy are None)."""
        if not isinstance(layer, nn.Linear):
            raise TypeError(f"layer: expected nn.Linear, got {type(layer).__name__}")
        w = layer.weight
        a, b, s = svd_factors(w, min(w.shape))
        r = choose_rank(s, rank, energy)
        new = cls(layer.in_features, layer.out_features, r, bias=layer.bias is not None)
        new.to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            new.first.weight.copy_(b[:r])
            new.second.weight.copy_(a[:, :r])
            if layer.bias is not None and new.second.bias is not None:
                new.second.bias.copy_(layer.bias)
        return new


class LowRankConv2d(nn.Module):
    """Conv2d(in, rank, KxK, no bias) carrying stride/padding/dilation, then a 1x1 Conv2d(rank, out).

    With kernel_size=1 this is the factorized 1x1 channel map; output shape equals
    `nn.Conv2d(in, out, kernel_size, stride, padding, dilation)`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        rank: int,
        kernel_size: int | tuple[int, int] = 1,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | None = None,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        _check_positive(in_channels=in_channels, out_channels=out_channels, rank=rank)
        k, d = _pair(kernel_size, "kernel_size"), _pair(dilation, "dilation")
        if padding is None:
            padding = (same_padding(k[0], d[0]), same_padding(k[1], d[1]))
        self.first = nn.Conv2d(in_channels, rank, k, _pair(stride, "stride"), _pair(padding, "padding"), d, bias=False)
        self.second = nn.Conv2d(rank, out_channels, 1, bias=bias)

    @property
    def rank(self) -> int:
        return self.first.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))

    @classmethod
    def from_dense(cls, layer: nn.Conv2d, rank: int | None = None, energy: float | None = None) -> LowRankConv2d:
        """Initialize from the truncated SVD of the weight seen as out x (in*Kh*Kw); exact at full rank."""
        check_dense_conv(layer, "factorized")
        w = layer.weight
        o, c, kh, kw = w.shape
        a, b, s = svd_factors(w.reshape(o, c * kh * kw), min(o, c * kh * kw))
        r = choose_rank(s, rank, energy)
        new = cls(c, o, r, (kh, kw), *conv_geometry(layer), bias=layer.bias is not None)
        new.to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            new.first.weight.copy_(b[:r].reshape(r, c, kh, kw))
            new.second.weight.copy_(a[:, :r].reshape(o, r, 1, 1))
            if layer.bias is not None and new.second.bias is not None:
                new.second.bias.copy_(layer.bias)
        return new
