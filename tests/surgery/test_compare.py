import pytest
import torch
from torch import nn

from archkit.surgery import CompareReport, compare, fuse_bn, randomize_bn_stats


def test_compare_fused_model():
    ref = randomize_bn_stats(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()), 0)
    ref.train()
    fused, _ = fuse_bn(ref.eval())
    ref.train()
    x = torch.randn(2, 3, 8, 8)
    report = compare(ref, fused, x, repeats=3)
    assert isinstance(report, CompareReport)
    assert ref.training  # mode restored
    assert report.reference_params == 3 * 8 * 9 + 16 and report.candidate_params == 3 * 8 * 9 + 8
    assert report.reference_macs == report.candidate_macs == 2 * 8 * 64 * 27
    assert report.max_abs_error < 1e-5 and report.rel_error < 1e-6
    assert report.latency_ratio == report.candidate_latency_s / report.reference_latency_s > 0
    table = str(report)
    assert "MACs" in table and "latency ms" in table and "relative" in table


def test_compare_detects_difference_and_bad_input():
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    report = compare(a, b, torch.randn(5, 4), repeats=1)
    assert report.rel_error > 0.1
    with pytest.raises(TypeError, match=r"'candidate' must be a torch.nn.Module"):
        compare(a, "b", torch.randn(5, 4))
    with pytest.raises(ValueError, match="repeats"):
        compare(a, b, torch.randn(5, 4), repeats=0)
    with pytest.raises(ValueError, match="output"):
        compare(a, nn.Linear(4, 2), torch.randn(5, 4), repeats=1)
