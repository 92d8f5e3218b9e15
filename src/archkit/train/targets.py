"""One class label per sequence: (N,) class ids or (N, C) one-hot, never a target shaped like the input.

Zero-padding Y to X's shape is the classic mistake with variable-length sequences; it is refused here with
an explanation, before any training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.checks import check_label_dtype


def _padding_explanation(num_classes: int | None) -> str:
    c = num_classes if num_classes is not None else "C"
    return (
        f"a sequence classifier needs ONE target per sequence: integer class ids shaped (N,) or one-hot rows "
        f"shaped (N, {c}). Do not zero-pad Y to X's shape: that asks for an output at every time step and "
        f"feature, and the padded zeros become fake targets the loss then trains towards. Keep Y as (N, {c}); "
        f"the LSTM's final state (the last layer without return_sequences) feeds a {c}-way classifier"
    )


def as_class_targets(y: Any, num_classes: int | None = None, x: Any = None) -> torch.Tensor:
    """(N,) int64 class ids from (N,) labels or (N, C) one-hot; any other shape raises a ValueError.

    `x` (the inputs, or just their shape) lets the error name the padding mistake when Y has X's shape.
    """
    if not isinstance(y, torch.Tensor):
        y = np.asarray(y)
        check_label_dtype(y, "y")
    y_t = torch.as_tensor(y) if not isinstance(y, torch.Tensor) else y
    x_shape = None if x is None else tuple(x.shape if hasattr(x, "shape") else x)
    shape = tuple(y_t.shape)
    if x_shape is not None and len(shape) >= 2 and shape == x_shape:
        raise ValueError(f"y: got shape {shape}, the same shape as the input x; {_padding_explanation(num_classes)}")
    if x_shape is not None and shape[:1] != x_shape[:1]:
        raise ValueError(f"y: expected one target per sequence ({x_shape[0]} rows like x), got shape {shape}")
    if y_t.dim() == 1:
        if y_t.is_floating_point() and not bool(torch.all(y_t == y_t.round())):
            raise ValueError(
                f"y: expected integer class ids, got non-integer floats; {_padding_explanation(num_classes)}"
            )
        y_t = y_t.long()
        if len(y_t) and int(y_t.min()) < 0:
            raise ValueError(f"y: class ids must be >= 0, got {int(y_t.min())}")
        if num_classes is not None and len(y_t) and int(y_t.max()) >= num_classes:
            raise ValueError(f"y: class id {int(y_t.max())} is out of range for num_classes={num_classes}")
        return y_t
    if y_t.dim() == 2 and (num_classes is None or shape[1] == num_classes):
        valid = bool(torch.all((y_t == 0) | (y_t == 1))) and bool(torch.all(y_t.sum(1) == 1))
        if not valid:
            raise ValueError(
                f"y: (N, C) targets must be one-hot (exactly one 1 per row, zeros elsewhere); {_padding_explanation(num_classes)}"
            )
        return y_t.argmax(1).long()
    raise ValueError(f"y: got shape {shape}; {_padding_explanation(num_classes)}")


def infer_num_classes(y: Any) -> int:
    """C from (N, C) one-hot or (N,) ids (max id + 1)."""
    y = np.asarray(y)
    if y.ndim == 2:
        return int(y.shape[1])
    if y.ndim == 1 and len(y):
        return int(y.max()) + 1
    raise ValueError(f"y: cannot infer the number of classes from shape {y.shape}; {_padding_explanation(None)}")


def sequence_loss(logits: torch.Tensor, y: Any, x: Any = None, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of (B, C) logits against (B,) ids or (B, C) one-hot targets (same value either way)."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing: expected a float in [0, 1), got {label_smoothing!r}")
    return F.cross_entropy(
        logits, as_class_targets(y, logits.shape[1], x).to(logits.device), label_smoothing=label_smoothing
    )
