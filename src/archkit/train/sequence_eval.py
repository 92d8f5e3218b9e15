"""Using a trained SequenceClassifier: predictions batch by batch (memmap friendly), accuracy and confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.sequences import SequenceData
from .accelerate import Accelerator, create_accelerator, model_device
from .metrics import confusion_matrix


@torch.no_grad()
def evaluate_sequences(
    model: nn.Module,
    data: SequenceData,
    num_classes: int,
    batch_size: int = 64,
    accel: Accelerator | None = None,
    workers: int = 0,
) -> tuple[float, np.ndarray]:
    """(accuracy, confusion matrix [true, predicted]) over every row of `data`, streamed in batches."""
    accel = accel or create_accelerator(model_device(model))
    was_training = model.training
    model.eval()
    cm = torch.zeros((num_classes, num_classes), dtype=torch.int64)
    for xb, yb, lb in data.batches(batch_size, shuffle=False, workers=workers):
        xb, lb = accel.to_device((xb, lb))
        with accel.autocast():
            pred = model(xb, lb).argmax(1).cpu()
        cm += confusion_matrix(pred, torch.as_tensor(yb, dtype=torch.long), num_classes)
    model.train(was_training)
    counts = cm.numpy()
    return float(np.trace(counts) / max(counts.sum(), 1)), counts


def save_confusion_png(
    cm: np.ndarray, classes: list[str], path: str | Path, title: str = "held-out confusion matrix"
) -> Path:
    """A labelled confusion-matrix heat map (rows: true class, columns: predicted)."""
    from ..utils import new_figure, save_figure

    n = len(classes)
    fig, ax = new_figure(figsize=(1.2 + 0.6 * n, 1.0 + 0.5 * n))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            ax.text(
                j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black"
            )
    return save_figure(fig, Path(path))


@torch.no_grad()
def predict_sequences(
    model: nn.Module,
    x: Any,
    batch_size: int = 64,
    lengths: Any = None,
    progress: bool = False,
    device: str | Accelerator = "auto",
    precision: str = "32",
    compile: bool = False,
    workers: int = 0,
    name: str = "x",
) -> tuple[np.ndarray, np.ndarray]:
    """(class ids (N,), probabilities (N, C)) for X (N, T, F), read batch by batch (memmap friendly).

    The model is moved to `device` (in place); probabilities are a float32 softmax on the CPU.
    `workers` DataLoader processes read the next batches while the model runs (0: read here).
    A row holding NaN or inf (within its length) is refused naming `name` and the row, as the
    scikit-learn estimators refuse it: a network would turn it into NaN probabilities or a plausible class.
    """
    from ..data.sequences import RowBatches, sequence_loader
    from ..utils.validation import check_finite_rows

    if len(getattr(x, "shape", ())) != 3:
        raise ValueError(
            f"x: expected sequences shaped (num_sequences, timesteps, features), got {getattr(x, 'shape', type(x).__name__)}"
        )
    accel = create_accelerator(device, precision, compile)
    model = accel.prepare(model)
    net = accel.compile_model(model)
    was_training = model.training
    model.eval()
    probs: list[np.ndarray] = []
    rows = RowBatches(x, batch_size, lengths)
    for xb, lb in tqdm(
        sequence_loader(rows, workers, pin_memory=accel.pin_memory),
        total=len(rows),
        desc="predict",
        disable=not progress,
        leave=False,
    ):
        check_finite_rows(xb, name, offset=len(probs) * batch_size, lengths=lb)
        xb, lb = accel.to_device((xb, lb))
        with accel.autocast():
            logits = net(xb, lb)
        probs.append(logits.float().softmax(1).cpu().numpy())
    model.train(was_training)
    p = np.concatenate(probs) if probs else np.zeros((0, 0), dtype=np.float32)
    return p.argmax(1).astype(np.int64), p
