"""Reading a checkpoint back: config.json, safetensors weights and trainer state, each checked against the manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import safe_open
from torch import nn

from .checkpoint import (
    _ALIASES,
    CONFIG,
    MANIFEST,
    TRAINER,
    WEIGHTS,
    _manifest_problem,
    _sha256,
    checkpoint_path,
    unwrap_model,
)
from .config import config_from_dict, json_type

C = TypeVar("C")
M = TypeVar("M", bound=nn.Module)


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
            raise ValueError(
                f"checkpoint {str(folder)!r} is incomplete or mixed: {problem}. Its files are not "
                f"the set that was saved together (edited or copied in by hand, or a crash in an "
                f"older archkit); restore the folder from a backup or start a new run"
            )
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
        raise ValueError(f"{shown!r}: expected a JSON object with fields 'kind' and 'config', got a {json_type(meta)}")
    if not isinstance(meta.get("kind"), str):
        raise ValueError(
            f"{shown!r}: field 'kind' must be a string naming the config class, got "
            f"{'nothing (missing)' if 'kind' not in meta else repr(meta['kind'])}"
        )
    if not isinstance(meta.get("config"), dict):
        raise ValueError(
            f"{shown!r}: field 'config' must be a JSON object of config fields, got "
            f"{'nothing (missing)' if 'config' not in meta else json_type(meta['config'])}"
        )
    return meta


def read_model_config(folder: str | os.PathLike, cls: type[C], kind: str | None = None) -> tuple[C, dict[str, Any]]:
    """(config dataclass, whole config.json) of a checkpoint whose `kind` must be `kind` (default cls name)."""
    meta = read_config(folder)
    expected = kind or cls.__name__
    shown = str(Path(folder) / CONFIG)
    if meta["kind"] != expected:
        raise ValueError(f"{shown!r}: field 'kind' is {meta['kind']!r}, expected {expected!r}")
    return config_from_dict(cls, meta["config"], f"{shown!r} field 'config'"), meta


def load_weights(folder: str | os.PathLike, model: M, strict: bool = True) -> M:
    """Load model.safetensors into `model`; a mismatch names the offending keys and shapes."""
    path = _checked_file(folder, WEIGHTS)
    if path is None:
        raise FileNotFoundError(f"{str(folder)!r} has no {WEIGHTS}")
    shown = str(Path(folder) / WEIGHTS)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not iterable
        aliases = json.loads(metadata.get(_ALIASES, "{}"))
        for alias, stored in aliases.items():
            state[alias] = state[stored]
    except Exception as e:  # safetensors raises its own error types for truncated or garbled files
        raise ValueError(
            f"{shown!r} is not a readable safetensors file ({type(e).__name__}: {e}); the file is truncated or corrupt"
        ) from None
    target = unwrap_model(model)
    own = target.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if own[k].shape != state[k].shape
    ]
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
            raise ValueError(
                f"checkpoint {str(folder)!r} has no {TRAINER} (optimizer state): it cannot be resumed; "
                f"start a new run or load only its weights"
            )
        return None
    shown = str(folder / TRAINER)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated zip or pickle surfaces as several torch/pickle error types
        raise ValueError(
            f"{shown!r} is not a readable trainer state ({type(e).__name__}: {e}); the file is truncated or corrupt"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"{shown!r}: expected a dict of trainer state, got {type(state).__name__}")
    saved_step = read_config(folder).get("step")
    if "step" in state and saved_step is not None and int(state["step"]) != int(saved_step):
        raise ValueError(
            f"checkpoint {str(folder)!r} is mixed: {TRAINER} is at step {int(state['step'])} but "
            f"{CONFIG} at step {saved_step}; refusing to resume from mismatched state"
        )
    return state
