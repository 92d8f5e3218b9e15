"""Time-series inputs in the shapes scikit-learn, aeon and sktime users pass, turned into padded batches.

Accepted X (checked with scikit-learn's own validators, so errors read as they do for any estimator):
- a 3D array in the estimator's `layout`: "ntc" (n_cases, n_timepoints, n_channels; archkit's
  batch-first order) or "nct" (n_cases, n_channels, n_timepoints; aeon's order);
- a 2D array (n_cases, n_timepoints): univariate series, as aeon reads 2D input. Its width is then
  held to the width seen in fit (in scikit-learn's idiom a different column count is a bug);
  series of other lengths go in as a list;
- a list of 2D arrays (one series each, same layout without the case axis) or of 1D arrays
  (univariate), of any lengths: padded to the longest with the true lengths kept, so the model runs
  on packed sequences and padding never changes a prediction.

Under the default layout "ntc", an input with fewer time steps than channels (e.g. aeon's (20, 8, 512),
read as 8 steps of 512 channels) warns once, naming layout="nct": such series are rare and the
transposed reading trains without error but on the wrong axis. Every value must be finite: NaN or
inf is refused naming the first bad row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.utils import check_array

from ..utils.notices import warn
from ..utils.validation import check_finite_rows

LAYOUTS = ("ntc", "nct")


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(
            f"layout: expected 'ntc' (n_cases, n_timepoints, n_channels) or 'nct' "
            f"(n_cases, n_channels, n_timepoints, aeon's order), got {layout!r}"
        )
    return layout


def as_padded_series(X: Any, layout: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(x (n, T, C) float32, lengths (n,) int64 for a list of series else None, form "2d" | "3d" | "list")."""
    check_layout(layout)
    if (
        isinstance(X, (list, tuple))
        and len(X)
        and all(hasattr(s, "__len__") and np.ndim(s) in (1, 2) and not np.isscalar(s) for s in X)
        and _ragged_or_2d(X)
    ):
        x, lengths = _pad_list(X, layout)
        _warn_layout(layout, int(lengths.max()), x.shape[2], "the longest series has")
        return x, lengths, "list"
    x = check_array(X, dtype=np.float32, allow_nd=True, ensure_min_samples=1, ensure_all_finite=False, input_name="X")
    check_finite_rows(x, "X")
    if x.ndim == 2:
        return np.ascontiguousarray(x[:, :, None]), None, "2d"
    if x.ndim != 3:
        raise ValueError(
            f"X: expected a 2D (n_cases, n_timepoints) or 3D ({_layout_text(layout)}) array or a "
            f"list of 2D series, got {x.ndim}D with shape {x.shape}"
        )
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise ValueError(f"X: found array with shape {x.shape}; every case needs >= 1 time step and >= 1 channel")
    if layout == "ntc":
        _warn_layout(layout, x.shape[1], x.shape[2], f"X of shape {x.shape} has")
    return np.ascontiguousarray(x if layout == "ntc" else x.transpose(0, 2, 1)), None, "3d"


def _warn_layout(layout: str, steps: int, channels: int, what: str) -> None:
    """One warning when a series read in archkit's order has fewer time steps than channels (likely aeon's order)."""
    if layout == "ntc" and steps < channels:
        warn(
            f"X: read with layout='ntc' (n_cases, n_timepoints, n_channels), {what} {steps} time steps of "
            f'{channels} channels; if it is (n_cases, n_channels, n_timepoints) (aeon\'s order), pass layout="nct"'
        )


def _ragged_or_2d(X: Sequence[Any]) -> bool:
    """A list is a list of series when its items are 2D, or 1D of differing lengths (else a plain 2D array)."""
    dims = {np.ndim(s) for s in X}
    return dims == {2} or (dims == {1} and len({len(s) for s in X}) > 1)


def _layout_text(layout: str) -> str:
    return "n_cases, n_timepoints, n_channels" if layout == "ntc" else "n_cases, n_channels, n_timepoints"


def _pad_list(X: Sequence[Any], layout: str) -> tuple[np.ndarray, np.ndarray]:
    series = []
    for i, s in enumerate(X):
        a = check_array(
            np.asarray(s)[:, None] if np.ndim(s) == 1 else s,
            dtype=np.float32,
            ensure_min_samples=1,
            ensure_all_finite=False,
            input_name=f"X[{i}]",
        )
        if not np.isfinite(a).all():
            check_finite_rows(a[None], "X", offset=i)
        series.append(a if np.ndim(s) == 1 or layout == "ntc" else a.T)
    channels = {a.shape[1] for a in series}
    if len(channels) > 1:
        raise ValueError(
            f"X: every series needs the same number of channels, got {sorted(channels)} "
            f"(layout {layout!r}: each series is {'(T, C)' if layout == 'ntc' else '(C, T)'})"
        )
    lengths = np.array([len(a) for a in series], dtype=np.int64)
    x = np.zeros((len(series), int(lengths.max()), series[0].shape[1]), dtype=np.float32)
    for i, a in enumerate(series):
        x[i, : len(a)] = a
    return x, lengths
