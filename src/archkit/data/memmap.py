"""Rows of a memory-mapped array, read without keeping the file's pages in this process's resident memory.

Reading a memory-mapped .npy maps the pages it touches into the process: they count in its resident
set (RSS) until the kernel needs the memory back, so a pass over shards 4x larger shows 4x the RSS
although nothing is held. After copying a batch's rows out, the pages they came from are handed back
(`madvise(MADV_DONTNEED)`; the data stays in the page cache, a later read maps it again).
"""

from __future__ import annotations

import contextlib
import mmap
from typing import Any

import numpy as np

__all__ = ["read_rows", "release_pages"]


def read_rows(x: Any, idx: Any) -> np.ndarray:
    """A float32 C-contiguous copy of rows `idx` (sorted int array or slice) of `x`; memmap pages read are released."""
    part = x[idx]  # a fancy index already copies; a slice is a view of the mapped pages and must be copied
    rows = (
        np.array(part, dtype=np.float32, order="C")
        if isinstance(idx, slice)
        else np.ascontiguousarray(part, np.float32)
    )
    release_pages(x, idx)
    return rows


def release_pages(x: Any, idx: Any) -> None:
    """Hand back the pages of rows `idx` of a C-contiguous np.memmap (no-op for other arrays or platforms)."""
    mm = getattr(x, "_mmap", None)
    if not isinstance(x, np.memmap) or not isinstance(mm, mmap.mmap) or not x.flags.c_contiguous or x.ndim < 1:
        return
    if not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    if isinstance(idx, slice):
        lo, hi, _ = idx.indices(len(x))
    else:
        idx = np.asarray(idx)
        if idx.size == 0:
            return
        lo, hi = int(idx.min()), int(idx.max()) + 1
    if hi <= lo:
        return
    base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    start = x.ctypes.data - base + lo * x.strides[0]
    end = x.ctypes.data - base + hi * x.strides[0]
    start -= start % mmap.PAGESIZE
    with contextlib.suppress(OSError, ValueError):  # an advice, not a requirement: the copy is already made
        mm.madvise(mmap.MADV_DONTNEED, start, end - start)
