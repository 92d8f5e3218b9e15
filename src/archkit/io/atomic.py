"""Atomic file writes: a temp file beside the target, then `os.replace`, so readers never see half a file."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temp file beside `path`; on success move it onto `path`, on any error remove it.

    The temp name is unpredictable and created exclusively (mkstemp: O_CREAT | O_EXCL), so nothing
    planted in the folder beforehand (a symlink at a guessable name) is ever written through. It keeps
    the target's suffix (libraries pick the format from it) and gets the usual umask-based permissions
    rather than mkstemp's private 0600. `os.replace` swaps a symlink at `path` itself, never its target.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call `write(tmp_path)` on a temp file beside `path`, then move it in place: readers never see half a file."""
    with atomic_path(path) as tmp:
        write(str(tmp))
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (temp file + os.replace)."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(Path(path), write)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically."""
    atomic_write_text(path, to_json(obj))


def to_json(obj: Any) -> str:
    """Indented, key-sorted JSON with dataclasses, paths and tensors/arrays turned into plain values."""
    return json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n"


def json_default(obj: Any) -> Any:
    """`json.dumps(default=...)` for dataclasses, paths and tensors/arrays."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
