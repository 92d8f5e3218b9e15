"""AutoSequenceClassifier: picks among sequence models by stratified k-fold cross-validation on the training data.

Candidates (by name, or any scikit-learn classifiers taking the same X):
- "rocket": `RocketClassifier` (MiniRocket features + ridge/logistic head);
- "hydra": `RocketClassifier(features="hydra")` (Hydra features, aeon's sparse scaler, same heads);
- "rocket-hydra": `RocketClassifier(features="minirocket+hydra")` (both feature sets side by side);
- "multirocket": `RocketClassifier(features="multirocket")` at MULTIROCKET_SCALE x `num_features`
  (10,000 -> 50,000, aeon's MultiRocketClassifier); "multirocket-hydra" the same with Hydra's;
- "lstm-conv": `LSTMClassifier` with a conv front end. Up to 1024 steps it is the estimator's default
  LSTM-FCN recipe (stride-1 convs, FCN branch); on longer series stride-4 convs shorten the sequence
  to at most 256 steps before the LSTM, and the FCN branch is left out;
- "lstm": `LSTMClassifier` on the raw steps (no front end, no FCN branch).

`candidates="auto"` takes "rocket", "rocket-hydra", "lstm-conv", from MULTIROCKET_MIN_STEPS (1025) steps
"multirocket" and, up to `raw_lstm_max_steps` steps (1024), "lstm": the raw LSTM is left out beyond, where
one epoch over a few hundred cases costs minutes on a CPU (pass the names to force it). MultiRocket costs
~10x MiniRocket's time and is only tried on long series: on the long benchmark tasks (3 seeds, test splits)
it scored 97.2 % on needle and 82.6 % on order, against 96.5 and 69.4 % for "rocket-hydra" (docs/sequences.md).
"hydra" alone and "multirocket-hydra" are not in it: on those tasks neither beat the candidates that are.

Selection rule: every candidate is fitted on the same `cv` stratified folds of the training data (never
the test data), each fold scored by accuracy. The winner has the highest mean fold accuracy; an exact
tie goes to the lower standard deviation across folds, then to the lower mean fit time. Candidates
whose mean lies within one standard error of the winner's (paired over folds) are listed in
`tied_with_`: the data do not separate them, and the rule above picked. The winner is then refitted on
all the training data (`best_estimator_`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .accel import check_accel
from .sequence import check_targets
from .series import as_padded_series, check_layout

CANDIDATES = ("rocket", "hydra", "rocket-hydra", "multirocket", "multirocket-hydra", "lstm-conv", "lstm")
# candidates="auto" (raw LSTM: short series only; MultiRocket: long series only)
AUTO_CANDIDATES = ("rocket", "rocket-hydra", "multirocket", "lstm-conv", "lstm")
MULTIROCKET_MIN_STEPS = 1025  # series this long or longer get "multirocket" in candidates="auto"
MAX_FOLDS = 20
MULTIROCKET_SCALE = 5  # MultiRocket's features per MiniRocket feature asked for: 8 pooled values, ~5x as aeon sets them


def _conv_for(steps: int) -> dict[str, Any]:
    """Conv front end: the LSTM-FCN recipe up to 1024 steps, else stride-4 blocks down to <= 256 steps."""
    if steps <= 1024:
        return {"frontend": "conv"}
    blocks = max(1, math.ceil(math.log(steps / 256, 4)))
    return {"frontend": "conv", "conv_stride": 4, "conv_blocks": blocks, "fcn_channels": 0, "pool": "max"}


def make_candidate(
    name: str, steps: int, lstm_epochs: int, num_features: int, device: str, precision: str, random_state: int | None
) -> BaseEstimator:
    """A fresh candidate estimator by name, for series of `steps` time steps (archkit's "ntc" layout)."""
    from .sequence import LSTMClassifier

    common: dict[str, Any] = {"device": device, "precision": precision, "random_state": random_state}
    if name == "rocket":
        from .rocket import RocketClassifier

        return RocketClassifier(num_features=num_features, **common)
    if name in ("hydra", "rocket-hydra"):
        from .rocket import RocketClassifier

        features = "hydra" if name == "hydra" else "minirocket+hydra"
        return RocketClassifier(num_features=num_features, features=features, **common)
    if name in ("multirocket", "multirocket-hydra"):
        from .rocket import RocketClassifier

        features = "multirocket" if name == "multirocket" else "multirocket+hydra"
        return RocketClassifier(num_features=MULTIROCKET_SCALE * num_features, features=features, **common)
    if name == "lstm-conv":
        return LSTMClassifier(epochs=lstm_epochs, **_conv_for(steps), **common)
    if name == "lstm":
        return LSTMClassifier(epochs=lstm_epochs, frontend="none", fcn_channels=0, **common)
    raise ValueError(f"candidates: unknown candidate {name!r}; expected names from {list(CANDIDATES)} or estimators")


class AutoSequenceClassifier(ClassifierMixin, BaseEstimator):
    """Chooses the sequence model (ROCKET, ROCKET + Hydra, LSTM with conv front end, raw LSTM) by stratified k-fold CV.

    `candidates`: "auto", a list of names from CANDIDATES, or a dict name -> unfitted estimator. `cv`:
    number of folds (lowered to the smallest class count when a class has fewer cases, never below 2).
    `lstm_epochs` and `num_features` configure the named candidates. `layout` as in LSTMClassifier.
    """

    def __init__(
        self,
        candidates: Any = "auto",
        cv: int = 3,
        lstm_epochs: int = 100,
        num_features: int = 10_000,
        raw_lstm_max_steps: int = 1024,
        layout: str = "ntc",
        device: str = "auto",
        precision: str = "32",
        random_state: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.candidates = candidates
        self.cv = cv
        self.lstm_epochs = lstm_epochs
        self.num_features = num_features
        self.raw_lstm_max_steps = raw_lstm_max_steps
        self.layout = layout
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    def _candidates(self, steps: int, seed: int) -> dict[str, BaseEstimator]:
        spec = self.candidates
        if isinstance(spec, dict):
            if not spec:
                raise ValueError("candidates: expected at least one candidate, got an empty dict")
            out = {str(k): clone(v) for k, v in spec.items()}
            for est in out.values():  # an unseeded candidate gets the fit's seed, so a fit is repeatable
                if est.get_params().get("random_state", 0) is None:
                    est.set_params(random_state=seed)
            return out
        if isinstance(spec, str) and spec == "auto":
            names = [
                c
                for c in AUTO_CANDIDATES
                if (c != "lstm" or steps <= self.raw_lstm_max_steps)
                and (c != "multirocket" or steps >= MULTIROCKET_MIN_STEPS)
            ]
        elif isinstance(spec, (list, tuple)) and spec and all(isinstance(c, str) for c in spec):
            names = list(dict.fromkeys(spec))
        else:
            raise ValueError(
                f"candidates: expected 'auto', a list of names from {list(CANDIDATES)} or a dict "
                f"name -> estimator, got {spec!r}"
            )
        for name in ("lstm_epochs", "num_features", "raw_lstm_max_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        return {
            n: make_candidate(n, steps, self.lstm_epochs, self.num_features, self.device, self.precision, seed)
            for n in names
        }

    def fit(self, X: Any, y: Any) -> AutoSequenceClassifier:
        """Cross-validate every candidate on (X, y), pick by the rule in the module docstring, refit it on all of X."""
        check_accel(self.device, self.precision)
        check_layout(self.layout)
        if isinstance(self.cv, bool) or not isinstance(self.cv, int) or not 2 <= self.cv <= MAX_FOLDS:
            raise ValueError(f"cv: expected an int in [2, {MAX_FOLDS}] (number of folds), got {self.cv!r}")
        x, lengths, _ = as_padded_series(X, self.layout)
        y = check_targets(y, len(x), type(self).__name__)
        check_classification_targets(y)
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise ValueError(f"y: only one class ({classes[0]!r}) present; a classifier needs at least 2 classes")
        folds = min(self.cv, int(counts.min()))
        if folds < 2:
            raise ValueError(
                f"y: class {classes[counts.argmin()]!r} has 1 case; stratified cross-validation needs "
                f"at least 2 per class"
            )
        seed = candidate_seed(self.random_state)
        data = _as_input(x, lengths)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(np.zeros(len(y)), y))
        results: dict[str, dict[str, Any]] = {}
        for name, est in self._candidates(x.shape[1], seed).items():
            scores, times = [], []
            for k, (tr, va) in enumerate(splits):
                model = clone(est)
                t0 = time.perf_counter()
                model.fit(_take(data, tr), y[tr])
                times.append(time.perf_counter() - t0)
                scores.append(float(np.mean(model.predict(_take(data, va)) == y[va])))
                if self.verbose:
                    print(
                        f"[auto] {name} fold {k + 1}/{folds}: accuracy {scores[-1]:.4f} ({times[-1]:.1f}s)", flush=True
                    )
            results[name] = {
                "fold_accuracy": scores,
                "mean": float(np.mean(scores)),
                "std": float(np.std(scores)),
                "fit_s": float(np.mean(times)),
                "estimator": est,
            }
        self.best_name_, self.tied_with_ = choose(results)
        self.cv_results_ = {n: {k: v for k, v in r.items() if k != "estimator"} for n, r in results.items()}
        self.n_splits_ = folds
        self.best_estimator_ = clone(results[self.best_name_]["estimator"]).fit(data, y)
        self.classes_ = self.best_estimator_.classes_
        self.n_features_in_ = int(x.shape[2])
        return self

    def save(self, path: Any) -> Any:
        """Save the chosen, refitted estimator and the CV results to folder `path` (safetensors + JSON, no pickle)."""
        from .saving import save_estimator

        return save_estimator(self, path)

    @classmethod
    def load(cls, path: Any) -> AutoSequenceClassifier:
        """The classifier `save` wrote to folder `path`, loaded without unpickling anything."""
        from .rocket import RocketClassifier
        from .saving import load_folder
        from .sequence import LSTMClassifier

        classes = {cls.__name__: cls, "RocketClassifier": RocketClassifier, "LSTMClassifier": LSTMClassifier}
        return load_folder(path, classes, expected=cls.__name__)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the chosen model (columns in the order of `classes_`)."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(self._input(X))

    def predict(self, X: Any) -> np.ndarray:
        """Labels predicted by the chosen model."""
        check_is_fitted(self)
        return self.best_estimator_.predict(self._input(X))

    def _input(self, X: Any) -> Any:
        x, lengths, _ = as_padded_series(X, self.layout)
        if x.shape[2] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[2]} channels, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} channels as input (layout {self.layout!r})"
            )
        return _as_input(x, lengths)


def candidate_seed(random_state: Any) -> int:
    """The seed auto gives its folds and candidates for `random_state` (the refit of the winner uses it too)."""
    return int(check_random_state(random_state).randint(2**31 - 1))


def choose(results: dict[str, dict[str, Any]]) -> tuple[str, list[str]]:
    """(winner, candidates within one paired standard error of it): highest mean, then lower std, then faster fit."""
    best = max(results, key=lambda n: (results[n]["mean"], -results[n]["std"], -results[n]["fit_s"]))
    ref = np.asarray(results[best]["fold_accuracy"])
    tied = []
    for name, r in results.items():
        if name == best:
            continue
        diff = ref - np.asarray(r["fold_accuracy"])
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
        if diff.mean() <= se:
            tied.append(name)
    return best, tied


def _as_input(x: np.ndarray, lengths: np.ndarray | None) -> Any:
    """What the candidates get: the (n, T, C) array, or a list of (T_i, C) series when lengths differ."""
    return x if lengths is None else [x[i, :n] for i, n in enumerate(lengths)]


def _take(data: Any, idx: np.ndarray) -> Any:
    return data[idx] if isinstance(data, np.ndarray) else [data[i] for i in idx]
