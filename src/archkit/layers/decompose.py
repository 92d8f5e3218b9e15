"""DecomposeMe layer: a KxK conv as a vertical Kx1 conv, optional norm/act, then a horizontal 1xK conv.

With act=None and norm=None it is the linear separable form that `from_dense` fills exactly from a
trained conv (Jaderberg et al. scheme 2): W[o,c,y,x] ~= sum_r V[r,c,y] H[o,r,x].
"""

from __future__ import annotations

import torch
from torch import nn

from .act import ActSpec, create_act
from .conv import same_padding
from .lowrank import _check_positive, _pair, check_dense_conv, choose_rank, conv_geometry, svd_factors
from .norm import NormSpec, create_norm


class DecomposedConv2d(nn.Module):
    """Vertical (Kh x 1, vertical stride/padding/dilation) -> norm -> act -> horizontal (1 x Kw, horizontal ones).

    The output shape always equals `nn.Conv2d(in, out, kernel_size, stride, padding, dilation)`;
    padding=None means "same" padding (odd kernels only). The vertical conv gets a bias only when a
    nonlinearity follows it directly (act set, no norm): a linear pair needs just the one bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        mid_channels: int,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | None = None,
        dilation: int | tuple[int, int] = 1,
        act: ActSpec = "relu",
        norm: NormSpec = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        _check_positive(in_channels=in_channels, out_channels=out_channels, mid_channels=mid_channels)
        k, s, d = _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), _pair(dilation, "dilation")
        for name, pair in (("kernel_size", k), ("stride", s), ("dilation", d)):
            if min(pair) <= 0:
                raise ValueError(f"{name}: expected positive values, got {pair}")
        p = (same_padding(k[0], d[0]), same_padding(k[1], d[1])) if padding is None else _pair(padding, "padding")
        if min(p) < 0:
            raise ValueError(f"padding: expected non-negative values, got {p}")
        norm_layer, act_layer = create_norm(norm, mid_channels), create_act(act)
        self.vertical = nn.Conv2d(
            in_channels,
            mid_channels,
            (k[0], 1),
            (s[0], 1),
            (p[0], 0),
            (d[0], 1),
            bias=bias and act_layer is not None and norm_layer is None,
        )
        self.norm = norm_layer if norm_layer is not None else nn.Identity()
        self.act = act_layer if act_layer is not None else nn.Identity()
        self.horizontal = nn.Conv2d(mid_channels, out_channels, (1, k[1]), (1, s[1]), (0, p[1]), (1, d[1]), bias=bias)

    @property
    def rank(self) -> int:
        return self.vertical.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.horizontal(self.act(self.norm(self.vertical(x))))

    @classmethod
    def from_dense(
        cls, layer: nn.Conv2d, rank: int | None = None, energy: float | None = None, act: ActSpec = None
    ) -> DecomposedConv2d:
        """Fill from an SVD of the kernel reshaped to (C*Kh) x (O*Kw); exact at full rank with act=None."""
        check_dense_conv(layer, "decomposed")
        w = layer.weight
        o, c, kh, kw = w.shape
        # rows index (c, y), columns (o, x): W[o,c,y,x] = sum_r V[(c,y), r] H[r, (o,x)]
        matrix = w.permute(1, 2, 0, 3).reshape(c * kh, o * kw)
        a, b, s = svd_factors(matrix, min(matrix.shape))
        r = choose_rank(s, rank, energy)
        new = cls(
            c,
            o,
            (kh, kw),
            r,
            *conv_geometry(layer),
            act=act,
            norm=None,
            bias=layer.bias is not None,
        )
        new.to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            new.vertical.weight.copy_(a[:, :r].T.reshape(r, c, kh, 1))
            new.horizontal.weight.copy_(b[:r].reshape(r, o, kw).permute(1, 0, 2).unsqueeze(2))
            if new.vertical.bias is not None:
                new.vertical.bias.zero_()
            if layer.bias is not None and new.horizontal.bias is not None:
                new.horizontal.bias.copy_(layer.bias)
        return new
