"""Output folders: archkit writes only into a folder that is new, empty, or its own artefact of the same kind.

Each kind of folder archkit writes is recognized by the file it always holds (its manifest): a codes
folder by `meta.json` with format "archkit-codes", a run folder by `train_config.json`, a checkpoint
by `manifest.json`, and so on (`KINDS`). Anything else in the way (a user's thesis, a run folder
given as a codes destination) is refused with one line naming the folder and what is in it, before
any work starts. Only the hidden temp folders archkit itself leaves (".NAME.tmp-...") do not count.

Single output files (`sample --out grid.png`, `export --out model.onnx`, `evaluate --out eval.json`) are
written over only when archkit wrote them: its PNGs carry the text chunk Software=archkit, its JSON files a
"written_by" key, its ONNX models a "written_by" metadata entry and its .pt2 archives an extra file
`archkit.json` (`is_own_file`). Formats that cannot carry a mark (.npy) are never written over.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

__all__ = [
    "KINDS",
    "OWN_MARK",
    "artefact_kinds",
    "check_out_file",
    "check_out_folder",
    "is_codes_folder",
    "is_own_file",
]

CODES_FORMAT = "archkit-codes"
OWN_MARK = "archkit"  # the value of the mark each written file carries (see is_own_file)
_LEFTOVER = re.compile(r"^\..+\.(tmp|old)-")

# kind -> files (relative paths) any one of which marks a folder as that kind of archkit artefact
KINDS: dict[str, tuple[str, ...]] = {
    "codes folder": ("meta.json",),
    "run folder": ("train_config.json", "vqvae/manifest.json", "metrics.jsonl"),
    "checkpoint": ("manifest.json",),
    "fit folder": ("checkpoint/manifest.json", "summary.json"),
    "sequence run": ("checkpoint/manifest.json", "summary.json", "metrics.jsonl"),
    "study folder": ("results.json", "report.md"),
    "demo folder": ("metrics.json", "train_config.json", "vqvae/manifest.json"),
    "sequence evaluation": ("evaluation.json",),  # `seq evaluate`; its JSON also names the kind and carries the mark
}


def is_codes_folder(path: str | os.PathLike) -> bool:
    """True when `path/meta.json` says the folder is an archkit codes folder."""
    try:
        meta = json.loads((Path(path) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == CODES_FORMAT


def _is_kind(path: Path, kind: str) -> bool:
    if kind == "codes folder":
        return is_codes_folder(path)
    return any((path / marker).is_file() for marker in KINDS[kind])


def artefact_kinds(path: str | os.PathLike) -> list[str]:
    """The kinds of archkit artefact `path` is recognized as (empty for a folder archkit did not write)."""
    p = Path(path)
    return [kind for kind in KINDS if p.is_dir() and _is_kind(p, kind)]


def _visible(path: Path) -> list[str]:
    """Entries of `path` except the hidden temp folders an interrupted archkit write leaves (".X.tmp-*", ".X.old-*")."""
    return sorted(e.name for e in path.iterdir() if not _LEFTOVER.match(e.name))


def check_out_folder(path: str | os.PathLike, kind: str, option: str = "--out") -> bool:
    """Raise ValueError unless `path` is missing, empty, or archkit's own `kind`; True when it already holds one.

    `kind` is a key of KINDS. The message names the folder, what it holds, and what to do instead.
    """
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {list(KINDS)}, got {kind!r}")
    p = Path(path)
    if not p.exists():
        return False
    if not p.is_dir():
        raise ValueError(f"{option}: {str(p)!r} is a file, not a folder; choose a new or empty folder for the {kind}")
    entries = _visible(p)
    if not entries:
        return False
    if _is_kind(p, kind):
        return True
    others = [k for k in artefact_kinds(p) if k != kind]
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    what = f"archkit's {others[0]}" if others else "files archkit did not write"
    raise ValueError(
        f"{option}: {str(p)!r} holds {what} ({shown}), not a {kind}; nothing was written: choose a new or empty folder"
    )


def is_own_file(path: str | os.PathLike) -> bool:
    """True when the file at `path` carries archkit's mark for its format (PNG, JSON, ONNX, .pt2)."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".png":
            from PIL import Image

            with Image.open(p) as img:
                return str(img.info.get("Software", "")).startswith(OWN_MARK)
        if suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            return isinstance(data, dict) and str(data.get("written_by", "")).startswith(OWN_MARK)
        if suffix == ".onnx":
            import onnx

            props = onnx.load(str(p), load_external_data=False).metadata_props
            return any(e.key == "written_by" and e.value.startswith(OWN_MARK) for e in props)
        if suffix == ".pt2":
            with zipfile.ZipFile(p) as z:
                return any(name.endswith("extra/archkit.json") for name in z.namelist())
    except Exception:  # unreadable or another format under that suffix: not ours
        return False
    return False


def check_out_file(path: str | os.PathLike, what: str, option: str = "--out") -> None:
    """Raise ValueError when `path` is a folder, or a file archkit did not write; a new path passes."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{option}: {str(p)!r} is a folder; expected the path of the {what} file to write")
    if p.exists() and not is_own_file(p):
        raise ValueError(
            f"{option}: {str(p)!r} already exists and archkit did not write it; nothing was written: "
            f"choose another file name for the {what}"
        )
