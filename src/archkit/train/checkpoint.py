"""Checkpoints moved to `archkit.io`; this name stays so code written against the old path keeps working."""

from ..io.atomic import atomic_write, atomic_write_json, atomic_write_text
from ..io.checkpoint import (
    CHECKPOINT_FILES,
    CONFIG,
    MANIFEST,
    TRAINER,
    WEIGHTS,
    checkpoint_exists,
    checkpoint_path,
    recover_checkpoint,
    save_checkpoint,
)
from ..io.config import config_from_dict
from ..io.load import load_trainer_state, load_weights, read_config, read_model_config

__all__ = [
    "CHECKPOINT_FILES",
    "CONFIG",
    "MANIFEST",
    "TRAINER",
    "WEIGHTS",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "checkpoint_exists",
    "checkpoint_path",
    "config_from_dict",
    "load_trainer_state",
    "load_weights",
    "read_config",
    "read_model_config",
    "recover_checkpoint",
    "save_checkpoint",
]
