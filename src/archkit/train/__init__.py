"""Training utilities: atomic checkpoints, seeding, a readable classifier loop."""
from .checkpoint import (
    atomic_write_json, atomic_write_text, config_from_dict, load_trainer_state, load_weights,
    read_config, save_checkpoint,
)
from .run import GracefulInterrupt, append_jsonl, read_jsonl
from .utils import FitResult, accuracy, batches, fit_classifier, seed_everything

__all__ = [
    "FitResult", "GracefulInterrupt", "accuracy", "append_jsonl", "read_jsonl", "atomic_write_json", "atomic_write_text", "batches", "config_from_dict",
    "fit_classifier", "load_trainer_state", "load_weights", "read_config", "save_checkpoint", "seed_everything",
]
