"""lowrank / decompose: replace trained layers by truncated-SVD factorizations where that saves MACs.

- `lowrank`: nn.Linear and 1x1 nn.Conv2d -> LowRankLinear / LowRankConv2d (W ~= U_k S_k V_k^T).
- `decompose`: KxK nn.Conv2d -> DecomposedConv2d, vertical Kx1 then horizontal 1xK (Jaderberg scheme 2).

Both pick the rank per layer from `rank` (an int, or a {layer name: rank} plan as recorded in a saved
checkpoint) or else the smallest rank keeping `energy` of the squared singular values, never replace a
layer when the factorized form is not cheaper, and report every layer they looked at.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ..layers.act import ActSpec
from ..layers.decompose import DecomposedConv2d
from ..layers.lowrank import LowRankConv2d, LowRankLinear, check_rank_energy, choose_rank, retained_energy
from .edit import set_child
from .guard import (
    guess_inputs,
    model_error,
    model_outputs,
    parameter_owners,
    probe_input,
    relative_error,
    weight_reason,
)
from .measure import count_macs, output_error
from .report import SurgeryReport

RankSpec = int | dict[str, int] | None
_FACTORIZED = (LowRankLinear, LowRankConv2d, DecomposedConv2d)


def lowrank(
    model: nn.Module,
    rank: RankSpec = None,
    energy: float | None = 0.9,
    layers: Iterable[str] | None = None,
    inplace: bool = False,
    example_inputs: Any = None,
) -> tuple[nn.Module, SurgeryReport]:
    """Factorize nn.Linear and 1x1 nn.Conv2d layers by truncated SVD where that cuts MACs.

    rank: int for every layer, a {name: rank} dict, or None to pick by `energy` (retained squared
    singular values, in (0, 1]). layers: names or fnmatch patterns to consider (default: all).
    example_inputs: MACs and the per-layer output error are measured on it, and the whole model is checked
    on it (built for archkit models when not given, else guessed from the first layer; without any input
    each layer's error is measured on a random input of its own). Layers whose forward is not a plain
    conv/linear of their weight (parametrized, hooked, tied, masked/causal, subclassed, read directly by
    their parent) are skipped with the reason; a replacement that breaks the model's forward is undone.
    """
    return _factorize(model, "lowrank", _lowrank_plan, rank, energy, layers, inplace, example_inputs)


def decompose(
    model: nn.Module,
    rank: RankSpec = None,
    energy: float | None = 0.9,
    act: ActSpec = None,
    layers: Iterable[str] | None = None,
    inplace: bool = False,
    example_inputs: Any = None,
) -> tuple[nn.Module, SurgeryReport]:
    """Turn KxK nn.Conv2d layers (K > 1, groups=1) into DecomposedConv2d (vertical Kx1 -> horizontal 1xK).

    Exact at full rank with act=None; act="relu" gives DecomposeMe layers that need a fine-tune.
    rank / energy / layers / example_inputs as in `lowrank`.
    """

    def plan(
        name: str, module: nn.Linear | nn.Conv2d
    ) -> tuple[str | None, Callable[..., nn.Module] | None, torch.Tensor | None]:
        return _decompose_plan(name, module, act)

    model, report = _factorize(model, "decompose", plan, rank, energy, layers, inplace, example_inputs)
    if act is not None:
        report.notes.append(f"act={act!r} between the 1-D convs: not exact, fine-tune to recover accuracy")
    return model, report


# --- per-operation planning: (skip reason, builder(rank) -> new layer, weight matrix whose SVD is taken) ---


def _check_conv(module: nn.Conv2d) -> str | None:
    if module.groups != 1:
        return f"grouped conv (groups={module.groups}): only groups=1 can be factorized"
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        return f"padding={module.padding!r} padding_mode={module.padding_mode!r}: only numeric zero padding"
    return None


def _lowrank_plan(name: str, module: nn.Linear | nn.Conv2d) -> tuple[str | None, Callable | None, torch.Tensor | None]:
    if isinstance(module, nn.Linear):
        return None, lambda r: LowRankLinear.from_dense(module, rank=r), module.weight
    reason = _check_conv(module)
    if reason:
        return reason, None, None
    if module.kernel_size != (1, 1):
        k = "x".join(map(str, module.kernel_size))
        return f"{k} kernel: lowrank handles 1x1 convs (use surgery.decompose)", None, None
    w = module.weight
    return None, lambda r: LowRankConv2d.from_dense(module, rank=r), w.reshape(w.shape[0], -1)


def _decompose_plan(
    name: str, module: nn.Linear | nn.Conv2d, act: ActSpec
) -> tuple[str | None, Callable | None, torch.Tensor | None]:
    if not isinstance(module, nn.Conv2d):
        return "not a Conv2d", None, None
    reason = _check_conv(module)
    if reason:
        return reason, None, None
    kh, kw = module.kernel_size
    if kh == 1 or kw == 1:
        return f"{kh}x{kw} kernel is already 1-D (use surgery.lowrank for 1x1)", None, None
    o, c = module.out_channels, module.in_channels
    matrix = module.weight.permute(1, 2, 0, 3).reshape(c * kh, o * kw)
    return None, lambda r: DecomposedConv2d.from_dense(module, rank=r, act=act), matrix


def _estimated_mac_ratio(module: nn.Linear | nn.Conv2d, rank: int) -> float:
    """Factorized / dense MACs per output position (used when no example input is given)."""
    if isinstance(module, nn.Linear):
        return rank * (module.in_features + module.out_features) / (module.in_features * module.out_features)
    o, c, kh, kw = module.weight.shape
    if (kh, kw) == (1, 1):
        return rank * (c + o) / (c * o)
    # the vertical conv runs at every input column, i.e. stride_w times more positions than the output
    return (rank * c * kh * module.stride[1] + o * rank * kw) / (o * c * kh * kw)


def _shape(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return f"{module.in_features}->{module.out_features}"
    if isinstance(module, nn.Conv2d):
        k = "x".join(map(str, module.kernel_size))
        extra = "".join(
            f" {n}{v[0]}" if v[0] == v[1] else f" {n}{v}"
            for n, v in (("s", module.stride), ("d", module.dilation))
            if v != (1, 1)
        )
        return f"{module.in_channels}->{module.out_channels} {k}{extra}"
    return type(module).__name__


def _new_shape(module: nn.Module) -> str:
    if isinstance(module, LowRankLinear):
        return f"{module.first.in_features}->{module.rank}->{module.second.out_features}"
    if isinstance(module, LowRankConv2d):
        return f"{module.first.in_channels}->{module.rank}->{module.second.out_channels} (1x1 pair)"
    if isinstance(module, DecomposedConv2d):
        kh, kw = module.vertical.kernel_size[0], module.horizontal.kernel_size[1]
        return f"{module.vertical.in_channels}->{module.rank} {kh}x1 -> {module.horizontal.out_channels} 1x{kw}"
    return type(module).__name__


def _check_args(rank: RankSpec, energy: float | None) -> None:
    if isinstance(rank, dict):
        for key, value in rank.items():
            if not isinstance(key, str):
                raise ValueError(f"rank: dict keys must be layer names (str), got {key!r}")
            check_rank_energy(value, None)
        check_rank_energy(None, energy)
    else:
        check_rank_energy(rank, energy)
    if rank is None and energy is None:
        raise ValueError("rank/energy: give a rank (int or {layer: rank}) or an energy in (0, 1]; both are None")


def _inputs_of(model: nn.Module, names: list[str], example_inputs: Any) -> dict[str, tuple]:
    """The positional inputs each named module sees on its first call in one eval-mode forward pass."""
    modules = dict(model.named_modules())
    seen: dict[str, tuple] = {}
    hooks = []
    for name in names:

        def hook(_module: nn.Module, args: tuple, name: str = name) -> None:
            seen.setdefault(name, tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args))

        hooks.append(modules[name].register_forward_pre_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*(example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return seen


@torch.no_grad()
def _factorize(
    model: nn.Module,
    operation: str,
    plan: Callable,
    rank: RankSpec,
    energy: float | None,
    layers: Iterable[str] | None,
    inplace: bool,
    example_inputs: Any,
) -> tuple[nn.Module, SurgeryReport]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{operation}: model must be a torch.nn.Module, got {type(model).__name__}")
    _check_args(rank, energy)
    if isinstance(layers, str):
        layers = [layers]
    patterns = list(layers) if layers is not None else None
    model = model if inplace else copy.deepcopy(model)
    report = SurgeryReport(operation)
    inside_factorized = {
        f"{n}.{c}" for n, m in model.named_modules() if isinstance(m, _FACTORIZED) for c, _ in m.named_modules() if c
    }
    candidates = [
        (n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d)) and n not in inside_factorized
    ]
    if operation == "decompose":  # Linear layers are lowrank's business; don't list them here
        candidates = [(n, m) for n, m in candidates if isinstance(m, nn.Conv2d)]
    if isinstance(rank, dict):
        unknown = sorted(set(rank) - {n for n, _ in candidates})
        if unknown:
            raise ValueError(f"rank: layer names {unknown} are not {operation} candidates in this model")
    given = example_inputs is not None
    if example_inputs is None:
        from ..utils import example_inputs_for

        example_inputs = example_inputs_for(model) or guess_inputs(model)
    reference = None
    if example_inputs is not None:
        inputs = _inputs_of(model, [n for n, _ in candidates], example_inputs)
        reference = model_outputs(model, example_inputs)
        if not torch.isfinite(reference).all():
            report.notes.append("the model's output on the example inputs is not finite: errors cannot be measured")
            example_inputs = reference = None
            inputs = {}
    else:
        inputs = {}
    owners = parameter_owners(model)
    replaced: list[tuple[str, nn.Module, nn.Module, Any]] = []

    for name, module in candidates:
        old_shape = _shape(module)
        if patterns is not None and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            report.add(name, "skipped", old_shape, "not selected by layers=")
            continue
        if isinstance(rank, dict) and name not in rank:
            report.add(name, "skipped", old_shape, "no rank for this layer in the rank dict")
            continue
        reason = weight_reason(name, module, model, owners)
        if reason is None and example_inputs is not None and name not in inputs:
            reason = (
                "never called as a module in the example forward: its parent reads its .weight directly or it is unused"
            )
        if reason is None:
            reason, build, matrix = plan(name, module)
        if reason:
            report.add(name, "skipped", old_shape, reason)
            continue
        s = torch.linalg.svdvals(matrix.detach().double())
        layer_rank = rank[name] if isinstance(rank, dict) else rank
        r = choose_rank(s, layer_rank, energy if layer_rank is None else None)
        new = build(r)
        metrics: dict[str, Any] = {
            "new_shape": _new_shape(new),
            "rank": r,
            "full_rank": len(s),
            "energy": float(retained_energy(s)[r - 1]),
        }
        ratio = _estimated_mac_ratio(module, r)
        if name in inputs:
            args = inputs[name]
            macs_old, macs_new = count_macs(module, args), count_macs(new, args)
            ratio = macs_new / macs_old if macs_old else float("inf")
            metrics.update(
                macs_saved=macs_old - macs_new, mac_ratio=ratio, rel_error=output_error(module(*args), new(*args))[1]
            )
        else:
            x = probe_input(module, generator=torch.Generator().manual_seed(3))
            metrics.update(mac_ratio=ratio, rel_error=relative_error(module(x), new(x)))
        if ratio >= 1.0:
            report.add(
                name, "skipped", old_shape, f"not cheaper: rank {r} needs {ratio:.2f}x the dense MACs", **metrics
            )
            continue
        new.train(module.training)
        if name:
            set_child(model, name, new)
        else:
            model = new
        change = report.add(name, "factorized" if operation == "lowrank" else "decomposed", old_shape, **metrics)
        replaced.append((name, module, new, change))
    choice = (
        f"rank={rank}"
        if isinstance(rank, int)
        else "per-layer ranks"
        if isinstance(rank, dict)
        else f"energy>={energy}"
    )
    report.notes.append(f"rank chosen by {choice}; energy = retained share of squared singular values")
    if example_inputs is None or reference is None:  # both None or both set
        report.verification = (
            "whole model NOT verified: no example input could be built (pass example_inputs); "
            "rel_error is each layer's error on a random input of its own"
        )
    else:
        err = (
            _verify(model, example_inputs, reference, replaced)
            if replaced and replaced[0][0] != ""
            else model_error(model, example_inputs, reference)[0]
        )
        source = "given" if given else "built/guessed"
        report.verification = f"whole model checked on {source} example inputs: rel error {err:.3g}"
        report.model_rel_error = err
    if not given:
        report.notes.append(
            "no example_inputs given: mac_ratio/rel_error measured on a built input where one "
            "could be made, else estimated per output position / on a random layer input"
        )
    if report.verification:
        report.notes.append(report.verification)
    return model, report


def _verify(
    model: nn.Module,
    example_inputs: Any,
    reference: torch.Tensor,
    replaced: list[tuple[str, nn.Module, nn.Module, Any]],
) -> float:
    """Whole-model error; if the forward fails (or is not finite), redo the replacements one at a time and undo
    each one that breaks it, reporting it as skipped with the error."""
    err, failure = model_error(model, example_inputs, reference)
    if failure is None and err != float("inf"):
        return err
    for name, old, _, _ in reversed(replaced):
        set_child(model, name, old)
    for name, old, new, change in replaced:
        set_child(model, name, new)
        err, failure = model_error(model, example_inputs, reference)
        if failure is None and err != float("inf"):
            continue
        set_child(model, name, old)
        change.action = "skipped"
        change.reason = f"replacing it broke the model's forward ({failure or 'non-finite output'}); undone"
    return model_error(model, example_inputs, reference)[0]
