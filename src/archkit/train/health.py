"""Codebook health while a VQ-VAE trains: per level usage, perplexity and dead codes, and a warning when a level dies.

Computed from the code maps each training step produces, so it reads the same for every quantizer
(EMA codebook, rotation trick, FSQ). Over a window of steps (the log interval):
    usage       share of the level's codes picked at least once in the window
    perplexity  exp(entropy) of the window's code counts (= the number of codes at uniform use)
    dead        codes not picked in the last `dead_after` training steps
Under torch.distributed the counts are summed over ranks, so every rank reports the global batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

LOW_USAGE = 0.5  # below this share of codes in use, a level gets a one-line warning
# What to try when a level's warning fires, by the level's quantizer (VQVAE2Config.quantizer).
HEALTH_HINTS = {
    "ema": "--quantizer fsq (no codebook to collapse), a smaller --num-codes or a lower --restart-after",
    "rotation": "--quantizer fsq (no codebook to collapse), a smaller --num-codes or a lower --restart-after",
    "fsq": "fewer values per channel in --fsq-levels (e.g. 5,5,5 instead of 8,8,8)",
}


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t


def level_name(level: int, levels: int) -> str:
    """'top', 'bottom' or 'middle N' for a level index (0 = top)."""
    return "top" if level == 0 else "bottom" if level == levels - 1 else f"middle {level}"


class CodebookHealth:
    """Per-level code statistics over the steps since the last `summary(reset=True)`."""

    def __init__(self, num_codes: Sequence[int], dead_after: int = 100, warmup: int = 100) -> None:
        if not num_codes or not all(isinstance(k, int) and k > 0 for k in num_codes):
            raise ValueError(f"num_codes: expected positive ints, one per level, got {list(num_codes)!r}")
        if not isinstance(dead_after, int) or dead_after < 1:
            raise ValueError(f"dead_after: expected a positive int, got {dead_after!r}")
        self.num_codes = list(num_codes)
        self.dead_after, self.warmup = dead_after, warmup
        self.counts = [torch.zeros(k, dtype=torch.float64) for k in self.num_codes]
        self.unused = [torch.zeros(k, dtype=torch.long) for k in self.num_codes]
        self.steps = 0
        self.window_steps = 0  # steps since the last summary(reset=True)
        self._warned: set[int] = set()

    def update(self, codes: Sequence[torch.Tensor]) -> None:
        """Add one training step's code maps (top first)."""
        if len(codes) != len(self.num_codes):
            raise ValueError(f"codes: expected {len(self.num_codes)} code maps (one per level), got {len(codes)}")
        for l, (c, k) in enumerate(zip(codes, self.num_codes)):
            step_counts = _all_reduce(torch.bincount(c.detach().flatten().long(), minlength=k).double()).cpu()
            self.counts[l] += step_counts
            self.unused[l].add_(1).masked_fill_(step_counts > 0, 0)
        self.steps += 1
        self.window_steps += 1

    def summary(self, reset: bool = True) -> list[dict[str, Any]]:
        """One dict per level (top first): codes, usage, perplexity, dead; `reset` starts a new window."""
        out = []
        for c, u, k in zip(self.counts, self.unused, self.num_codes):
            p = c / c.sum().clamp_min(1)
            out.append(
                {
                    "codes": k,
                    "usage": float((c > 0).double().mean()),
                    "perplexity": float(torch.exp(-(p * p.clamp_min(1e-12).log()).sum())),
                    "dead": int((u >= self.dead_after).sum()),
                }
            )
        if reset:
            for c in self.counts:
                c.zero_()
            self.window_steps = 0
        return out

    def warnings_for(self, levels: list[dict[str, Any]], hint: str | Sequence[str] = "") -> list[str]:
        """One line per level whose usage just fell below LOW_USAGE (once until it recovers), after warm-up.

        `hint`: what to try, one for every level or one per level.
        """
        lines = []
        for l, lv in enumerate(levels):
            if lv["usage"] >= LOW_USAGE:
                self._warned.discard(l)
                continue
            if self.steps < self.warmup or l in self._warned:
                continue
            self._warned.add(l)
            lines.append(
                f"codebook health: level {l} ({level_name(l, len(levels))}) uses {lv['usage']:.0%} of its "
                f"{lv['codes']} codes ({lv['dead']} dead) at step {self.steps}"
                + (f"; try {h}" if (h := hint if isinstance(hint, str) else hint[l]) else "")
            )
        return lines

    def warn(self, levels: list[dict[str, Any]], hint: str | Sequence[str] = "") -> list[str]:
        """Issue `warnings_for` as RuntimeWarnings; returns the lines."""
        lines = self.warnings_for(levels, hint)
        for line in lines:
            warnings.warn(line, RuntimeWarning, stacklevel=2)
        return lines


def format_health(levels: list[dict[str, Any]]) -> str:
    """Compact progress-bar text, top level first: 'use 97%/88% ppl 410/380 dead 0/3' ('' before any window)."""
    if not levels:
        return ""
    use = "/".join(f"{lv['usage']:.0%}" for lv in levels)
    ppl = "/".join(f"{lv['perplexity']:.0f}" for lv in levels)
    dead = "/".join(str(lv["dead"]) for lv in levels)
    return f"use {use} ppl {ppl} dead {dead}"


__all__ = ["HEALTH_HINTS", "LOW_USAGE", "CodebookHealth", "format_health", "level_name"]
