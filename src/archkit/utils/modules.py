"""Small facts about any nn.Module: the plain module under wrappers, its size, inputs it accepts."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..io.checkpoint import unwrap_model


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def param_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    """The floating dtype (float32 when there is none) and device of the model's first parameter."""
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None and param.dtype.is_floating_point else torch.float32
    return dtype, param.device if param is not None else torch.device("cpu")


def example_inputs_for(
    model: nn.Module, batch_size: int = 2, seed: int = 0, input_shape: list[int] | tuple[int, ...] | None = None
) -> tuple[Any, ...] | None:
    """Random positional inputs the model accepts, from its own `example_inputs` method; None when it has none.

    Every archkit model knows its inputs (images, code maps + labels, padded sequences + lengths, features),
    so surgery, export and the CLI ask the model instead of keeping a list of kinds. `input_shape` is the
    first input's shape without the batch dim (as saved with a checkpoint).
    """
    make = getattr(unwrap_model(model), "example_inputs", None)
    if not callable(make):
        return None
    return tuple(make(batch_size=batch_size, seed=seed, input_shape=input_shape))


__all__ = ["count_params", "example_inputs_for", "param_dtype_device"]
