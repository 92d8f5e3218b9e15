"""Persistence on the ground floor: atomic writes, safetensors + JSON checkpoints with manifests, configs."""

from .atomic import atomic_path, atomic_write, atomic_write_json, atomic_write_text, to_json
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
from .outdir import (
    MARKER,
    artefact_kinds,
    check_out_folder,
    claim_out_folder,
    folder_kind,
    is_codes_folder,
    mark_out_folder,
)
from .outfile import OWN_MARK, check_distinct, check_out_file, file_kind, is_own_file, json_mark

__all__ = [
    "CHECKPOINT_FILES",
    "CONFIG",
    "MANIFEST",
    "MARKER",
    "OWN_MARK",
    "TRAINER",
    "WEIGHTS",
    "artefact_kinds",
    "atomic_path",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "check_distinct",
    "check_out_file",
    "check_out_folder",
    "checkpoint_exists",
    "checkpoint_path",
    "claim_out_folder",
    "config_from_dict",
    "file_kind",
    "folder_kind",
    "is_codes_folder",
    "is_own_file",
    "json_mark",
    "load_trainer_state",
    "load_weights",
    "mark_out_folder",
    "read_config",
    "read_model_config",
    "recover_checkpoint",
    "save_checkpoint",
    "to_json",
    "unwrap_model",
]
