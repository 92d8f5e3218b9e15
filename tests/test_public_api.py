"""The public API is typed and documented: every name exported in `__all__` of archkit and its subpackages.

A function (or a public method of an exported class) needs annotations on every parameter and its return,
and a docstring; mypy checks the bodies, this test checks that nothing public slips through untyped.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = [
    "archkit",
    "archkit.io",
    "archkit.utils",
    "archkit.layers",
    "archkit.data",
    "archkit.surgery",
    "archkit.models",
    "archkit.train",
    "archkit.studies",
    "archkit.estimators",
    "archkit.aeon",  # needs the `seq` extra (aeon), which the test extra installs
]


def exported() -> list[tuple[str, object]]:
    out = []
    for pkg in PACKAGES:
        module = importlib.import_module(pkg)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                out.append((f"{pkg}.{name}", obj))
    return out


def untyped(fn: object) -> list[str]:
    """Parameters (and 'return') of a function that carry no annotation."""
    try:
        sig = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []
    missing = [
        p.name
        for p in sig.parameters.values()
        if p.annotation is inspect.Parameter.empty and p.name not in ("self", "cls")
    ]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def own_functions(obj: object) -> list[tuple[str, object]]:
    """The object itself (a function), or a class's public methods defined in archkit."""
    if inspect.isfunction(obj):
        return [("", obj)]
    out = []
    for name, member in vars(obj).items():
        if name.startswith("_") and name != "__init__":
            continue
        fn = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
        if inspect.isfunction(fn) and fn.__module__.startswith("archkit"):
            out.append((f".{name}", fn))
    return out


def test_every_exported_function_and_public_method_is_annotated():
    problems = []
    for qualname, obj in exported():
        if not getattr(obj, "__module__", "").startswith("archkit"):
            continue
        for suffix, fn in own_functions(obj):
            missing = untyped(fn)
            if missing and not (suffix == ".__init__" and missing == ["return"]):
                problems.append(f"{qualname}{suffix}: no annotation for {missing}")
    assert not problems, "untyped public API:\n" + "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("qualname,obj", exported(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_exported_name_says_what_it_is(qualname, obj):
    assert (inspect.getdoc(obj) or "").strip(), f"{qualname} has no docstring"
