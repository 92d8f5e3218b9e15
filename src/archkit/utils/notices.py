"""Warnings archkit gives about a user's data, shown as one line without a Python source line.

`ArchkitWarning` is the category of every such warning; Python's default display adds the file,
line and source line of the `warnings.warn` call, which says nothing to a user, so warnings of this
category are shown as "archkit: CATEGORY: message" instead (other warnings keep the default format).
Filter them as usual, e.g. `warnings.simplefilter("ignore", archkit.UnreadableFilesWarning)`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

__all__ = ["ArchkitWarning", "FolderLayoutWarning", "UnreadableFilesWarning", "name_files", "warn"]

SHOWN = 3  # files named in a one-line message; the rest are counted


class ArchkitWarning(UserWarning):
    """Something in the user's data or files that archkit worked around (shown as one line)."""


class UnreadableFilesWarning(ArchkitWarning):
    """Files that could not be read and were skipped (named, the first few, with a count)."""


class FolderLayoutWarning(ArchkitWarning):
    """A rule applied to an image folder's layout (empty class folders, a single class)."""


_default_format = warnings.formatwarning


def _format(message: Any, category: type[Warning], filename: str, lineno: int, line: str | None = None) -> str:
    if isinstance(category, type) and issubclass(category, ArchkitWarning):
        return f"archkit: {category.__name__}: {message}\n"
    return _default_format(message, category, filename, lineno, line)


warnings.formatwarning = _format


def name_files(paths: Sequence[Any], shown: int = SHOWN) -> str:
    """'a.png, b.png, c.png and 4 more' for a list of paths (their str)."""
    names = [str(p) for p in paths[:shown]]
    more = len(paths) - len(names)
    return ", ".join(repr(n) for n in names) + (f" and {more} more" if more > 0 else "")


def warn(message: str, category: type[ArchkitWarning] = ArchkitWarning) -> None:
    """Emit an archkit warning (one line; the calling code's location is irrelevant to the user)."""
    warnings.warn(message, category, stacklevel=2)
