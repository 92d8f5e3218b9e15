"""MiniRocketClassifier, MultiRocketClassifier, HydraClassifier: aeon classifiers over archkit's torch transforms.

Each is an aeon `BaseClassifier` (so aeon's pipelines, ensembles and
`check_estimator` take it) that hands the series aeon gives it, (n_cases, n_channels, n_timepoints)
arrays or lists of (n_channels, n_timepoints_i) arrays for unequal lengths, to
`archkit.estimators.RocketClassifier` in aeon's layout. The names and the meaning of aeon's own
parameters (`n_kernels`, `max_dilations_per_kernel`, `n_jobs`, `random_state`) are aeon's, so
swapping the import is enough; archkit adds `device`, `precision`, `batch_size`, `head` and `method`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from aeon.classification import BaseClassifier
from aeon.utils.validation import check_n_jobs

from ..estimators.rocket import RocketClassifier
from ..layers.multirocket import PER_KERNEL
from ..layers.rocket import MAX_FEATURES

# aeon's checks that cannot hold, with the reason (tests/aeon/test_aeon_checks.py declares them as expected failures)
EXPECTED_FAILED_CHECKS = {
    "check_classifier_against_expected_results": (
        "compares predict_proba to 2 decimals with the output aeon stored for its own class of the same name; "
        "aeon's ridge head has no probabilities, so aeon stores one-hot votes, while archkit's predict_proba is "
        "a softmax of the ridge's scores (the predicted labels match aeon's stored ones; tested)"
    ),
}
MAX_JOBS = 1024  # bound on |n_jobs| before it becomes a torch thread count
TAGS = {
    "capability:multivariate": True,
    "capability:unequal_length": True,
    "capability:multithreading": True,
    "X_inner_type": ["np-list", "numpy3D"],
    "algorithm_type": "convolution",
    "python_dependencies": "torch",
}


def _check_jobs(n_jobs: Any) -> int:
    """aeon's n_jobs (None/0: 1, negative: all CPUs but |n_jobs| - 1) as a torch thread count."""
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or abs(n_jobs) > MAX_JOBS
    ):
        raise ValueError(f"n_jobs: expected None or an int in [-{MAX_JOBS}, {MAX_JOBS}], got {n_jobs!r}")
    return int(check_n_jobs(None if n_jobs is None else int(n_jobs)))


def _check_kernels(n_kernels: Any) -> int:
    if (
        isinstance(n_kernels, bool)
        or not isinstance(n_kernels, (int, np.integer))
        or not 1 <= n_kernels <= MAX_FEATURES
    ):
        raise ValueError(f"n_kernels: expected an int in [1, {MAX_FEATURES}], got {n_kernels!r}")
    return int(n_kernels)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """torch's CPU threads set to n inside, as they were after (aeon's n_jobs: 1 thread unless asked)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _RocketBase(BaseClassifier):
    """Shared fit/predict: an archkit RocketClassifier with `_rocket_features`, run on `n_jobs` torch threads."""

    _tags = TAGS
    _rocket_features = "minirocket"

    def _rocket_params(self) -> dict[str, Any]:
        """RocketClassifier's arguments for this estimator's parameters (each subclass adds its own)."""
        return {
            "features": self._rocket_features,
            "layout": "nct",
            "head": self.head,
            "batch_size": self.batch_size,
            "device": self.device,
            "precision": self.precision,
            "random_state": self.random_state,
        }

    def _fit(self, X: Any, y: np.ndarray) -> _RocketBase:
        self._n_jobs = _check_jobs(self.n_jobs)
        rocket = RocketClassifier(**self._rocket_params())
        with _torch_threads(self._n_jobs):
            rocket.fit(X, y)
        self.rocket_ = rocket
        return self

    def _predict(self, X: Any) -> np.ndarray:
        with _torch_threads(self._n_jobs):
            return np.asarray(self.rocket_.predict(X))

    def _predict_proba(self, X: Any) -> np.ndarray:
        with _torch_threads(self._n_jobs):
            return np.asarray(self.rocket_.predict_proba(X))


class MiniRocketClassifier(_RocketBase):
    """aeon's MiniRocketClassifier on archkit's torch MiniRocket: any device and precision, unequal lengths.

    `n_kernels` and `max_dilations_per_kernel` as aeon's (n_kernels is the feature count, rounded
    down to a multiple of 84); `head` "auto" is aeon's scaled ridge up to 10,000 training cases and
    a logistic regression above; `method` "exact" computes aeon's features bit for bit, "conv"
    (default) with matrix products. `device` ("auto", "cpu", "cuda", "cuda:N", "mps") and `precision`
    ("32", "bf16", "16-mixed", ...) say where the transform runs, `batch_size` cases at a time; `n_jobs`
    is torch's CPU thread count during fit and predict. Fitted: `rocket_`, the archkit RocketClassifier
    (`rocket_.to_module()` is the whole classifier as one torch module).
    """

    _rocket_features = "minirocket"

    def __init__(
        self,
        n_kernels: int = 10_000,
        max_dilations_per_kernel: int = 32,
        head: str = "auto",
        method: str = "conv",
        batch_size: int = 64,
        device: str = "auto",
        precision: str = "32",
        n_jobs: int = 1,
        random_state: int | None = None,
    ) -> None:
        self.n_kernels = n_kernels
        self.max_dilations_per_kernel = max_dilations_per_kernel
        self.head = head
        self.method = method
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.n_jobs = n_jobs
        self.random_state = random_state
        super().__init__()

    def _rocket_params(self) -> dict[str, Any]:
        return {
            **super()._rocket_params(),
            "num_features": _check_kernels(self.n_kernels)
            * (PER_KERNEL if self._rocket_features == "multirocket" else 1),
            "max_dilations_per_kernel": self.max_dilations_per_kernel,
            "method": self.method,
        }

    @classmethod
    def _get_test_params(cls, parameter_set: str = "default") -> dict[str, Any]:
        """Small settings for aeon's estimator checks (CPU only)."""
        if parameter_set == "results_comparison":
            return {"n_kernels": 100, "device": "cpu"}
        return {"n_kernels": 84, "max_dilations_per_kernel": 4, "device": "cpu"}


class MultiRocketClassifier(MiniRocketClassifier):
    """aeon's MultiRocketClassifier on archkit's torch MultiRocket: any device and precision, unequal lengths.

    As `MiniRocketClassifier`, with aeon's MultiRocket counting: `n_kernels` (rounded down to a
    multiple of 84) times 8 features, four pooled values over the series and four over its first
    difference (aeon's default n_kernels 10,000 gives 79,968 features). aeon's `n_features_per_kernel`
    is fixed at its default, 4.
    """

    _rocket_features = "multirocket"


class HydraClassifier(_RocketBase):
    """aeon's HydraClassifier on archkit's torch Hydra: any device and precision, unequal lengths.

    Hydra's 8 kernels x 64 groups per dilation (aeon's defaults, fixed here), counts scaled by aeon's
    sparse scaler, then `head` ("auto": aeon's ridge up to 10,000 training cases, logistic above).
    `device`, `precision`, `batch_size`, `n_jobs` and the fitted `rocket_` as in `MiniRocketClassifier`.
    """

    _rocket_features = "hydra"

    def __init__(
        self,
        head: str = "auto",
        batch_size: int = 64,
        device: str = "auto",
        precision: str = "32",
        n_jobs: int = 1,
        random_state: int | None = None,
    ) -> None:
        self.head = head
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.n_jobs = n_jobs
        self.random_state = random_state
        super().__init__()

    @classmethod
    def _get_test_params(cls, parameter_set: str = "default") -> dict[str, Any]:
        """Small settings for aeon's estimator checks (CPU only)."""
        return {"device": "cpu"}
