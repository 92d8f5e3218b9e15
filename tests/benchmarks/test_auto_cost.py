"""benchmarks/auto_cost.py: auto beside a plain ROCKET fit and its own candidates refitted, with costs."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "auto_cost.py"


def test_tiny_run_records_cost_ratio_choice_and_every_candidate(tmp_path):
    pytest.importorskip("aeon")  # the long tasks are built from series bundled with aeon
    spec = importlib.util.spec_from_file_location("auto_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "c.json"
    args = ["--data", "needle", "--n-train", "16", "--n-test", "8", "--length", "256", "--lstm-epochs", "1"]
    assert module.main([*args, "--out", str(out)]) == 0
    run = json.loads(out.read_text())["runs"]["needle/0"]
    assert run["auto_cost_x_rocket"] == pytest.approx(run["auto_fit_s"] / run["rocket_fit_s"])
    assert run["cv_cases"] == 16 and run["chosen"] in run["cv"]
    assert set(run["candidates"]) == set(run["cv"]) | set(run["skipped"])
    best = max(c["accuracy"] for c in run["candidates"].values())
    assert run["auto_minus_best_candidate"] == pytest.approx(run["auto_accuracy"] - best)
    for bad in (["--n-train", "0"], ["--length", "100"], ["--lstm-epochs", "-1"]):
        with pytest.raises(SystemExit):
            module.main([*bad, "--out", str(out)])
