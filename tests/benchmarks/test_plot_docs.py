"""benchmarks/plot_docs.py draws the docs' benchmark pictures from the committed results; every picture a page shows exists."""

import importlib.util
import json
import re
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "plot_docs.py"


def _module():
    spec = importlib.util.spec_from_file_location("plot_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["function-rmse", "lowrank-speedup", "sequences-averages"])
def test_each_figure_is_drawn_from_its_committed_results(tmp_path, name):
    module = _module()
    _plot, kind, results, default_out = module.FIGURES[name]
    assert results.is_file() and default_out.parent == ROOT / "docs" / "img"
    out = tmp_path / f"{name}.png"
    assert module.main(["--only", name, "--out", str(out)]) == 0
    with Image.open(out) as img:
        assert img.info.get("Software", "").startswith("archkit") and img.info.get("archkit-kind") == kind
        assert img.size[0] > 300 and img.size[1] > 300
        assert img.convert("L").getextrema()[0] < 128  # something dark was drawn, not a blank canvas


def test_function_panels_put_fewest_inputs_first_and_archkit_rows_first():
    module = _module()
    shown = module.function_rows(json.loads((ROOT / "benchmarks/results/bench_function.json").read_text()))
    names = [name for name, _ in shown]
    assert names.index("friedman6") == len(names) - 1  # six inputs: after the two-input functions
    for _, rows in shown:
        kinds = [m.startswith("archkit") for m, *_ in rows]
        assert kinds == sorted(kinds, reverse=True)
        assert all(a > 0 and b > 0 and s >= 0 for _, a, b, s in rows)


def test_lowrank_cases_leave_out_the_dense_rows_and_keep_the_range():
    results = {
        "rows": [
            {"case": "c", "rank": None, "mac_reduction": 1.0, "speedup": 1.0, "speedup_min": 1.0, "speedup_max": 1.0},
            {"case": "c", "rank": 16, "mac_reduction": 8.0, "speedup": 6.0, "speedup_min": 5.0, "speedup_max": 7.0},
            {"case": "c", "rank": 32, "mac_reduction": 4.0, "speedup": 3.5, "speedup_min": 3.0, "speedup_max": 4.0},
        ]
    }
    assert _module().lowrank_cases(results) == [("c", [(4.0, 3.5, 3.0, 4.0, 32), (8.0, 6.0, 5.0, 7.0, 16)])]


def test_average_columns_are_the_sets_the_long_tasks_then_all_of_them():
    results = {
        "averages": {
            "data": ["needle", "order", "GunPoint"],
            "rows": {
                "archkit-auto": {"sets": 99.0, "long": 90.0, "all": 93.0},
                "aeon-quant": {"sets": 98.0, "long": 91.0, "all": 93.3},
            },
        }
    }
    data, columns = _module().average_rows(results)
    assert data == ["needle", "order", "GunPoint"]
    assert [(key, title) for key, title, _ in columns] == [
        ("sets", "1 bundled UCR/UEA sets"),
        ("long", "2 long tasks (T = 8192)"),
        ("all", "all 3"),
    ]
    assert columns[1][2] == {"archkit-auto": 90.0, "aeon-quant": 91.0}


def test_bad_results_and_someone_elses_png_are_refused(tmp_path, capsys):
    module = _module()
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"rows": [{"case": "c", "rank": None}]}))
    out = tmp_path / "p.png"
    assert module.main(["--only", "lowrank-speedup", "--results", str(results), "--out", str(out)]) == 2
    assert "no factorized row" in capsys.readouterr().err and not out.exists()
    results.write_text(json.dumps({"functions": {}}))
    assert module.main(["--only", "function-rmse", "--results", str(results), "--out", str(out)]) == 2
    assert "'functions'" in capsys.readouterr().err and not out.exists()
    results.write_text(json.dumps({"per_data": {}}))  # a summary written before the averages existed
    assert module.main(["--only", "sequences-averages", "--results", str(results), "--out", str(out)]) == 2
    assert "'averages'" in capsys.readouterr().err and not out.exists()
    theirs = tmp_path / "theirs.png"
    Image.new("RGB", (4, 4)).save(theirs)
    before = theirs.read_bytes()
    assert module.main(["--only", "lowrank-speedup", "--out", str(theirs)]) == 2
    assert theirs.read_bytes() == before and "archkit did not write" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --out without --only: which figure is meant is unknown
        module.main(["--out", str(out)])


def test_every_picture_a_docs_page_shows_exists():
    shown = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if not re.match(r"[a-z]+://", target):
                shown.append((page.name, target, (page.parent / target).resolve()))
    assert any(target == "img/function-rmse.png" for _, target, _ in shown)  # the scan reads the pages' images
    missing = [f"{page}: {target}" for page, target, path in shown if not path.is_file() or path.stat().st_size == 0]
    assert not missing, missing
