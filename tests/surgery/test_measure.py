"""peak_rss_growth_mib: the memory probe both benchmarks use."""

import numpy as np

from archkit.surgery import peak_rss_growth_mib

MIB = 2**20


def test_peak_rss_growth_sees_a_temporary_allocation_and_ignores_earlier_peaks():
    big = np.ones(64 * MIB // 8)  # an earlier 64 MiB peak, freed before measuring
    del big
    assert peak_rss_growth_mib(lambda: None) < 16
    grown = peak_rss_growth_mib(lambda: np.ones(48 * MIB // 8).sum())  # 48 MiB, freed before returning
    assert 40 < grown < 200


def test_peak_rss_growth_counts_an_allocation_that_reuses_freed_heap_space():
    # The state that made the probe read ~0 after other tests: freeing one 8 MiB block raises glibc's
    # mmap threshold, so the next 8 MiB blocks go on the heap; freeing them under a live block that
    # pins the heap top leaves ~160 MiB of free but resident heap, where a new 48 MiB array fits.
    first = np.ones(8 * MIB // 8)
    del first
    blocks = [np.ones(8 * MIB // 8) for _ in range(20)]
    pin = np.ones(8 * MIB // 8)
    del blocks
    grown = peak_rss_growth_mib(lambda: np.ones(48 * MIB // 8).sum())
    assert 40 < grown < 200, grown
    assert pin.sum() == MIB  # the pin stayed alive through the measurement
