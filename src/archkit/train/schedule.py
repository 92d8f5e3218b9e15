"""Learning-rate schedules as pure functions of the step, so a resumed run continues exactly where it stopped."""

from __future__ import annotations

import math

LR_SCHEDULES = ("constant", "cosine")


def lr_at(lr: float, schedule: str, step: int, total_steps: int) -> float:
    """Learning rate for optimizer step `step` (0-based) of `total_steps`: constant, or cosine decay to 0."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    raise ValueError(f"lr_schedule: expected one of {list(LR_SCHEDULES)}, got {schedule!r}")


def warmup_cosine_lr(lr: float, step: int, total_steps: int) -> float:
    """Linear warm-up (5 % of the steps, at most 100) then cosine decay to 10 % of `lr`."""
    warm = max(1, min(100, total_steps // 20))
    if step < warm:
        return lr * (step + 1) / warm
    t = (step - warm) / max(1, total_steps - warm)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


__all__ = ["LR_SCHEDULES", "lr_at", "warmup_cosine_lr"]
