"""Output files: a file is written over only when archkit wrote it, as the same kind of output.

Each file archkit writes carries a mark naming the kind of output (`sample grid`, `reconstruction
grid`, `evaluation JSON`, `exported model`, ...): its PNGs the text chunks Software=archkit and
archkit-kind, its JSON files the keys "written_by" and "kind", its ONNX models the metadata entries
written_by and archkit-kind, its .pt2 archives an extra file archkit.json holding both. A file with
archkit's mark but no kind was written by an earlier release, which marked only its own outputs: it
counts as archkit's file of whatever kind asks (so re-running last release's command keeps working).
Formats that cannot carry a mark (.npy) are never written over. A symlink is refused: writing through
it would reach the file it points to. Two outputs of one command, or an output and an input, must
not be the same file (`check_distinct`).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path

OWN_MARK = "archkit"  # what each mark starts with (see is_own_file)
KIND_KEY = "archkit-kind"  # the PNG text chunk / ONNX metadata key naming the kind of output

__all__ = ["KIND_KEY", "OWN_MARK", "check_distinct", "check_out_file", "file_kind", "is_own_file", "json_mark"]

_UNMARKED = object()


@cache
def own_version() -> str:
    """ "archkit <version>": the value of the written_by marks."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{OWN_MARK} {version('archkit')}"
    except PackageNotFoundError:
        return OWN_MARK


def json_mark(kind: str) -> dict[str, str]:
    """The keys that mark a JSON object as archkit's `kind` of output."""
    return {"written_by": own_version(), "kind": kind}


def _mark(p: Path) -> object:
    """The kind named by archkit's mark on `p` ("" for an earlier release's mark without a kind), else _UNMARKED."""
    suffix = p.suffix.lower()
    try:
        if suffix == ".png":
            from PIL import Image

            with Image.open(p) as img:
                if str(img.info.get("Software", "")).startswith(OWN_MARK):
                    return str(img.info.get(KIND_KEY, ""))
        elif suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(data, dict) and str(data.get("written_by", "")).startswith(OWN_MARK):
                return str(data.get("kind", ""))
        elif suffix == ".onnx":
            import onnx

            props = {e.key: e.value for e in onnx.load(str(p), load_external_data=False).metadata_props}
            if props.get("written_by", "").startswith(OWN_MARK):
                return props.get(KIND_KEY, "")
        elif suffix == ".pt2":
            with zipfile.ZipFile(p) as z:
                names = [n for n in z.namelist() if n.endswith("extra/archkit.json")]
                if names:
                    data = json.loads(z.read(names[0]))
                    return str(data.get("kind", "")) if isinstance(data, dict) else ""
    except Exception:  # unreadable or another format under that suffix: not ours
        return _UNMARKED
    return _UNMARKED


def file_kind(path: str | os.PathLike) -> str | None:
    """The kind of output archkit's mark on the file names ("" for an earlier release's mark), else None."""
    mark = _mark(Path(path))
    return None if mark is _UNMARKED else str(mark)


def is_own_file(path: str | os.PathLike, kind: str | None = None) -> bool:
    """True when the file carries archkit's mark (PNG, JSON, ONNX, .pt2), naming `kind` when one is given."""
    mark = file_kind(path)
    return mark is not None and (kind is None or mark in ("", kind))


def check_out_file(path: str | os.PathLike, kind: str, option: str = "--out") -> None:
    """Raise ValueError unless `path` is new or archkit's own `kind` of output file (see the module docstring)."""
    p = Path(path)
    if p.is_symlink():
        raise ValueError(
            f"{option}: {str(p)!r} is a symlink; nothing was written: archkit does not write through links, "
            f"choose another file name for the {kind}"
        )
    if p.is_dir():
        raise ValueError(f"{option}: {str(p)!r} is a folder; expected the path of the {kind} file to write")
    if not p.exists():
        return
    mark = file_kind(p)
    if mark is None:
        raise ValueError(
            f"{option}: {str(p)!r} already exists and archkit did not write it; nothing was written: "
            f"choose another file name for the {kind}"
        )
    if mark not in ("", kind):
        raise ValueError(
            f"{option}: {str(p)!r} is archkit's {mark}, not a {kind}; nothing was written: "
            f"choose another file name for the {kind}"
        )


def _same(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, case-insensitive file systems
    except OSError:
        return False


def check_distinct(
    outputs: Mapping[str, str | os.PathLike | None], inputs: Mapping[str, str | os.PathLike | None] | None = None
) -> None:
    """Raise ValueError when two outputs, or an output and an input, are one file (symlinks and `..` resolved).

    Keys name the options (`--out`, `--proba`, `IMAGE`); None values are left out.
    """
    outs = [(name, Path(p)) for name, p in outputs.items() if p is not None]
    for i, (name, path) in enumerate(outs):
        for other, there in outs[:i]:
            if _same(path, there):
                raise ValueError(
                    f"{other} and {name}: both name {str(there)!r}; nothing was written: give each output its own path"
                )
        for other, there in ((n, Path(p)) for n, p in (inputs or {}).items() if p is not None):
            if _same(path, there):
                raise ValueError(
                    f"{name}: {str(path)!r} is also the input {other}; nothing was written: choose another path "
                    f"so the input is kept"
                )
