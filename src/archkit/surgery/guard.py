"""What surgery may touch, and the numeric check of every edit.

The rule: surgery rewrites a conv/linear only when what its forward computes is a plain conv/linear of its
own `.weight`/`.bias` parameters, which nobody else reads:
- the weight is a registered nn.Parameter (not a `torch.nn.utils.parametrize` parametrization, not an
  old-style `weight_norm`/`spectral_norm` attribute recomputed by a hook) and the module has no hooks;
- the module declares no mask (masked / causal convs keep their own semantics);
- no parameter is shared with another module (tied weights) and the parent is not a torch.nn layer that
  reads the child's `.weight` itself (`MultiheadAttention.out_proj`, the TransformerEncoderLayer fast path);
- a numeric probe agrees: the module's forward on a random input equals the base class's forward
  (catches subclasses that override forward: weight standardization, shifted/causal padding, ...).
Every edit is then checked numerically (`model_error` on example inputs), and undone when the check fails.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections import defaultdict
from typing import Any, cast

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.utils import parametrize

from ..layers import FrozenBatchNorm
from ..utils import example_inputs_for
from .edit import BN_TYPES

CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
PLAIN = (*CONV, *CONV_T, nn.Linear)
_PLAIN_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

# relative error an exact edit may show, by dtype: rounding of the folded weights and the reordered sums
EXACT_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-5, torch.bfloat16: 3e-2, torch.float16: 3e-3}


def exact_tolerance(dtype: torch.dtype) -> float:
    """The relative error an exact edit may show in `dtype` (1e-5 for float32)."""
    return EXACT_TOLERANCE.get(dtype, 1e-5)


class NormIdentity(nn.Identity):
    """nn.Identity that also accepts the extra arguments of the norm it replaces (e.g. `norm(h, mask)`)."""

    def forward(self, input: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return input


def extra_forward_args(module: nn.Module) -> list[str]:
    """Names of the forward parameters after the input (e.g. ['mask'] for MaskedBatchNorm1d)."""
    try:
        params = list(inspect.signature(type(module).forward).parameters.values())[2:]
    except (TypeError, ValueError):
        return []
    return [p.name for p in params]


def identity_for(module: nn.Module) -> nn.Identity:
    """The identity that can stand in for `module`: same call signature, so its callers keep working."""
    return NormIdentity() if extra_forward_args(module) else nn.Identity()


def parameter_owners(model: nn.Module) -> dict[int, set[str]]:
    """id(parameter or buffer) -> names of the modules that hold it (more than one: tied/shared)."""
    owners: dict[int, set[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        for t in (*m._parameters.values(), *m._buffers.values()):
            if t is not None:
                owners.setdefault(id(t), set()).add(name)
    return owners


def declares_mask(module: nn.Module) -> str | None:
    """The name of a mask the module declares (buffer, parameter or tensor attribute), if any."""
    names = [
        *module._buffers,
        *module._parameters,
        *(k for k, v in vars(module).items() if isinstance(v, torch.Tensor)),
    ]
    hits = [n for n in names if "mask" in n.lower()]
    return hits[0] if hits else None


def _hooks(module: nn.Module) -> list[str]:
    kinds = [("forward pre-hook", module._forward_pre_hooks), ("forward hook", module._forward_hooks)]
    return [f"{kind} {getattr(h, '__qualname__', type(h).__name__)}" for kind, hooks in kinds for h in hooks.values()]


def _base_class(module: nn.Module) -> type[nn.Module] | None:
    return next((c for c in PLAIN if c in type(module).__mro__), None)  # at most one: none subclasses another


def probe_input(module: nn.Linear | _ConvNd, batch: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random input a conv/linear accepts: (batch, in_features) or (batch, in_channels, *spatial)."""
    w = module.weight
    if isinstance(module, nn.Linear):
        shape: tuple[int, ...] = (batch, module.in_features)
    else:
        spatial = [d * (k - 1) + 1 + s + 2 for k, s, d in zip(module.kernel_size, module.stride, module.dilation)]
        if isinstance(module, CONV_T):
            spatial = [3] * len(module.kernel_size)
        shape = (batch, module.in_channels, *spatial)
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(device=w.device, dtype=w.dtype)


def relative_error(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """||a - b|| / ||a|| in float64 (inf when the shapes differ or values are not finite)."""
    if reference.shape != candidate.shape:
        return float("inf")
    ref, cand = reference.detach().double(), candidate.detach().double()
    err = ((ref - cand).norm() / ref.norm().clamp_min(1e-30)).item()
    return err if err == err else float("inf")


@torch.no_grad()
def forward_reason(module: nn.Module) -> str | None:
    """None when `module(x)` equals the base conv/linear forward on a random input, else why not."""
    base = _base_class(module)
    if base is None or not isinstance(module, PLAIN):  # both or neither
        return f"{type(module).__name__} is not a conv/linear"
    if type(module) is base:
        return None
    x = probe_input(module, generator=torch.Generator().manual_seed(0))
    what = (
        f"forward of {type(module).__name__} is not a plain {base.__name__} of .weight/.bias "
        "(overridden forward, e.g. weight standardization, causal shift or a mask)"
    )
    try:
        got = module(x)
        want = base.forward(module, x)
    except Exception as e:
        return f"{what}: probe forward failed ({type(e).__name__})"
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return f"{what}: output shape {tuple(getattr(got, 'shape', ()))} vs {tuple(want.shape)}"
    err = relative_error(want, got)
    if err > 10 * exact_tolerance(want.dtype):
        return f"{what}: probe rel diff {err:.3g}"
    return None


def weight_reason(
    name: str, module: nn.Module, model: nn.Module, owners: dict[int, set[str]] | None = None
) -> str | None:
    """Why surgery must not rewrite or replace this conv/linear, or None when it may (see the module doc)."""
    if parametrize.is_parametrized(module):
        plists = cast(nn.ModuleDict, module.parametrizations)  # set by parametrize: a ModuleDict of ModuleLists
        kinds = sorted({type(p).__name__ for plist in plists.values() for p in cast(nn.ModuleList, plist)})
        return (
            f"weight is parametrized ({', '.join(kinds)} via torch.nn.utils.parametrize): "
            "rewriting .weight would not change what forward uses"
        )
    weight = module._parameters.get("weight")
    if not isinstance(weight, nn.Parameter) or isinstance(weight, nn.parameter.UninitializedParameter):
        extra = [n for n in module._parameters if n.startswith("weight")]
        return (
            f"weight is not a plain initialized parameter (parameters {extra}): it is recomputed in forward "
            "(old-style weight_norm / spectral_norm hook) or not initialized yet"
        )
    hooks = _hooks(module)
    if hooks:
        return f"module has hooks ({', '.join(hooks)}): forward may not use .weight as stored"
    mask = declares_mask(module)
    if mask:
        return f"module declares a mask ({mask!r}): masked/causal layers keep their own semantics"
    owners = parameter_owners(model) if owners is None else owners
    for pname, p in module._parameters.items():
        others = sorted(owners.get(id(p), set()) - {name}) if p is not None else []
        if others:
            return f"{pname} is shared with {others} (tied): editing it here would change them too"
    parent_name = name.rpartition(".")[0]
    parent = model.get_submodule(parent_name) if name else None
    if parent is not None and type(parent).__module__.startswith("torch.nn") and not isinstance(parent, _CONTAINERS):
        return (
            f"parent {type(parent).__name__} is a torch.nn layer that may read this module's .weight directly "
            "(e.g. MultiheadAttention.out_proj, the TransformerEncoderLayer fast path)"
        )
    return forward_reason(module)


def bn_reason(bn: nn.Module) -> str | None:
    """None when a BN in eval mode is the affine map of its running statistics (numeric probe), else why not."""
    if isinstance(bn, FrozenBatchNorm) or type(bn) in _PLAIN_BN or type(bn) is nn.SyncBatchNorm:
        return (_hooks(bn) and f"BN has hooks ({', '.join(_hooks(bn))})") or None
    if _hooks(bn):
        return f"BN has hooks ({', '.join(_hooks(bn))})"
    dims = next(
        (d for cls, d in ((nn.BatchNorm1d, 1), (nn.BatchNorm2d, 2), (nn.BatchNorm3d, 3)) if isinstance(bn, cls)), None
    )
    if dims is None or not isinstance(bn, _BatchNorm) or bn.running_mean is None:
        return None  # bn_scale_shift reports these
    ref = bn.running_mean
    x = torch.randn((2, bn.num_features, *([3] * dims)), generator=torch.Generator().manual_seed(0)).to(ref)
    was = bn.training
    try:
        bn.eval()
        with torch.no_grad():
            got = bn(x)
            want = _BatchNorm.forward(bn, x)
    except Exception as e:
        return f"{type(bn).__name__}.forward failed on a probe input ({type(e).__name__}: {e})"
    finally:
        bn.train(was)
    err = relative_error(want, got)
    if err > 10 * exact_tolerance(want.dtype):
        return f"{type(bn).__name__}.forward is not BatchNorm of its running statistics in eval mode (probe rel diff {err:.3g})"
    return None


def flat_output(out: Any, argument: str = "model") -> torch.Tensor:
    """All tensors of an output (tensor, tuple/list, dict, dataclass; numbers too, None skipped) as one flat
    float64 vector, so any two outputs can be compared; other types raise TypeError naming `argument`."""
    if isinstance(out, torch.Tensor):
        return out.detach().reshape(-1).double()
    if out is None:
        return torch.zeros(0, dtype=torch.float64)
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return torch.tensor([float(out)], dtype=torch.float64)
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        out = [getattr(out, f.name) for f in dataclasses.fields(out)]
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out, key=str)]
    if isinstance(out, (tuple, list)):
        parts = [flat_output(o, argument) for o in out]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)
    raise TypeError(
        f"{argument} returned {type(out).__name__}; expected tensors (or tuples/lists/dicts/dataclasses of them)"
    )


def as_args(example_inputs: Any) -> tuple:
    """Positional arguments from example inputs (a tensor or a tuple of them)."""
    return example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)


@torch.no_grad()
def model_outputs(model: nn.Module, example_inputs: Any) -> torch.Tensor:
    """The model's flat eval-mode output on the example inputs (its train/eval mode is restored)."""
    was = model.training
    model.eval()
    try:
        return flat_output(model(*as_args(example_inputs)))
    finally:
        model.train(was)


def model_error(model: nn.Module, example_inputs: Any, reference: torch.Tensor) -> tuple[float, str | None]:
    """(relative error vs `reference`, None) or (inf, the error the forward raised)."""
    try:
        return relative_error(reference, model_outputs(model, example_inputs)), None
    except Exception as e:
        return float("inf"), f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


def guess_inputs(model: nn.Module, batch: int = 2) -> tuple | None:
    """A guessed input from the model's first conv/linear (in registration order), if the model accepts it."""
    first = next((m for m in model.modules() if isinstance(m, PLAIN)), None)
    if first is None or isinstance(getattr(first, "weight", None), nn.parameter.UninitializedParameter):
        return None
    x = probe_input(first, batch, torch.Generator().manual_seed(1))
    if x.dim() > 2 and min(x.shape[2:]) < 8:  # room for a few strided layers after the first
        x = torch.randn(
            (*x.shape[:2], *[max(8, s) for s in x.shape[2:]]), generator=torch.Generator().manual_seed(1)
        ).to(x)
    try:
        model_outputs(model, (x,))
    except Exception:
        return None
    return (x,)


def bn_input_ranks(model: nn.Module, inputs: tuple) -> dict[str, set[int]]:
    """BN name -> ranks of the inputs it sees in one eval-mode forward pass."""
    ranks: dict[str, set[int]] = defaultdict(set)
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, BN_TYPES):
            hooks.append(
                m.register_forward_pre_hook(
                    lambda _m, args, name=name: (
                        ranks[name].add(args[0].dim()) if args and hasattr(args[0], "dim") else None
                    )
                )
            )
    try:
        model_outputs(model, inputs)
    finally:
        for h in hooks:
            h.remove()
    return dict(ranks)


def reference_run(
    model: nn.Module, source: str, inputs: tuple | None, notes: list[str]
) -> tuple[tuple | None, torch.Tensor | None, dict[str, set[int]] | None]:
    """(inputs, reference output, BN input ranks) on the example inputs; Nones where they cannot verify a fold.

    Given inputs that fail the forward raise ValueError; built or guessed ones are just dropped.
    """
    if inputs is None:
        return None, None, None
    try:
        reference = model_outputs(model, inputs)
        ranks = bn_input_ranks(model, inputs)  # guessed inputs too: the rank each BN sees on them
    except Exception as e:
        if source == "given":
            raise ValueError(f"fuse_bn: the model's forward fails on example_inputs ({type(e).__name__}: {e})") from e
        return None, None, None
    if not torch.isfinite(reference).all():
        notes.append("the model's output on the example inputs is not finite: it cannot verify a fold")
        return None, None, ranks  # the ranks each BN saw still hold
    return inputs, reference, ranks


def choose_example_inputs(model: nn.Module, example_inputs: object) -> tuple[str, tuple | None]:
    """("given" | "built" | "guessed", inputs) or ("none", None)."""
    if example_inputs is not None:
        return "given", as_args(example_inputs)
    built = example_inputs_for(model)
    if built is not None:
        return "built", built
    guessed = guess_inputs(model)
    return ("guessed", guessed) if guessed is not None else ("none", None)
