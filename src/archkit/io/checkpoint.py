"""Atomic, safe checkpoints: safetensors weights + JSON config + a weights_only trainer state.

Layout of a checkpoint folder NAME/:
    model.safetensors   the module's state_dict (tensors only, safe to load from anywhere); tied
                        weights are stored once, the other names listed in its metadata
    config.json         {"kind": ..., "config": {...dataclass fields...}, "step": ..., ...}
    trainer.pt          optional optimizer/scheduler/RNG state, loaded with weights_only=True
    manifest.json       written last: every file above with its size and sha256, and the step
Other files in the folder (e.g. a metrics log) are not part of the checkpoint and are kept.

A checkpoint is atomic as a set, not file by file: `save_checkpoint` writes every file into a fresh
sibling folder `.NAME.tmp-<random>/`, fsyncs it, then swaps it in with renames: NAME -> `.NAME.old-<random>`,
tmp -> NAME, and deletes the old folder. A crash at any point leaves either the previous complete
set or the new complete set: if it struck between the two renames (NAME missing), readers use the
complete tmp folder (manifest verified) or else the old one, and the next save puts it back in place
and removes leftovers. Loading checks every file against the manifest (a size or hash mismatch, a
missing file or a stray one is a ValueError naming the folder); folders written before manifests
existed still load, with the config and trainer steps checked against each other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import save_file
from torch import nn

from .atomic import to_json

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAINER = "trainer.pt"
MANIFEST = "manifest.json"
CHECKPOINT_FILES = (WEIGHTS, CONFIG, TRAINER, MANIFEST)
_ALIASES = "archkit.aliases"  # safetensors metadata key: {"tied name": "stored name"}

C = TypeVar("C")


# --- the filesystem steps of a save; each is one fault-injection point in the tests -------------


def _write_file(path: Path, write: Callable[[str], Any]) -> None:
    """Write one file of a checkpoint inside its (private) temp folder and fsync it."""
    write(str(path))
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _rename(src: Path, dst: Path) -> None:
    os.rename(src, dst)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _carry_extras(src: Path, dst: Path) -> None:
    """Hard-link (else copy) the files of `src` that are not part of the checkpoint into `dst`."""

    def link_or_copy(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    for entry in src.iterdir():
        if entry.name in CHECKPOINT_FILES or entry.name.startswith("."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, dst / entry.name, symlinks=True, copy_function=link_or_copy)
        elif entry.is_symlink():
            os.symlink(os.readlink(entry), dst / entry.name)
        else:
            link_or_copy(str(entry), str(dst / entry.name))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory; the renames are still atomic
        pass
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _leftovers(folder: Path) -> tuple[list[Path], list[Path]]:
    """(temp folders, old folders) that an interrupted save of `folder` left beside it, oldest first."""
    parent = folder.parent
    if not parent.is_dir():
        return [], []
    tmps, olds = [], []
    for entry in parent.iterdir():
        if entry.name.startswith(f".{folder.name}.tmp-") and entry.is_dir():
            tmps.append(entry)
        elif entry.name.startswith(f".{folder.name}.old-") and entry.is_dir():
            olds.append(entry)
    by_age = lambda p: p.stat().st_mtime_ns  # noqa: E731
    return sorted(tmps, key=by_age), sorted(olds, key=by_age)


def _manifest_problem(folder: Path, deep: bool = True) -> str | None:
    """Why `folder` is not a complete set according to its manifest (None when it is)."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        assert isinstance(files, dict)
    except FileNotFoundError:
        return f"{MANIFEST} is missing"
    except (ValueError, KeyError, TypeError, AssertionError, OSError) as e:
        return f"{MANIFEST} is unreadable ({type(e).__name__}: {e})"
    for name, info in files.items():
        file = folder / name
        if not isinstance(info, dict):
            return f"{MANIFEST} field files.{name}: expected an object with size and sha256, got {info!r}"
        if not file.is_file():
            return f"{name} is listed in {MANIFEST} but missing"
        if file.stat().st_size != info.get("size"):
            return f"{name} has {file.stat().st_size} bytes, {MANIFEST} says {info.get('size')}"
        if deep and _sha256(file) != info.get("sha256"):
            return f"{name} does not match the sha256 in {MANIFEST}"
    stray = [n for n in CHECKPOINT_FILES if n != MANIFEST and n not in files and (folder / n).exists()]
    if stray:
        return f"{stray} are not part of the set {MANIFEST} describes"
    return None


def checkpoint_path(folder: str | os.PathLike) -> Path:
    """The folder that holds `folder`'s checkpoint: itself, or the complete set an interrupted save left.

    Read-only: a save interrupted between its two renames leaves no `folder`; then the complete temp
    folder (manifest verified) or else the previous one is returned. `save_checkpoint` moves it back.
    """
    folder = Path(folder)
    if folder.exists():
        return folder
    tmps, olds = _leftovers(folder)
    for tmp in reversed(tmps):
        if _manifest_problem(tmp) is None:
            return tmp
    return olds[-1] if olds else folder


def recover_checkpoint(folder: str | os.PathLike) -> Path:
    """Finish or roll back an interrupted save of `folder` and delete its leftovers; returns `folder`."""
    folder = Path(folder)
    source = checkpoint_path(folder)
    if source != folder:
        _rename(source, folder)
    tmps, olds = _leftovers(folder)
    for leftover in tmps + olds:
        _remove_tree(leftover)
    return folder


def checkpoint_exists(folder: str | os.PathLike) -> bool:
    """True when `folder` holds a checkpoint (complete or not), counting one an interrupted save left."""
    found = checkpoint_path(folder)
    return found.is_dir() and any((found / n).exists() for n in CHECKPOINT_FILES)


def save_checkpoint(
    folder: str | os.PathLike,
    model: nn.Module,
    config: Any,
    *,
    kind: str | None = None,
    trainer_state: dict[str, Any] | None = None,
    **meta: Any,
) -> Path:
    """Save weights (safetensors), config (JSON, a dataclass) and optional trainer state as one atomic set.

    See the module docstring for the temp-folder + rename protocol. Tied weights are saved once.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"checkpoint folder {str(folder)!r} exists and is not a folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover_checkpoint(folder)
    cfg = (
        dataclasses.asdict(config)
        if dataclasses.is_dataclass(config) and not isinstance(config, type)
        else dict(config)
    )
    payload = {"kind": kind or type(config).__name__, "config": cfg, **meta}
    config_text = to_json(payload)  # fails on a non-JSON value before anything touches the disk
    state, aliases = _state_for_saving(model)
    metadata = {_ALIASES: json.dumps(aliases, sort_keys=True)} if aliases else None
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o777 & ~umask)
        _write_file(tmp / WEIGHTS, lambda p: save_file(state, p, metadata=metadata))
        if trainer_state is not None:
            _write_file(tmp / TRAINER, lambda p: torch.save(trainer_state, p))
        _write_file(tmp / CONFIG, lambda p: Path(p).write_text(config_text, encoding="utf-8"))
        if folder.is_dir():
            _carry_extras(folder, tmp)
        files = {
            n: {"size": (tmp / n).stat().st_size, "sha256": _sha256(tmp / n)}
            for n in (WEIGHTS, TRAINER, CONFIG)
            if (tmp / n).is_file()
        }
        step = meta.get("step", (trainer_state or {}).get("step"))
        manifest = {"format": 1, "kind": payload["kind"], "step": step, "files": files}
        _write_file(tmp / MANIFEST, lambda p: Path(p).write_text(to_json(manifest), encoding="utf-8"))
        _fsync_dir(tmp)
    except Exception:
        _remove_tree(tmp)
        raise
    if folder.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
        os.rmdir(old)  # only the unique name is wanted: rename needs the target absent
        _rename(folder, old)
        _rename(tmp, folder)
        _fsync_dir(folder.parent)
        _remove_tree(old)
    else:
        _rename(tmp, folder)
        _fsync_dir(folder.parent)
    return folder


def _state_for_saving(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors to store, {alias: stored name}): a tensor reached under two names (tied weights) is
    stored once; other tensors sharing storage are copied, since safetensors refuses shared memory."""
    state: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    same_view: dict[tuple, str] = {}
    storages: set[int] = set()
    for name, value in unwrap_model(model).state_dict().items():
        t = value.detach()
        ptr = t.untyped_storage().data_ptr() if t.numel() else 0
        view = (t.device, ptr, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        if ptr and view in same_view:
            aliases[name] = same_view[view]
            continue
        same_view[view] = name
        shared = ptr in storages
        storages.add(ptr)
        t = t.cpu().contiguous()
        state[name] = t.clone() if shared else t
    return state, aliases


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under DDP and torch.compile wrappers: saved keys never get `module.`/`_orig_mod.`."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model
