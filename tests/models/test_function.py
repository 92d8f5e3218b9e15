import warnings

import numpy as np
import pytest
import torch

from archkit.loading import load_model
from archkit.models import MODEL_KINDS, DomainError, DomainWarning, FunctionApproximator, FunctionApproximatorConfig
from archkit.train import FunctionFitConfig, fit_function, read_config, save_checkpoint


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(-2, 3, n), rng.uniform(-1, 1, n)])
    return X, np.sin(X[:, 0]) + X[:, 1]


def _fitted(features=("sin",), **kw):
    X, y = _data()
    model = FunctionApproximator(
        FunctionApproximatorConfig(in_dim=2, hidden=16, layers=2, features=list(features), input_names=["x", "y"], **kw)
    )
    result = fit_function(model, X, y, FunctionFitConfig(max_steps=60))
    return model, X, y, result


def test_fit_predict_shapes_and_stored_standardization():
    model, X, _y, result = _fitted(features=())
    pred = model.predict(X[:5])
    assert pred.shape == (5,)
    assert model.target_mean.shape == (1,) and model.feature_std.shape == (2,)
    assert result.n_train + result.n_val == len(X) and result.n_val == 60
    assert len(result.val_rmse) >= 1 and result.best_val_rmse <= result.val_rmse[0]
    assert model.domain_min.tolist() == pytest.approx(X.min(0).tolist())


def test_sin_prior_recovers_function_outside_the_domain():
    model, _X, _y, _ = _fitted()
    x_far = np.array([[5.0, 2.0], [-4.0, -1.5]])
    with pytest.warns(DomainWarning):
        pred = model.predict(x_far)
    np.testing.assert_allclose(pred, np.sin(x_far[:, 0]) + x_far[:, 1], atol=1e-3)


def test_domain_warning_fires_exactly_outside_the_bounds():
    model, X, _, _ = _fitted()
    lo, hi = X.min(0), X.max(0)
    at_bounds = np.array([lo, hi, [lo[0], hi[1]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(at_bounds)  # on the bounds: no warning
        model.predict(at_bounds, strict=True)
    just_out = np.array([[np.nextafter(hi[0], np.inf), 0.0]])
    with pytest.warns(DomainWarning, match=r"x: 1 of 1 values outside the training domain") as rec:
        model.predict(just_out)
    assert "y:" not in str(rec[0].message)
    with pytest.raises(DomainError, match=r"y: 1 of 2 values.*up to 0\.5 beyond"):
        model.predict(np.array([[0.0, hi[1] + 0.5], [0.0, 0.0]]), strict=True)


def test_save_load_round_trip(tmp_path):
    model, X, _, _ = _fitted(features=("sin@1,2:x", "fourier8@0.5", "poly2"))
    assert "FunctionApproximatorConfig" in MODEL_KINDS
    save_checkpoint(tmp_path / "ckpt", model, model.config)
    assert read_config(tmp_path / "ckpt")["kind"] == "FunctionApproximatorConfig"
    loaded = load_model(tmp_path / "ckpt")
    np.testing.assert_array_equal(loaded.predict(X[:20]), model.predict(X[:20]))
    torch.testing.assert_close(loaded.domain_max, model.domain_max)
    with pytest.warns(DomainWarning, match="x:"):
        loaded.predict(np.array([[100.0, 0.0]]))


def test_adam_and_linear_only_variants_train():
    X, y = _data()
    for cfg, kw in [
        (dict(layers=0, features=["sin"]), {}),
        (dict(hidden=8, layers=1), dict(optimizer="adam", max_steps=40)),
    ]:
        model = FunctionApproximator(FunctionApproximatorConfig(in_dim=2, **cfg))
        result = fit_function(model, X, y, FunctionFitConfig(**kw))
        assert np.isfinite(result.best_val_rmse)
        assert np.sqrt(np.mean((model.predict(X) - y) ** 2)) < np.std(y)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="activation"):
        FunctionApproximator(FunctionApproximatorConfig(in_dim=2, activation="swish"))
    with pytest.raises(ValueError, match="input_names"):
        FunctionApproximator(FunctionApproximatorConfig(in_dim=2, input_names=["x"]))
    model = FunctionApproximator(FunctionApproximatorConfig(in_dim=2, hidden=4, layers=1))
    with pytest.raises(ValueError, match="not been fitted"):
        model.predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2\)"):
        fit_function(model, np.zeros((10, 3)), np.zeros(10))
    X, y = _data(20)
    y[3] = np.nan
    with pytest.raises(ValueError, match="y row 3"):
        fit_function(model, X, y)
    with pytest.raises(ValueError, match="optimizer"):
        fit_function(model, X, np.zeros(20), FunctionFitConfig(optimizer="sgd"))
