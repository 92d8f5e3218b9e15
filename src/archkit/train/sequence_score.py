"""Scoring a trained sequence classifier on data it did not train on, streamed batch by batch.

- `stream_proba`: probabilities for every row of a SequenceData in its own order (shard by shard, row by
  row), with a progress bar and ETA; a series holding NaN or inf stops it with the shard and row named.
- `check_like_training`: refuse data of another channel count or length than the run trained on.
- `class_targets`: labels turned into class ids of the run, or a one-line refusal naming the shard.
- `classification_report`: accuracy, balanced accuracy, per-class recall and precision from a confusion matrix.
- `task_classes`: class names from the task.json that `archkit seq make-task` writes beside its splits.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.sequences import SequenceData, open_npy, open_shards
from .accelerate import Accelerator
from .targets import as_class_targets

# (x (B, T, F) float32 on the CPU, lengths (B,) or None) -> (B, num_classes) probabilities
PredictProba = Callable[[torch.Tensor, "torch.Tensor | None"], np.ndarray]


def task_classes(shards: str | os.PathLike | None) -> list[str] | None:
    """Class names of a `seq make-task` split folder (FOLDER/train -> FOLDER/task.json), else None."""
    from ..data.real_tasks import TASK_FILE, TASK_KIND

    if shards is None:
        return None
    try:
        meta = json.loads((Path(shards).resolve().parent / TASK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    names = meta.get("classes") if isinstance(meta, dict) and meta.get("kind") == TASK_KIND else None
    return [str(c) for c in names] if isinstance(names, list) and names else None


def check_task_classes(expected: Sequence[str] | None, folder: str | os.PathLike, option: str) -> None:
    """Refuse a make-task folder whose task.json names other classes than the run's (another task's test split)."""
    found = task_classes(folder)
    if expected is not None and found is not None and list(found) != list(expected):
        raise ValueError(
            f"{option}: {str(folder)!r} is a split of a task with classes {found}, the run's classes are {list(expected)}"
        )


def single_length(data: SequenceData) -> int | None:
    """T when every shard of `data` has the same number of steps, else None (unequal lengths)."""
    lengths = {int(s.x_shape[1]) for s in data.shards}
    return lengths.pop() if len(lengths) == 1 else None


def source_shape(x: str | None, shards: str | None) -> tuple[int, int | None] | None:
    """(channels, T or None) of a run's training files (--x or --shards), read from headers only; None for datasets."""
    if shards:
        with warnings.catch_warnings():  # corrupt shards were reported once when the run read them
            warnings.simplefilter("ignore")
            data = open_shards(shards)
        return data.in_features, single_length(data)
    if x:
        arr = np.load(x, mmap_mode="r", allow_pickle=False)
        return int(arr.shape[-1]), int(arr.shape[1])
    return None


def open_scored_data(
    shards: str | os.PathLike | None, x: str | os.PathLike | None, y: str | os.PathLike | None
) -> tuple[SequenceData, str]:
    """(data, the option that named it) from exactly one of a shard folder or X.npy + Y.npy."""
    if (shards is None) == (x is None):
        raise ValueError(f"data: give exactly one of --shards or --x with --y; got {'both' if shards else 'neither'}")
    if shards is not None:
        if not Path(shards).is_dir():
            raise FileNotFoundError(f"--shards: the folder {str(shards)!r} does not exist")
        return open_shards(shards), "--shards"
    if x is None or y is None:
        raise ValueError("--y: --x needs the labels Y.npy ((N,) class ids or (N, C) one-hot) beside it")
    return open_npy(x, y), "--x"


def check_like_training(data: SequenceData, in_features: int, timesteps: int | None, option: str) -> None:
    """Raise ValueError when `data` has another channel count, or (when the run's T is known) another T."""
    if data.in_features != in_features:
        raise ValueError(
            f"{option}: the run was trained on {in_features} channels per step, the data has {data.in_features} channels"
        )
    if timesteps is not None:
        for s in data.shards:
            if int(s.x_shape[1]) != timesteps:
                raise ValueError(
                    f"{option}: the run was trained on series of {timesteps} steps, shard {s.name!r} has {s.x_shape[1]}"
                )


def class_targets(data: SequenceData, classes: Sequence[str], option: str) -> SequenceData:
    """`data` with every shard's labels ((N,) ids or (N, C) one-hot) as the run's class ids; one line if not."""
    shards = []
    for s in data.shards:
        try:
            y = as_class_targets(s.y, len(classes), s.x_shape).numpy()
        except ValueError as e:
            raise ValueError(
                f"{option}: the labels of {s.name!r} do not fit the run's {len(classes)} classes "
                f"(ids 0..{len(classes) - 1}: {', '.join(classes)}): {e}"
            ) from None
        shards.append(replace(s, y=y))
    return SequenceData(shards, list(data.rows), data.skipped)


def lstm_proba(model: nn.Module, accel: Accelerator) -> PredictProba:
    """A PredictProba for a SequenceClassifier: softmax of its logits, float32 on the CPU."""
    model = accel.prepare(model)
    net = accel.compile_model(model)
    model.eval()

    @torch.no_grad()
    def predict(xb: torch.Tensor, lb: torch.Tensor | None) -> np.ndarray:
        xb, lb = accel.to_device((xb, lb))
        with accel.autocast():
            logits = net(xb, lb)
        return logits.float().softmax(1).cpu().numpy()

    return predict


def _nonfinite_row(xb: torch.Tensor, lb: torch.Tensor | None) -> int | None:
    """Index of the first series of the batch holding NaN or inf in its valid steps, or None."""
    bad = ~torch.isfinite(xb)
    if lb is not None:  # steps past a series' length are padding, not data
        bad &= (torch.arange(xb.shape[1])[None, :] < lb[:, None])[..., None]
    rows = bad.flatten(1).any(1).nonzero()
    return int(rows[0]) if len(rows) else None


def stream_proba(
    data: SequenceData,
    predict: PredictProba,
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = True,
    option: str = "--shards",
    desc: str = "predict",
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, C), labels (N,) as stored) for every row of `data`, in its order, one batch in memory.

    A series with NaN or inf raises ValueError naming `option`, the shard and the row, before anything is written.
    """
    plan = data.batch_plan(batch_size, shuffle=False)
    probs, labels = [], []
    batches = data.batches(batch_size, shuffle=False, workers=workers)
    with tqdm(total=len(plan), desc=desc, unit="batch", disable=not progress, leave=False) as bar:
        for (si, idx), (xb, yb, lb) in zip(plan, batches, strict=True):
            row = _nonfinite_row(xb, lb)
            if row is not None:
                raise ValueError(
                    f"{option}: series {int(idx[row])} of {data.shards[si].name!r} holds NaN or inf; "
                    f"nothing was written: fix or drop that series"
                )
            probs.append(np.asarray(predict(xb, lb), dtype=np.float32))
            labels.append(np.asarray(yb))
            bar.update(1)
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(probs), np.concatenate(labels)


def classification_report(cm: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall over classes present) and per-class recall/precision of `cm`.

    `cm` is [true, predicted] counts. A class with no true cases has recall None, one never predicted has
    precision None: no made-up zeros.
    """
    cm = np.asarray(cm, dtype=np.int64)
    support, predicted, hits = cm.sum(1), cm.sum(0), np.diag(cm)
    recall = [float(h / s) if s else None for h, s in zip(hits, support, strict=True)]
    present = [r for r in recall if r is not None]
    per_class = [  # a list, in class-id order (JSON objects get their keys sorted)
        {
            "id": i,
            "class": name,
            "recall": recall[i],
            "precision": float(hits[i] / predicted[i]) if predicted[i] else None,
            "support": int(support[i]),
            "predicted": int(predicted[i]),
        }
        for i, name in enumerate(classes)
    ]
    total = int(cm.sum())
    return {
        "num_cases": total,
        "accuracy": float(hits.sum() / total) if total else None,
        "balanced_accuracy": float(np.mean(present)) if present else None,
        "per_class": per_class,
    }


__all__ = [
    "PredictProba",
    "check_like_training",
    "check_task_classes",
    "class_targets",
    "classification_report",
    "lstm_proba",
    "open_scored_data",
    "single_length",
    "source_shape",
    "stream_proba",
    "task_classes",
]
