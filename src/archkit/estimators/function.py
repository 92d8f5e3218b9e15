"""FunctionRegressor: archkit's FunctionApproximator + fit_function behind scikit-learn's fit/predict.

X is tabular (n_samples, n_features); y is (n_samples,) or (n_samples, n_outputs). `features` are
FunctionApproximator's prior specs (e.g. ["sin"], ["poly3"]). Inputs outside the training domain
warn (DomainWarning) by default; `out_of_domain="raise"` or `"ignore"` changes that.
y (and X when no prior features are used) is standardized in float64 before the fit, so the scale of
the data does not decide success; `fit_result_` reports RMSE in those standardized target units.
A fit that diverges raises ValueError instead of returning a NaN model.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from .accel import check_accel, run_config

OUT_OF_DOMAIN = ("warn", "raise", "ignore")


def _standardizer(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column means, column spreads) in float64; a constant column gets spread 1."""
    shift = a.mean(axis=0)
    scale = np.abs(a - shift).max(axis=0)  # the max first: squaring values near 1e200 would overflow
    scale = np.where(scale > 0, scale, 1.0)
    spread = np.sqrt((((a - shift) / scale) ** 2).mean(axis=0)) * scale
    return shift, np.where(spread > 0, spread, 1.0)


class FunctionRegressor(RegressorMixin, BaseEstimator):
    """scikit-learn regressor: MLP + prior features + linear skip, trained by fit_function (L-BFGS, early stopping)."""

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 3,
        activation: str = "tanh",
        features: tuple[str, ...] = (),
        keep_input: bool = True,
        linear_skip: bool = True,
        optimizer: str = "lbfgs",
        max_steps: int = 3000,
        eval_every: int = 20,
        patience: int = 15,
        val_fraction: float = 0.2,
        lr: float | None = None,
        weight_decay: float = 0.0,
        ridge: float = 1e-8,
        time_limit: float | None = None,
        out_of_domain: str = "warn",
        device: str = "auto",
        precision: str = "32",
        random_state: int | None = None,
    ) -> None:
        self.hidden = hidden
        self.layers = layers
        self.activation = activation
        self.features = features
        self.keep_input = keep_input
        self.linear_skip = linear_skip
        self.optimizer = optimizer
        self.max_steps = max_steps
        self.eval_every = eval_every
        self.patience = patience
        self.val_fraction = val_fraction
        self.lr = lr
        self.weight_decay = weight_decay
        self.ridge = ridge
        self.time_limit = time_limit
        self.out_of_domain = out_of_domain
        self.device = device
        self.precision = precision
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y (n_samples, n_outputs) trains one network with n_outputs heads
        return tags

    def fit(self, X: Any, y: Any) -> FunctionRegressor:
        """Fit on X (n_samples, n_features) and y (n_samples,) or (n_samples, n_outputs)."""
        from ..models.function import FunctionApproximator, FunctionApproximatorConfig
        from ..train.function import FunctionFitConfig, fit_function

        check_accel(self.device, self.precision)
        if self.out_of_domain not in OUT_OF_DOMAIN:
            raise ValueError(f"out_of_domain: expected one of {list(OUT_OF_DOMAIN)}, got {self.out_of_domain!r}")
        x = check_array(X, dtype=np.float64, input_name="X")
        if y is None:
            raise ValueError(f"y: {type(self).__name__} requires y to be passed, but the target y is None")
        y_arr = np.asarray(y)
        y2 = check_array(
            y_arr.reshape(-1, 1) if y_arr.ndim == 1 else y, dtype=np.float64, input_name="y", ensure_2d=True
        )
        if y_arr.ndim == 2 and y2.shape[1] == 1 and not self.__sklearn_tags__().target_tags.multi_output:
            column_or_1d(y_arr, warn=True)
        check_consistent_length(x, y2)
        if len(x) < 2:
            raise ValueError(f"X: {type(self).__name__} needs at least 2 samples, got n_samples={len(x)}")
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        model = FunctionApproximator(
            FunctionApproximatorConfig(
                in_dim=x.shape[1],
                out_dim=y2.shape[1],
                hidden=self.hidden,
                layers=self.layers,
                activation=self.activation,
                features=list(self.features),
                keep_input=self.keep_input,
                linear_skip=self.linear_skip,
                seed=seed,
            )
        )
        cfg = run_config(
            FunctionFitConfig,
            self.device,
            self.precision,
            optimizer=self.optimizer,
            max_steps=self.max_steps,
            eval_every=self.eval_every,
            patience=self.patience,
            val_fraction=self.val_fraction,
            lr=self.lr,
            weight_decay=self.weight_decay,
            ridge=self.ridge,
            time_limit=self.time_limit,
            seed=seed,
        )
        # Standardized in float64 here, so the scale of X and y never decides success (the network runs in
        # float32: targets around 1e40 would overflow it). Inputs only without prior features, whose
        # meaning depends on the raw units (sin(x) is not sin of a standardized x).
        x_shift: np.ndarray | float
        x_scale: np.ndarray | float
        x_shift, x_scale = _standardizer(x) if not self.features else (0.0, 1.0)
        self.x_shift_, self.x_scale_ = x_shift, x_scale
        self.y_shift_, self.y_scale_ = _standardizer(y2)
        result = fit_function(model, (x - self.x_shift_) / self.x_scale_, (y2 - self.y_shift_) / self.y_scale_, cfg)
        if result.stopped.startswith("diverged") or not np.isfinite(result.best_val_rmse):
            raise ValueError(
                f"{type(self).__name__}: the fit diverged ({result.stopped}); lower lr, use optimizer='lbfgs', "
                f"or fewer or lower-frequency features"
            )
        self.fit_result_ = result
        self.model_ = model
        self.n_features_in_ = int(x.shape[1])
        self.n_outputs_ = int(y2.shape[1])
        self._y_1d = y_arr.ndim == 1
        return self

    def predict(self, X: Any) -> np.ndarray:
        """(n_samples,) for a 1D y at fit time, else (n_samples, n_outputs)."""
        from ..models.function import DomainWarning

        check_is_fitted(self)
        x = check_array(X, dtype=np.float64, input_name="X")
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        with warnings.catch_warnings():
            if self.out_of_domain == "ignore":
                warnings.simplefilter("ignore", DomainWarning)
            out = self.model_.predict((x - self.x_shift_) / self.x_scale_, strict=self.out_of_domain == "raise")
        out = out.reshape(len(x), self.n_outputs_) * self.y_scale_ + self.y_shift_
        return out[:, 0] if self._y_1d else out
