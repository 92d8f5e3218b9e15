"""Atomic, safe checkpoints: safetensors weights + JSON config + a weights_only trainer state.

Layout of a checkpoint folder:
    model.safetensors   the module's state_dict (tensors only, safe to load from anywhere)
    config.json         {"kind": ..., "config": {...dataclass fields...}, "step": ..., ...}
    trainer.pt          optional optimizer/scheduler/RNG state, loaded with weights_only=True
Every file is written to a temp file in the same folder and moved in place with os.replace,
so a crash never leaves a half-written checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAINER = "trainer.pt"

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
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


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


def save_checkpoint(
    folder: str | os.PathLike,
    model: nn.Module,
    config: Any,
    *,
    kind: str | None = None,
    trainer_state: dict[str, Any] | None = None,
    **meta: Any,
) -> Path:
    """Save weights (safetensors), config (JSON, a dataclass) and optional trainer state atomically."""
    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in _unwrap(model).state_dict().items()}
    # safetensors refuses tensors that share storage; state_dict copies above are independent.
    atomic_write(folder / WEIGHTS, lambda tmp: save_file(state, tmp))
    if trainer_state is not None:
        atomic_write(folder / TRAINER, lambda tmp: torch.save(trainer_state, tmp))
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    payload = {"kind": kind or type(config).__name__, "config": cfg, **meta}
    atomic_write_json(folder / CONFIG, payload)  # written last: its presence marks a complete checkpoint
    return folder


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint's config.json, with a clear error when the folder is not a checkpoint."""
    folder = Path(folder)
    path = folder / CONFIG
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder {str(folder)!r} does not exist")
    if not path.is_file():
        raise FileNotFoundError(f"{str(folder)!r} is not an archkit checkpoint: {CONFIG} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(path)!r} is not valid JSON: {e}") from None


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Build a config dataclass from a dict, naming unknown or missing fields in the error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"config for {cls.__name__} has unknown fields {unknown}; expected a subset of {sorted(names)}")
    return cls(**data)


def load_weights(folder: str | os.PathLike, model: nn.Module, strict: bool = True) -> nn.Module:
    """Load model.safetensors into `model`; a mismatch names the offending keys and shapes."""
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{str(folder)!r} has no {WEIGHTS}")
    state = load_file(str(path))
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


def load_trainer_state(folder: str | os.PathLike) -> dict[str, Any] | None:
    """Load trainer.pt (optimizer state, step, RNG) safely with weights_only=True, or None."""
    path = Path(folder) / TRAINER
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def _unwrap(model: nn.Module) -> nn.Module:
    from .accelerate import unwrap_model  # DDP and torch.compile wrappers: saved keys never get their prefixes

    return unwrap_model(model)
