"""Training utilities: atomic checkpoints, seeding, a readable classifier loop, the device/precision layer."""

from ..utils.moved import point_moved_names
from .accelerate import (
    Accelerator,
    available_devices,
    create_accelerator,
    resolve_device,
    unwrap_model,
    use_accelerator,
)
from .checkpoint import (
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    checkpoint_exists,
    checkpoint_path,
    config_from_dict,
    load_trainer_state,
    load_weights,
    read_config,
    read_model_config,
    recover_checkpoint,
    save_checkpoint,
)
from .encode import encode_dataset
from .evaluate import evaluate_run
from .function import FunctionFitConfig, FunctionFitResult, fit_function
from .generate import sample_images
from .metrics import confusion_matrix, iou_per_class, mean_iou
from .prior import PriorTrainConfig, load_prior, train_prior
from .provenance import StaleCodesWarning, check_provenance, vqvae_provenance
from .ridge_stats import RidgeStats
from .rocket import rocket_features, transform_shards
from .rocket_fit import SparseMoments, fit_logistic, run_pass
from .run import GracefulInterrupt, append_jsonl, read_jsonl
from .sequence import SeqTrainConfig, train_sequence
from .sequence_eval import evaluate_sequences, predict_sequences
from .sequence_score import classification_report, stream_proba
from .targets import as_class_targets, sequence_loss
from .utils import FitResult, accuracy, batches, fit_classifier, seed_everything
from .vqvae import VQVAETrainConfig, train_vqvae
from .vqvae_data import evaluate_vqvae

# Public names that moved: importing them from their old place fails with one line naming the new home.
point_moved_names(
    f"{__name__}.sequence",
    {"archkit.train.schedule": ("LR_SCHEDULES",), "archkit.train.sequence_eval": ("predict_sequences",)},
)
point_moved_names(
    f"{__name__}.vqvae",
    {"archkit.train.encode": ("encode_dataset",), "archkit.train.vqvae_data": ("image_batches",)},
)

__all__ = [
    "Accelerator",
    "FitResult",
    "FunctionFitConfig",
    "FunctionFitResult",
    "GracefulInterrupt",
    "PriorTrainConfig",
    "RidgeStats",
    "SeqTrainConfig",
    "SparseMoments",
    "StaleCodesWarning",
    "VQVAETrainConfig",
    "accuracy",
    "append_jsonl",
    "as_class_targets",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "available_devices",
    "batches",
    "check_provenance",
    "checkpoint_exists",
    "checkpoint_path",
    "classification_report",
    "config_from_dict",
    "confusion_matrix",
    "create_accelerator",
    "encode_dataset",
    "evaluate_run",
    "evaluate_sequences",
    "evaluate_vqvae",
    "fit_classifier",
    "fit_function",
    "fit_logistic",
    "iou_per_class",
    "load_prior",
    "load_trainer_state",
    "load_weights",
    "mean_iou",
    "predict_sequences",
    "read_config",
    "read_jsonl",
    "read_model_config",
    "recover_checkpoint",
    "resolve_device",
    "rocket_features",
    "run_pass",
    "sample_images",
    "save_checkpoint",
    "seed_everything",
    "sequence_loss",
    "stream_proba",
    "train_prior",
    "train_sequence",
    "train_vqvae",
    "transform_shards",
    "unwrap_model",
    "use_accelerator",
    "vqvae_provenance",
]
