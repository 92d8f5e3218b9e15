"""AutoSequenceClassifier: k-fold choice on the training data, the one-SE rule, early stops, subsample, refit, layouts."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import RidgeClassifierCV
from sklearn.model_selection import StratifiedKFold

from archkit.estimators import LSTMClassifier, RocketClassifier
from archkit.estimators.auto import AutoSequenceClassifier, _conv_for, candidate_seed, make_candidate
from archkit.estimators.autocv import choose, standard_error, stop_rule, stratified_subsample

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
    auto = AutoSequenceClassifier(candidates=cands, cv=3, max_cv_cost=None, random_state=0).fit(x, y)
    assert auto.n_splits_ == 3 and auto.cv_cases_ == 24
    assert set(auto.cv_results_) == {"bad", "good", "fixed"}
    assert all(r["fit_s"] >= 0 and r["cv_s"] >= 0 for r in auto.cv_results_.values())
    assert len(auto.cv_results_["good"]["fold_accuracy"]) == 3 and auto.cv_results_["good"]["accuracy"] == 1.0
    # "fixed" (one class, half the cases) cannot reach 1.0 after its first fold: stopped there, never chosen
    assert auto.cv_results_["fixed"]["stopped"] == "cannot change the choice"
    assert auto.cv_results_["fixed"]["folds_run"] == 1 and auto.skipped_ == {}
    assert auto.best_name_ == "good" and auto.tied_with_ == []
    assert isinstance(auto.best_estimator_, SlopeSign) and auto.best_estimator_ is not cands["good"]
    assert list(auto.classes_) == ["down", "up"] and auto.score(x, y) >= 0.9


def rec(accuracy: float, fit_s: float, stopped: bool = False) -> dict:
    return {"accuracy": accuracy, "fit_s": fit_s, "stopped": "cannot change the choice" if stopped else None}


def test_one_standard_error_rule_takes_the_cheapest_candidate_near_the_best():
    n = 160  # SE of 0.95 on 160 cases: 0.0172
    assert standard_error(0.95, n) == pytest.approx(0.01723, abs=1e-5)
    best, tied = choose({"rocket": rec(0.94, 20.0), "multi": rec(0.95, 40.0), "lstm": rec(0.90, 5.0)}, n)
    assert best == "rocket" and tied == ["multi"]  # 0.94 is within one SE of 0.95 and cheaper; 0.90 is not
    best, tied = choose({"rocket": rec(0.90, 20.0), "multi": rec(0.95, 40.0)}, n)
    assert best == "multi" and tied == []
    best, tied = choose({"a": rec(1.0, 9.0), "b": rec(0.99, 1.0)}, n)
    assert best == "a" and tied == []  # at 100 % the standard error is 0: only exact ties are near
    best, _ = choose({"slow": rec(0.9, 9.0), "fast": rec(0.9, 1.0)}, n)
    assert best == "fast"
    best, _ = choose({"stopped": rec(1.0, 0.1, stopped=True), "x": rec(0.8, 5.0)}, n)
    assert best == "x"


def test_stopping_early_never_changes_the_choice():
    # random CV tables: the rule stops candidates after a fold; the choice must equal the one without stops
    rng = np.random.default_rng(0)
    folds, per_fold = 3, 20
    n = folds * per_fold
    stops = 0
    for _ in range(300):
        hits = {f"c{i}": rng.binomial(per_fold, rng.uniform(0.4, 1.0), folds) for i in range(4)}
        cost = {name: float(rng.uniform(0.1, 10.0)) for name in hits}
        full = {m: rec(h.sum() / n, cost[m]) for m, h in hits.items()}
        raced: dict[str, dict] = {}
        for m, h in hits.items():
            stop = stop_rule(raced, n)
            k = next((k for k in range(1, folds) if stop and stop(int(h[:k].sum()), k * per_fold, cost[m])), folds)
            raced[m] = rec(h[:k].sum() / (k * per_fold), cost[m], stopped=k < folds)
            stops += k < folds
        assert choose(raced, n)[0] == choose(full, n)[0]
    assert stops > 100  # the rule does stop candidates on such tables


def test_rocket_candidates_share_one_transform_across_folds():
    # a ROCKET candidate is fitted once on the CV cases; each fold refits its head on that fit's features
    x, y = toy(n=24)
    auto = AutoSequenceClassifier(candidates=["rocket"], cv=3, num_features=84 * 4, random_state=2).fit(x, y)
    whole = make_candidate("rocket", x.shape[1], 1, 84 * 4, "cpu", "32", candidate_seed(2)).fit(x, y)
    series, lengths, *_ = whole._series(x)
    feats = whole._scaled(*whole._features(series, lengths))
    scores = []
    for tr, va in StratifiedKFold(3, shuffle=True, random_state=candidate_seed(2)).split(x, y):
        head = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(feats[tr], y[tr])
        scores.append(float(np.mean(head.predict(feats[va]) == y[va])))
    assert auto.cv_results_["rocket"]["fold_accuracy"] == scores
    np.testing.assert_array_equal(auto.best_estimator_.decision_function(x), whole.decision_function(x))


def test_stratified_subsample_is_bounded_proportional_and_keeps_two_per_class():
    y = np.array([0] * 900 + [1] * 95 + [2] * 5 + [3] * 2)
    idx = stratified_subsample(y, 100, seed=0)
    assert len(idx) == 100 and np.all(np.diff(idx) > 0)
    counts = np.bincount(y[idx], minlength=4)
    assert counts[3] == 2 and counts[0] >= 85 and counts[1] >= 8
    np.testing.assert_array_equal(idx, stratified_subsample(y, 100, seed=0))
    assert not np.array_equal(idx, stratified_subsample(y, 100, seed=1))
    np.testing.assert_array_equal(stratified_subsample(y, 5000, seed=0), np.arange(len(y)))
    with pytest.raises(ValueError, match="max_cv_cases: expected at least 2 cases per class"):
        stratified_subsample(y, 7, seed=0)


def test_cv_runs_on_at_most_max_cv_cases_and_the_winner_is_refitted_on_all_cases():
    x, y = toy(n=40)
    auto = AutoSequenceClassifier(candidates=["rocket"], cv=2, num_features=84 * 4, max_cv_cases=12, random_state=0)
    auto.fit(x, y)
    assert auto.cv_cases_ == 12 and all(len(r["fold_accuracy"]) == 2 for r in auto.cv_results_.values())
    whole = make_candidate("rocket", x.shape[1], 1, 84 * 4, "cpu", "32", candidate_seed(0)).fit(x, y)
    np.testing.assert_array_equal(auto.best_estimator_.decision_function(x), whole.decision_function(x))
    for bad in (3, 2.5, True, 10**7):
        with pytest.raises(ValueError, match=r"max_cv_cases: expected an int in \[4, 1000000\]"):
            AutoSequenceClassifier(candidates=["rocket"], max_cv_cases=bad).fit(x, y)


def test_select_chooses_without_refitting():
    x, y = toy(n=24)
    auto = AutoSequenceClassifier(
        candidates={"good": SlopeSign(), "fixed": SlopeSign(flip=True)}, cv=2, max_cv_cost=None
    )
    name, est = auto.select(x, y)
    assert name == "good" == auto.best_name_ and isinstance(est, SlopeSign) and not hasattr(est, "classes_")
    assert auto.cv_cases_ == 24 and not hasattr(auto, "best_estimator_")


def test_candidates_get_x_in_their_own_layout():
    # aeon's order (n, C, T): 3 channels of 64 steps; a candidate reading "nct" must see 3 channels, not 64
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 15)
    x = rng.standard_normal((30, 3, 64)).astype(np.float32)
    x[y == 1, 1, 20:40] += 3.0
    nct = RocketClassifier(num_features=84 * 4, layout="nct", random_state=0)
    auto = AutoSequenceClassifier(candidates={"nct": nct, "named": SlopeSign()}, cv=3, layout="nct", random_state=0)
    auto.fit(x, y)
    assert auto.n_features_in_ == 3 and auto.best_name_ == "nct"
    assert auto.best_estimator_.n_features_in_ == 3 and auto.cv_results_["nct"]["accuracy"] == 1.0
    same = RocketClassifier(num_features=84 * 4, layout="nct", random_state=0).fit(x, y)
    np.testing.assert_array_equal(auto.predict_proba(x), same.predict_proba(x))
    named = AutoSequenceClassifier(candidates=["rocket"], cv=3, num_features=84 * 4, layout="nct").fit(x, y)
    assert named.best_estimator_.n_features_in_ == 3 and named.score(x, y) == 1.0


def test_a_2d_x_of_another_width_is_refused_at_predict():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 30)).astype(np.float32), np.repeat([0, 1], 10)
    auto = AutoSequenceClassifier(candidates=["rocket"], cv=2, num_features=84, random_state=0).fit(x, y)
    assert auto.predict(x).shape == (20,)
    with pytest.raises(ValueError, match=r"X has 29 features .* expecting 30 features"):
        auto.predict(x[:, :29])
    assert auto.predict([s[:29, None] for s in x]).shape == (20,)  # other lengths go in as a list of series


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
    assert set(auto.cv_results_) | set(auto.skipped_) == {"rocket", "rocket-hydra", "lstm-conv"}  # 24 > 16 steps
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


class Slow(ClassifierMixin, BaseEstimator):
    """A candidate that takes `seconds` per epoch (as an LSTM would) and predicts one class."""

    def __init__(self, epochs: int = 10, seconds: float = 0.02) -> None:
        self.epochs = epochs
        self.seconds = seconds

    def fit(self, X, y):
        import time

        time.sleep(self.seconds * self.epochs)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.repeat(self.classes_[0], len(X))


def test_a_dear_candidate_is_timed_on_one_epoch_and_left_out_when_it_cannot_matter_or_breaks_the_budget():
    x, y = toy(n=24)
    # the first candidate is perfect: a dearer one could at best tie it, so it is left out after one epoch
    auto = AutoSequenceClassifier(candidates={"good": SlopeSign(), "slow": Slow()}, cv=3, max_cv_cost=None).fit(x, y)
    assert auto.best_name_ == "good" and set(auto.cv_results_) == {"good"}
    assert auto.skipped_["slow"]["stopped"] == "cannot change the choice" and auto.skipped_["slow"]["folds_run"] == 0
    assert 0.02 <= auto.skipped_["slow"]["fit_s"] < 0.2  # one epoch's time: a lower bound of its fit
    # a first candidate that is not perfect leaves room: the budget (times its fit) is what stops the dear one
    first = Slow(epochs=1, seconds=0.01)
    cands = {"first": first, "slow": Slow(epochs=10, seconds=0.02)}
    auto = AutoSequenceClassifier(candidates=cands, cv=3, max_cv_cost=3).fit(x, y)
    assert auto.skipped_["slow"]["stopped"] == "budget" and auto.best_name_ == "first"
    auto = AutoSequenceClassifier(candidates=cands, cv=3, max_cv_cost=None).fit(x, y)
    assert auto.cv_results_["slow"]["folds_run"] == 3 and auto.skipped_ == {}
    for bad in (0.5, True, "x", 10**5):
        with pytest.raises(ValueError, match=r"max_cv_cost: expected None or a number in \[1, 10000\]"):
            AutoSequenceClassifier(candidates=cands, max_cv_cost=bad).fit(x, y)


class TwoPass(RocketClassifier):
    """A RocketClassifier whose fit computes features more than once (as a fit in parts would)."""

    def fit(self, X, y):
        half = np.sort(np.concatenate([np.flatnonzero(y == c)[:2] for c in np.unique(y)]))
        super().fit(X[half], y[half])  # features of a part first, then the fit that counts
        return super().fit(X, y)


def test_shared_rocket_features_are_recomputed_when_the_fit_did_not_compute_them_in_one_go():
    from archkit.estimators.autocv import _fit_keeping_features

    x, y = toy(n=12)
    one = _fit_keeping_features(RocketClassifier(num_features=84, random_state=0), x, y)
    two = _fit_keeping_features(TwoPass(num_features=84, random_state=0), x, y)
    assert one.shape == two.shape == (12, 84)
    np.testing.assert_allclose(one, two, rtol=1e-6)


def test_auto_candidates_by_series_length():
    auto = AutoSequenceClassifier(num_features=84, lstm_epochs=1)
    assert list(auto._candidates(500, 0)) == ["rocket", "rocket-hydra", "lstm-conv", "lstm"]
    assert list(auto._candidates(1025, 0)) == ["rocket", "multirocket", "lstm-conv"]  # MultiRocket, not + Hydra
