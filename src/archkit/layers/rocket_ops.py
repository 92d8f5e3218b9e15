"""The arithmetic of MiniRocket (its kernels, dilations, convolutions and pooling), shared by its module and fit."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

KERNEL_TAPS = tuple(combinations(range(9), 3))  # the 84 kernels: the taps weighted 2 (all others -1)
NUM_KERNELS = len(KERNEL_TAPS)
MAX_FEATURES = 1_000_000


def fit_dilations(length: int, num_features: int, max_dilations_per_kernel: int) -> tuple[np.ndarray, np.ndarray]:
    """(dilations, features per dilation) for series of `length` steps, exactly as aeon's MiniRocket chooses them."""
    per_kernel = num_features // NUM_KERNELS
    true_max = min(per_kernel, max_dilations_per_kernel)
    multiplier = per_kernel / true_max
    max_exponent = np.log2((length - 1) / (9 - 1))
    dilations, counts = np.unique(np.logspace(0, max_exponent, true_max, base=2).astype(np.int32), return_counts=True)
    counts = (counts * multiplier).astype(np.int32)
    remainder, i = per_kernel - int(counts.sum()), 0
    while remainder > 0:
        counts[i] += 1
        remainder -= 1
        i = (i + 1) % len(counts)
    return dilations.astype(np.int64), counts.astype(np.int64)


def quantiles(n: int) -> np.ndarray:
    """The low-discrepancy sequence of quantiles aeon assigns to the biases."""
    return np.array([(k * ((np.sqrt(5) + 1) / 2)) % 1 for k in range(1, n + 1)], dtype=np.float32)


def check_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name}: expected an int in [{low}, {high}], got {value!r}")
    return int(value)


def conv(x: torch.Tensor, w: torch.Tensor, dilation: int, padding: int) -> torch.Tensor:
    """conv1d one case at a time: the backend picks its algorithm by batch size, and a case's features must
    not depend on the batch it came in (at an exact tie of an output with a bias, rounding decides)."""
    return torch.cat([F.conv1d(x[i : i + 1], w, dilation=dilation, padding=padding) for i in range(x.shape[0])])


def ppv(
    out: torch.Tensor,
    biases: torch.Tensor,
    steps: torch.Tensor | None,
    window: tuple[torch.Tensor, torch.Tensor] | None,
    positions: int,
    compiled: bool = False,
) -> torch.Tensor:
    """Proportion of positive values of `out` (N, K, L) minus each bias (K, nf) -> (N, K * nf).

    Without `window`, over all L positions (`positions` of them); with it, over positions
    start[i] <= p < stop[i] of case i (an empty window gives 0).
    """
    if window is not None and steps is not None:
        start, stop = window
        inside = (steps[None, :] >= start[:, None]) & (steps[None, :] < stop[:, None])
        out = out.masked_fill(~inside[:, None, :], float("-inf"))
        count = (stop - start).clamp(min=1).to(torch.float32)[:, None, None]
    else:
        count = torch.tensor(float(max(positions, 1)), device=out.device)
    counts = _compiled_count()(out, biases) if compiled else _count_eager(out, biases)
    return (counts / count).flatten(1)


def _count_eager(out: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
    """(N, K, nf) float32 counts of out (N, K, L) > biases (K, nf): one comparison pass per bias column."""
    # int32 accumulation reads the comparison's bytes as they are; a float32 sum would first copy them to floats
    cols = [(out > biases[:, f, None]).sum(-1, dtype=torch.int32) for f in range(biases.shape[1])]
    return torch.stack(cols, -1).to(torch.float32)


def _count_fused(out: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
    """`_count_eager` written as one broadcast comparison, which torch.compile fuses into one pass over `out`."""
    return (out.unsqueeze(2) > biases[None, :, :, None]).sum(-1, dtype=torch.float32)


_COMPILED: list[Any] = []


def _compiled_count() -> Any:
    if not _COMPILED:
        _COMPILED.append(torch.compile(_count_fused, dynamic=True))
    return _COMPILED[0]
