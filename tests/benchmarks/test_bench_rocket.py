"""benchmarks/bench_rocket.py runs end to end at tiny sizes and reports what it measured."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_rocket.py"


@pytest.mark.slow  # aeon's numba kernels compile on first use (~20 s)
def test_tiny_run_writes_both_transforms_and_the_memory_check(tmp_path, capsys):
    pytest.importorskip("aeon")
    spec = importlib.util.spec_from_file_location("bench_rocket", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_rocket"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "r.json"
    assert module.main(["--tiny", "--threads", "1", "--rss", "--hydra", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    speeds = result["throughput"]["cases_per_s"]
    assert set(speeds) == {"aeon", "archkit_exact", "archkit_conv"} and all(v > 0 for v in speeds.values())
    assert result["throughput"]["features_differing_fraction"]["conv"] < 1e-3
    assert result["throughput"]["features_max_abs_diff"]["exact"] == 0
    assert result["rss"]["cases"] == [8, 32] and len(result["rss"]["rss_growth_mib"]) == 2
    hydra = result["hydra"]
    assert set(hydra["cases_per_s"]) == {"aeon", "archkit"} and all(v > 0 for v in hydra["cases_per_s"].values())
    assert hydra["features_relative_diff"] <= 1e-4 and hydra["num_features"] > 0
    assert "vs aeon" in capsys.readouterr().out
