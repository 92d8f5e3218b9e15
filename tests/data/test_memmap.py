"""Rows read from a memory-mapped .npy are copies, and the file's pages do not stay in the process's RSS."""

import re
from pathlib import Path

import numpy as np
import pytest

from archkit.data.memmap import read_rows


def _rss_file_kib() -> int:
    status = Path("/proc/self/status")
    found = re.search(r"RssFile:\s+(\d+) kB", status.read_text()) if status.is_file() else None
    if found is None:
        pytest.skip("needs Linux /proc/self/status (RssFile) to see mapped file pages")
    return int(found.group(1))


def test_rows_are_float32_copies_equal_to_the_file(tmp_path):
    x = np.arange(6 * 5 * 3, dtype=np.float64).reshape(6, 5, 3)
    np.save(tmp_path / "x.npy", x)
    m = np.load(tmp_path / "x.npy", mmap_mode="r")
    for idx in (np.array([1, 2, 4]), slice(2, 6), np.array([], dtype=np.int64)):
        got = read_rows(m, idx)
        assert got.dtype == np.float32 and got.flags.c_contiguous and got.flags.writeable
        assert np.array_equal(got, x[idx].astype(np.float32))


def test_a_full_pass_leaves_the_files_pages_out_of_rss(tmp_path):
    rows, row_floats = 256, 64 * 1024  # 64 MiB of float32 rows
    np.save(tmp_path / "x.npy", np.ones((rows, row_floats), np.float32))
    m = np.load(tmp_path / "x.npy", mmap_mode="r")
    before = _rss_file_kib()
    total = 0.0
    for start in range(0, rows, 16):
        total += float(read_rows(m, np.arange(start, start + 16))[:, 0].sum())
    grown_mib = (_rss_file_kib() - before) / 1024
    assert total == rows
    assert grown_mib < 16, f"{grown_mib:.0f} MiB of the 64 MiB file stayed mapped"  # the kernel only lowers RSS
