"""The arithmetic of MiniRocket (its kernels, dilations, convolutions and pooling), shared by its module and fit."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations, pairwise
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..threads import map_cases

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


METHODS = ("exact", "conv")  # how MiniRocket computes its outputs: aeon's sums, or conv1d


def check_method(method: Any) -> str:
    if method not in METHODS:
        raise ValueError(f"method: expected one of {list(METHODS)}, got {method!r}")
    return str(method)


def conv_weights(in_channels: int, taps: list[tuple[int, ...]], channels: list[np.ndarray]) -> torch.Tensor:
    """conv1d weights (K, in_channels, 9) of K kernels: -1, 2 at each kernel's `taps`, over its `channels` only."""
    w = torch.zeros(len(taps), in_channels, 9)
    for k, (chosen, comb) in enumerate(zip(taps, channels)):
        row = torch.full((9,), -1.0)
        row[list(chosen)] = 2.0
        w[k, torch.as_tensor(np.asarray(comb, dtype=np.int64))] = row
    return w


BLOCK_STEPS = 8192  # steps per block of equally long cases (a block is one case at 8192 steps)


def case_blocks(lengths: list[int]) -> list[list[int]]:
    """Cases grouped for the transform: equally long, in order, at most BLOCK_STEPS steps per block."""
    blocks: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        last = blocks[-1] if blocks else None
        if last and lengths[last[0]] == lengths[i] and (len(last) + 1) * lengths[i] <= BLOCK_STEPS:
            last.append(i)
        else:
            blocks.append([i])
    return blocks


def valid_steps(
    x: torch.Tensor, lengths: torch.Tensor | None, in_channels: int, min_steps: int = 1, why: str = ""
) -> list[int]:
    """Each case's valid steps, after checking x (N, in_channels, T) and `lengths` (N,) in [min_steps, T]
    (`why`: the reason for min_steps, said when a case is shorter)."""
    if x.ndim != 3 or x.shape[1] != in_channels:
        raise ValueError(
            f"x: expected series shaped (n_cases, {in_channels}, n_timepoints), got shape {tuple(x.shape)}"
        )
    n, _, t = x.shape
    if lengths is None:
        return [t] * n
    if lengths.shape != (n,) or lengths.is_floating_point():
        raise ValueError(
            f"lengths: expected {n} integer lengths (one per case), got shape {tuple(lengths.shape)} of {lengths.dtype}"
        )
    valid = [int(v) for v in lengths.tolist()]
    if valid and min_steps > 1 and min(valid) < min_steps:
        raise ValueError(f"lengths: expected at least {min_steps} steps per case{why}, got {min(valid)}")
    if valid and not min_steps <= min(valid) <= max(valid) <= t:
        raise ValueError(f"lengths: expected values in [{min_steps}, {t}], got values in [{min(valid)}, {max(valid)}]")
    return valid


def refuse_trace(name: str) -> None:
    """Raise when traced (export, torch.compile): `name`'s features loop over cases of data-dependent lengths."""
    if torch.compiler.is_compiling():
        raise RuntimeError(
            f"export: {name} features do not export (ONNX, pt2, torch.compile): they are computed one case at a "
            "time over each case's own steps; MiniRocket's do (RocketClassifier(features='minirocket'))"
        )


def by_blocks(
    x: torch.Tensor, valid: list[int], num_features: int, fn: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """(N, num_features) rows of fn(block) over `case_blocks` of x, each block cut to its cases' length;
    on the CPU the blocks run side by side on torch's threads (`archkit.threads.map_cases`)."""
    blocks = case_blocks(valid)

    def block(k: int) -> torch.Tensor:
        idx = blocks[k]
        xb = x[idx[0] : idx[-1] + 1] if idx[-1] - idx[0] == len(idx) - 1 else x[idx]
        return fn(xb[..., : valid[idx[0]]])

    parts = map_cases(block, len(blocks)) if x.device.type == "cpu" else [block(k) for k in range(len(blocks))]
    dtype = parts[0].dtype if parts else torch.float32
    rows = torch.empty(x.shape[0], num_features, dtype=dtype, device=x.device)
    for idx, part in zip(blocks, parts):
        rows[idx] = part
    return rows


def conv_features(
    x: torch.Tensor,
    plan: list[tuple[int, int]],
    weights: torch.Tensor,
    biases: torch.Tensor,
    pool: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    left_shift: int = 0,
) -> torch.Tensor:
    """MiniRocket's features (B, F) of a block of equally long cases x (B, C, L) ("conv"), in computed order.

    Per dilation d (`plan`: (d, features per kernel)), `weights[j]` (84, C, 9) holds the 42 kernels
    that pool their zero-padded output, then the 42 that pool only where they fit inside the case
    (their padded output when the case is too short: L <= 8d); `biases` the grouped biases in the same
    order. Each case's outputs are one matrix product of its nine shifted copies (C * 9, L) per half:
    2.2x faster than conv1d on 8 channels of 8192 steps (one CPU thread). Products run one case at a
    time, so a case's features don't depend on the block it came in (the backend picks its algorithm by
    shape, and at an exact tie of an output with a bias rounding decides); the comparisons with the
    biases (exact either way) run on the whole block, so short series don't pay a call per case.
    `pool` (outputs (B, K, L), biases (K, nf)) -> (B, K * nf * p): other pooling than PPV (MultiRocket's);
    `left_shift`: the four taps before the centre read that many steps later (aeon's MultiRocket on differences).
    """
    n, c, length = x.shape
    half, feats, at = NUM_KERNELS // 2, [], 0
    # buffers reused for every dilation: a fresh 1.4 MB tensor per product cost as much as half the product
    # (its pages are touched anew), so the outputs, shifted copies and comparisons each get one
    count_dtype = torch.float32 if length <= 1 << 24 else torch.float64  # counts stay exact
    hits = torch.empty(n * half * length, dtype=count_dtype, device=x.device)
    # each case's outputs start on a 64-byte boundary: MKL's products may round differently at another
    # alignment, and a case's features must not depend on its place in the block
    align = max(1, 64 // x.element_size())
    stride = -(-half * length // align) * align
    padded = torch.empty(n * stride, dtype=x.dtype, device=x.device).as_strided((n, half, length), (stride, length, 1))
    inner_buf = torch.empty(n * stride, dtype=x.dtype, device=x.device)
    shifted = torch.empty(c, 9, length, dtype=x.dtype, device=x.device)
    pad = 4 * max(d for d, _ in plan)
    xp = F.pad(x, (pad, pad))  # once, for the widest kernel
    for j, (d, nf) in enumerate(plan):
        w = weights[j].reshape(NUM_KERNELS, -1)  # (84, C * 9): channel-major, as the shifted rows below
        b = biases[at : at + NUM_KERNELS * nf].view(NUM_KERNELS, nf)
        at += NUM_KERNELS * nf
        fits = length > 8 * d
        cols = length - 8 * d if fits else length
        inner = inner_buf.as_strided((n, half, cols), (-(-half * cols // align) * align, cols, 1))
        flat = shifted.view(-1, length)
        for i in range(n):
            shifted.copy_(xp[i, :, pad - 4 * d : pad + length + 4 * d].unfold(1, length, d))
            if left_shift:
                left = xp[i, :, pad - 4 * d + left_shift : pad + length - d + left_shift]
                shifted[:, :4].copy_(left.unfold(1, length, d))
            torch.mm(w[:half], flat, out=padded[i])
            torch.mm(w[half:], flat[:, 4 * d : length - 4 * d] if fits else flat, out=inner[i])
        for out, rows in ((padded, slice(0, half)), (inner, slice(half, None))):
            if pool is not None:
                feats.append(pool(out, b[rows]))
            else:
                feats.append((count_above(out, b[rows], hits) / out.shape[-1]).flatten(1))
    return torch.cat(feats, 1)


def sum_plan(taps: list[tuple[int, ...]], channels: list[np.ndarray]) -> tuple[list[torch.Tensor], list[int]]:
    """Index tensors for `outputs`, from each kernel's taps weighted 2 and its channels (K kernels, output order).

    A kernel's output on one channel is ((alpha + gamma[a]) + gamma[b]) + gamma[c] (its taps a < b < c);
    the partial sums shared by kernels on the same channel are computed once: (channel, a), then
    (channel, a, b), then (channel, a, b, c), each a gather of the previous stage plus a gather of
    gamma (row channel * 9 + tap). The last stage comes in channel slots: each kernel's first channel
    (K rows, kernel order), then its second (the kernels that have one, `kernels` between `bounds`), ...
    """
    stages: list[dict[tuple[int, ...], int]] = [{}, {}, {}]
    links: list[list[tuple[int, int]]] = [[], [], []]
    kernels, bounds = [], [0]
    for s in range(max(len(c) for c in channels)):
        for r, (chosen, comb) in enumerate(zip(taps, channels)):
            if s >= len(comb):
                continue
            ch = prev = int(comb[s])
            for q in range(3):
                key = (ch, *chosen[: q + 1]) if q < 2 else (len(links[2]),)  # the last stage: one row per slot
                if key not in stages[q]:
                    stages[q][key] = len(stages[q])
                    links[q].append((prev, ch * 9 + chosen[q]))
                prev = stages[q][key]
            if s:
                kernels.append(r)
        if s:
            bounds.append(len(kernels))
    pairs = [torch.tensor(np.array(link, dtype=np.int64).T.copy()) for link in links]
    return [p for pair in pairs for p in pair] + [torch.tensor(kernels, dtype=torch.int64)], bounds


def outputs(
    x: torch.Tensor, dilation: int, plan: list[torch.Tensor], bounds: list[int], left_shift: int = 0
) -> torch.Tensor:
    """The kernels' outputs (N, K, T) at one dilation, with zero padding, summed in aeon's order.

    x (N, C, T + 8 * dilation) is the series, zero-padded by 4 * dilation on both sides; `plan, bounds`
    the `sum_plan` of the kernels' taps and channels. As MiniRocket's own algorithm (and aeon's float32
    code): alpha = -x summed over the nine dilated taps in order (centre, -4d .. -1d, +1d .. +4d), plus
    gamma = 3x at each of the kernel's three taps, then summed over the kernel's channels in order.
    Only elementwise additions, each rounded as aeon rounds it: a float32 module gives aeon's outputs
    bit for bit, and a case's outputs don't depend on its batch. In blocks of cases (or of steps, for
    long series) whose partial sums stay in the CPU's cache: 3x faster than one pass on 8192 steps.
    `left_shift` (< dilation): the four taps before the centre read that many steps later.
    """
    n, t, rows = x.shape[0], x.shape[2] - 8 * dilation, plan[4].numel()
    cases = max(1, _BLOCK // (rows * t))
    width = t if rows * t <= _BLOCK else max(256, _BLOCK // rows)
    if (cases >= n and width >= t) or torch.compiler.is_compiling():  # traced (export): one block, a smaller graph
        return _outputs(x, dilation, plan, bounds, left_shift)
    out = x.new_empty(n, rows - bounds[-1], t)
    for i in range(0, n, cases):
        for s in range(0, t, width):
            e = min(s + width, t)
            out[i : i + cases, :, s:e] = _outputs(
                x[i : i + cases, :, s : e + 8 * dilation], dilation, plan, bounds, left_shift
            )
    return out


_BLOCK = 1 << 18  # elements of the largest partial sum per block


def _outputs(
    x: torch.Tensor, dilation: int, plan: list[torch.Tensor], bounds: list[int], left_shift: int = 0
) -> torch.Tensor:
    n, c, t = x.shape[0], x.shape[1], x.shape[2] - 8 * dilation
    neg = -x
    starts = [s * dilation + (left_shift if s < 4 else 0) for s in range(9)]
    alpha = neg[..., 4 * dilation : 4 * dilation + t]
    for s in (0, 1, 2, 3, 5, 6, 7, 8):
        alpha = alpha + neg[..., starts[s] : starts[s] + t]
    if left_shift:
        x3 = 3 * x
        gamma = torch.stack([x3[..., s : s + t] for s in starts], 2).reshape(n, c * 9, t)
    else:
        gamma = (3 * x).unfold(2, t, dilation).reshape(n, c * 9, t)  # row channel * 9 + tap: 3x shifted by (tap - 4)d
    out = alpha
    for q in range(3):
        out = out.index_select(1, plan[2 * q]) + gamma.index_select(1, plan[2 * q + 1])
    k = out.shape[1] - bounds[-1]
    total = out[:, :k]  # the kernels' first channels; each further slot adds its rows once (rounded once)
    for lo, hi in pairwise(bounds):
        total.index_add_(1, plan[6][lo:hi], out[:, k + lo : k + hi])
    return total


def ppv(
    out: torch.Tensor,
    biases: torch.Tensor,
    steps: torch.Tensor | None,
    window: tuple[torch.Tensor, torch.Tensor] | None,
    positions: int,
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
    counts = count_above(out, biases)
    return (counts / count).flatten(1)


_SMALL = 1 << 16  # comparisons below which one broadcast call beats a call per bias


def count_above(out: torch.Tensor, biases: torch.Tensor, hits: torch.Tensor | None = None) -> torch.Tensor:
    """(..., K, nf) float32 counts of out (..., K, L) > biases (K, nf): one comparison pass per bias column.

    `hits` (float, at least out.numel() elements): a buffer reused across calls, so its pages are touched once.
    """
    if out.numel() * biases.shape[1] <= _SMALL:  # short series: one comparison for all biases (fewer calls)
        return (out.unsqueeze(-2) > biases.unsqueeze(-1)).sum(-1).to(torch.float32)
    # comparisons written as floats (0., 1.) vectorize, those written as bools don't: 2.6x faster with the
    # sum (8 x 42 x 8192 outputs, one CPU thread); counts of up to 2^24 steps stay exact in float32
    if hits is None:
        dtype = torch.float32 if out.shape[-1] <= 1 << 24 else torch.float64
        hits = torch.empty(out.shape, dtype=dtype, device=out.device)
    buf = hits.view(-1)[: out.numel()].view(out.shape)
    cols = [torch.gt(out, biases[:, f, None], out=buf).sum(-1) for f in range(biases.shape[1])]
    return torch.stack(cols, -1).to(torch.float32)
