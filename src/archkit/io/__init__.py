"""Persistence on the ground floor: atomic writes, safetensors + JSON checkpoints with manifests, configs."""

from .atomic import atomic_write, atomic_write_json, atomic_write_text, to_json
from .checkpoint import (
    CHECKPOINT_FILES,
    CONFIG,
    MANIFEST,
    TRAINER,
    WEIGHTS,
    checkpoint_exists,
    checkpoint_path,
    recover_checkpoint,
    save_checkpoint,
    unwrap_model,
)
from .config import config_from_dict
from .load import load_trainer_state, load_weights, read_config, read_model_config
from .outdir import OWN_MARK, artefact_kinds, check_out_file, check_out_folder, is_own_file

__all__ = [
    "CHECKPOINT_FILES",
    "CONFIG",
    "MANIFEST",
    "OWN_MARK",
    "TRAINER",
    "WEIGHTS",
    "artefact_kinds",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "check_out_file",
    "check_out_folder",
    "checkpoint_exists",
    "checkpoint_path",
    "config_from_dict",
    "is_own_file",
    "load_trainer_state",
    "load_weights",
    "read_config",
    "read_model_config",
    "recover_checkpoint",
    "save_checkpoint",
    "to_json",
    "unwrap_model",
]
