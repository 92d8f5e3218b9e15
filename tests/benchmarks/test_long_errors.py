"""benchmarks/long_errors.py lists the test cases a row gets wrong, with where their recordings are."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "long_errors.py"


def test_tiny_run_lists_each_wrong_case_and_resumes(tmp_path, capsys):
    pytest.importorskip("aeon")  # the long tasks are built from series bundled with aeon
    spec = importlib.util.spec_from_file_location("long_errors", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "e.json"
    args = ["--tiny", "--seeds", "1", "--methods", "archkit-auto-refit", "--out", str(out)]
    assert module.main(args) == 0
    run = json.loads(out.read_text())["runs"]["archkit-auto-refit/0"]
    n_test = run["n_test"]
    assert len(run["wrong"]) == round(n_test * (1 - run["accuracy"] / 100))
    for w in run["wrong"]:
        assert w["true"] != w["predicted"] and 0 <= w["case"] < n_test
        assert w["start"] >= 0 and w["start"] + w["width"] <= 512
    assert module.main(args) == 0  # a rerun finds the row and does not refit it
    assert json.loads(out.read_text())["runs"]["archkit-auto-refit/0"]["seconds"] == run["seconds"]
    assert "archkit-auto-refit/0" in capsys.readouterr().out
    for bad in (["--methods", "svm"], ["--n-test", "0"], [*args[:-2], "--n-test", "9", "--out", str(out)]):
        with pytest.raises(SystemExit):  # unknown row, unbounded size, a file of runs at another size
            module.main(bad)
