"""What every surgery op does before and while it edits a model: check the argument, find BN, swap a child."""

from __future__ import annotations

from typing import TypeGuard

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import FrozenBatchNorm

BN_TYPES = (_BatchNorm, FrozenBatchNorm)


def is_batchnorm(module: nn.Module) -> TypeGuard[_BatchNorm | FrozenBatchNorm]:
    """True for every BatchNorm flavour archkit folds: nn.BatchNorm*d (and subclasses) and FrozenBatchNorm."""
    return isinstance(module, BN_TYPES)


def check_module(model: object, argument: str = "model", inplace: bool = False, op: str = "surgery") -> None:
    """Raise a clear error for input that surgery cannot work on (not a Module, in-place on TorchScript)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{op}: argument {argument!r} must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, torch.jit.ScriptModule):
        how = "inplace=True cannot edit" if inplace else "cannot edit"
        raise TypeError(
            f"{op}: {how} a TorchScript module ({type(model).__name__}); "
            f"apply {op} to the eager nn.Module first, then script the result"
        )


def set_child(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at dotted path `name` (as in named_modules) by `module`."""
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent), attr, module)
