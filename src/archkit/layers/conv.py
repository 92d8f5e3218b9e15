"""ConvNormAct: the conv / norm / activation triplet in the three orders people argue about."""

from __future__ import annotations

from typing import Any

from torch import nn

from .act import ActSpec, create_act
from .norm import NormSpec, create_norm

ORDERS = ("conv-norm-act", "norm-act-conv", "conv")


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the spatial size at stride 1 for an odd kernel."""
    if kernel_size % 2 == 0:
        raise ValueError(f"padding=None ('same') needs an odd kernel_size, got {kernel_size}; pass padding explicitly")
    return dilation * (kernel_size - 1) // 2


class ConvNormAct(nn.Sequential):
    """Conv2d with optional norm and activation, in ResNet, DenseNet or linear order.

    - "conv-norm-act": ResNet post-activation, act(norm(conv(x))); norm sees `out_channels`.
    - "norm-act-conv": DenseNet pre-activation, conv(act(norm(x))); norm sees `in_channels`.
    - "conv": a plain linear conv (norm and act ignored), e.g. a low-rank channel reduction.

    `bias=None` drops the conv bias exactly when a norm directly follows the conv (it would be
    cancelled by the norm's mean subtraction). Being an `nn.Sequential`, the layers are children
    named "conv", "norm", "act", which keeps surgery (fuse_bn, replace_norm) straightforward.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int | None = None,
        order: str = "conv-norm-act",
        norm: NormSpec = "batch",
        act: ActSpec = "relu",
        groups: int = 1,
        bias: bool | None = None,
        dilation: int = 1,
    ) -> None:
        if order not in ORDERS:
            raise ValueError(f"order: unknown value {order!r}; expected one of {list(ORDERS)}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("kernel_size", kernel_size)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if padding is None:
            padding = same_padding(kernel_size, dilation)
        if order == "conv":
            norm, act = None, None
        norm_channels = in_channels if order == "norm-act-conv" else out_channels
        norm_layer = create_norm(norm, norm_channels)
        act_layer = create_act(act)
        if bias is None:
            bias = not (order == "conv-norm-act" and norm_layer is not None)
        conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=bias
        )
        layers: list[tuple[str, nn.Module | None]] = []
        if order == "norm-act-conv":
            layers += [("norm", norm_layer), ("act", act_layer), ("conv", conv)]
        else:
            layers += [("conv", conv), ("norm", norm_layer), ("act", act_layer)]
        super().__init__()
        for name, layer in layers:
            if layer is not None:
                self.add_module(name, layer)
        self.order = order

    def extra_repr(self) -> str:
        return f"order={self.order!r}"


def reduce_channels(in_channels: int, out_channels: int, order: str = "conv-norm-act", **kwargs: Any) -> ConvNormAct:
    """A 1x1 ConvNormAct for channel reduction (e.g. 2C -> C) in the given order."""
    return ConvNormAct(in_channels, out_channels, kernel_size=1, order=order, **kwargs)
