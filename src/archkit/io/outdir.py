"""Output folders: archkit writes only into a folder that is new, empty, or its own artefact of the same kind.

Each kind of folder archkit writes is recognized by the file it always holds (its manifest): a codes
folder by `meta.json` with format "archkit-codes", a run folder by `train_config.json`, a checkpoint
by `manifest.json`, and so on (`KINDS`). Anything else in the way (a user's thesis, a run folder
given as a codes destination) is refused with one line naming the folder and what is in it, before
any work starts. Only the hidden temp folders archkit itself leaves (".NAME.tmp-...") do not count.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

__all__ = ["KINDS", "artefact_kinds", "check_out_folder", "is_codes_folder"]

CODES_FORMAT = "archkit-codes"
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
