"""Generated regression data: boxes of input bounds, samples inside them and in a band around them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .expressions import parse_expression

Bounds = list[tuple[str, float, float]]  # (input name, low, high) per input
MAX_BOUND = 1e15  # |LOW|, |HIGH| at most this: wider boxes overflow sampling and the model's float32 features


def parse_domain(specs: Sequence[str]) -> Bounds:
    """Parse "x=-3.14:3.14" (bounds may be constant expressions such as "-pi:2*pi") into bounds."""
    bounds: Bounds = []
    for spec in specs:
        name, sep, rng = spec.partition("=")
        lo_text, sep2, hi_text = rng.partition(":")
        name = name.strip()
        if not sep or not sep2 or not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"--domain: expected NAME=LOW:HIGH such as x=-3.14:3.14, got {spec!r}")
        try:
            lo, hi = (float(_constant(t)) for t in (lo_text, hi_text))
        except ValueError as e:
            raise ValueError(f"--domain {spec!r}: {e}") from None
        if not np.isfinite([lo, hi]).all() or not lo < hi or max(abs(lo), abs(hi)) > MAX_BOUND:
            raise ValueError(f"--domain {spec!r}: expected finite LOW < HIGH within +-{MAX_BOUND:g}, got {lo} and {hi}")
        if name in [b[0] for b in bounds]:
            raise ValueError(f"--domain: input {name!r} is given twice")
        bounds.append((name, lo, hi))
    return bounds


def _constant(text: str) -> float:
    expr = parse_expression(text)
    if expr.variables:
        raise ValueError(f"bound {text!r} must be a number or constant expression, not use {expr.variables}")
    return float(expr({}))


def _arrays(bounds: Bounds) -> tuple[np.ndarray, np.ndarray]:
    return np.array([b[1] for b in bounds], dtype=np.float64), np.array([b[2] for b in bounds], dtype=np.float64)


def sample_box(bounds: Bounds, n: int, seed: int = 0) -> np.ndarray:
    """n points uniformly inside the box: (n, D)."""
    lo, hi = _arrays(bounds)
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, len(bounds)))


def expand_bounds(bounds: Bounds, margin: float) -> Bounds:
    """The box widened by `margin` x its width on every side (margin=0.25: 50% wider in total)."""
    return [(name, lo - margin * (hi - lo), hi + margin * (hi - lo)) for name, lo, hi in bounds]


def sample_band(bounds: Bounds, margin: float, n: int, seed: int = 0) -> np.ndarray:
    """n points uniformly in the extrapolation band: inside the widened box, outside the training box."""
    if margin <= 0:
        raise ValueError(f"margin: expected a positive fraction of the domain width, got {margin}")
    lo, hi = _arrays(bounds)
    rng = np.random.default_rng(seed)
    wide = expand_bounds(bounds, margin)
    wlo, whi = _arrays(wide)
    chunks, have = [], 0
    while have < n:
        x = rng.uniform(wlo, whi, size=(max(2 * n, 256), len(bounds)))
        x = x[((x < lo) | (x > hi)).any(1)]
        chunks.append(x)
        have += len(x)
    return np.concatenate(chunks)[:n]


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root-mean-square error of two same-length arrays."""
    pred, truth = (
        np.asarray(pred, dtype=np.float64).reshape(len(truth), -1),
        np.asarray(truth, dtype=np.float64).reshape(len(truth), -1),
    )
    return float(np.sqrt(np.mean((pred - truth) ** 2)))
