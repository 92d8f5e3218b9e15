"""Training utilities: atomic checkpoints, seeding, a readable classifier loop, the device/precision layer."""
from .accelerate import (Accelerator, available_devices, create_accelerator, resolve_device, unwrap_model,
                         use_accelerator)
from .checkpoint import (
    atomic_write, atomic_write_json, atomic_write_text, checkpoint_exists, checkpoint_path, config_from_dict,
    load_trainer_state, load_weights, read_config, read_model_config, recover_checkpoint, save_checkpoint,
)
from .metrics import confusion_matrix, iou_per_class, mean_iou
from .run import GracefulInterrupt, append_jsonl, read_jsonl
from .sequence import SeqTrainConfig, as_class_targets, predict_sequences, sequence_loss, train_sequence
from .utils import FitResult, accuracy, batches, fit_classifier, seed_everything
from .vqvae import VQVAETrainConfig, encode_dataset, evaluate_vqvae, train_vqvae
from .prior import PriorTrainConfig, load_prior, train_prior
from .generate import sample_images
from .evaluate import evaluate_run
from .function import FunctionFitConfig, FunctionFitResult, fit_function

__all__ = [
    "Accelerator", "available_devices", "create_accelerator", "resolve_device", "unwrap_model", "use_accelerator",
    "SeqTrainConfig", "as_class_targets", "predict_sequences", "sequence_loss", "train_sequence",
    "confusion_matrix", "iou_per_class", "mean_iou",
    "VQVAETrainConfig", "encode_dataset", "evaluate_vqvae", "train_vqvae",
    "FunctionFitConfig", "FunctionFitResult", "fit_function",
    "PriorTrainConfig", "load_prior", "train_prior", "sample_images", "evaluate_run",
    "FitResult", "GracefulInterrupt", "accuracy", "append_jsonl", "read_jsonl", "atomic_write", "atomic_write_json", "atomic_write_text", "batches", "config_from_dict",
    "fit_classifier", "load_trainer_state", "load_weights", "read_config", "save_checkpoint", "seed_everything",
    "checkpoint_exists", "checkpoint_path", "read_model_config", "recover_checkpoint",
]
