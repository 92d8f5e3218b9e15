"""Checking the values a user gives, in one place, with errors that name the argument.

Every check raises `TypeError` for a value of the wrong type and `ValueError` for one outside its
range or choices, in one wording: "NAME: expected WHAT, got VALUE". The model is scikit-learn's
`check_scalar`; bool is never accepted as a number (`True` is an int to Python, not to a user).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

__all__ = ["check_choice", "check_finite", "check_finite_rows", "check_float", "check_int", "check_range"]


def _bounds_text(min_val: float | None, max_val: float | None, min_open: bool, max_open: bool) -> str:
    lo = None if min_val is None else f"{'>' if min_open else '>='} {min_val:g}"
    hi = None if max_val is None else f"{'<' if max_open else '<='} {max_val:g}"
    if lo and hi:
        return f"in {'(' if min_open else '['}{min_val:g}, {max_val:g}{')' if max_open else ']'}"
    return lo or hi or ""


def check_range(
    value: float,
    name: str,
    min_val: float | None = None,
    max_val: float | None = None,
    *,
    min_open: bool = False,
    max_open: bool = False,
    what: str = "a number",
) -> None:
    """Raise ValueError naming `name` when `value` lies outside [min_val, max_val] (ends open on request)."""
    too_low = min_val is not None and (value <= min_val if min_open else value < min_val)
    too_high = max_val is not None and (value >= max_val if max_open else value > max_val)
    if too_low or too_high or (isinstance(value, float) and math.isnan(value)):
        bounds = _bounds_text(min_val, max_val, min_open, max_open)
        raise ValueError(f"{name}: expected {what}{' ' + bounds if bounds else ''}, got {value!r}")


def check_int(
    value: Any,
    name: str,
    min_val: int | None = None,
    max_val: int | None = None,
) -> int:
    """`value` as an int within [min_val, max_val]; TypeError for a non-integer, ValueError out of range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        bounds = _bounds_text(min_val, max_val, False, False)
        raise TypeError(f"{name}: expected an int{' ' + bounds if bounds else ''}, got {value!r}")
    value = int(value)
    check_range(value, name, min_val, max_val, what="an int")
    return value


def check_float(
    value: Any,
    name: str,
    min_val: float | None = None,
    max_val: float | None = None,
    *,
    min_open: bool = False,
    max_open: bool = False,
) -> float:
    """`value` as a finite float within its bounds; TypeError for a non-number, ValueError for NaN/inf/out of range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        bounds = _bounds_text(min_val, max_val, min_open, max_open)
        raise TypeError(f"{name}: expected a number{' ' + bounds if bounds else ''}, got {value!r}")
    value = float(value)
    check_finite(value, name)
    check_range(value, name, min_val, max_val, min_open=min_open, max_open=max_open)
    return value


def check_finite(value: float, name: str) -> float:
    """Raise ValueError naming `name` when `value` is NaN or infinite."""
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return value


def check_finite_rows(x: Any, name: str, offset: int = 0, lengths: Any = None) -> None:
    """Raise ValueError naming `name` and the first row (counted from `offset`) holding NaN or inf.

    `x` is a batch of rows (an array or tensor, rows first); with `lengths`, only each row's first
    lengths[i] steps count (padding past them is never read by a model).
    """
    a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    if a.dtype.kind not in "fc":  # integers and booleans are always finite
        return
    finite = np.isfinite(a)
    if lengths is not None and a.ndim >= 2:
        steps = np.arange(a.shape[1]).reshape((1, -1) + (1,) * (a.ndim - 2))
        lens = np.asarray(lengths.cpu() if hasattr(lengths, "cpu") else lengths).reshape((-1,) + (1,) * (a.ndim - 1))
        finite |= steps >= lens
    ok = finite.reshape(len(a), -1).all(1) if a.ndim > 1 else finite
    if not ok.all():
        row = int(np.argmin(ok))
        value = a[row][~finite[row]].flat[0]
        raise ValueError(
            f"{name}: row {offset + row} holds {value} (every value must be finite: a model cannot score NaN "
            f"or inf); fix or drop that row"
        )


def check_choice(value: T, name: str, choices: Iterable[T]) -> T:
    """Raise ValueError naming `name` and the choices when `value` is not one of them."""
    options = list(choices)
    if value not in options:
        raise ValueError(f"{name}: expected one of {options}, got {value!r}")
    return value
