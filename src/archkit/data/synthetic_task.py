"""A generated long-sequence task: 8192 steps, 8 channels, 4 classes; the label needs one event near the
start and one near the end, so a model that forgets the start of a sequence is stuck at 50 %."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io import atomic_write

LONG_TASK = "long-task"  # name of the generated dataset wherever a dataset name is accepted
LONG_TASK_CLASSES = ["A0-B0", "A0-B1", "A1-B0", "A1-B1"]


def make_long_task(n: int, seed: int = 0, length: int = 8192, features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, length, features) float32, y (n,) int64): label = 2 * early event + late event.

    Noise everywhere; one pulse in the first quarter on channel 0 or 1 (event A) and one in the
    last quarter on channel 2 or 3 (event B); decoy pulses on the remaining channels. Label
    `2*A + B`: the end of a sequence alone tells only B, so a model that forgets the start is
    stuck at 50% (chance is 25%).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    if length < 64:
        raise ValueError(f"length: expected at least 64 steps, got {length}")
    if features < 4:
        raise ValueError(f"features: expected at least 4 channels (events use channels 0-3), got {features}")
    rng = np.random.default_rng(seed)
    x = 0.5 * rng.standard_normal((n, length, features), dtype=np.float32)
    width = max(length // 128, 4)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    quarter = length // 4
    pos_a = rng.integers(0, quarter - width, n)
    pos_b = rng.integers(length - quarter, length - width, n)
    for i in range(n):
        x[i, pos_a[i] : pos_a[i] + width, a[i]] += 2.0
        x[i, pos_b[i] : pos_b[i] + width, 2 + b[i]] += 2.0
        if features > 4:  # a decoy pulse anywhere, on a channel that carries no label information
            c, p = rng.integers(4, features), rng.integers(0, length - width)
            x[i, p : p + width, c] += 2.0
    return x, (2 * a + b).astype(np.int64)


def write_long_task(
    folder: str | os.PathLike, n: int, seed: int = 0, length: int = 8192, features: int = 8, chunk: int = 64
) -> tuple[Path, Path]:
    """Write the long task to folder/X.npy + folder/Y.npy in chunks (never all in memory); reuses existing files."""
    folder = Path(folder)
    xp, yp = folder / "X.npy", folder / "Y.npy"
    if xp.is_file() and yp.is_file():
        try:
            x = np.load(xp, mmap_mode="r")
            if x.shape == (n, length, features) and len(np.load(yp)) == n:
                return xp, yp
        except (ValueError, OSError):
            pass  # unreadable leftovers from an interrupted run: rebuild them

    ys = []

    def write_x(tmp: str) -> None:  # chunk by chunk into a memmap, so X never has to fit in memory
        x = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, length, features))
        for start in range(0, n, chunk):
            xc, yc = make_long_task(
                min(chunk, n - start), seed=seed * 100_003 + start, length=length, features=features
            )
            x[start : start + len(xc)] = xc
            ys.append(yc)
        x.flush()

    atomic_write(xp, write_x)
    atomic_write(yp, lambda tmp: np.save(tmp, np.concatenate(ys)))
    return xp, yp
