"""LSTMClassifier: archkit's SequenceClassifier + train_sequence behind scikit-learn's fit/predict.

Defaults are the LSTM-FCN recipe of benchmarks/bench_sequences.py (conv frontend + bidirectional
LSTM, mean-pooled, beside an FCN branch; cosine learning rate). Each channel is standardized with
statistics over the valid training steps, stored on the estimator. X may be 3D in `layout` "ntc"
(n_cases, n_timepoints, n_channels; the default, archkit's order) or "nct" (aeon's order), 2D
(univariate series) or a list of series of unequal lengths (packed: padding never changes a prediction).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_array, check_random_state, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from .accel import check_accel, run_config
from .series import as_padded_series, check_layout

# Checks of scikit-learn's suite that cannot hold for a sequence model, with the reason (used by the tests
# through parametrize_with_checks(expected_failed_checks=...), strictly: each must really fail).
EXPECTED_FAILED_CHECKS = {
    "check_n_features_in": "2D X is read as univariate series (n_cases, n_timepoints), as aeon does: n_features_in_ "
    "counts channels per time step (1 here), not X.shape[1], which is the series length",
    "check_n_features_in_after_fitting": "starts by asserting n_features_in_ == X.shape[1] (see check_n_features_in); "
    "the width check it then makes holds: a 2D X of another width raises "
    "'X has 1 features, but LSTMClassifier is expecting 4 features as input'",
}


def check_targets(y: Any, n: int, name: str) -> np.ndarray:
    """1D target array (a column vector warns, like scikit-learn's estimators); NaN/inf and length mismatches raise."""
    if y is None:
        raise ValueError(f"y: {name} requires y to be passed, but the target y is None")
    y = column_or_1d(y, warn=True)
    check_array(y, ensure_2d=False, dtype=None, input_name="y")
    check_consistent_length(np.empty(n), y)
    return y


class LSTMClassifier(ClassifierMixin, BaseEstimator):
    """scikit-learn classifier over time series: stacked (bi)LSTM (+ conv frontend / FCN branch) trained by train_sequence.

    Parameters mirror SeqTrainConfig (architecture and optimization); `layout` says how a 3D X is
    ordered ("ntc" default, "nct" = aeon's (n_cases, n_channels, n_timepoints)); `random_state` (int)
    makes two fits identical; `device`/`precision` go to the run config (see archkit.estimators.accel).
    """

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.2,
        frontend: str = "conv",
        pool: str = "mean",
        conv_channels: int = 64,
        conv_kernel: int = 7,
        conv_stride: int = 1,
        conv_blocks: int = 2,
        conv_norm: str = "none",
        fcn_channels: int = 128,
        epochs: int = 100,
        batch_size: int = 8,
        lr: float = 3e-3,
        lr_schedule: str = "cosine",
        weight_decay: float = 1e-2,
        clip_norm: float = 1.0,
        label_smoothing: float = 0.0,
        layout: str = "ntc",
        standardize: bool = True,
        predict_batch_size: int = 64,
        device: str = "auto",
        precision: str = "32",
        random_state: int | None = None,
        progress: bool = False,
    ) -> None:
        self.hidden = hidden
        self.layers = layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.frontend = frontend
        self.pool = pool
        self.conv_channels = conv_channels
        self.conv_kernel = conv_kernel
        self.conv_stride = conv_stride
        self.conv_blocks = conv_blocks
        self.conv_norm = conv_norm
        self.fcn_channels = fcn_channels
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.label_smoothing = label_smoothing
        self.layout = layout
        self.standardize = standardize
        self.predict_batch_size = predict_batch_size
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.progress = progress

    _RUN_FIELDS = (
        "hidden",
        "layers",
        "bidirectional",
        "dropout",
        "frontend",
        "pool",
        "conv_channels",
        "conv_kernel",
        "conv_stride",
        "conv_blocks",
        "conv_norm",
        "fcn_channels",
        "epochs",
        "batch_size",
        "lr",
        "lr_schedule",
        "weight_decay",
        "clip_norm",
        "label_smoothing",
    )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # (n_cases, n_timepoints, n_channels) or aeon's order; 2D = univariate
        return tags

    def fit(self, X: Any, y: Any) -> LSTMClassifier:
        """Train on series X (see the class docstring for its forms) and labels y (any hashable: strings too)."""
        from ..data.sequences import from_arrays
        from ..loading import load_model
        from ..train.sequence import SeqTrainConfig, train_sequence

        check_accel(self.device, self.precision)
        check_layout(self.layout)
        x, lengths, form = as_padded_series(X, self.layout)
        y = check_targets(y, len(x), type(self).__name__)
        check_classification_targets(y)
        classes, y_ids = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y: only one class ({classes[0]!r}) present; a classifier needs at least 2 classes")
        mean, scale = _channel_stats(x, lengths) if self.standardize else (None, None)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        with tempfile.TemporaryDirectory(prefix="archkit_lstm_") as tmp:
            cfg = run_config(
                SeqTrainConfig,
                self.device,
                self.precision,
                out=tmp,
                seed=seed,
                progress=self.progress,
                checkpoint_every=0,
                eval_batch_size=self.predict_batch_size,
                **{k: getattr(self, k) for k in self._RUN_FIELDS},
            )
            data = from_arrays(_apply(x, lengths, mean, scale), y_ids.astype(np.int64), lengths, name="fit")
            self.fit_summary_ = train_sequence(cfg, data=(data, None, [str(c) for c in classes]))
            self.model_ = load_model(Path(tmp) / "checkpoint")
        self.classes_ = classes
        self.n_features_in_ = int(x.shape[2])
        self.n_timepoints_ = int(x.shape[1]) if form == "2d" else None  # a 2D X at predict must have this width
        self.channel_mean_, self.channel_scale_ = mean, scale
        return self

    def save(self, path: Any) -> Any:
        """Save the fitted classifier to folder `path` (an archkit checkpoint + safetensors + JSON, no pickle)."""
        from .saving import save_estimator

        return save_estimator(self, path)

    @classmethod
    def load(cls, path: Any) -> LSTMClassifier:
        """The classifier `save` wrote to folder `path`, loaded without unpickling anything."""
        from .saving import load_folder

        return load_folder(path, {cls.__name__: cls}, expected=cls.__name__)

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n_cases, n_classes) class probabilities, columns in the order of `classes_`."""
        from ..train.sequence_eval import predict_sequences

        check_is_fitted(self)
        x, lengths, form = as_padded_series(X, self.layout)
        if form == "2d" and self.n_timepoints_ is not None and x.shape[1] != self.n_timepoints_:
            raise ValueError(
                f"X has {x.shape[1]} features (time steps of univariate series), but {type(self).__name__} "
                f"is expecting {self.n_timepoints_} features as input, as in fit; pass series of other "
                f"lengths as a list of arrays"
            )
        if x.shape[2] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[2]} channels, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} channels as input (layout {self.layout!r})"
            )
        _, p = predict_sequences(
            self.model_,
            _apply(x, lengths, self.channel_mean_, self.channel_scale_),
            batch_size=self.predict_batch_size,
            lengths=lengths,
        )
        p = p.astype(np.float64)
        return p / p.sum(1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (same type as the labels given to fit)."""
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(1)]


def _channel_stats(x: np.ndarray, lengths: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over the valid steps (std 1 for a constant channel)."""
    valid = x.reshape(-1, x.shape[2]) if lengths is None else np.concatenate([x[i, :n] for i, n in enumerate(lengths)])
    valid = valid.astype(np.float64)
    std = valid.std(0)
    return valid.mean(0).astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


def _apply(x: np.ndarray, lengths: np.ndarray | None, mean: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    if mean is None:
        return x
    out = (x - mean) / scale
    if lengths is not None:  # keep padding at zero (the model masks it anyway)
        out[np.arange(out.shape[1])[None, :] >= lengths[:, None]] = 0.0
    return out.astype(np.float32)
