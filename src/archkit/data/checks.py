"""Checks of the arrays a user's sequence files hold: labels are numbers, lengths lie within the padded length."""

from __future__ import annotations

import numpy as np


def check_label_dtype(y: np.ndarray, name: str) -> None:
    """Refuse labels that are not numbers (text, objects): archkit's files hold class ids or one-hot rows."""
    if y.dtype.kind not in "biuf":
        example = f", e.g. {y.flat[0].item()!r}" if y.size else ""
        raise ValueError(
            f"{name}: expected integer class ids (N,) or one-hot rows (N, C), got labels of dtype {y.dtype}{example}; "
            f"map names to ids first (names, ids = np.unique(y, return_inverse=True)) and save ids"
        )


def check_lengths(lengths: np.ndarray, n: int, steps: int, name: str) -> None:
    """Each sequence's true length: (n,) integers in [1, steps] (the padded length T), else a ValueError naming `name`."""
    if lengths.shape != (n,):
        raise ValueError(f"{name} has shape {lengths.shape}, expected ({n},)")
    if lengths.dtype.kind not in "iuf" or (lengths.dtype.kind == "f" and not np.all(lengths == np.round(lengths))):
        raise ValueError(f"{name}: expected integer lengths, got dtype {lengths.dtype}")
    bad = np.flatnonzero((lengths < 1) | (lengths > steps))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"{name}: expected every length in [1, {steps}] (the padded length T), got {int(lengths[i])} at row {i} "
            f"({len(bad)} row(s) out of range)"
        )
