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

`candidates="auto"` takes "rocket", "lstm-conv", below MULTIROCKET_MIN_STEPS (1025) steps "rocket-hydra",
from there "multirocket" in its place (on the long tasks rocket-hydra never beat MultiRocket, at 2-7x
MiniRocket's fit there) and, up to `raw_lstm_max_steps` steps (1024), "lstm": the raw LSTM is left out beyond, where
one epoch over a few hundred cases costs minutes on a CPU (pass the names to force it). MultiRocket costs
~3-4x MiniRocket's fit time (needle, 8192 steps) and is only tried on long series: on the long benchmark
tasks (3 seeds, test splits) it scored 97.2 % on needle and 82.6 % on order, against 96.5 and 69.4 % for "rocket-hydra" (docs/sequences.md).
"hydra" alone and "multirocket-hydra" are not in it: on those tasks neither beat the candidates that are.

Selection rule (Breiman's one-standard-error rule): the CV runs on a stratified subsample of at most
`max_cv_cases` training cases (default 2,000; all of them when there are fewer; never the test data), split
into `cv` stratified folds; each case is predicted once, by the fold that left it out, giving every
candidate an out-of-fold accuracy a over those n cases. Among the candidates within one standard error
sqrt(a* (1 - a*) / n) of the best accuracy a*, the CHEAPEST wins: cost = `fit_s`, the measured mean fit
seconds per fold; equal costs go to the higher accuracy. With ~50 validation cases per fold, candidates a
case or two apart are not separated by the data, and the rule then takes the one that costs least instead
of the dearest (listed in `tied_with_`: the others within one standard error).

What the CV costs (`cv_results_[name]`: fold_accuracy, mean, std, accuracy, fit_s, cv_s, folds_run, stopped):
- a ROCKET-family candidate is fitted ONCE on all the CV cases and only its linear head is refitted per
  fold, on the features that fit computed (its `fit_s` is that whole fit). The kernels' biases and the
  feature scales thus see the validation folds' series (never their labels): a small, label-free leak,
  taken because the transform is nearly all of a ROCKET fit's cost (k folds cost one transform, not k);
- candidates run in the order given (cheap first in "auto"), and one stops before its next fold once it
  can no longer change the choice: even with every remaining case right it would stay more than one
  standard error below the best finished candidate, or, dearer than the one chosen so far, it could not get
  more than one standard error above it (`stopped`; exact where the accuracies are >= 0.5). An estimator
  with `epochs` (the LSTMs) is first timed on one epoch, a lower bound of its fit, so a dear one is left out
  before its first fold when it cannot matter (`skipped_`: candidates that ran no fold, with the reason);
- `max_cv_cost` (default 15; None: no limit) bounds the CV's time at that many times the first candidate's
  fit (in "auto", MiniRocket on the CV cases): a candidate other than a ROCKET (those always run, one fit
  each) stops before a fold that would take the CV past it, so the CV overruns by at most one fold. With
  None, the machine's speed enters the choice only through the cost ranking (which candidate within one
  standard error is cheapest, and which stops as dearer), where candidates usually differ by factors;
- when the subsample is the whole training set, the winner's CV fit of a ROCKET candidate IS its refit
  (same cases, same seed) and is kept; otherwise the winner is refitted on all the training data
  (`best_estimator_`). `select(X, y)` chooses without any refit: (name, unfitted estimator).

Each candidate gets X in its own `layout` (a RocketClassifier(layout="nct") gets (n, C, T)), whatever
`layout` auto was given; named candidates and estimators without a `layout` parameter get (n, T, C).
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
from .autocv import choose, cross_validate, stop_rule, stratified_subsample
from .sequence import EXPECTED_FAILED_CHECKS as _SEQUENCE_CHECKS
from .sequence import check_targets
from .series import as_padded_series, check_layout

CANDIDATES = ("rocket", "hydra", "rocket-hydra", "multirocket", "multirocket-hydra", "lstm-conv", "lstm")
# candidates="auto" (raw LSTM: short series only; MultiRocket: long series only)
AUTO_CANDIDATES = ("rocket", "rocket-hydra", "multirocket", "lstm-conv", "lstm")
MULTIROCKET_MIN_STEPS = 1025  # series this long or longer get "multirocket" in candidates="auto"
MAX_FOLDS = 20
MAX_CV_CASES = 1_000_000
MAX_CV_COST = 10_000
EXPECTED_FAILED_CHECKS = {k: v.replace("LSTMClassifier", "AutoSequenceClassifier") for k, v in _SEQUENCE_CHECKS.items()}
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
    """Chooses the sequence model (ROCKET family, LSTM with conv front end, raw LSTM) by stratified k-fold CV.

    `candidates`: "auto", a list of names from CANDIDATES, or a dict name -> unfitted estimator (tried in
    that order: put the cheap ones first). `cv`: number of folds (lowered to the smallest class count of
    the CV cases when a class has fewer, never below 2). `max_cv_cases`: the CV runs on a stratified
    subsample of at most this many training cases (`cv_cases_` says how many). `max_cv_cost`: the CV's time
    limit in first-candidate fits (None: none; see the module docstring). `lstm_epochs` and
    `num_features` configure the named candidates. `layout` is how X comes (as in LSTMClassifier); each
    candidate gets X in its own `layout` parameter's order ((n, T, C) when it has none).
    """

    def __init__(
        self,
        candidates: Any = "auto",
        cv: int = 3,
        lstm_epochs: int = 100,
        num_features: int = 10_000,
        raw_lstm_max_steps: int = 1024,
        max_cv_cases: int = 2_000,
        max_cv_cost: float | None = 15.0,
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
        self.max_cv_cases = max_cv_cases
        self.max_cv_cost = max_cv_cost
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
                and (c != "rocket-hydra" or steps < MULTIROCKET_MIN_STEPS)
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

    def select(self, X: Any, y: Any) -> tuple[str, BaseEstimator]:
        """Cross-validate the candidates and choose one, WITHOUT refitting it: (name, its unfitted estimator).

        Sets best_name_, tied_with_, cv_results_, skipped_, n_splits_ and cv_cases_ (not best_estimator_): for
        callers that fit the winner themselves, e.g. streamed over a folder of shards.
        """
        name, est, *_ = self._select(X, y)
        return name, clone(est)

    def _select(self, X: Any, y: Any) -> tuple[str, BaseEstimator, BaseEstimator | None, Any, np.ndarray]:
        """(chosen name, its unfitted estimator, its fit on ALL of X if the CV made one, the candidates' X, y)."""
        check_accel(self.device, self.precision)
        check_layout(self.layout)
        if isinstance(self.cv, bool) or not isinstance(self.cv, int) or not 2 <= self.cv <= MAX_FOLDS:
            raise ValueError(f"cv: expected an int in [2, {MAX_FOLDS}] (number of folds), got {self.cv!r}")
        m = self.max_cv_cases
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 4 <= m <= MAX_CV_CASES:
            raise ValueError(f"max_cv_cases: expected an int in [4, {MAX_CV_CASES}] (training cases), got {m!r}")
        cost = self.max_cv_cost
        if cost is not None and (
            isinstance(cost, bool) or not isinstance(cost, (int, float)) or not 1 <= cost <= MAX_CV_COST
        ):
            raise ValueError(
                f"max_cv_cost: expected None or a number in [1, {MAX_CV_COST}] (times the first candidate's fit), "
                f"got {cost!r}"
            )
        x, lengths, form = as_padded_series(X, self.layout)
        y = check_targets(y, len(x), type(self).__name__)
        check_classification_targets(y)
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise ValueError(f"y: only one class ({classes[0]!r}) present; a classifier needs at least 2 classes")
        if counts.min() < 2:
            raise ValueError(
                f"y: class {classes[counts.argmin()]!r} has 1 case; stratified cross-validation needs "
                f"at least 2 per class"
            )
        seed = candidate_seed(self.random_state)
        data = _as_input(x, lengths)
        sub = stratified_subsample(y, int(m), seed)
        data_cv, y_cv = _take(data, sub), y[sub]
        folds = min(self.cv, int(np.unique(y_cv, return_counts=True)[1].min()))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(np.zeros(len(y_cv)), y_cv))
        results: dict[str, dict[str, Any]] = {}
        cands = self._candidates(x.shape[1], seed)
        shared: dict[str, BaseEstimator | None] = {}
        start, budget = time.perf_counter(), None
        for name, est in cands.items():
            log = (lambda msg, name=name: print(f"[auto] {name} {msg}", flush=True)) if self.verbose else None
            left = None if budget is None else budget - (time.perf_counter() - start)
            results[name], shared[name] = cross_validate(
                est, in_layout(data_cv, est), y_cv, splits, _take, stop_rule(results, len(y_cv)), left, log
            )
            if budget is None and cost is not None:  # the first candidate's fit sets the scale
                budget = cost * results[name]["fit_s"]
        self.skipped_ = {n: r for n, r in results.items() if r["folds_run"] == 0}
        self.cv_results_ = {n: r for n, r in results.items() if r["folds_run"] > 0}
        self.best_name_, self.tied_with_ = choose(self.cv_results_, len(y_cv))
        self.n_splits_ = folds
        self.cv_cases_ = len(sub)
        whole = shared[self.best_name_] if len(sub) == len(y) else None  # the subsample is all of X, in order
        self.n_timepoints_ = int(x.shape[1]) if form == "2d" else None  # a 2D X at predict must have this width
        self.n_features_in_ = int(x.shape[2])
        return self.best_name_, cands[self.best_name_], whole, data, y

    def fit(self, X: Any, y: Any) -> AutoSequenceClassifier:
        """Choose a candidate (`select`), then refit it on all of X (reusing the CV's fit when that already was one)."""
        _, est, whole, data, y = self._select(X, y)
        self.best_estimator_ = whole if whole is not None else clone(est).fit(in_layout(data, est), y)
        self.classes_ = self.best_estimator_.classes_
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
        x, lengths, form = as_padded_series(X, self.layout)
        width = getattr(self, "n_timepoints_", None)
        if form == "2d" and width is not None and x.shape[1] != width:
            raise ValueError(
                f"X has {x.shape[1]} features (time steps of univariate series), but {type(self).__name__} "
                f"is expecting {width} features as input, as in fit; pass series of other lengths as a list of arrays"
            )
        if x.shape[2] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[2]} channels, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} channels as input (layout {self.layout!r})"
            )
        return in_layout(_as_input(x, lengths), self.best_estimator_)


def candidate_seed(random_state: Any) -> int:
    """The seed auto gives its folds and candidates for `random_state` (the refit of the winner uses it too)."""
    return int(check_random_state(random_state).randint(2**31 - 1))


def _as_input(x: np.ndarray, lengths: np.ndarray | None) -> Any:
    """What the candidates get: the (n, T, C) array, or a list of (T_i, C) series when lengths differ."""
    return x if lengths is None else [x[i, :n] for i, n in enumerate(lengths)]


def _take(data: Any, idx: np.ndarray) -> Any:
    return data[idx] if isinstance(data, np.ndarray) else [data[i] for i in idx]


def in_layout(data: Any, est: BaseEstimator) -> Any:
    """`data` ((n, T, C) array or list of (T_i, C) series) in the order `est` reads: its `layout` parameter, else as is."""
    if est.get_params().get("layout") != "nct":
        return data
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data.transpose(0, 2, 1))
    return [np.ascontiguousarray(s.T) for s in data]
