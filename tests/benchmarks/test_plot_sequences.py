"""benchmarks/plot_sequences.py draws accuracy against fit time from the comparison's summary JSON."""

import importlib.util
import json
from pathlib import Path

from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "plot_sequences.py"


def _module():
    spec = importlib.util.spec_from_file_location("plot_sequences", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(acc, fit_s):
    return {"accuracy_mean": acc, "fit_s_mean": fit_s}


SUMMARY = {
    "per_data": {
        "needle": {
            "archkit-auto": _row(96.0, 40.0),
            "aeon-minirocket": _row(94.0, 10.0),
            "archkit-lstm": _row(21.0, 5),
        },
        "GunPoint": {"archkit-auto": _row(99.0, 2.0), "aeon-minirocket": _row(98.0, 1.0), "aeon-quant": _row(97.0, 3)},
        "OSULeaf": {"archkit-auto": _row(97.0, 6.0), "aeon-minirocket": _row(95.0, 2.0)},
    }
}


def test_panels_are_the_long_tasks_then_the_mean_over_sets_measured_everywhere():
    shown = _module().panels(SUMMARY)
    assert [t.split(" ")[0] for t, _ in shown] == ["needle", "mean"]
    sets = shown[1][1]
    assert set(sets) == {"archkit-auto", "aeon-minirocket"}  # aeon-quant ran on one set only: no mean
    assert sets["archkit-auto"] == (4.0, 98.0) and sets["aeon-minirocket"] == (1.5, 96.5)


def test_writes_a_marked_png_and_refuses_a_summary_without_rows(tmp_path, capsys):
    module = _module()
    results, out = tmp_path / "r.json", tmp_path / "p.png"
    results.write_text(json.dumps(SUMMARY))
    assert module.main(["--results", str(results), "--out", str(out)]) == 0
    with Image.open(out) as img:
        assert img.info.get("Software", "").startswith("archkit") and img.size[0] > img.size[1]
    results.write_text(json.dumps({"per_data": {}}))
    assert module.main(["--results", str(results), "--out", str(tmp_path / "q.png")]) == 2
    assert "per_data" in capsys.readouterr().err and not (tmp_path / "q.png").exists()
    theirs = tmp_path / "theirs.png"
    Image.new("RGB", (4, 4)).save(theirs)
    before = theirs.read_bytes()
    results.write_text(json.dumps(SUMMARY))
    assert module.main(["--results", str(results), "--out", str(theirs)]) == 2
    assert theirs.read_bytes() == before and "archkit did not write" in capsys.readouterr().err
