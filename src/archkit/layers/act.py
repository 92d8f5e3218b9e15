"""Activation factory: names or classes to modules, one place for the list of choices."""

from __future__ import annotations

from collections.abc import Callable
from typing import overload

from torch import nn

ActSpec = str | type | Callable[[], nn.Module] | None

_ACTS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=False),
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}
ACT_CHOICES = (*_ACTS, None)


@overload
def create_act(act: None) -> None: ...
@overload
def create_act(act: str | type | Callable[[], nn.Module]) -> nn.Module: ...
@overload
def create_act(act: ActSpec) -> nn.Module | None: ...
def create_act(act: ActSpec) -> nn.Module | None:
    """Build an activation from a name ("relu", "selu", "gelu", "silu", "tanh"), a class, or None."""
    if act is None:
        return None
    if isinstance(act, str):
        try:
            return _ACTS[act.lower()]()
        except KeyError:
            raise ValueError(
                f"act: unknown name {act!r}; expected one of {list(ACT_CHOICES)} or a module class"
            ) from None
    if callable(act):
        return act()
    raise TypeError(f"act: expected a name, a module class or None, got {type(act).__name__}")
