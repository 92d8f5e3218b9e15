"""The floors of archkit, checked on the source: imports only point down, no file-level circles, small modules.

Floors, bottom to top (a floor may import any floor below it, never one beside or above it):

    io, threads -> utils -> layers, data -> surgery, models -> loading -> train -> studies, estimators -> aeon -> cli
    -> archkit

`aeon` (archkit.aeon: aeon classifiers over the estimators) sits above the estimators it wraps; `import archkit`
leaves it out, so aeon stays an optional extra.

Function-local imports and imports under `if TYPE_CHECKING:` count: a local import still couples the files.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
FLOORS: list[tuple[str, ...]] = [
    ("io", "threads"),
    ("utils",),
    ("layers", "data"),
    ("surgery", "models"),
    ("loading",),
    ("train",),
    ("studies", "estimators"),
    ("aeon",),
    ("cli",),
    ("__init__", "__main__"),
]
FLOOR_OF = {name: i for i, names in enumerate(FLOORS) for name in names}
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted((SRC / "archkit").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported_modules(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The archkit modules `name` imports, resolved to files (`from pkg import mod` names the module)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "archkit")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "archkit":
                target = node.module
            else:
                continue
            subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known}
            found.update(subs)
            if len(subs) < len(node.names):
                found.add(target)
    return {m for m in found if m in known}


def floor(module: str) -> str:
    """The floor name of a module: its subpackage, a top-level module's name, or `__init__` for archkit."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported_modules(name, path, known) for name, path in known.items()}


def test_every_subpackage_and_top_level_module_has_a_floor():
    names = {floor(m) for m in modules()}
    assert names <= set(FLOOR_OF), f"give these a floor in FLOORS: {sorted(names - set(FLOOR_OF))}"


def test_imports_only_point_down(graph):
    wrong = sorted(
        f"{a} imports {b} ({floor(a)} is floor {FLOOR_OF[floor(a)]}, {floor(b)} is floor {FLOOR_OF[floor(b)]})"
        for a, targets in graph.items()
        for b in targets
        if floor(a) != floor(b) and FLOOR_OF[floor(b)] >= FLOOR_OF[floor(a)]
    )
    assert not wrong, "imports that do not point down:\n" + "\n".join(wrong)


def test_no_file_level_circle(graph):
    # Tarjan's strongly connected components; a package __init__ that re-exports its own modules is not a
    # circle by itself, so edges from a package to its own submodules are left out.
    edges = {a: {b for b in bs if not b.startswith(a + ".")} for a, bs in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not circles, "files that import each other in a circle: " + "; ".join(" <-> ".join(c) for c in circles)


def test_no_module_over_the_line_limit():
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"


def test_the_checker_sees_local_and_relative_imports(tmp_path):
    pkg = tmp_path / "archkit"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "a.py").write_text("def f():\n    from ..train import b\n    from . import c\n")
    (pkg / "models" / "c.py").write_text("")
    (pkg / "train").mkdir()
    (pkg / "train" / "__init__.py").write_text("")
    (pkg / "train" / "b.py").write_text("")
    known = {
        "archkit": pkg / "__init__.py",
        "archkit.models": pkg / "models" / "__init__.py",
        "archkit.models.a": pkg / "models" / "a.py",
        "archkit.models.c": pkg / "models" / "c.py",
        "archkit.train": pkg / "train" / "__init__.py",
        "archkit.train.b": pkg / "train" / "b.py",
    }
    assert imported_modules("archkit.models.a", known["archkit.models.a"], known) == {
        "archkit.train.b",
        "archkit.models.c",
    }


# -- names, benchmark scripts, version ------------------------------------------------------------------------

ROOT = SRC.parent


def test_no_benchmark_script_over_the_line_limit():
    scripts = sorted((ROOT / "benchmarks").glob("*.py"))
    assert len(scripts) > 10  # the check reads the real folder
    long = {path.name: n for path in scripts if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"benchmark scripts over {MAX_LINES} lines (move shared parts to benchmarks/_common.py): {long}"


def test_module_names_say_what_they_hold():
    data = SRC / "archkit" / "data"
    # the generated long task and the long tasks built from real series, once long_task.py and longtasks.py
    assert (data / "synthetic_task.py").is_file() and (data / "real_tasks.py").is_file()
    assert not (data / "long_task.py").exists() and not (data / "longtasks.py").exists()


def test_changelog_names_the_package_version_as_its_newest_release():
    import re

    import archkit

    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M)
    assert version, "pyproject.toml: no version line"
    assert archkit.__version__ == version.group(1)
    releases = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    assert releases and releases[0] == version.group(1), f"CHANGELOG.md releases {releases}, package {version.group(1)}"
