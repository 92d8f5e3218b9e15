"""benchmarks/vs_aeon_long.py: aeon's rows build and fit, and the summary files old MultiRocketHydra runs apart."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _module():
    sys.path.insert(0, str(BENCH))  # the script imports its side module from its own folder
    spec = importlib.util.spec_from_file_location("vs_aeon_long", BENCH / "vs_aeon_long.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_aeon_rows_are_the_named_estimators_and_fit_unequal_series_padded(tmp_path, capsys):
    pytest.importorskip("aeon")
    m = _module()
    names = {row: type(m.make(row, "GunPoint", 0, 150, True)).__name__ for row in m.AEON}
    assert names["aeon-quant"] == "QUANTClassifier" and names["aeon-hydra"] == "HydraClassifier"
    assert names["aeon-multirocket-hydra"] == "MultiRocketHydraClassifier"
    runs = tmp_path / "r.runs.json"
    # JapaneseVowels has unequal lengths (7-29 steps): aeon's rows get it zero-padded to one length
    res = m.run(runs, ["aeon-quant", "aeon-hydra"], ["JapaneseVowels"], 1, quick=True)
    for row, estimator in (("aeon-quant", "QUANTClassifier"), ("aeon-hydra", "HydraClassifier")):
        r = res["runs"][f"{row}/JapaneseVowels/0"]
        assert r["estimator"] == estimator and r["steps"] == 29 and r["n_test"] == 370
        assert 50 < r["accuracy"] <= 100  # 9 speakers: chance is about 11 %
    assert "aeon-quant/JapaneseVowels/0" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--methods"):
        m.run(runs, ["aeon-quantile"], ["JapaneseVowels"], 1, quick=True)


def test_summary_files_runs_without_an_estimator_under_multirocket_hydra(tmp_path):
    m = _module()
    run = {"accuracy": 90.0, "fit_s": 1.0, "fit_cpu_s": 1.0, "predict_ms_per_case": 1.0}
    old, new = tmp_path / "old.runs.json", tmp_path / "new.runs.json"
    data = m.LONG + m.SETS
    rows = ("aeon-hydra", "archkit-auto")  # "aeon-hydra" before it meant HydraClassifier: MultiRocketHydra
    old.write_text(json.dumps({"runs": {f"{r}/{d}/0": run for r in rows for d in data}}))
    hydra = {**run, "accuracy": 95.0, "estimator": "HydraClassifier"}
    new.write_text(json.dumps({"runs": {f"aeon-hydra/{d}/0": hydra for d in data}}))
    s = m.summarize([old, new])
    assert s["per_data"]["needle"]["aeon-multirocket-hydra"]["accuracy_mean"] == 90.0
    assert s["per_data"]["needle"]["aeon-hydra"]["accuracy_mean"] == 95.0
    avg = s["averages"]
    assert avg["rows"]["aeon-hydra"] == {"sets": 95.0, "long": 95.0, "all": 95.0}
    assert avg["auto_at_or_above_every_aeon_row"] is False and avg["aeon_rows_above_auto"] == {"aeon-hydra": 5.0}
    md = m.markdown(s)
    assert "| needle | aeon-hydra | 95.0 ± 0.0 | 1 |" in md and "| archkit-auto | 90.00 | 90.00 | 90.00 |" in md
