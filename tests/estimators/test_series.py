"""Series inputs: a likely aeon-ordered array under layout="ntc" warns once; NaN and inf are refused naming the row."""

import warnings

import numpy as np
import pytest

from archkit.estimators import LSTMClassifier, RocketClassifier
from archkit.estimators.series import as_padded_series
from archkit.utils import ArchkitWarning


def _layout_warnings(record):
    return [w for w in record if issubclass(w.category, ArchkitWarning) and 'layout="nct"' in str(w.message)]


@pytest.mark.parametrize("shape", [(20, 8, 512), (4, 3, 50)])
def test_fewer_steps_than_channels_under_ntc_warns_once_naming_nct(shape):
    x = np.zeros(shape, np.float32)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out, _, _ = as_padded_series(x, "ntc")
    assert out.shape == shape  # still read as asked: the warning says how to read it the other way
    assert len(_layout_warnings(record)) == 1
    assert f"{shape[1]} time steps of {shape[2]} channels" in str(_layout_warnings(record)[0].message)


def test_no_warning_when_the_reading_is_plausible_or_the_layout_is_given():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_padded_series(np.zeros((20, 512, 8), np.float32), "ntc")
        as_padded_series(np.zeros((20, 8, 512), np.float32), "nct")
        as_padded_series(np.zeros((20, 5), np.float32), "ntc")  # 2D: univariate series
        as_padded_series([np.zeros((30, 2)), np.zeros((12, 2))], "ntc")
    with pytest.warns(ArchkitWarning, match='layout="nct"'):  # a list of (C, T) series read as (T, C)
        as_padded_series([np.zeros((2, 30)), np.zeros((2, 30))], "ntc")


def test_estimators_warn_on_an_aeon_ordered_array():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 6, 40)).astype(np.float32)  # (n_cases, n_channels, n_timepoints)
    y = np.arange(12) % 2
    for est in (
        RocketClassifier(num_features=84, random_state=0),
        LSTMClassifier(hidden=4, epochs=1, conv_channels=4, fcn_channels=0, random_state=0),
    ):
        with pytest.warns(ArchkitWarning, match='pass layout="nct"'):
            est.fit(x, y)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            est.set_params(layout="nct").fit(x, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused_naming_the_first_bad_row(bad):
    x = np.zeros((6, 10, 2), np.float32)
    x[4, 3, 1] = bad
    x[5, 0, 0] = bad
    with pytest.raises(ValueError, match=r"^X: row 4 holds .*(NaN or inf)"):
        as_padded_series(x, "ntc")
    with pytest.raises(ValueError, match=r"^X: row 1 holds"):
        as_padded_series([np.zeros((5, 2)), x[4]], "ntc")


def test_fitted_estimators_refuse_non_finite_series_at_predict():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 30, 2)).astype(np.float32)
    y = np.arange(12) % 2
    bad = x.copy()
    bad[7, 2, 0] = np.nan
    for est in (
        RocketClassifier(num_features=84, random_state=0),
        LSTMClassifier(hidden=4, epochs=1, conv_channels=4, fcn_channels=0, random_state=0),
    ):
        est.fit(x, y)
        with pytest.raises(ValueError, match=r"^X: row 7 holds nan"):
            est.predict(bad)
