"""Config dataclasses from JSON: every field named, typed and present, so a bad file fails loudly."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

C = TypeVar("C")


def json_type(value: Any) -> str:
    names = {
        dict: "object",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def config_from_dict(cls: type[C], data: Any, source: str | None = None) -> C:
    """Build a config dataclass from a dict; unknown, missing or mistyped fields are a ValueError.

    A missing field is an error, never a silent default: a config saved by this code has every
    field, so one without it was edited or written for another version. `source` (e.g. the file)
    starts the message.
    """
    where = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise ValueError(f"{where}config for {cls.__name__}: expected a JSON object of fields, got a {json_type(data)}")
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]  # cls is a dataclass by contract
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(
            f"{where}config for {cls.__name__} has unknown fields {unknown}; expected a subset of {sorted(names)}"
        )
    # Fields a newer archkit added are declared, with the value that reproduces the older model, in the
    # class's `ADDED_FIELDS`: a checkpoint written before them loads as it was trained. Any other missing
    # field is an error.
    added = getattr(cls, "ADDED_FIELDS", {})
    data = {**{k: v for k, v in added.items() if k not in data}, **data}
    missing = [n for n in names if n not in data]
    if missing:
        raise ValueError(
            f"{where}config for {cls.__name__} is missing fields {missing}; every field must be "
            f"given (a missing field is never filled with a default)"
        )
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: skip the type check, the constructor still runs
        hints = {}
    for name in names:
        if name in hints and not _matches(data[name], hints[name]):
            raise ValueError(
                f"{where}config for {cls.__name__}: field {name!r} expected {_hint_text(hints[name])}, "
                f"got {data[name]!r}"
            )
    try:
        return cls(**data)
    except (TypeError, ValueError) as e:  # the class's own checks (__post_init__) name the field; say where it was read
        raise ValueError(f"{where}config for {cls.__name__}: {e}") from None


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a simple annotation (int, float, str, bool, list[...], X | None, ...)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # NaN and infinities are never a setting (json reads "NaN" and "Infinity" happily)
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if args and (origin is list or (len(args) == 2 and args[1] is Ellipsis)) else None
        return item is None or all(_matches(v, item) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True  # an annotation this check does not know: leave it to the constructor


def _hint_text(hint: Any) -> str:
    return str(getattr(hint, "__name__", hint)) if not typing.get_args(hint) else str(hint).replace("typing.", "")
