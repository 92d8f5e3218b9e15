"""Output folders: archkit writes only into a folder that is new, empty, or its own artefact of the same kind.

A folder is archkit's own when it carries archkit's marker `.archkit.json`
({"written_by": "archkit <version>", "kind": KIND}), written (atomically) by the command that
created it before anything else, never because a common name such as summary.json or report.md is
there. Folders written by earlier releases carry no marker: they are recognised by their signature,
checked on content (`LEGACY`): a run folder's train_config.json parses and its vqvae/ checkpoint
manifest lists files that are there, a --model rocket|auto run's estimator.pkl matches the SHA-256
in its summary.json, a study's results.json parses beside report.md and a PNG archkit marked, and so
on. The first command that claims such a folder adds the marker.

A symlink as the folder, or anywhere inside it, is refused: writing through it would reach a user's
files. Anything else in the way is refused with one line naming the folder and what is in it, before
any work starts. Only the hidden temp folders archkit itself leaves (".NAME.tmp-...") do not count.
Single output files: see outfile.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json
from .checkpoint import CONFIG, MANIFEST, WEIGHTS, _manifest_problem
from .outfile import OWN_MARK, check_distinct, check_out_file, is_own_file, own_version

__all__ = [
    "KINDS",
    "MARKER",
    "OWN_MARK",
    "artefact_kinds",
    "check_distinct",
    "check_out_file",
    "check_out_folder",
    "claim_out_folder",
    "folder_kind",
    "is_codes_folder",
    "is_own_file",
    "mark_out_folder",
]

MARKER = ".archkit.json"  # names the kind of folder archkit wrote here
CODES_FORMAT = "archkit-codes"
_LEFTOVER = re.compile(r"^\..+\.(tmp|old)-")


def _json(path: Path) -> Any:
    """The parsed JSON at `path`, or None when it is missing, unreadable or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _checkpoint(folder: Path, model: str | None = None) -> bool:
    """A complete checkpoint: its manifest lists weights and config, all there at their sizes; the config names
    a model kind (`model` when given)."""
    manifest, config = _json(folder / MANIFEST), _json(folder / CONFIG)
    return (
        isinstance(manifest, dict)
        and isinstance(manifest.get("files"), dict)
        and {WEIGHTS, CONFIG} <= set(manifest["files"])
        and _manifest_problem(folder, deep=False) is None
        and isinstance(config, dict)
        and isinstance(config.get("kind"), str)
        and (model is None or config["kind"] == model)
    )


def is_codes_folder(path: str | os.PathLike) -> bool:
    """True when `path/meta.json` says the folder is an archkit codes folder."""
    meta = _json(Path(path) / "meta.json")
    return isinstance(meta, dict) and meta.get("format") == CODES_FORMAT


def _run_folder(p: Path) -> bool:
    return isinstance(_json(p / "train_config.json"), dict) and _checkpoint(p / "vqvae", "VQVAE2Config")


def _estimator_run(p: Path) -> bool:
    summary = _json(p / "summary.json")
    if not isinstance(summary, dict) or not (p / "estimator.pkl").is_file():
        return False
    h = hashlib.sha256()
    with open(p / "estimator.pkl", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() == summary.get("estimator_sha256")


def _study(p: Path) -> bool:
    return (
        isinstance(_json(p / "results.json"), dict)
        and (p / "report.md").is_file()
        and any(is_own_file(png) for png in p.glob("*.png"))
    )


def _sequence_evaluation(p: Path) -> bool:
    result = _json(p / "evaluation.json")
    return (
        isinstance(result, dict)
        and str(result.get("written_by", "")).startswith(OWN_MARK)
        and result.get("kind") == "archkit-sequence-evaluation"
    )


def _long_task(p: Path) -> bool:
    task = _json(p / "task.json")
    return isinstance(task, dict) and task.get("kind") == "archkit-long-task"


# kind -> how a folder of that kind written before markers existed is recognised (its content, checked)
LEGACY: dict[str, Callable[[Path], bool]] = {
    "codes folder": is_codes_folder,
    "run folder": _run_folder,
    "checkpoint": _checkpoint,
    "fit folder": lambda p: (
        isinstance(_json(p / "summary.json"), dict) and _checkpoint(p / "checkpoint", "FunctionApproximatorConfig")
    ),
    "sequence run": lambda p: _checkpoint(p / "checkpoint", "SequenceClassifierConfig") or _estimator_run(p),
    "study folder": _study,
    "demo folder": _run_folder,
    "long task": _long_task,
    "sequence evaluation": _sequence_evaluation,  # `seq evaluate --out`
}
KINDS: tuple[str, ...] = tuple(LEGACY)
# a folder of the key's kind also holds the listed kinds (the demo trains its VQ-VAE in its own folder)
_ALSO: dict[str, tuple[str, ...]] = {"demo folder": ("run folder",)}


def folder_kind(path: str | os.PathLike) -> str | None:
    """The kind archkit's marker in `path` names, or None (no marker, or not one archkit wrote)."""
    marker = _json(Path(path) / MARKER)
    if (
        isinstance(marker, dict)
        and str(marker.get("written_by", "")).startswith(OWN_MARK)
        and marker.get("kind") in LEGACY
    ):
        return str(marker["kind"])
    return None


def _kinds_of(p: Path) -> list[str]:
    marked = folder_kind(p)
    if marked is not None:
        return [marked, *_ALSO.get(marked, ())]
    return [kind for kind, legacy in LEGACY.items() if legacy(p)]


def artefact_kinds(path: str | os.PathLike) -> list[str]:
    """The kinds of archkit artefact `path` is recognised as (empty for a folder archkit did not write)."""
    p = Path(path)
    return _kinds_of(p) if p.is_dir() and not p.is_symlink() else []


def _visible(path: Path) -> list[str]:
    """Entries of `path` except the hidden temp folders an interrupted archkit write leaves (".X.tmp-*", ".X.old-*")."""
    return sorted(e.name for e in path.iterdir() if not _LEFTOVER.match(e.name))


def _first_link(path: Path) -> Path | None:
    """The first symlink inside `path` (archkit never makes one, so any is a user's), or None."""
    for root, dirs, files in os.walk(path):
        for name in sorted(dirs + files):
            if os.path.islink(os.path.join(root, name)):
                return Path(root, name)
    return None


def check_out_folder(path: str | os.PathLike, kind: str, option: str = "--out") -> bool:
    """Raise ValueError unless `path` is missing, empty, or archkit's own `kind`; True when it already holds one.

    `kind` is one of KINDS. The message names the folder, what it holds, and what to do instead.
    """
    if kind not in LEGACY:
        raise ValueError(f"kind: expected one of {list(KINDS)}, got {kind!r}")
    p = Path(path)
    if p.is_symlink():
        raise ValueError(
            f"{option}: {str(p)!r} is a symlink; nothing was written: archkit does not write through links, "
            f"give the real folder or a new one"
        )
    if not p.exists():
        return False
    if not p.is_dir():
        raise ValueError(f"{option}: {str(p)!r} is a file, not a folder; choose a new or empty folder for the {kind}")
    entries = _visible(p)
    if not entries:
        return False
    link = _first_link(p)
    if link is not None:
        raise ValueError(
            f"{option}: {str(p)!r} holds the symlink {str(link.relative_to(p))!r}; nothing was written: archkit "
            f"does not write through links into other folders, choose a new or empty folder"
        )
    kinds = _kinds_of(p)
    if kind in kinds:
        return True
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    what = f"archkit's {kinds[0]}" if kinds else "files archkit did not write"
    raise ValueError(
        f"{option}: {str(p)!r} holds {what} ({shown}), not a {kind}; nothing was written: choose a new or empty folder"
    )


def mark_out_folder(path: str | os.PathLike, kind: str) -> Path:
    """Create `path` if needed and write archkit's marker naming `kind` (atomically), unless it carries one already."""
    if kind not in LEGACY:
        raise ValueError(f"kind: expected one of {list(KINDS)}, got {kind!r}")
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    if folder_kind(p) is None:
        atomic_write_json(p / MARKER, {"written_by": own_version(), "kind": kind})
    return p


def claim_out_folder(path: str | os.PathLike, kind: str, option: str = "--out") -> bool:
    """`check_out_folder`, then create the folder with archkit's marker; True when it already held a `kind`."""
    held = check_out_folder(path, kind, option)
    mark_out_folder(path, kind)
    return held
