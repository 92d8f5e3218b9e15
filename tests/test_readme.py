"""The README's figures and links still hold: each checked figure equals its results file, each link resolves.

A figure in the README is followed by a comment `<!-- fig SHOWN = FILE:/json/path[*SCALE] -->` naming the file in
benchmarks/results/ and the value behind it; the value, scaled and rounded to SHOWN's decimals, must equal SHOWN,
and SHOWN must appear in the visible text of the same line.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
FIG = re.compile(r"<!-- fig (\S+) = ([^:]+):(/[^*]*?)(?:\*(\d+(?:\.\d+)?))? -->")
LINK = re.compile(r"\]\(([^)\s]+)\)")
MAX_LINES = 200


def _lines() -> list[str]:
    return README.read_text(encoding="utf-8").splitlines()


def _figures() -> list[tuple[int, str, str, str, float]]:
    return [(n, m[1], m[2], m[3], float(m[4] or 1)) for n, line in enumerate(_lines(), 1) for m in FIG.finditer(line)]


def _lookup(data: object, path: str) -> object:
    for key in path.strip("/").split("/"):
        data = data[int(key)] if isinstance(data, list) else data[key]  # type: ignore[index]
    return data


def _decimals(shown: str) -> int:
    mantissa = shown.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def test_the_readme_is_a_front_door_not_a_report():
    assert len(_lines()) <= MAX_LINES
    assert "make demo" in _lines()[6] or "make demo" in "\n".join(_lines()[:10])  # the two commands come first


def test_every_question_row_has_checked_figures():
    rows = [line for line in _lines() if line.startswith('| *"')]
    assert len(rows) >= 6
    for row in rows:
        assert FIG.search(row), f"a question row without a checked figure: {row[:80]}"


@pytest.mark.parametrize("line, shown, name, path, scale", _figures())
def test_each_figure_equals_its_results_file(line, shown, name, path, scale):
    file = RESULTS / name
    assert file.is_file(), f"README line {line}: {name} is not in benchmarks/results/"
    value = float(_lookup(json.loads(file.read_text(encoding="utf-8")), path)) * scale
    if "e" in shown.lower():
        assert f"{value:.{_decimals(shown)}e}" == shown, f"README line {line}: {name}{path} is {value}"
    else:
        assert round(value, _decimals(shown)) == pytest.approx(float(shown)), (
            f"README line {line}: {name}{path} is {value}"
        )
    visible = re.sub(r"<!--.*?-->", "", _lines()[line - 1])
    assert shown in visible, f"README line {line}: {shown} is checked but not shown"


def test_each_results_file_named_in_the_readme_exists():
    for name in re.findall(r"`(\w+\.json)`", README.read_text(encoding="utf-8")):
        assert (RESULTS / name).is_file(), f"{name} is named in the README but not in benchmarks/results/"


def test_each_local_link_resolves():
    for target in LINK.findall(README.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "#")):
            continue
        path, _, anchor = target.partition("#")
        file = ROOT / path
        assert file.exists(), f"README links to {target}, which does not exist"
        if anchor and file.suffix == ".md":
            heads = [h.strip("# ").lower() for h in file.read_text(encoding="utf-8").splitlines() if h.startswith("#")]
            slugs = {re.sub(r"[^a-z0-9 -]", "", h).replace(" ", "-") for h in heads}
            assert anchor in slugs, f"README links to {target}: no such heading"


def test_the_figure_check_fails_on_a_wrong_figure(tmp_path):
    data = {"a": {"b": [0.5, 0.9912]}}
    assert round(_lookup(data, "/a/b/1") * 100, 2) == 99.12
    assert round(_lookup(data, "/a/b/1") * 100, 2) != 99.13
    assert FIG.search("x 99.12 <!-- fig 99.12 = f.json:/a/b/1*100 -->").groups() == ("99.12", "f.json", "/a/b/1", "100")
