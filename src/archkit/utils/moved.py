"""Pointers for public names and modules that moved: an old import path fails with one line naming the new home.

Each subpackage lists what left it and its modules (`point_moved_names`), and a renamed module is answered for
under its old name (`point_moved_modules`). Nothing here imports a new home, so a pointer never makes a floor
import upward, and mypy does not see the pointers: it keeps flagging names that do not exist.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import NoReturn


class MovedError(ImportError):
    """A public name or module moved; the message names where it lives now.

    An ImportError, so `from old.module import name` shows the message (Python replaces an AttributeError
    raised there by its own "cannot import name").
    """


class MovedNames:
    """A module's `__getattr__`: a name that moved raises MovedError naming its new home, any other AttributeError."""

    def __init__(self, module: str, moved: dict[str, str]) -> None:
        self.module = module
        self.moved = moved  # old name -> the module that holds it now

    def __call__(self, name: str) -> NoReturn:
        if name in self.moved:
            raise MovedError(f"{self.module}.{name} moved to {self.moved[name]}: import it from there")
        raise AttributeError(f"module {self.module!r} has no attribute {name!r}")


def point_moved_names(module: str, moved: dict[str, Sequence[str]]) -> None:
    """Make the names of `moved` (new home -> names) fail with a pointer when looked up in `module`."""
    target = importlib.import_module(module)
    table = {name: home for home, names in moved.items() for name in names}
    present = sorted(name for name in table if name in vars(target))
    if present:
        raise ValueError(f"{module} still defines {present}; only names that left it get a pointer")
    old = vars(target).get("__getattr__")
    if isinstance(old, MovedNames):
        table = {**old.moved, **table}
    vars(target)["__getattr__"] = MovedNames(module, table)


class _MovedModules:
    """Asked last on sys.meta_path, so it only answers for module names nothing else can import."""

    def __init__(self) -> None:
        self.moved: dict[str, str] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname in self.moved:
            raise MovedError(f"module {fullname} moved to {self.moved[fullname]}: import from there")
        return None


def point_moved_modules(moved: dict[str, str]) -> None:
    """Make `import old.module` (old -> new in `moved`) fail with a MovedError naming the new module."""
    finder = next((f for f in sys.meta_path if isinstance(f, _MovedModules)), None)
    if finder is None:
        finder = _MovedModules()
        sys.meta_path.append(finder)
    finder.moved.update(moved)
