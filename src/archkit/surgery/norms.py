"""replace_norm and to_selu: batch-size-independent alternatives to BatchNorm, as one call each.

GroupNorm and LayerNorm-over-channels normalize each sample on its own, so batch size 1 is fine.
to_selu follows "Self-Normalizing Neural Networks" (Klambauer et al., 2017): no normalization layers,
SELU activations, AlphaDropout, and LeCun-normal weights (std = 1 / sqrt(fan_in)), zero biases.
"""

from __future__ import annotations

import copy
import math
import warnings

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from ..layers import ChannelLayerNorm, largest_group_count
from .edit import check_module, is_batchnorm, set_child
from .guard import extra_forward_args, identity_for
from .report import SurgeryReport

NORM_REPLACEMENTS = ("group", "layer", "identity")
RELU_FAMILY = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU)
_FEATURE_DROPOUT = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, *_CONV_T, nn.Linear)


def _bn_params(bn: nn.Module) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    return getattr(bn, "weight", None), getattr(bn, "bias", None)


def _like(bn: nn.Module) -> dict:
    """device/dtype of a BN's tensors, for the module that replaces it."""
    t = next(
        (t for t in (*bn.parameters(recurse=False), *bn.buffers(recurse=False)) if t.dtype.is_floating_point), None
    )
    return {} if t is None else {"device": t.device, "dtype": t.dtype}


def _all_names(model: nn.Module) -> dict[int, list[str]]:
    """id(module) -> every name it is registered under (a shared module is replaced at all of them)."""
    names: dict[int, list[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), []).append(name)
    return names


def replace_norm(
    model: nn.Module, norm: str = "group", num_groups: int = 32, inplace: bool = False
) -> tuple[nn.Module, SurgeryReport]:
    """Replace every BatchNorm with GroupNorm ("group"), LayerNorm over channels ("layer") or nn.Identity.

    The learned BN scale and shift are copied into the new layer's affine parameters, so fine-tuning starts
    from the same per-channel gains. GroupNorm falls back to the largest divisor of the channel count
    that is <= num_groups, with one warning listing the affected layers.
    """
    check_module(model, "model", inplace, "replace_norm")
    if norm not in NORM_REPLACEMENTS:
        raise ValueError(f"replace_norm: norm must be one of {list(NORM_REPLACEMENTS)}, got {norm!r}")
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
        raise ValueError(f"replace_norm: num_groups must be a positive int, got {num_groups!r}")
    report = SurgeryReport(f"replace_norm({norm})")
    if not inplace:
        model = copy.deepcopy(model)
    fallbacks: list[str] = []
    names = _all_names(model)
    for name, m in list(model.named_modules()):
        if not is_batchnorm(m):
            continue
        if not name:
            raise ValueError("replace_norm: the model is a lone BatchNorm; wrap it in a container")
        c = m.num_features
        weight, bias = _bn_params(m)
        extra = extra_forward_args(m)
        if norm == "identity":
            new: nn.Module = identity_for(m)
            affine: nn.GroupNorm | nn.LayerNorm | None = None
            detail = type(new).__name__
        elif extra:
            report.add(
                name,
                "skipped",
                reason=f"{type(m).__name__}.forward takes extra arguments {extra}: a "
                f"{'GroupNorm' if norm == 'group' else 'LayerNorm'} has another signature and would ignore them "
                "(e.g. a padding mask); use norm='identity' or convert this layer by hand",
            )
            continue
        elif norm == "group":
            groups = largest_group_count(c, num_groups)
            if groups != num_groups:
                fallbacks.append(f"{name} ({c} channels -> {groups} groups)")
            new = nn.GroupNorm(groups, c, eps=m.eps)
            detail, affine = f"GroupNorm({groups}, {c})", new
        else:
            new = ChannelLayerNorm(c, eps=m.eps)
            detail, affine = f"ChannelLayerNorm({c})", new.norm
        new = new.to(**_like(m))
        if affine is not None and weight is not None and bias is not None:  # an affine BN has both
            with torch.no_grad():
                affine.weight.copy_(weight)
                affine.bias.copy_(bias)
        for alias in names[id(m)]:
            set_child(model, alias, new)
        report.add(name, "replaced", detail=f"{type(m).__name__} -> {detail}")
    if fallbacks:
        warnings.warn(
            f"replace_norm: num_groups={num_groups} does not divide the channel count; used the largest "
            f"divisor instead for {len(fallbacks)} layer(s): {', '.join(fallbacks)}",
            stacklevel=2,
        )
        report.notes.append(f"group count fell back to a smaller divisor in {len(fallbacks)} layer(s)")
    if not report.changes:
        report.notes.append("no BatchNorm layers found: model returned unchanged")
    return model, report


def _fan_in(layer: nn.Linear | _ConvNd) -> int:
    if isinstance(layer, nn.Linear):
        return layer.in_features
    fan_in = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
    if isinstance(layer, _CONV_T):  # each output pixel only sees kernel/stride taps of each input channel
        fan_in = max(1, fan_in // math.prod(layer.stride))
    return fan_in


@torch.no_grad()
def to_selu(model: nn.Module, inplace: bool = False, seed: int | None = 0) -> tuple[nn.Module, SurgeryReport]:
    """Make a self-normalizing net: BN -> Identity, ReLU family -> SELU, Dropout -> AlphaDropout, LeCun-normal init.

    Every conv/linear is re-initialized (weights N(0, 1/fan_in), zero bias; a bias is added where the layer
    had none, since the removed BN carried the shift). Activations called functionally in forward (F.relu)
    cannot be seen and are listed in no report; use module activations. `seed` makes the re-init reproducible.
    """
    check_module(model, "model", inplace, "to_selu")
    report = SurgeryReport("to_selu")
    if not inplace:
        model = copy.deepcopy(model)
    if is_batchnorm(model) or isinstance(model, (*RELU_FAMILY, nn.Dropout, *_FEATURE_DROPOUT)):
        raise ValueError(f"to_selu: the model is a lone {type(model).__name__}; wrap it in a container")
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    names = _all_names(model)
    done: set[int] = set()

    def replace(m: nn.Module, new: nn.Module) -> None:
        for alias in names[id(m)]:
            set_child(model, alias, new)

    for name, m in list(model.named_modules()):
        if is_batchnorm(m):
            new = identity_for(m)
            replace(m, new)
            report.add(name, "replaced", detail=f"{type(m).__name__} -> {type(new).__name__}")
        elif isinstance(m, RELU_FAMILY):
            replace(m, nn.SELU())
            report.add(name, "replaced", detail=f"{type(m).__name__} -> SELU")
        elif isinstance(m, _FEATURE_DROPOUT):
            replace(m, nn.FeatureAlphaDropout(m.p))
            report.add(name, "replaced", detail=f"{type(m).__name__}(p={m.p}) -> FeatureAlphaDropout")
        elif type(m) is nn.Dropout:
            replace(m, nn.AlphaDropout(m.p))
            report.add(name, "replaced", detail=f"Dropout(p={m.p}) -> AlphaDropout")
        elif isinstance(m, _WEIGHTED):
            weight = m._parameters.get("weight")
            if (
                not isinstance(weight, nn.Parameter)
                or isinstance(weight, nn.parameter.UninitializedParameter)
                or torch.nn.utils.parametrize.is_parametrized(m)
            ):
                report.add(
                    name,
                    "skipped",
                    reason="weight is not a plain initialized parameter (parametrized, "
                    "old-style weight_norm/spectral_norm, or lazy): not re-initialized",
                )
                continue
            if id(weight) in done:
                report.add(name, "skipped", reason="weight is tied to a layer re-initialized above")
                continue
            done.add(id(weight))
            std = 1.0 / math.sqrt(_fan_in(m))
            noise = torch.randn(m.weight.shape, generator=gen, dtype=torch.float32)
            m.weight.copy_((noise * std).to(m.weight))
            if m.bias is None:
                m.bias = nn.Parameter(
                    m.weight.new_zeros(m.out_features if isinstance(m, nn.Linear) else m.out_channels)
                )
            else:
                m.bias.zero_()
            report.add(name, "reinitialized", detail=f"{type(m).__name__}: LeCun normal, std={std:.4g}")
    if not report.changes:
        report.notes.append("nothing to convert: model returned unchanged")
    return model, report
