"""Every number a user gives is bounded before work starts; a fit that diverges says so and saves no NaN model."""

import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from archkit.cli.main import cli

FIT = ["fit", "--samples", "50", "--hidden", "4", "--layers", "1", "--max-steps", "5"]


def _one_line(res, *words):
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    for w in words:
        assert w in res.output, res.output
    return res.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["--expr", "sin(x)", "--domain", "x=0:1", "--features", "fourier100000"], ["features", "fourier100000"]),
        (["--expr", "sin(x)", "--domain", "x=0:1", "--features", "poly500"], ["features", "poly500"]),
        (["--expr", "sin(x)", "--domain", "x=0:1", "--features", "sin@nan:x"], ["features", "nan"]),
        (["--expr", "sin(x)", "--domain", "x=0:1", "--features", "fourier8@inf"], ["features", "inf"]),
        (["--expr", "sin(x)", "--domain", "x=-1e308:1e308"], ["--domain"]),
        (["--expr", "sin(x)", "--domain", "x=0:nan"], ["--domain"]),
    ],
)
def test_fit_numbers_are_bounded_with_one_line(tmp_path, args, words):
    out = tmp_path / "out"
    _one_line(CliRunner().invoke(cli, [*FIT, *args, "--out", str(out)]), *words)
    assert not out.exists()  # refused before any work or file


def test_constant_expression_fits(tmp_path):
    res = CliRunner().invoke(cli, [*FIT, "--expr", "2", "--domain", "x=0:1", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "in-domain RMSE" in res.output


def test_fit_refuses_a_user_folder(tmp_path):
    (tmp_path / "thesis.txt").write_text("mine")
    res = CliRunner().invoke(cli, [*FIT, "--expr", "sin(x)", "--domain", "x=0:1", "--out", str(tmp_path)])
    _one_line(res, "thesis.txt")
    assert (tmp_path / "thesis.txt").read_text() == "mine"


def test_rejection_draws_are_capped_before_work(tmp_path):
    res = CliRunner().invoke(cli, ["sample", "--run", str(tmp_path), "--reject-with", "classifier", "--keep", "1e-9"])
    _one_line(res, "--keep")


def test_function_regressor_fits_huge_targets_like_ridge():
    from sklearn.linear_model import Ridge

    from archkit.estimators import FunctionRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (200, 2))
    y = (3 * X[:, 0] - X[:, 1] + 5) * 1e40  # finite; float32 overflows above 3.4e38
    ridge = Ridge(alpha=1e-6).fit(X, y).score(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FunctionRegressor(hidden=8, layers=1, max_steps=20, random_state=0).fit(X, y)
    pred = reg.predict(X)
    assert np.isfinite(pred).all() and reg.score(X, y) > ridge - 1e-3


def test_function_regressor_on_huge_inputs():
    from archkit.estimators import FunctionRegressor

    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (200, 1)) * 1e39
    y = X[:, 0] / 1e39
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FunctionRegressor(hidden=8, layers=1, max_steps=20, random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.99


def test_diverged_fit_is_an_error_not_a_nan_model():
    from archkit.estimators import FunctionRegressor

    X = np.linspace(-1, 1, 60)[:, None]
    with pytest.raises(ValueError, match="diverged"):
        FunctionRegressor(hidden=8, layers=2, optimizer="adam", lr=1e30, max_steps=40, random_state=0).fit(
            X, X[:, 0] ** 2
        )
