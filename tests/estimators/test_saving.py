"""save / load of fitted sequence estimators as safetensors + JSON: identical predictions, clear errors, no pickle."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from archkit.estimators import AutoSequenceClassifier, LSTMClassifier, RocketClassifier, load_estimator
from archkit.estimators.saving import CONFIG, TENSORS


def _data(n=24, steps=32, channels=2, seed=0, labels=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    y = np.array([labels[i % len(labels)] for i in range(n)])
    x = rng.standard_normal((n, steps, channels)).astype(np.float32)
    for k, name in enumerate(labels):
        x[y == name, 4 * k : 4 * k + 6, 0] += 3.0
    return x, y


def _no_unpickling(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"head": "logistic"},
        {"features": "minirocket+hydra"},
        {"features": "multirocket", "num_features": 672},
        {"features": "hydra", "labels": (3, 7)},
    ],
)
def test_rocket_round_trip_predicts_identically(tmp_path, monkeypatch, params):
    params = dict(params)
    x, y = _data(labels=params.pop("labels", ("a", "b", "c")))
    clf = RocketClassifier(**{"num_features": 168, "random_state": 0, "device": "cpu", **params}).fit(x, y)
    clf.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [CONFIG, TENSORS]
    _no_unpickling(monkeypatch)
    back = RocketClassifier.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict(x), clf.predict(x))
    np.testing.assert_array_equal(back.predict_proba(x), clf.predict_proba(x))
    np.testing.assert_array_equal(back.decision_function(x), clf.decision_function(x))
    assert back.get_params() == clf.get_params() and back.classes_.dtype == clf.classes_.dtype
    pickle.dumps(back)  # still pickles for scikit-learn


def test_streamed_fit_round_trip(tmp_path):
    from archkit.data.sequences import from_arrays

    x, y = _data()
    clf = RocketClassifier(num_features=168, random_state=0, device="cpu").fit_shards(from_arrays(x, y))
    back = RocketClassifier.load(clf.save(tmp_path / "m"))
    np.testing.assert_array_equal(back.predict_proba(x), clf.predict_proba(x))
    assert back.fit_info_["cases"] == 24


def test_lstm_and_auto_round_trip(tmp_path, monkeypatch):
    x, y = _data(n=12, steps=16, labels=("a", "b"))
    lstm = LSTMClassifier(hidden=4, conv_channels=4, fcn_channels=4, epochs=1, random_state=0, device="cpu")
    lstm.fit(x, y)
    auto = AutoSequenceClassifier(candidates=["rocket"], cv=2, num_features=84, random_state=0, device="cpu").fit(x, y)
    lstm.save(tmp_path / "lstm")
    auto.save(tmp_path / "auto")
    _no_unpickling(monkeypatch)
    back = LSTMClassifier.load(tmp_path / "lstm")
    np.testing.assert_array_equal(back.predict_proba(x), lstm.predict_proba(x))
    back_auto = load_estimator(tmp_path / "auto")
    assert isinstance(back_auto, AutoSequenceClassifier) and back_auto.best_name_ == "rocket"
    np.testing.assert_array_equal(back_auto.predict_proba(x), auto.predict_proba(x))
    assert back_auto.cv_results_ == json.loads(json.dumps(auto.cv_results_))
    with pytest.raises(ValueError, match="holds a LSTMClassifier, not a RocketClassifier"):
        RocketClassifier.load(tmp_path / "lstm")


def test_missing_changed_or_tampered_files_are_refused(tmp_path):
    x, y = _data()
    folder = RocketClassifier(num_features=84, random_state=0, device="cpu").fit(x, y).save(tmp_path / "m")
    config = json.loads((folder / CONFIG).read_text())
    with pytest.raises(FileNotFoundError, match=r"not a saved archkit estimator \(missing \['estimator.json'"):
        RocketClassifier.load(tmp_path)
    (folder / CONFIG).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        RocketClassifier.load(folder)
    (folder / CONFIG).write_text(json.dumps({**config, "head_kind": "forest"}))
    with pytest.raises(ValueError, match=r"inconsistent RocketClassifier.*forest"):
        RocketClassifier.load(folder)
    (folder / CONFIG).write_text(json.dumps({**config, "transform": {**config["transform"], "in_channels": 1}}))
    with pytest.raises(ValueError, match="inconsistent RocketClassifier"):
        RocketClassifier.load(folder)
    (folder / CONFIG).write_text(json.dumps({**config, "format": "other"}))
    with pytest.raises(ValueError, match="not an archkit-estimator config"):
        RocketClassifier.load(folder)
    (folder / CONFIG).write_text(json.dumps(config))
    RocketClassifier.load(folder)
    (folder / TENSORS).write_bytes((folder / TENSORS).read_bytes()[:-4])
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        RocketClassifier.load(folder)
    (folder / TENSORS).unlink()
    with pytest.raises(FileNotFoundError, match=r"estimator\.safetensors"):
        RocketClassifier.load(folder)
