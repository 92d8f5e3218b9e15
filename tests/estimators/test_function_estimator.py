"""FunctionRegressor: fit/predict/score, multi-output, domain warnings, determinism, sklearn tools."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score

from archkit.estimators import FunctionRegressor
from archkit.models import DomainError, DomainWarning

TINY = dict(hidden=8, layers=1, max_steps=60, random_state=0)


def data(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (n, 2))
    return x, np.sin(x[:, 0]) + 0.5 * x[:, 1]


def test_fits_a_smooth_function_with_a_prior():
    x, y = data()
    reg = FunctionRegressor(**{**TINY, "features": ("sin",)}).fit(x, y)
    xt, yt = data(seed=1)
    xt = np.clip(xt, x.min(0), x.max(0))
    assert reg.score(xt, yt) > 0.99
    assert reg.n_features_in_ == 2 and reg.predict(xt).shape == (len(xt),)


def test_multi_output_and_determinism():
    x, y = data()
    y2 = np.stack([y, -y], 1)
    a = FunctionRegressor(**TINY).fit(x, y2).predict(x)
    b = FunctionRegressor(**TINY).fit(x, y2).predict(x)
    assert a.shape == (len(x), 2)
    np.testing.assert_array_equal(a, b)


def test_out_of_domain_warns_raises_or_is_ignored_as_asked():
    x, y = data()
    far = np.array([[10.0, 0.0]])
    with pytest.warns(DomainWarning):
        FunctionRegressor(**TINY).fit(x, y).predict(far)
    with pytest.raises(DomainError):
        FunctionRegressor(**{**TINY, "out_of_domain": "raise"}).fit(x, y).predict(far)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        FunctionRegressor(**{**TINY, "out_of_domain": "ignore"}).fit(x, y).predict(far)
    with pytest.raises(ValueError, match="out_of_domain"):
        FunctionRegressor(**{**TINY, "out_of_domain": "maybe"}).fit(x, y)


def test_grid_search_and_cross_val_score():
    x, y = data()
    scores = cross_val_score(FunctionRegressor(**TINY, out_of_domain="ignore"), x, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)
    grid = GridSearchCV(FunctionRegressor(**TINY, out_of_domain="ignore"), {"features": [(), ("sin",)]}, cv=3).fit(x, y)
    assert grid.best_params_["features"] == ("sin",)  # the matching prior wins on held-out folds
