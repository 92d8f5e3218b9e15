"""Training for SequenceClassifier: streamed batches, atomic checkpoints, resume.

Targets are one label per sequence (see `targets.py`); prediction and evaluation live in `sequence_eval.py`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from ..io import (
    atomic_write_json,
    checkpoint_exists,
    load_trainer_state,
    load_weights,
    read_config,
    read_model_config,
    save_checkpoint,
)
from ..io.outdir import claim_out_folder
from .accelerate import accelerator_for, restore_choice
from .resume import resume_config
from .run import GracefulInterrupt, append_jsonl
from .schedule import lr_at
from .sequence_eval import evaluate_sequences, save_confusion_png
from .sequence_score import check_like_training, check_task_classes, single_length
from .targets import as_class_targets, infer_num_classes, sequence_loss
from .utils import seed_everything

if TYPE_CHECKING:
    from ..data.sequences import SequenceData
    from ..models.sequence import SequenceClassifierConfig

CHECKPOINT = "checkpoint"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CONFUSION_PNG = "confusion.png"
DATA_FIELDS = ("x", "y", "shards", "dataset")  # one data source: giving one on --resume replaces the saved one


@dataclass
class SeqTrainConfig:
    """One training run: data source, model architecture, optimization budget. Saved with the checkpoint."""

    out: str
    x: str | None = None  # X.npy (N, T, F), memory-mapped
    y: str | None = None  # Y.npy (N,) ids or (N, C) one-hot
    shards: str | None = None  # or a folder of .npy/.npz shards
    dataset: str | None = None  # or "long-task" / a bundled aeon UCR/UEA name
    val_fraction: float = 0.2  # held out of --x/--y or shards (datasets have their own test split)
    test_shards: str | None = None  # a separate test folder scored instead: nothing is held out of the training data
    # model (in_features and num_classes come from the data)
    hidden: int = 128
    layers: int = 2
    bidirectional: bool = False
    dropout: float = 0.0
    frontend: str = "none"
    pool: str = "last"
    conv_channels: int = 64
    conv_kernel: int = 7
    conv_stride: int = 4
    conv_blocks: int = 2
    conv_norm: str = "none"  # "batch": masked BatchNorm after every frontend conv
    fcn_channels: int = 0  # > 0: LSTM-FCN branch (Karim et al. 2018) beside the LSTM
    # optimization
    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    lr_schedule: str = "constant"  # or "cosine": decay to 0 over all epochs, so the final weights are settled
    weight_decay: float = 1e-2
    clip_norm: float = 1.0
    label_smoothing: float = 0.0  # cross-entropy label smoothing in [0, 1)
    seed: int = 0
    max_steps: int = 0  # stop after this many optimizer steps in total (0: no limit)
    time_limit_s: float = 0.0  # stop (with a checkpoint) after this much training time (0: no limit)
    checkpoint_every: int = 100  # optimizer steps between mid-epoch checkpoints (0: epoch ends only)
    eval_batch_size: int = 64
    block: int = 1  # rows per shuffle block (>1 keeps disk reads contiguous)
    workers: int = 0  # DataLoader processes reading batches ahead (memory-mapped rows are cheap to read here)
    # generated long task sizes
    long_task_train: int = 1024
    long_task_test: int = 256
    long_task_length: int = 8192
    progress: bool = True
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps (see archkit.train.accelerate)
    precision: str = "32"  # 32 | bf16 | 16-mixed
    compile: bool = False  # torch.compile the model


# what --resume cannot change (archkit.train.resume): the model, the data's split and the batch position's meaning
RESUME_FIXED = (
    *("hidden", "layers", "bidirectional", "dropout", "frontend", "pool", "conv_channels", "conv_kernel"),
    *(
        "conv_stride",
        "conv_blocks",
        "conv_norm",
        "fcn_channels",
        "seed",
        "val_fraction",
        "test_shards",
        "batch_size",
        "block",
    ),
    *("dataset", "long_task_train", "long_task_test", "long_task_length"),
)


def _model_config(cfg: SeqTrainConfig, in_features: int, num_classes: int) -> SequenceClassifierConfig:
    from ..models.sequence import SequenceClassifierConfig

    return SequenceClassifierConfig(
        in_features=in_features,
        num_classes=num_classes,
        hidden=cfg.hidden,
        layers=cfg.layers,
        bidirectional=cfg.bidirectional,
        dropout=cfg.dropout,
        frontend=cfg.frontend,
        pool=cfg.pool,
        conv_channels=cfg.conv_channels,
        conv_kernel=cfg.conv_kernel,
        conv_stride=cfg.conv_stride,
        conv_blocks=cfg.conv_blocks,
        conv_norm=cfg.conv_norm,
        fcn_channels=cfg.fcn_channels,
    )


def load_training_data(cfg: SeqTrainConfig) -> tuple[SequenceData, SequenceData | None, list[str] | None]:
    """(train, held_out, class_names or None: ids 0..max id seen) for the run's data source."""
    from .. import data as ds
    from ..data.real_tasks import task_classes

    sources = [
        name for name, v in (("--x/--y", cfg.x or cfg.y), ("--shards", cfg.shards), ("--dataset", cfg.dataset)) if v
    ]
    if len(sources) != 1:
        raise ValueError(f"data: give exactly one of --x with --y, --shards or --dataset; got {sources or 'none'}")
    if cfg.test_shards and cfg.dataset:
        raise ValueError(
            "--test-shards: --dataset brings its own test split; use --test-shards with --shards or --x/--y"
        )
    if cfg.dataset == ds.LONG_TASK:
        folder = Path(cfg.out) / "data"
        xtr, ytr = ds.write_long_task(folder / "train", cfg.long_task_train, seed=cfg.seed, length=cfg.long_task_length)
        xte, yte = ds.write_long_task(
            folder / "test", cfg.long_task_test, seed=cfg.seed + 1, length=cfg.long_task_length
        )
        return ds.open_npy(xtr, ytr), ds.open_npy(xte, yte), list(ds.LONG_TASK_CLASSES)
    if cfg.dataset:
        real = ds.load_real_dataset(cfg.dataset)
        return real.train(), real.test(), list(real.classes)
    classes = None
    if cfg.shards:
        data = ds.open_shards(cfg.shards)
        classes = task_classes(cfg.shards)  # a make-task split: every class of the task, even one it lacks
    else:
        if not (cfg.x and cfg.y):
            raise ValueError(
                "data: --x and --y go together (X.npy of shape (N, T, F) and Y.npy of shape (N,) or (N, C))"
            )
        data = ds.open_npy(cfg.x, cfg.y)
    if cfg.test_shards:  # the whole of the training data trains; the test folder is scored instead of a share
        if not Path(cfg.test_shards).is_dir():
            raise FileNotFoundError(f"--test-shards: the folder {cfg.test_shards!r} does not exist")
        test = ds.open_shards(cfg.test_shards)
        check_like_training(test, data.in_features, single_length(data), "--test-shards")
        check_task_classes(classes, cfg.test_shards, "--test-shards")
        return data, test, classes
    train, held = data.split(cfg.val_fraction, seed=cfg.seed)
    return train, held, classes


def _validated_targets(
    train: SequenceData, held: SequenceData | None, classes: Sequence[str] | None
) -> tuple[SequenceData, SequenceData | None, int]:
    """Check every shard's Y once (the padding mistake fails here, before any training) -> ids."""
    for s in train.shards:  # shape check first: it names the padding mistake
        as_class_targets(s.y, len(classes) if classes else None, s.x_shape)
    num_classes = len(classes) if classes else max(infer_num_classes(s.y) for s in train.shards)
    convert = lambda y, x_shape: as_class_targets(y, num_classes, x_shape).numpy()  # noqa: E731
    return train.map_targets(convert), None if held is None else held.map_targets(convert), num_classes


def train_sequence(
    cfg: SeqTrainConfig, resume: bool = False, explicit: Collection[str] = (), data: tuple | None = None
) -> dict[str, Any]:
    """Train a SequenceClassifier per `cfg`; checkpoints to cfg.out/checkpoint and resumes from it.

    `data` = (train, held_out or None, class names or None) in-memory SequenceData instead of cfg's
    data source (the scikit-learn estimators pass it); without a held-out set nothing is evaluated.

    AdamW + gradient clipping; held-out accuracy each epoch to metrics.jsonl; a confusion matrix
    PNG and summary.json at the end. Ctrl-C saves a checkpoint and returns; `resume=True`
    continues from the exact batch where the last checkpoint was taken, on the saved device/precision
    unless they are named in `explicit` (the CLI's given flags) or set to non-default values.
    """
    from ..models.sequence import SequenceClassifier, SequenceClassifierConfig

    out = Path(cfg.out)
    ckpt = out / CHECKPOINT
    if checkpoint_exists(ckpt) and not resume:
        raise ValueError(
            f"--out: {str(out)!r} already holds a checkpoint; pass --resume to continue it or choose a new --out"
        )
    if not checkpoint_exists(ckpt):  # --resume with nothing to resume starts a new run: the same check
        claim_out_folder(out, "sequence run")
    for name in ("epochs", "batch_size"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name}: expected a positive int, got {getattr(cfg, name)!r}")
    if not isinstance(cfg.workers, int) or cfg.workers < 0:
        raise ValueError(f"workers: expected an int >= 0 (0 = read in the main process), got {cfg.workers!r}")
    saved = read_config(ckpt).get("train_config") if resume and checkpoint_exists(ckpt) else None
    resume_config(cfg, saved, RESUME_FIXED, explicit, f"{str(ckpt)!r} field 'train_config'", groups=[DATA_FIELDS])
    seed_everything(cfg.seed)
    train, held, classes = data if data is not None else load_training_data(cfg)
    train, held, num_classes = _validated_targets(train, held, classes)
    classes = classes or [str(i) for i in range(num_classes)]

    state = load_trainer_state(ckpt, required=True) if resume and checkpoint_exists(ckpt) else None
    restored = restore_choice(cfg, saved, explicit) if state is not None else []
    accel = accelerator_for(cfg, restored)
    if state is not None:
        model_cfg = read_model_config(ckpt, SequenceClassifierConfig)[0]
        if model_cfg.in_features != train.in_features or model_cfg.num_classes != num_classes:
            raise ValueError(
                f"--resume: checkpoint expects {model_cfg.in_features} features and {model_cfg.num_classes} classes, "
                f"the data has {train.in_features} and {num_classes}"
            )
    else:
        model_cfg = _model_config(cfg, train.in_features, num_classes)
    model = SequenceClassifier(model_cfg)
    if state is not None:
        load_weights(ckpt, model)
    accel.prepare(model)  # before the optimizer, so its state lives on the device
    net = accel.compile_model(model)
    lr_at(cfg.lr, cfg.lr_schedule, 0, 1)  # reject an unknown schedule before any work
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise ValueError(f"label_smoothing: expected a float in [0, 1), got {cfg.label_smoothing!r}")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    epoch, batch_in_epoch, step, seen, train_time = 0, 0, 0, 0, 0.0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        accel.load_state_dict(state.get("scaler"))
        epoch, batch_in_epoch, step = int(state["epoch"]), int(state["batch_in_epoch"]), int(state["step"])
        seen = int(state.get("seen", 0))
        train_time = float(state.get("train_time", 0.0))
        torch.set_rng_state(state["torch_rng"])

    def save(epoch_: int, batch_: int) -> None:
        trainer = {
            "optimizer": opt.state_dict(),
            "epoch": epoch_,
            "batch_in_epoch": batch_,
            "step": step,
            "seen": seen,
            "train_time": train_time,
            "torch_rng": torch.get_rng_state(),
            "scaler": accel.state_dict(),
        }
        save_checkpoint(
            ckpt,
            model,
            model_cfg,
            trainer_state=trainer,
            train_config=dataclasses.asdict(cfg),
            classes=classes,
            epoch=epoch_,
            step=step,
        )

    def budget_left() -> bool:
        return not ((cfg.max_steps and step >= cfg.max_steps) or (cfg.time_limit_s and train_time >= cfg.time_limit_s))

    stopped, last_eval = None, None
    model.train()
    with GracefulInterrupt() as interrupt:
        while epoch < cfg.epochs and stopped is None:
            n_batches = train.num_batches(cfg.batch_size)
            bar = tqdm(
                total=n_batches,
                initial=batch_in_epoch,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                disable=not cfg.progress,
                leave=False,
            )
            total, count = 0.0, 0
            for xb, yb, lb in train.batches(
                cfg.batch_size,
                shuffle=True,
                seed=cfg.seed * 1000 + epoch,
                block=cfg.block,
                start=batch_in_epoch,
                workers=cfg.workers,
            ):
                t0 = time.perf_counter()
                xb, lb = accel.to_device((xb, lb))
                with accel.autocast():
                    logits = net(xb, lb)
                loss = sequence_loss(logits.float(), yb, label_smoothing=cfg.label_smoothing)
                if not math.isfinite(loss.item()):
                    raise ValueError(f"training diverged: loss is {loss.item()} at step {step}; lower --lr")
                opt.zero_grad(set_to_none=True)
                accel.backward(loss)
                for group in opt.param_groups:
                    group["lr"] = lr_at(cfg.lr, cfg.lr_schedule, step, cfg.epochs * n_batches)
                accel.step(opt, cfg.clip_norm, model.parameters())
                train_time += time.perf_counter() - t0
                step, seen = step + 1, seen + len(yb)
                batch_in_epoch += 1
                total, count = total + loss.item() * len(yb), count + len(yb)
                bar.update(1)
                bar.set_postfix(loss=f"{total / count:.3f}")
                if interrupt.requested or not budget_left():
                    stopped = "interrupted" if interrupt.requested else "budget"
                    break
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    save(epoch, batch_in_epoch)
            bar.close()
            if stopped == "interrupted":
                save(epoch, batch_in_epoch)
                break
            if stopped is None:
                epoch, batch_in_epoch = epoch + 1, 0
            last_eval = (
                None
                if held is None
                else evaluate_sequences(model, held, num_classes, cfg.eval_batch_size, accel, cfg.workers)
            )
            acc = None if last_eval is None else last_eval[0]
            append_jsonl(
                out / METRICS,
                {
                    "epoch": epoch,
                    "step": step,
                    "train_loss": total / max(count, 1),
                    "held_out_accuracy": acc,
                    "train_time_s": train_time,
                },
            )
            save(epoch, batch_in_epoch)

    summary: dict[str, Any] = {
        "classes": classes,
        "epoch": epoch,
        "step": step,
        "train_time_s": train_time,
        "train_sequences_per_s": seen / max(train_time, 1e-9),
        "stopped": stopped or "done",
        "accelerator": accel.describe(),
    }
    if stopped == "interrupted" or held is None:  # interrupted (checkpoint saved) or nothing held out
        summary["model_config"] = dataclasses.asdict(model_cfg)
        return summary
    acc, cm = last_eval or evaluate_sequences(model, held, num_classes, cfg.eval_batch_size, accel, cfg.workers)
    save_confusion_png(cm, classes, out / CONFUSION_PNG)
    summary.update(
        {
            "held_out_accuracy": acc,
            "confusion_matrix": cm.tolist(),
            "num_train": len(train),
            "num_held_out": len(held),
            "skipped_shards": train.skipped,
            "model_config": dataclasses.asdict(model_cfg),
        }
    )
    atomic_write_json(out / SUMMARY, summary)
    return summary
