"""Rebuild any archkit model from its checkpoint folder, replaying the surgery recorded with it.

This sits above both `models` (which knows the kinds) and `surgery` (which knows the edits), so neither
has to import the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .io import config_from_dict, load_weights, read_config
from .models.registry import MODEL_KINDS
from .surgery.replay import replay_surgery


def build_model(meta: dict[str, Any], source: str = "checkpoint") -> nn.Module:
    """Build the (untrained) model a checkpoint's config.json describes, surgery steps included."""
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: expected a JSON object with fields 'kind' and 'config', got {type(meta).__name__}")
    kind = meta.get("kind")
    if kind not in MODEL_KINDS:
        raise ValueError(f"{source}: field 'kind' is {kind!r}; loadable kinds are {sorted(MODEL_KINDS)}")
    model_cls, config_cls = MODEL_KINDS[kind]
    model = model_cls(config_from_dict(config_cls, meta.get("config"), f"{source} field 'config'")).eval()
    return replay_surgery(model, meta.get("surgery", []), source)


def load_model(folder: str | Path) -> nn.Module:
    """Rebuild any archkit model from a checkpoint folder (config.json + model.safetensors), surgery included."""
    model = build_model(read_config(folder), repr(str(Path(folder) / "config.json")))
    return load_weights(folder, model).eval()


__all__ = ["build_model", "load_model"]
