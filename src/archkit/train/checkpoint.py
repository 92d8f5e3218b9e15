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
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAINER = "trainer.pt"
MANIFEST = "manifest.json"
CHECKPOINT_FILES = (WEIGHTS, CONFIG, TRAINER, MANIFEST)
_ALIASES = "archkit.aliases"  # safetensors metadata key: {"tied name": "stored name"}

C = TypeVar("C")


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call `write(tmp_path)` on a temp file beside `path`, then move it in place: readers never see half a file.

    The temp name keeps the target's suffix (libraries pick the format from it) and gets the usual
    umask-based permissions rather than mkstemp's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (temp file + os.replace)."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    atomic_write(Path(path), write)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically."""
    atomic_write_text(path, _to_json(obj))


def _to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"


def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


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
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    payload = {"kind": kind or type(config).__name__, "config": cfg, **meta}
    config_text = _to_json(payload)  # fails on a non-JSON value before anything touches the disk
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
        files = {n: {"size": (tmp / n).stat().st_size, "sha256": _sha256(tmp / n)}
                 for n in (WEIGHTS, TRAINER, CONFIG) if (tmp / n).is_file()}
        step = meta.get("step", (trainer_state or {}).get("step"))
        manifest = {"format": 1, "kind": payload["kind"], "step": step, "files": files}
        _write_file(tmp / MANIFEST, lambda p: Path(p).write_text(_to_json(manifest), encoding="utf-8"))
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
    for name, value in _unwrap(model).state_dict().items():
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


def _checked_file(folder: str | os.PathLike, name: str) -> Path | None:
    """Path of one file of a checkpoint after checking the set it belongs to (None when absent)."""
    folder = Path(folder)
    found = checkpoint_path(folder)
    if not found.is_dir():
        raise FileNotFoundError(f"checkpoint folder {str(folder)!r} does not exist")
    if (found / MANIFEST).exists():
        problem = _manifest_problem(found, deep=False)
        if problem is None and (found / name).is_file() and _sha256(found / name) != _manifest_hash(found, name):
            problem = f"{name} does not match the sha256 in {MANIFEST}"
        if problem is not None:
            raise ValueError(f"checkpoint {str(folder)!r} is incomplete or mixed: {problem}. Its files are not "
                             f"the set that was saved together (edited or copied in by hand, or a crash in an "
                             f"older archkit); restore the folder from a backup or start a new run")
    path = found / name
    return path if path.is_file() else None


def _manifest_hash(folder: Path, name: str) -> str | None:
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"].get(name, {}).get("sha256")


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint's config.json: a JSON object with a string `kind` and an object `config`."""
    folder = Path(folder)
    if not checkpoint_path(folder).is_dir():
        raise FileNotFoundError(f"checkpoint folder {str(folder)!r} does not exist")
    path = _checked_file(folder, CONFIG)
    shown = str(folder / CONFIG)
    if path is None:
        raise FileNotFoundError(f"{str(folder)!r} is not an archkit checkpoint: {CONFIG} is missing")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{shown!r} is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{shown!r}: expected a JSON object with fields 'kind' and 'config', got a {_json_type(meta)}")
    if not isinstance(meta.get("kind"), str):
        raise ValueError(f"{shown!r}: field 'kind' must be a string naming the config class, got "
                         f"{'nothing (missing)' if 'kind' not in meta else repr(meta['kind'])}")
    if not isinstance(meta.get("config"), dict):
        raise ValueError(f"{shown!r}: field 'config' must be a JSON object of config fields, got "
                         f"{'nothing (missing)' if 'config' not in meta else _json_type(meta['config'])}")
    return meta


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number",
             type(None): "null"}
    return names.get(type(value), type(value).__name__)


def config_from_dict(cls: type[C], data: Any, source: str | None = None) -> C:
    """Build a config dataclass from a dict; unknown, missing or mistyped fields are a ValueError.

    A missing field is an error, never a silent default: a config saved by this code has every
    field, so one without it was edited or written for another version. `source` (e.g. the file)
    starts the message.
    """
    where = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise ValueError(f"{where}config for {cls.__name__}: expected a JSON object of fields, got a {_json_type(data)}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{where}config for {cls.__name__} has unknown fields {unknown}; expected a subset of {sorted(names)}")
    # Fields a newer archkit added are declared, with the value that reproduces the older model, in the
    # class's `ADDED_FIELDS`: a checkpoint written before them loads as it was trained. Any other missing
    # field is an error.
    added = getattr(cls, "ADDED_FIELDS", {})
    data = {**{k: v for k, v in added.items() if k not in data}, **data}
    missing = [n for n in names if n not in data]
    if missing:
        raise ValueError(f"{where}config for {cls.__name__} is missing fields {missing}; every field must be "
                         f"given (a missing field is never filled with a default)")
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: skip the type check, the constructor still runs
        hints = {}
    for name in names:
        if name in hints and not _matches(data[name], hints[name]):
            raise ValueError(f"{where}config for {cls.__name__}: field {name!r} expected {_hint_text(hints[name])}, "
                             f"got {data[name]!r}")
    return cls(**data)


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a simple annotation (int, float, str, bool, list[...], X | None, ...)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return True
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if args and (origin is list or (len(args) == 2 and args[1] is Ellipsis)) else None
        return item is None or all(_matches(v, item) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True  # an annotation this check does not know: leave it to the constructor


def _hint_text(hint: Any) -> str:
    return getattr(hint, "__name__", None) if not typing.get_args(hint) else str(hint).replace("typing.", "")


def read_model_config(folder: str | os.PathLike, cls: type[C], kind: str | None = None) -> tuple[C, dict[str, Any]]:
    """(config dataclass, whole config.json) of a checkpoint whose `kind` must be `kind` (default cls name)."""
    meta = read_config(folder)
    expected = kind or cls.__name__
    shown = str(Path(folder) / CONFIG)
    if meta["kind"] != expected:
        raise ValueError(f"{shown!r}: field 'kind' is {meta['kind']!r}, expected {expected!r}")
    return config_from_dict(cls, meta["config"], f"{shown!r} field 'config'"), meta


def load_weights(folder: str | os.PathLike, model: nn.Module, strict: bool = True) -> nn.Module:
    """Load model.safetensors into `model`; a mismatch names the offending keys and shapes."""
    path = _checked_file(folder, WEIGHTS)
    if path is None:
        raise FileNotFoundError(f"{str(folder)!r} has no {WEIGHTS}")
    shown = str(Path(folder) / WEIGHTS)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        aliases = json.loads(metadata.get(_ALIASES, "{}"))
        for alias, stored in aliases.items():
            state[alias] = state[stored]
    except Exception as e:  # safetensors raises its own error types for truncated or garbled files
        raise ValueError(f"{shown!r} is not a readable safetensors file ({type(e).__name__}: {e}); "
                         f"the file is truncated or corrupt") from None
    target = _unwrap(model)
    own = target.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                 for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]
    if strict and (missing or unexpected or bad_shape):
        raise ValueError(
            f"checkpoint {str(folder)!r} does not match the model config: "
            f"missing={missing[:5]} unexpected={unexpected[:5]} shape mismatches={bad_shape[:5]}"
        )
    target.load_state_dict(state, strict=strict)
    return model


def load_trainer_state(folder: str | os.PathLike, required: bool = False) -> dict[str, Any] | None:
    """Load trainer.pt (optimizer state, step, RNG) safely with weights_only=True, or None when absent.

    `required=True` (a `--resume`) makes a missing trainer.pt an error; its step must match config.json's.
    """
    folder = Path(folder)
    path = _checked_file(folder, TRAINER)
    if path is None:
        if required:
            raise ValueError(f"checkpoint {str(folder)!r} has no {TRAINER} (optimizer state): it cannot be resumed; "
                             f"start a new run or load only its weights")
        return None
    shown = str(folder / TRAINER)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated zip or pickle surfaces as several torch/pickle error types
        raise ValueError(f"{shown!r} is not a readable trainer state ({type(e).__name__}: {e}); "
                         f"the file is truncated or corrupt") from None
    if not isinstance(state, dict):
        raise ValueError(f"{shown!r}: expected a dict of trainer state, got {type(state).__name__}")
    saved_step = read_config(folder).get("step")
    if "step" in state and saved_step is not None and int(state["step"]) != int(saved_step):
        raise ValueError(f"checkpoint {str(folder)!r} is mixed: {TRAINER} is at step {int(state['step'])} but "
                         f"{CONFIG} at step {saved_step}; refusing to resume from mismatched state")
    return state


def _unwrap(model: nn.Module) -> nn.Module:
    from .accelerate import unwrap_model  # DDP and torch.compile wrappers: saved keys never get their prefixes

    return unwrap_model(model)
