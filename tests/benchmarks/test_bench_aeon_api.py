"""benchmarks/bench_aeon_api.py runs end to end at tiny sizes: both implementations of each class, on equal and unequal sets."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_aeon_api.py"


@pytest.mark.slow  # aeon's numba kernels compile on first use
def test_tiny_run_scores_both_implementations_of_each_classifier(tmp_path, capsys):
    pytest.importorskip("aeon", reason="the `seq` extra (aeon) is not installed")
    spec = importlib.util.spec_from_file_location("bench_aeon_api", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_aeon_api"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "r.json"
    assert module.main(["--tiny", "--sets", "ItalyPowerDemand", "JapaneseVowels", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    runs = result["runs"]
    assert {(r["set"], r["classifier"], r["impl"]) for r in runs} == {
        (s, c, i)
        for s in ("ItalyPowerDemand", "JapaneseVowels")
        for c in ("MiniRocketClassifier", "MultiRocketClassifier", "HydraClassifier")
        for i in ("aeon", "archkit")
    }
    assert all(
        0.6 <= r["accuracy"] <= 1 and r["fit_cpu_s"] >= 0 for r in runs
    )  # easy sets: far above chance (1/2, 1/9)
    assert len(result["summary"]) == 6 and result["conditions"]["tiny"] is True
    assert "archkit acc %" in capsys.readouterr().out


def test_bad_arguments_are_refused_naming_them(capsys):
    spec = importlib.util.spec_from_file_location("bench_aeon_api_args", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for argv, flag in ((["--seeds", "0"], "--seeds"), (["--device", "gpu"], "--device")):
        with pytest.raises(SystemExit) as e:
            module.main(argv)
        assert e.value.code == 2 and flag in capsys.readouterr().err
