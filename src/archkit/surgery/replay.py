"""Rebuild a converted model's structure from the surgery steps recorded in its checkpoint.

A checkpoint saved after surgery stores the original model config plus `"surgery": [{"op": ..., **args}]`.
Loading rebuilds the original model and re-applies each step; the saved weights then overwrite
whatever values the replay produced, so only the *structure* of each step has to be reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .factorize import decompose, lowrank
from .freeze import freeze_bn
from .fuse import fuse_bn
from .norms import replace_norm, to_selu


def _factorized(operation: Callable) -> Callable[..., tuple[nn.Module, Any]]:
    """lowrank/decompose replay: the recorded per-layer ranks, traced on an input of the recorded shape
    (built for the model's kind, e.g. codes + labels for a PixelCNN; zeros for other modules)."""

    def apply(
        model: nn.Module,
        inplace: bool = True,
        rank: dict[str, int] | None = None,
        input_shape: list[int] | None = None,
        **kwargs: Any,
    ) -> tuple[nn.Module, Any]:
        if not isinstance(rank, dict) or input_shape is None:
            raise ValueError(
                f"checkpoint: the recorded {operation.__name__!r} step needs 'rank' (a dict of layer "
                f"-> rank) and 'input_shape'; got rank={rank!r}, input_shape={input_shape!r}"
            )
        from ..utils import example_inputs_for

        built = example_inputs_for(model, input_shape[0], input_shape=input_shape[1:])
        inputs = built if built is not None else torch.zeros(input_shape)
        return operation(model, rank=rank, inplace=inplace, example_inputs=inputs, **kwargs)

    return apply


# op name recorded in config.json -> the call that re-applies it (structure only)
SURGERY_STEPS: dict[str, Callable[..., tuple[nn.Module, Any]]] = {
    "fuse_bn": fuse_bn,
    "freeze_bn": freeze_bn,
    "replace_norm": replace_norm,
    "to_selu": to_selu,
    "lowrank": _factorized(lowrank),
    "decompose": _factorized(decompose),
}


def record_step(op: str, report: Any = None, example_inputs: Any = None, **args: Any) -> dict[str, Any]:
    """The JSON-able step to save beside converted weights so `replay_surgery` can rebuild the structure.

    lowrank/decompose choose ranks from the weights, so their step pins the ranks the `report` chose
    and the example input's shape instead of the rank/energy arguments.
    """
    if op not in SURGERY_STEPS:
        raise ValueError(f"op: unknown surgery {op!r}; known: {sorted(SURGERY_STEPS)}")
    step: dict[str, Any] = {"op": op, **args}
    if op in ("lowrank", "decompose"):
        if report is None or example_inputs is None:
            raise ValueError(f"record_step: {op!r} needs the report and the example_inputs it ran with")
        first = example_inputs[0] if isinstance(example_inputs, tuple) else example_inputs
        step.update(rank={c.name: c.metrics["rank"] for c in report.changed}, input_shape=list(first.shape))
    return step


def replay_surgery(model: nn.Module, steps: Any, source: str = "checkpoint") -> nn.Module:
    """Re-apply recorded surgery steps in place, so a freshly built model matches a converted checkpoint.

    `steps` comes from a file: it must be a list of {"op": NAME, ...arguments}; anything else, an unknown
    op or arguments the op does not take is a one-line ValueError naming `source` and the step.
    """
    if not isinstance(steps, list):
        raise ValueError(f"{source}: field surgery: expected a list of steps, got {steps!r}")
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            raise ValueError(f'{source}: field surgery[{i}]: expected an object {{"op": ...}}, got {step!r}')
        args = dict(step)
        name = args.pop("op", None)
        if not isinstance(name, str) or name not in SURGERY_STEPS:
            raise ValueError(
                f"{source}: field surgery[{i}] records unknown surgery {name!r}; known: {sorted(SURGERY_STEPS)}"
            )
        try:
            model, _ = SURGERY_STEPS[name](model, inplace=True, **args)
        except TypeError as e:  # an argument the op does not take, or of the wrong type
            raise ValueError(f"{source}: field surgery[{i}] ({name}): bad arguments {args!r} ({e})") from None
    return model
