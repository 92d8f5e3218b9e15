"""AutoSequenceClassifier: k-fold choice on the training data, the stated tie rule, refit, pickling, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import StratifiedKFold

from archkit.estimators import LSTMClassifier
from archkit.estimators.auto import AutoSequenceClassifier, _conv_for, candidate_seed, choose, make_candidate

LSTM = dict(hidden=8, frontend="none", fcn_channels=0, dropout=0.0, batch_size=16, lr=2e-2)


def toy(n: int = 30, steps: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Label: does channel 0 drift up or down (an easy task a few LSTM epochs learn)."""
    rng = np.random.default_rng(seed)
    up = rng.integers(0, 2, n)
    x = 0.3 * rng.standard_normal((n, steps, 2))
    x[:, :, 0] += np.linspace(-1, 1, steps)[None, :] * (2 * up - 1)[:, None]
    return x.astype(np.float32), np.array(["down", "up"])[up]


class SlopeSign(ClassifierMixin, BaseEstimator):
    """A fast stand-in candidate: the sign of channel 0's slope (right on `toy`), or one fixed class when `flip`."""

    def __init__(self, flip: bool = False) -> None:
        self.flip = flip

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        up = np.asarray(X)[:, -1, 0] > np.asarray(X)[:, 0, 0]
        return self.classes_[np.zeros(len(up), int) if self.flip else up.astype(int)]


def test_chooses_the_candidate_with_the_best_cv_score_and_refits_it_on_all_data():
    x, y = toy(n=24)
    cands = {"bad": DummyClassifier(), "good": SlopeSign(), "fixed": SlopeSign(flip=True)}
    auto = AutoSequenceClassifier(candidates=cands, cv=3, random_state=0).fit(x, y)
    assert auto.n_splits_ == 3
    assert set(auto.cv_results_) == {"bad", "good", "fixed"}
    assert all(len(r["fold_accuracy"]) == 3 for r in auto.cv_results_.values())
    means = {n: r["mean"] for n, r in auto.cv_results_.items()}
    assert auto.best_name_ == "good" and means["good"] > max(means["bad"], means["fixed"])
    assert auto.tied_with_ == []
    assert isinstance(auto.best_estimator_, SlopeSign) and auto.best_estimator_ is not cands["good"]
    assert list(auto.classes_) == ["down", "up"] and auto.score(x, y) >= 0.9


def test_tie_rule_mean_then_std_then_fit_time_and_ties_within_one_standard_error_are_reported():
    r = lambda accs, t: {"fold_accuracy": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs)), "fit_s": t}  # noqa: E731
    best, tied = choose({"a": r([0.5, 0.75, 1.0], 1.0), "b": r([0.75, 0.75, 0.75], 5.0)})
    assert best == "b" and tied == ["a"]  # same mean: lower std wins; a is within a standard error
    best, _ = choose({"slow": r([1.0, 0.5], 9.0), "fast": r([1.0, 0.5], 1.0)})
    assert best == "fast"
    best, tied = choose({"low": r([0.25, 0.25, 0.5], 1.0), "high": r([1.0, 0.75, 1.0], 1.0)})
    assert best == "high" and tied == []


def test_pickled_auto_predicts_identically():
    x, y = toy()
    auto = AutoSequenceClassifier(
        candidates={"a": LSTMClassifier(epochs=2, **LSTM), "b": LSTMClassifier(epochs=3, **LSTM)}, cv=2, random_state=1
    ).fit(x, y)
    back = pickle.loads(pickle.dumps(auto))
    np.testing.assert_array_equal(back.predict_proba(x), auto.predict_proba(x))


def test_named_candidates_include_rocket_and_leave_the_raw_lstm_out_beyond_its_step_limit():
    x, y = toy(n=24)
    auto = AutoSequenceClassifier(
        candidates="auto", cv=2, lstm_epochs=1, num_features=84 * 4, raw_lstm_max_steps=16, random_state=0
    ).fit(x, y)
    assert set(auto.cv_results_) == {"rocket", "rocket-hydra", "lstm-conv"}  # 24 steps > 16: no raw LSTM
    back = pickle.loads(pickle.dumps(auto))
    np.testing.assert_array_equal(back.predict(x), auto.predict(x))


def test_conv_front_end_shortens_long_series_to_at_most_256_steps():
    for steps in (2048, 8192, 65536):
        c = _conv_for(steps)
        assert steps / c["conv_stride"] ** c["conv_blocks"] <= 256
    assert _conv_for(500) == {"frontend": "conv"}


def test_bad_arguments_name_themselves():
    x, y = toy(n=12)
    with pytest.raises(ValueError, match=r"cv: expected an int in \[2, 20\]"):
        AutoSequenceClassifier(cv=1).fit(x, y)
    with pytest.raises(ValueError, match="candidates: expected 'auto'"):
        AutoSequenceClassifier(candidates=3).fit(x, y)
    with pytest.raises(ValueError, match="candidates: unknown candidate 'svm'"):
        AutoSequenceClassifier(candidates=["svm"]).fit(x, y)
    y1 = y.copy()
    y1[:] = "up"
    y1[0] = "down"
    with pytest.raises(ValueError, match="has 1 case"):
        AutoSequenceClassifier(candidates={"a": LSTMClassifier(epochs=1, **LSTM)}).fit(x, y1)


def test_folds_match_stratified_kfold():
    # the CV table is what StratifiedKFold(shuffle, seed) gives: refitting a candidate on those folds reproduces it
    x, y = toy(n=20)
    cand = LSTMClassifier(epochs=2, **LSTM)
    auto = AutoSequenceClassifier(candidates={"a": cand}, cv=2, random_state=3).fit(x, y)
    seed = int(np.random.RandomState(3).randint(2**31 - 1))
    scores = []
    for tr, va in StratifiedKFold(2, shuffle=True, random_state=seed).split(x, y):
        m = LSTMClassifier(epochs=2, **LSTM, random_state=seed).fit(x[tr], y[tr])
        scores.append(float(np.mean(m.predict(x[va]) == y[va])))
    assert auto.cv_results_["a"]["fold_accuracy"] == scores


def test_the_refitted_winner_is_the_named_candidate_seeded_with_candidate_seed():
    # what benchmarks/long_errors.py relies on to study auto's refit without rerunning its cross-validation
    x, y = toy(n=24)
    auto = AutoSequenceClassifier(candidates=["rocket"], cv=2, num_features=84 * 4, random_state=5).fit(x, y)
    same = make_candidate("rocket", x.shape[1], 1, 84 * 4, "auto", "32", candidate_seed(5)).fit(x, y)
    other = make_candidate("rocket", x.shape[1], 1, 84 * 4, "auto", "32", 5).fit(x, y)
    np.testing.assert_array_equal(auto.best_estimator_.decision_function(x), same.decision_function(x))
    assert not np.array_equal(auto.best_estimator_.decision_function(x), other.decision_function(x))
