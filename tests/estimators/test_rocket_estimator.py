"""RocketClassifier: scikit-learn's checks, input forms, unequal lengths, pickling, ONNX, accuracy; Hydra features, auto."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from archkit.estimators import AutoSequenceClassifier
from archkit.estimators import rocket as rocket_module
from archkit.estimators.auto import AUTO_CANDIDATES, CANDIDATES, make_candidate
from archkit.estimators.rocket import EXPECTED_FAILED_CHECKS, RocketClassifier
from archkit.layers import Hydra, MiniRocket, MultiRocket

TINY = dict(num_features=168, random_state=0)


def toy(n: int = 40, steps: int = 30, channels: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, steps, channels) series; the label says whether channel 0 drifts up or down."""
    rng = np.random.default_rng(seed)
    up = rng.integers(0, 2, n)
    x = 0.3 * rng.standard_normal((n, steps, channels))
    x[:, :, 0] += np.linspace(-1, 1, steps)[None, :] * (2 * up - 1)[:, None]
    return x.astype(np.float32), np.array(["down", "up"])[up]


@parametrize_with_checks(
    [RocketClassifier(num_features=84, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
    xfail_strict=True,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_layouts_and_lists_give_the_same_predictions():
    x, y = toy()
    ntc = RocketClassifier(**TINY).fit(x, y)
    nct = RocketClassifier(**TINY, layout="nct").fit(x.transpose(0, 2, 1), y)
    as_list = RocketClassifier(**TINY).fit(list(x), y)
    ref = ntc.decision_function(x)
    np.testing.assert_allclose(nct.decision_function(x.transpose(0, 2, 1)), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(as_list.decision_function(list(x)), ref, rtol=1e-5, atol=1e-5)
    assert ntc.score(x, y) == 1.0
    with (
        pytest.warns(UserWarning, match='pass layout="nct"'),
        pytest.raises(ValueError, match="X has 30 channels, but RocketClassifier is expecting 2"),
    ):
        ntc.predict(x.transpose(0, 2, 1))


def test_a_series_predicts_the_same_alone_and_among_longer_ones():
    x, y = toy(steps=60)
    rng = np.random.default_rng(1)
    series = [x[i, : rng.integers(12, 61)] for i in range(len(x))]
    clf = RocketClassifier(**TINY).fit(series, y)
    short = series[0][:15]
    longer = [np.concatenate([s, 5 * np.ones((20, 2), np.float32)]) for s in series[1:6]]
    alone = clf.decision_function([short, short[:14]])[0]
    among = clf.decision_function([short, *longer])[0]
    np.testing.assert_allclose(alone, among, rtol=1e-6, atol=1e-6)


def test_pickle_reloads_with_identical_predictions_and_heads(monkeypatch):
    x, y = toy()
    for head in ("ridge", "logistic"):
        clf = RocketClassifier(**TINY, head=head).fit(x, y)
        assert clf.head_kind_ == head
        again = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(again.predict_proba(x), clf.predict_proba(x))
        np.testing.assert_array_equal(again.predict(x), clf.predict(x))
    monkeypatch.setattr(rocket_module, "AUTO_LOGISTIC_ABOVE", 10)
    assert RocketClassifier(**TINY).fit(x, y).head_kind_ == "logistic"
    with pytest.raises(ValueError, match="head: expected one of"):
        RocketClassifier(head="svm").fit(x, y)
    with pytest.raises(ValueError, match="num_features"):
        RocketClassifier(num_features=10**9).fit(x, y)
    with pytest.raises(ValueError, match="method: expected one of"):
        RocketClassifier(method="fft").fit(x, y)
    old = RocketClassifier(**TINY, method="exact").fit(x, y)
    del old.__dict__["method"]  # pickled before `method` existed: its transform's method
    assert pickle.loads(pickle.dumps(old)).get_params()["method"] == "exact"


@pytest.mark.parametrize(("masked", "method"), [(False, "conv"), (True, "conv"), (True, "exact")])
def test_onnx_export_matches_the_estimator(tmp_path, masked, method):
    pytest.importorskip("onnxruntime")
    from archkit.surgery.export import export_model

    x, y = toy(n=30, steps=50, channels=3)
    y = np.array(["a", "b", "c"])[np.arange(30) % 3]
    clf = RocketClassifier(**TINY, method=method).fit(x, y)
    assert clf.transform_.method == method
    module = clf.to_module().eval()
    xt = torch.from_numpy(x.transpose(0, 2, 1).copy())
    lengths = torch.from_numpy(np.random.default_rng(0).integers(10, 51, 30)) if masked else None
    series = [x[i, : int(n)] for i, n in enumerate(lengths)] if masked else x
    np.testing.assert_allclose(
        module(xt, lengths).detach().numpy(), clf.decision_function(series), rtol=1e-4, atol=1e-4
    )
    result = export_model(module, (xt, lengths) if masked else xt, tmp_path / "rocket.onnx", rtol=1e-4)
    assert result.checked_with == "onnxruntime" and result.rel_error <= 1e-4


def test_accuracy_on_a_bundled_multivariate_set():
    from archkit.data import load_real_dataset

    data = load_real_dataset("BasicMotions")
    clf = RocketClassifier(num_features=2_000, random_state=0).fit(data.x_train, data.y_train)
    assert clf.score(data.x_test, data.y_test) >= 0.9  # aeon's MiniRocketClassifier scores 1.0 here


# --- Hydra features (features="hydra" | "minirocket+hydra") -------------------------------------
@parametrize_with_checks(
    [
        RocketClassifier(num_features=84, features=f, random_state=0)
        for f in ("hydra", "minirocket+hydra", "multirocket", "multirocket+hydra")
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
    xfail_strict=True,
)
def test_sklearn_compatible_with_hydra_and_multirocket_features(estimator, check):
    check(estimator)


@pytest.mark.parametrize("features", ["hydra", "minirocket+hydra", "multirocket", "multirocket+hydra"])
def test_layouts_lists_pickle_and_module_agree(features):
    x, y = toy()
    ntc = RocketClassifier(**TINY, features=features).fit(x, y)
    assert isinstance(ntc.hydra_, Hydra) == features.endswith("hydra") and (ntc.transform_ is None) == (
        features == "hydra"
    )
    if features.startswith("multirocket"):  # 168 rounded up to one feature per kernel, pooling and representation
        assert isinstance(ntc.transform_, MultiRocket) and ntc.transform_.num_features == 8 * 84
    nct = RocketClassifier(**TINY, features=features, layout="nct").fit(x.transpose(0, 2, 1), y)
    as_list = RocketClassifier(**TINY, features=features).fit(list(x), y)
    ref = ntc.decision_function(x)
    np.testing.assert_allclose(nct.decision_function(x.transpose(0, 2, 1)), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(as_list.decision_function(list(x)), ref, rtol=1e-5, atol=1e-5)
    assert ntc.score(x, y) == 1.0
    for head in ("ridge", "logistic"):
        clf = RocketClassifier(**TINY, features=features, head=head).fit(x, y)
        again = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(again.predict_proba(x), clf.predict_proba(x))
        np.testing.assert_array_equal(again.predict(x), clf.predict(x))
    scores = ntc.to_module()(torch.from_numpy(x.transpose(0, 2, 1).copy())).detach().numpy()
    np.testing.assert_allclose(scores[:, 0], ref, rtol=1e-4, atol=1e-4)
    width = sum(0 if m is None else m.num_features for m in (ntc.hydra_, ntc.transform_))
    assert np.atleast_2d(ntc.head_.coef_).shape[1] == width


def test_hydra_features_change_the_model_and_minirocket_stays_the_default():
    x, y = toy()
    plain = RocketClassifier(**TINY).fit(x, y)
    assert plain.get_params()["features"] == "minirocket" and plain.hydra_ is None
    assert isinstance(plain.transform_, MiniRocket)
    both = RocketClassifier(**TINY, features="minirocket+hydra").fit(x, y)
    assert (
        np.atleast_2d(both.head_.coef_).shape[1] == np.atleast_2d(plain.head_.coef_).shape[1] + both.hydra_.num_features
    )
    old = RocketClassifier(**TINY).fit(x, y)
    for name in ("features", "hydra_", "hydra_scaler_", "n_kernels", "n_groups"):  # pickled before Hydra
        del old.__dict__[name]
    back = pickle.loads(pickle.dumps(old))
    assert back.get_params()["features"] == "minirocket"
    np.testing.assert_array_equal(back.decision_function(x), plain.decision_function(x))
    with pytest.raises(
        ValueError, match=r"features: expected one of \['minirocket', 'hydra', 'minirocket\+hydra', 'multi"
    ):
        RocketClassifier(features="rocket").fit(x, y)


def test_hydra_kernels_and_groups_reach_the_transform_in_memory_streamed_and_saved(tmp_path):
    from archkit.data.sequences import from_arrays
    from archkit.estimators import load_estimator

    x, y = toy()
    default = RocketClassifier(**TINY, features="hydra", device="cpu").fit(x, y)
    small = RocketClassifier(**TINY, features="hydra", n_kernels=4, n_groups=16, device="cpu").fit(x, y)
    assert default.hydra_.num_kernels == 8 and small.hydra_.num_kernels == 4
    assert small.hydra_.num_features * 8 == default.hydra_.num_features  # 4 x 16 kernels a dilation, not 8 x 64
    streamed = RocketClassifier(**TINY, features="hydra", n_kernels=4, n_groups=16, device="cpu")
    streamed.fit_shards(from_arrays(x, (y == "up").astype(np.int64)))
    assert streamed.hydra_.num_kernels == 4 and streamed.hydra_.num_features == small.hydra_.num_features
    back = load_estimator(small.save(tmp_path / "small"))
    assert back.get_params()["n_kernels"] == 4 and back.get_params()["n_groups"] == 16
    np.testing.assert_array_equal(back.predict_proba(x), small.predict_proba(x))
    for name, bad in (("n_kernels", 0), ("n_groups", 4097), ("n_groups", 2.0), ("n_kernels", True)):
        with pytest.raises(ValueError, match=rf"{name}: expected an int in \[1, 4096\], got {bad!r}"):
            RocketClassifier(**TINY, features="hydra", **{name: bad}).fit(x, y)


@pytest.mark.parametrize("features", ["hydra", "minirocket+hydra", "multirocket"])
def test_with_hydra_a_series_predicts_the_same_alone_and_among_longer_ones(features):
    x, y = toy(steps=60)
    rng = np.random.default_rng(1)
    series = [x[i, : rng.integers(12, 61)] for i in range(len(x))]
    clf = RocketClassifier(**TINY, features=features).fit(series, y)
    short = series[0][:15]
    longer = [np.concatenate([s, 5 * np.ones((20, 2), np.float32)]) for s in series[1:6]]
    alone = clf.decision_function([short, short[:14]])[0]
    among = clf.decision_function([short, *longer])[0]
    np.testing.assert_allclose(alone, among, rtol=1e-6, atol=1e-6)
    assert clf.predict([x[0, :5]]).shape == (1,)  # shorter than a kernel: zero-padded to 9 steps (10: MultiRocket)


def test_auto_candidates_hydra_and_rocket_hydra():
    assert {"hydra", "rocket-hydra"} <= set(CANDIDATES) and set(AUTO_CANDIDATES) <= set(CANDIDATES)
    est = make_candidate("rocket-hydra", 30, 1, 168, "cpu", "32", 0)
    assert isinstance(est, RocketClassifier) and est.features == "minirocket+hydra"
    assert make_candidate("hydra", 30, 1, 168, "cpu", "32", 0).features == "hydra"
    x, y = toy(n=24)
    auto = AutoSequenceClassifier(candidates=["hydra", "rocket-hydra"], cv=2, num_features=168, random_state=0)
    auto.fit(x, y)
    assert set(auto.cv_results_) == {"hydra", "rocket-hydra"}
    assert auto.best_estimator_.features == {"hydra": "hydra", "rocket-hydra": "minirocket+hydra"}[auto.best_name_]
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(auto)).predict(x), auto.predict(x))


def test_hydra_accuracy_on_a_bundled_multivariate_set():
    from archkit.data import load_real_dataset

    data = load_real_dataset("BasicMotions")
    clf = RocketClassifier(features="hydra", random_state=0).fit(data.x_train, data.y_train)
    assert clf.score(data.x_test, data.y_test) >= 0.9  # aeon's HydraClassifier scores 1.0 here


def test_auto_candidates_multirocket():
    assert {"multirocket", "multirocket-hydra"} <= set(CANDIDATES)
    est = make_candidate("multirocket", 30, 1, 168, "cpu", "32", 0)
    assert isinstance(est, RocketClassifier) and est.features == "multirocket" and est.num_features == 5 * 168
    assert make_candidate("multirocket-hydra", 30, 1, 168, "cpu", "32", 0).features == "multirocket+hydra"
    x, y = toy(n=24)
    auto = AutoSequenceClassifier(candidates=["rocket", "multirocket"], cv=2, num_features=168, random_state=0)
    auto.fit(x, y)
    assert set(auto.cv_results_) == {"rocket", "multirocket"}
    assert isinstance(auto.best_estimator_.transform_, MultiRocket) == (auto.best_name_ == "multirocket")
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(auto)).predict(x), auto.predict(x))


@pytest.mark.parametrize("features", ["hydra", "multirocket"])
def test_features_computed_per_case_refuse_export_with_a_clear_error(tmp_path, features):
    from archkit.surgery.export import export_model

    x, y = toy(n=20, steps=30, channels=2)
    size = 8 * 84 if features == "multirocket" else 84
    module = RocketClassifier(num_features=size, features=features, random_state=0).fit(x, y).to_module().eval()
    xt = torch.from_numpy(x.transpose(0, 2, 1).copy())
    with pytest.raises(Exception, match="do not export"):
        export_model(module, xt, tmp_path / "rocket.pt2")
    assert not (tmp_path / "rocket.pt2").exists()
