"""`device` / `precision` estimator parameters, handed to the run configs that know them."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
PRECISIONS = ("32", "32-true", "bf16", "bf16-mixed", "16-mixed")
DEFAULTS = {"device": "auto", "precision": "32"}


def check_accel(device: Any, precision: Any) -> None:
    """Reject a malformed device/precision early (whether the machine has it is decided by the run)."""
    if not isinstance(device, str) or not _DEVICE.match(device.strip().lower()):
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    if str(precision).strip().lower() not in PRECISIONS:
        raise ValueError(f"precision: expected one of {list(PRECISIONS)}, got {precision!r}")


def run_config(cls: type, device: str, precision: str, **kwargs: Any) -> Any:
    """`cls(**kwargs)` plus device/precision when `cls` has those fields.

    A run config without them trains on the CPU in float32; asking it for anything else is an error,
    not a silent fallback.
    """
    check_accel(device, precision)
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in (("device", device), ("precision", str(precision))):
        if key in names:
            kwargs[key] = value
        elif value not in (DEFAULTS[key], "cpu", "32-true"):
            raise ValueError(
                f"{key}: {value!r} needs a {cls.__name__} with a {key!r} field (archkit's accelerate "
                f"layer); this version trains on the CPU in float32 only"
            )
    return cls(**kwargs)
