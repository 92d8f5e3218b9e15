"""LSTMClassifier: input forms (aeon layout, unequal-length lists), padding invariance, determinism, sklearn tools."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from archkit.estimators import LSTMClassifier, as_padded_series

TINY = dict(hidden=8, conv_channels=8, fcn_channels=4, epochs=3, batch_size=16, random_state=0)


def toy(n: int = 48, steps: int = 24, channels: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, steps, channels) series; the label says whether channel 0 drifts up or down."""
    rng = np.random.default_rng(seed)
    up = rng.integers(0, 2, n)
    trend = np.linspace(-1, 1, steps)[None, :] * (2 * up - 1)[:, None]
    x = 0.3 * rng.standard_normal((n, steps, channels))
    x[:, :, 0] += trend
    return x.astype(np.float32), np.array(["down", "up"])[up]


def test_string_labels_and_fitted_attributes():
    x, y = toy()
    clf = LSTMClassifier(**TINY).fit(x, y)
    assert list(clf.classes_) == ["down", "up"]
    assert clf.n_features_in_ == 2
    proba = clf.predict_proba(x)
    assert proba.shape == (len(x), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert set(clf.predict(x)) <= {"down", "up"}
    assert 0.0 <= clf.score(x, y) <= 1.0


def test_two_fits_with_one_random_state_are_identical_and_another_seed_differs():
    x, y = toy()
    a = LSTMClassifier(**TINY).fit(x, y).predict_proba(x)
    b = LSTMClassifier(**TINY).fit(x, y).predict_proba(x)
    c = LSTMClassifier(**{**TINY, "random_state": 1}).fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_aeon_layout_gives_the_same_model_as_the_default_layout():
    x, y = toy()
    ntc = LSTMClassifier(**TINY).fit(x, y)
    nct = LSTMClassifier(**{**TINY, "layout": "nct"}).fit(x.transpose(0, 2, 1), y)
    np.testing.assert_allclose(ntc.predict_proba(x), nct.predict_proba(x.transpose(0, 2, 1)), rtol=1e-5, atol=1e-6)
    with (
        pytest.warns(UserWarning, match='pass layout="nct"'),
        pytest.raises(ValueError, match="X has 24 channels, but LSTMClassifier is expecting 2"),
    ):
        ntc.predict(x.transpose(0, 2, 1))  # the wrong layout reads T as channels: a warning, a clear error


def test_a_series_predicts_the_same_alone_and_in_a_batch_with_longer_ones():
    x, y = toy(steps=40)
    rng = np.random.default_rng(1)
    series = [x[i, : rng.integers(10, 41)] for i in range(len(x))]  # unequal lengths, (T, C) each
    clf = LSTMClassifier(**TINY).fit(series, y)
    short = series[0][:12]
    longer = [np.concatenate([s, 5 * np.ones((20, 2), np.float32)]) for s in series[1:6]]  # padding would be far from 0
    alone = clf.predict_proba([short])
    batched = clf.predict_proba([short, *longer])
    np.testing.assert_allclose(alone[0], batched[0], rtol=1e-5, atol=1e-6)
    assert clf.predict([short])[0] == clf.predict([short, *longer])[0]


def test_padded_series_keep_true_lengths_in_both_layouts():
    a, b = np.ones((5, 3)), np.ones((2, 3))
    x, lengths, form = as_padded_series([a, b], "ntc")
    assert x.shape == (2, 5, 3) and list(lengths) == [5, 2] and form == "list"
    assert np.all(x[1, 2:] == 0)
    x, lengths, _ = as_padded_series([a.T, b.T], "nct")
    assert x.shape == (2, 5, 3) and list(lengths) == [5, 2]
    x, lengths, form = as_padded_series(np.ones((4, 7)), "ntc")  # 2D: univariate series, like aeon
    assert x.shape == (4, 7, 1) and lengths is None and form == "2d"
    with pytest.raises(ValueError, match="same number of channels"):
        as_padded_series([np.ones((5, 3)), np.ones((5, 2))], "ntc")
    with pytest.raises(ValueError, match="layout"):
        as_padded_series([a], "tnc")


def test_bad_parameters_fail_at_fit_naming_the_parameter():
    x, y = toy(n=8)
    for params, match in (
        (dict(device="gpu"), "device"),
        (dict(precision="fp8"), "precision"),
        (dict(layout="xyz"), "layout"),
    ):
        with pytest.raises(ValueError, match=match):
            LSTMClassifier(**{**TINY, **params}).fit(x, y)


def test_grid_search_and_cross_val_score_in_a_pipeline():
    x, y = toy(n=40)
    scores = cross_val_score(LSTMClassifier(**TINY), x, y, cv=2)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    grid = GridSearchCV(make_pipeline(LSTMClassifier(**TINY)), {"lstmclassifier__hidden": [4, 8]}, cv=2)
    grid.fit(x, y)
    assert grid.best_params_["lstmclassifier__hidden"] in (4, 8)
    assert len(grid.cv_results_["mean_test_score"]) == 2
    assert set(grid.predict(x)) <= {"down", "up"}


def test_learns_an_easy_task():
    x, y = toy(n=64, seed=3)
    xt, yt = toy(n=64, seed=4)
    clf = LSTMClassifier(**{**TINY, "epochs": 15}).fit(x, y)
    assert clf.score(xt, yt) >= 0.9
