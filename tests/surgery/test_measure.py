"""peak_rss_growth_mib: the memory probe both benchmarks use."""


def test_peak_rss_growth_sees_a_temporary_allocation_and_ignores_earlier_peaks():
    import numpy as np

    from archkit.surgery import peak_rss_growth_mib

    big = np.ones(64 * 2**20 // 8)  # an earlier 64 MiB peak, freed before measuring
    del big
    assert peak_rss_growth_mib(lambda: None) < 16
    grown = peak_rss_growth_mib(lambda: np.ones(48 * 2**20 // 8).sum())  # 48 MiB, freed before returning
    assert 40 < grown < 200
