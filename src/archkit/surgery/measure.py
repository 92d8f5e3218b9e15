"""Measurements shared by surgery reports, studies and benchmarks: params, MACs, latency, error."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..utils import count_params, format_table


def _as_tuple(inputs: Any) -> tuple:
    return inputs if isinstance(inputs, tuple) else (inputs,)


@torch.no_grad()
def count_macs(model: nn.Module, example_inputs: Any) -> int:
    """Multiply-accumulates of one forward pass, from torch.utils.flop_counter (FLOPs / 2)."""
    counter = FlopCounterMode(display=False)
    with counter:
        model(*_as_tuple(example_inputs))
    return counter.get_total_flops() // 2


@torch.no_grad()
def measure_latency(fn: Callable[[], Any], repeats: int = 20, warmup: int = 3) -> float:
    """Median wall-clock seconds of `fn()` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def interleaved_latency(fns: dict[str, Callable[[], Any]], repeats: int = 20, warmup: int = 3) -> dict[str, float]:
    """Median seconds per callable, timed round-robin so machine noise hits all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _release_free_heap() -> None:
    """Hand every free page of the C heap back to the kernel (glibc `malloc_trim(0)`; a no-op elsewhere)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


def peak_rss_growth_mib(fn: Callable[[], Any]) -> float:
    """Peak resident memory that `fn()` adds on top of what the process holds now, in MiB (Linux).

    Resets the kernel's peak-RSS mark first (/proc/self/clear_refs), so earlier peaks such as imports
    or data loading do not count; run it in a fresh process for numbers that compare across models.

    Before the reset, free heap memory is returned to the kernel (glibc `malloc_trim(0)`). Without it
    the probe read ~0 for a real 48 MiB allocation after other work in the same process: glibc raises
    its mmap threshold to the size of the largest mmapped block freed so far (up to 32 MiB), so
    tensors of a few MiB land on the heap; when they are freed while a live block sits above them the
    heap cannot shrink, and the freed pages stay resident. A later allocation is carved out of that
    free, already-resident space: no page fault, so neither RSS nor its peak (VmHWM) moves. The peak
    reset itself worked. After the trim those free pages are no longer resident, so whatever `fn()`
    touches is faulted in and counted.
    """
    from pathlib import Path

    def status_kib(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"peak_rss_growth_mib: /proc/self/status has no {field} field (Linux only)")

    _release_free_heap()
    Path("/proc/self/clear_refs").write_text("5")
    before = status_kib("VmRSS")
    fn()
    return (status_kib("VmHWM") - before) / 1024


def output_error(reference: torch.Tensor, candidate: torch.Tensor) -> tuple[float, float]:
    """(max-abs error, relative error ||a-b|| / ||a||) between two outputs."""
    ref, cand = reference.detach().double(), candidate.detach().double()
    if ref.shape != cand.shape:
        raise ValueError(f"output shapes differ: reference {tuple(ref.shape)} vs candidate {tuple(cand.shape)}")
    diff = ref - cand
    return diff.abs().max().item(), (diff.norm() / ref.norm().clamp_min(1e-30)).item()


__all__ = [
    "count_macs",
    "count_params",
    "format_table",
    "interleaved_latency",
    "measure_latency",
    "output_error",
    "peak_rss_growth_mib",
]
