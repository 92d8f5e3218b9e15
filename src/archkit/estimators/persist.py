"""Save and load any fitted sequence estimator of archkit as safetensors + JSON (see archkit.estimators.saving)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .auto import AutoSequenceClassifier
from .rocket import RocketClassifier
from .saving import load_folder, save_estimator
from .sequence import LSTMClassifier

__all__ = ["load_estimator", "save_estimator"]


def load_estimator(path: str | Path) -> Any:
    """The RocketClassifier, LSTMClassifier or AutoSequenceClassifier saved in folder `path` (nothing unpickled)."""
    classes: dict[str, type] = {c.__name__: c for c in (AutoSequenceClassifier, LSTMClassifier, RocketClassifier)}
    return load_folder(path, classes)
