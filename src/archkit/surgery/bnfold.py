"""The arithmetic of folding one inference-mode BatchNorm into one conv / transposed conv / linear, exactly."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from ..layers import FrozenBatchNorm
from .guard import probe_input, relative_error

CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
FOLD_AFTER = (*CONV, *CONV_T, nn.Linear)  # may absorb a BN that follows them
FOLD_BEFORE = (*CONV, nn.Linear)  # may absorb a BN that precedes them
FoldLayer = _ConvNd | nn.Linear  # a layer whose weight can absorb a BatchNorm
BatchNormLike = _BatchNorm | FrozenBatchNorm


def bn_scale_shift(bn: BatchNormLike) -> tuple[torch.Tensor, torch.Tensor] | str:
    """(scale, shift) in float64 with bn(x) == x * scale + shift, or the reason BN is not an affine map."""
    if isinstance(bn, FrozenBatchNorm):
        scale, shift = bn.scale_shift()
        return scale.detach().double(), shift.detach().double()
    if isinstance(bn.weight, nn.parameter.UninitializedParameter):
        return "lazy BatchNorm is not initialized yet (run one forward first)"
    if bn.training:
        return "BN is in train mode: it normalizes with batch statistics (call model.eval() first)"
    if bn.running_mean is None or bn.running_var is None:
        return "BN has no running statistics (track_running_stats=False): it always uses batch statistics"
    inv_std = torch.rsqrt(bn.running_var.detach().double() + bn.eps)
    weight = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(inv_std)
    bias = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(inv_std)
    scale = weight * inv_std
    return scale, bias - bn.running_mean.detach().double() * scale


def set_weight_bias(layer: FoldLayer, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Overwrite the weight and bias in place (a bias is created when the layer has none)."""
    with torch.no_grad():
        layer.weight.copy_(weight.to(layer.weight.dtype))
        if layer.bias is None:
            layer.bias = nn.Parameter(bias.to(layer.weight), requires_grad=layer.weight.requires_grad)
        else:
            layer.bias.copy_(bias.to(layer.bias.dtype))


def out_channels(layer: FoldLayer) -> int:
    """Output features of a linear layer, output channels of a conv."""
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def in_channels(layer: FoldLayer) -> int:
    """Input features of a linear layer, input channels of a conv."""
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


def fold_into_producer(layer: FoldLayer, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """layer -> bn  ==>  layer' with W' = W * scale (per output channel), b' = b * scale + shift."""
    w = layer.weight.detach().double()
    out = out_channels(layer)
    b = layer.bias.detach().double() if layer.bias is not None else w.new_zeros(out)
    if isinstance(layer, CONV_T):  # weight is (in, out / groups, *k): output channels sit on dim 1
        g = layer.groups
        k = w.shape[2:]
        w = (w.view(g, -1, out // g, *k) * scale.view(g, 1, out // g, *([1] * len(k)))).view_as(layer.weight)
    else:
        w = w * scale.view(-1, *([1] * (w.dim() - 1)))
    set_weight_bias(layer, w, b * scale + shift)


def fold_into_consumer(layer: FoldLayer, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """bn -> layer  ==>  layer' with W' = W * scale (per input channel), b' = b + W @ shift."""
    w = layer.weight.detach().double()
    out = out_channels(layer)
    b = layer.bias.detach().double() if layer.bias is not None else w.new_zeros(out)
    if isinstance(layer, nn.Linear):
        set_weight_bias(layer, w * scale.view(1, -1), b + w @ shift)
        return
    g, ipg, k = layer.groups, w.shape[1], w.shape[2:]
    ones = [1] * len(k)
    # weight[o, i] reads input channel group(o) * ipg + i
    s = scale.view(g, 1, ipg).expand(g, out // g, ipg).reshape(out, ipg, *ones)
    t = shift.view(g, 1, ipg).expand(g, out // g, ipg).reshape(out, ipg, *ones)
    set_weight_bias(layer, w * s, b + (w * t).flatten(1).sum(1))


def zero_padding_reason(conv: FoldLayer) -> str | None:
    """Why bn -> conv is not exact for this consumer, or None when it is."""
    if isinstance(conv, nn.Linear):
        return None
    if conv.padding_mode != "zeros":  # reflect/replicate/circular pad with BN-transformed values: exact
        return None
    pad = conv.padding
    if isinstance(pad, str):
        if pad == "valid" or all(k == 1 for k in conv.kernel_size):
            return None
    elif all(p == 0 for p in pad):
        return None
    return (
        f"followed by zero-padded {type(conv).__name__} (padding={pad}): the padded zeros would not carry the BN shift"
    )


@torch.no_grad()
def local_error(
    layer: FoldLayer, role: str, scale: torch.Tensor, shift: torch.Tensor, fold: Callable[[], object]
) -> float:
    """Apply `fold` and return the relative error of the folded layer vs BN + layer on a random input."""
    x = probe_input(layer, generator=torch.Generator().manual_seed(2))
    view = (1, -1) + (1,) * (x.dim() - 2)
    s, t = scale.to(x.dtype), shift.to(x.dtype)
    if role == "producer":
        y = layer(x)
        ref = y * s.view((1, -1) + (1,) * (y.dim() - 2)) + t.view((1, -1) + (1,) * (y.dim() - 2))
    else:
        ref = layer(x * s.view(view) + t.view(view))
    fold()
    return relative_error(ref, layer(x))


def guessed_rank_note(names: list[str]) -> str:
    """The note for Linear<->BN folds decided on a guessed 2-D input (a model fed (N, C, L) needs example_inputs)."""
    return (
        f"Linear<->BatchNorm1d folded at {', '.join(repr(n) for n in names)} on a guessed 2-D (N, features) "
        "input; if the model is fed (N, C, L) inputs, pass example_inputs so these are left alone"
    )


def linear_bn_reason(layer: nn.Module, ranks: set[int] | None) -> str | None:
    """Linear<->BN folds only when BN normalizes the Linear's feature dim, i.e. BN sees a 2-D (N, F) input."""
    if not isinstance(layer, nn.Linear):
        return None
    if not ranks:
        return (
            "Linear<->BN: the BN's input rank is unknown (no example input ran through the model: pass "
            "example_inputs); the fold is exact only "
            "when BN normalizes the Linear's feature dim, i.e. a 2-D (N, features) input"
        )
    if ranks != {2}:
        return (
            f"Linear<->BN on a {'/'.join(map(str, sorted(ranks)))}-D input: BatchNorm1d normalizes dim 1 while "
            "the Linear acts on the last dim, so they do not share a feature dim"
        )
    return None
