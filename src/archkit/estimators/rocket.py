"""RocketClassifier: MiniRocket / MultiRocket and/or Hydra features + a linear head behind scikit-learn's API.

The transform (`features`) is archkit's torch MiniRocket (aeon's MiniRocketClassifier), MultiRocket
(aeon's MultiRocketClassifier), Hydra (aeon's HydraClassifier) or one of the first two with Hydra,
their features side by side (as aeon's MultiRocketHydraClassifier puts MultiRocket's and Hydra's); any
device and precision, unequal lengths. Mini/MultiRocket's features are
scaled as below, Hydra's by aeon's sparse scaler (`archkit.layers.hydra.SparseScaler`). The head is
aeon's recipe for small data, features scaled to unit variance then `RidgeClassifierCV` over
alphas 10^-3 .. 10^3, and a logistic regression (scikit-learn, lbfgs) on standardized features for
large data, where the ridge's leave-one-out search costs O(N * F^2) memory and time (the MiniRocket
authors recommend logistic regression past ~10,000 training cases; `head="auto"` switches there).

`fit_shards(data)` fits on shards far larger than memory, streamed (archkit.estimators.rocket_stream:
the features never held, a ridge chosen by exact GCV from one pass of sums, or a minibatch logistic
head past 20,000 features; resumable, torchrun-aware). `save(path)` / `load(path)`: safetensors + JSON.

X takes the forms of `LSTMClassifier` (3D in `layout` "ntc" or aeon's "nct", 2D univariate, or a
list of unequal-length series: each case's features come from its own steps only). Series shorter
than 9 steps (the kernel length) are zero-padded to 9, as aeon asks its users to do (to 10 for
MultiRocket, whose kernels also run over the first difference).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..layers.hydra import MAX_KERNELS, Hydra, SparseScaler
from ..layers.multirocket import PER_KERNEL, MultiRocket
from ..layers.rocket import MAX_FEATURES, MiniRocket
from ..layers.rocket_ops import METHODS
from .accel import check_accel
from .sequence import EXPECTED_FAILED_CHECKS as _SEQUENCE_CHECKS
from .sequence import check_targets
from .series import as_padded_series, check_layout

HEADS = ("auto", "ridge", "logistic")
FEATURES = ("minirocket", "hydra", "minirocket+hydra", "multirocket", "multirocket+hydra")
AUTO_LOGISTIC_ABOVE = 10_000  # training cases; above this head="auto" fits the logistic regression
MIN_STEPS = 9
EXPECTED_FAILED_CHECKS = {k: v.replace("LSTMClassifier", "RocketClassifier") for k, v in _SEQUENCE_CHECKS.items()}


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name}: expected an int in [{low}, {high}], got {value!r}")
    return int(value)


class RocketClassifier(ClassifierMixin, BaseEstimator):
    """scikit-learn classifier over time series: Mini/MultiRocket and/or Hydra features (torch) + a linear head.

    `features`: "minirocket" (the default), "hydra" (Hydra's 8 kernels x 64 groups per dilation, as aeon's
    HydraClassifier), "multirocket" (`archkit.layers.multirocket`, as aeon's MultiRocketClassifier),
    "minirocket+hydra" or "multirocket+hydra" (side by side, as aeon's MultiRocketHydraClassifier).

    `num_features` (rounded down to a multiple of 84; for MultiRocket, of 8 x 84: aeon's MultiRocketClassifier
    has 50,000) and `max_dilations_per_kernel` are Mini/MultiRocket's;
    `head` is "ridge" (aeon's), "logistic" or "auto" (logistic above 10,000 cases); `batch_size` cases
    are transformed at a time on `device` in `precision` (archkit.train.accelerate decides both);
    `n_kernels` and `n_groups` are Hydra's kernels per group and groups per dilation (aeon's names; 8 and 64,
    the paper's); `method` is how MiniRocket computes its outputs: "conv" (matrix products, fast on long series) or
    "exact" (aeon's sums, aeon's features bit for bit, 2x slower on 8 channels of 8192 steps).
    """

    def __init__(
        self,
        num_features: int = 10_000,
        head: str = "auto",
        max_dilations_per_kernel: int = 32,
        layout: str = "ntc",
        batch_size: int = 64,
        device: str = "auto",
        precision: str = "32",
        random_state: int | None = None,
        method: str = "conv",
        features: str = "minirocket",
        n_kernels: int = 8,
        n_groups: int = 64,
    ) -> None:
        self.num_features = num_features
        self.head = head
        self.max_dilations_per_kernel = max_dilations_per_kernel
        self.layout = layout
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.method = method
        self.features = features
        self.n_kernels = n_kernels
        self.n_groups = n_groups

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "method" not in state:  # pickled before `method` existed: the method its transform computes with
            state["method"] = getattr(state.get("transform_"), "method", "conv")
        state.pop("compile", None)  # pickled when the pooling could run through torch.compile (removed)
        state.setdefault("features", "minirocket")  # pickled before Hydra: MiniRocket only
        state.setdefault("n_kernels", 8)  # pickled before Hydra's sizes were parameters: the paper's
        state.setdefault("n_groups", 64)
        if "transform_" in state:
            state.setdefault("hydra_", None)
            state.setdefault("hydra_scaler_", None)
        super().__setstate__(state)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    def _check_params(self) -> None:
        _check_int(self.num_features, "num_features", 1, PER_KERNEL * MAX_FEATURES)
        _check_int(self.max_dilations_per_kernel, "max_dilations_per_kernel", 1, 1024)
        _check_int(self.batch_size, "batch_size", 1, 1 << 20)
        if self.head not in HEADS:
            raise ValueError(f"head: expected one of {list(HEADS)}, got {self.head!r}")
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {list(METHODS)}, got {self.method!r}")
        if self.features not in FEATURES:
            raise ValueError(f"features: expected one of {list(FEATURES)}, got {self.features!r}")
        _check_int(self.n_kernels, "n_kernels", 1, MAX_KERNELS)
        _check_int(self.n_groups, "n_groups", 1, MAX_KERNELS)
        check_layout(self.layout)
        check_accel(self.device, self.precision)

    def hydra_for(self, x: Any, lengths: Any, seed: int) -> Hydra:
        """Hydra's kernels for series x (N, C, T): `n_kernels` per group, `n_groups` groups per dilation."""
        return Hydra.fit(x, lengths, num_kernels=self.n_kernels, num_groups=self.n_groups, seed=seed)

    def _series(self, X: Any, layout: str | None = None) -> tuple[np.ndarray, np.ndarray | None, str, int]:
        """(x (N, C, T>=9) float32, lengths or None, form, T as given) from any accepted X (in `layout` or ours)."""
        x, lengths, form = as_padded_series(X, layout or self.layout)
        steps = int(x.shape[1])
        least = MIN_STEPS + self.features.startswith("multirocket")  # MultiRocket: 9 steps of first difference
        if x.shape[1] < least:
            x = np.concatenate([x, np.zeros((x.shape[0], least - x.shape[1], x.shape[2]), np.float32)], 1)
        if lengths is not None:
            lengths = np.maximum(lengths, least)
        return np.ascontiguousarray(x.transpose(0, 2, 1)), lengths, form, steps

    def _features(self, x: np.ndarray, lengths: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(MiniRocket's features or None, Hydra's features or None) of x (N, C, T)."""
        from ..train.accelerate import create_accelerator
        from ..train.rocket import rocket_features

        accel = create_accelerator(
            self.device, self.precision, False, flags={"device": "device", "precision": "precision"}
        )
        out: list[np.ndarray | None] = []
        for module in (self.transform_, self.hydra_):
            if module is None:
                out.append(None)
                continue
            try:
                out.append(rocket_features(module, x, lengths, accel, self.batch_size))
            finally:
                module.cpu()  # kept (and pickled) on the CPU
        return out[0], out[1]

    def _scaled(self, rocket: np.ndarray | None, hydra: np.ndarray | None) -> np.ndarray:
        """The head's input: MiniRocket's features through `scaler_`, Hydra's through `hydra_scaler_`, side by side."""
        parts = []
        if rocket is not None and self.scaler_ is not None:
            parts.append(self.scaler_.transform(rocket))
        if hydra is not None and self.hydra_scaler_ is not None:
            with torch.no_grad():
                parts.append(self.hydra_scaler_(torch.from_numpy(hydra)).numpy())
        return np.concatenate(parts, 1) if len(parts) > 1 else parts[0]

    def fit(self, X: Any, y: Any) -> RocketClassifier:
        """Fit MiniRocket on series X (see the module docstring for its forms), then the head on its features."""
        from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
        from sklearn.preprocessing import StandardScaler

        self._check_params()
        x, lengths, form, steps = self._series(X)
        y = check_targets(y, len(x), type(self).__name__)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"y: only one class ({classes[0]!r}) present; a classifier needs at least 2 classes")
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(2**31 - 1))
        self.transform_: MiniRocket | MultiRocket | None = None
        self.hydra_: Hydra | None = None
        if self.features != "hydra":
            kind = MultiRocket if self.features.startswith("multirocket") else MiniRocket
            self.transform_ = kind.fit(
                x, lengths, self.num_features, self.max_dilations_per_kernel, seed=seed, method=self.method
            )
        if self.features.endswith("hydra"):
            self.hydra_ = self.hydra_for(x, lengths, seed=int(rng.randint(2**31 - 1)))
        rocket, hydra = self._features(x, lengths)
        self.head_kind_ = (
            self.head if self.head != "auto" else ("logistic" if len(x) > AUTO_LOGISTIC_ABOVE else "ridge")
        )
        self.scaler_ = None if rocket is None else StandardScaler(with_mean=self.head_kind_ != "ridge").fit(rocket)
        self.hydra_scaler_ = None if hydra is None else SparseScaler.fit(hydra)
        if self.head_kind_ == "ridge":
            self.head_ = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10))
        else:
            self.head_ = LogisticRegression(max_iter=1000, random_state=int(rng.randint(2**31 - 1)))
        self.head_.fit(self._scaled(rocket, hydra), y)
        self.classes_ = self.head_.classes_
        self.n_features_in_ = int(x.shape[1])
        self.n_timepoints_ = steps if form == "2d" else None  # a 2D X at predict must have this width
        return self

    def fit_shards(
        self,
        data: Any,
        classes: Any = None,
        state_dir: Any = None,
        every: int = 50,
        workers: int = 0,
        progress: bool = False,
        hook: Any = None,
    ) -> RocketClassifier:
        """Fit on a shard folder or SequenceData far larger than memory, streamed (archkit.estimators.rocket_stream).

        `data` holds (N, T, C) series and one label per case; `classes` (default: the labels found;
        e.g. to add a class the data lack) are sorted, as `classes_`. `state_dir`: where each pass saves its state every `every` batches, so
        a killed fit rerun with the same folder resumes. `hook(pass, batches_done)` runs after each batch.
        """
        from .rocket_stream import fit_rocket_shards

        return fit_rocket_shards(self, data, classes, state_dir, every, workers, progress, hook=hook)

    def save(self, path: Any) -> Any:
        """Save the fitted classifier to folder `path` as safetensors + JSON (no pickle); returns the folder."""
        from .saving import save_estimator

        return save_estimator(self, path)

    @classmethod
    def load(cls, path: Any) -> RocketClassifier:
        """The classifier `save` wrote to folder `path`, loaded without unpickling anything."""
        from .saving import load_folder

        return load_folder(path, {cls.__name__: cls}, expected=cls.__name__)

    def _predict_features(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        x, lengths, form, steps = self._series(X)
        if form == "2d" and self.n_timepoints_ is not None and steps != self.n_timepoints_:
            raise ValueError(
                f"X has {steps} features (time steps of univariate series), but {type(self).__name__} "
                f"is expecting {self.n_timepoints_} features as input, as in fit; pass series of other "
                f"lengths as a list of arrays"
            )
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} channels, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} channels as input (layout {self.layout!r})"
            )
        return self._scaled(*self._features(x, lengths))

    def decision_function(self, X: Any) -> np.ndarray:
        """The head's class scores: (n_cases,) for two classes, else (n_cases, n_classes)."""
        check_is_fitted(self)
        return self.head_.decision_function(self._predict_features(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n_cases, n_classes): the logistic head's probabilities, else a softmax of the ridge's raw scores."""
        check_is_fitted(self)
        feats = self._predict_features(X)
        if self.head_kind_ == "logistic":
            return self.head_.predict_proba(feats)
        scores = self.head_.decision_function(feats)
        scores = np.stack([-scores, scores], 1) if scores.ndim == 1 else scores
        scores = scores - scores.max(1, keepdims=True)
        p = np.exp(scores)
        return p / p.sum(1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (same type as the labels given to fit)."""
        check_is_fitted(self)
        return self.head_.predict(self._predict_features(X))

    def to_module(self) -> RocketModule:
        """The fitted transform(s) + scalers + linear head as one torch module: (x (N, C, T), lengths) -> class scores."""
        check_is_fitted(self)
        coef = np.atleast_2d(self.head_.coef_)
        intercept = np.atleast_1d(self.head_.intercept_)
        if self.transform_ is None or self.scaler_ is None:
            return RocketModule(None, None, np.ones(0), coef, intercept, self.hydra_, self.hydra_scaler_)
        mean = self.scaler_.mean_ if self.scaler_.with_mean else None
        return RocketModule(
            self.transform_, mean, self.scaler_.scale_, coef, intercept, self.hydra_, self.hydra_scaler_
        )


class RocketModule(nn.Module):
    """MiniRocket -> standardize (and/or Hydra -> sparse scaler) -> linear: a fitted RocketClassifier's scores.

    Takes series in aeon's layout (N, C, T) and optional lengths (N,); returns the head's
    decision_function (N, n_classes), or (N, 1) for two classes. Exportable (ONNX, pt2) with MiniRocket
    features only: Hydra's per-case loop is not traced.
    """

    def __init__(
        self,
        transform: MiniRocket | MultiRocket | None,
        mean: np.ndarray | None,
        scale: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        hydra: Hydra | None = None,
        hydra_scaler: SparseScaler | None = None,
    ) -> None:
        super().__init__()
        if transform is None and hydra is None:
            raise ValueError("transform / hydra: expected at least one of a MiniRocket and a Hydra module, got neither")
        if (hydra is None) != (hydra_scaler is None):
            raise ValueError("hydra_scaler: expected a SparseScaler exactly when hydra is given")
        self.transform = transform
        self.hydra = hydra
        self.hydra_scaler = hydra_scaler
        f = 0 if transform is None else transform.num_features
        self.register_buffer("mean", torch.as_tensor(np.zeros(f) if mean is None else mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.linear = nn.Linear(f + (0 if hydra is None else hydra.num_features), coef.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.as_tensor(coef, dtype=torch.float32))
            self.linear.bias.copy_(torch.as_tensor(intercept, dtype=torch.float32))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Class scores (N, n_classes) (N, 1 for two classes) of series x (N, C, T)."""
        parts = [] if self.transform is None else [(self.transform(x, lengths) - self.mean) / self.scale]
        if self.hydra is not None and self.hydra_scaler is not None:
            parts.append(self.hydra_scaler(self.hydra(x, lengths)))
        return self.linear(torch.cat(parts, 1) if len(parts) > 1 else parts[0])
