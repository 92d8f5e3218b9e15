"""archkit.aeon's classifiers: the delegation to RocketClassifier, aeon's input forms, n_jobs, pipelines, ensembles."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("aeon", reason="the `seq` extra (aeon) is not installed")

from aeon.classification.compose import ClassifierEnsemble, ClassifierPipeline
from aeon.transformations.collection import Normalizer

from archkit.aeon import HydraClassifier, MiniRocketClassifier, MultiRocketClassifier
from archkit.estimators import RocketClassifier

SMALL = {"n_kernels": 84, "max_dilations_per_kernel": 4, "device": "cpu"}


def waves(n: int, seed: int, lengths: tuple[int, int] | None = None, channels: int = 2):
    """Two classes told apart by frequency (slow / fast sine, random phase, noise): aeon's (C, T) per case."""
    rng = np.random.default_rng(seed)
    y = np.array(["slow", "fast"] * (n // 2))
    series = []
    for label in y:
        t = np.arange(rng.integers(*lengths) if lengths else 40)
        freq = 0.15 if label == "slow" else 0.6
        phase = rng.uniform(0, 2 * np.pi, (channels, 1))
        series.append(np.sin(freq * t + phase) + 0.2 * rng.standard_normal((channels, len(t))))
    return (series if lengths else np.stack(series)), y


def test_import_archkit_leaves_aeon_out_and_archkit_aeon_names_the_extra():
    code = (
        "import sys, archkit\n"
        "assert 'archkit.aeon' not in sys.modules and 'aeon' not in sys.modules, 'import archkit imported aeon'\n"
        "sys.modules['aeon'] = None  # as if aeon were not installed\n"
        "try:\n    import archkit.aeon\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "archkit.aeon needs aeon" in out.stdout and "pip install 'archkit[seq]'" in out.stdout


@pytest.mark.parametrize(
    "cls,features",
    [(MiniRocketClassifier, "minirocket"), (MultiRocketClassifier, "multirocket"), (HydraClassifier, "hydra")],
)
def test_same_numbers_as_the_rocket_classifier_it_wraps(cls, features):
    X, y = waves(20, 0)
    params = {} if cls is HydraClassifier else SMALL
    clf = cls(random_state=3, **{**params, "device": "cpu"}).fit(X, y)
    num = (
        {"num_features": 84 * (8 if features == "multirocket" else 1), "max_dilations_per_kernel": 4} if params else {}
    )
    ref = RocketClassifier(features=features, layout="nct", device="cpu", random_state=3, **num).fit(X, y)
    Xt, _ = waves(10, 1)
    np.testing.assert_array_equal(clf.predict_proba(Xt), ref.predict_proba(Xt))
    np.testing.assert_array_equal(clf.predict(Xt), ref.predict(Xt))
    assert list(clf.classes_) == ["fast", "slow"] and clf.rocket_.features == features


def test_n_kernels_counts_features_as_aeon_does():
    X, y = waves(10, 0)
    # aeon 1.6: MiniRocket(n_kernels=10000) has 9,996 features, MultiRocket(n_kernels=10000) 79,968
    mini = MiniRocketClassifier(device="cpu", random_state=0).fit(X, y)
    multi = MultiRocketClassifier(device="cpu", random_state=0).fit(X, y)
    assert mini.rocket_.transform_.num_features == 9_996
    assert multi.rocket_.transform_.num_features == 79_968


def test_unequal_lengths_each_case_from_its_own_steps():
    X, y = waves(24, 0, lengths=(20, 60))
    clf = MiniRocketClassifier(random_state=0, **SMALL).fit(X, y)
    Xt, yt = waves(12, 1, lengths=(20, 60))
    together = clf.predict_proba(Xt)
    alone = np.concatenate([clf.predict_proba([s]) for s in Xt])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    assert clf.score(Xt, yt) >= 0.9


def test_n_jobs_sets_torch_threads_for_the_call_only_and_keeps_the_numbers():
    from aeon.testing.estimator_checking._yield_multithreading_checks import check_estimator_multithreading

    X, y = waves(20, 0)
    before = torch.get_num_threads()
    one = MiniRocketClassifier(random_state=0, n_jobs=1, **SMALL).fit(X, y)
    two = MiniRocketClassifier(random_state=0, n_jobs=2, **SMALL).fit(X, y)
    assert torch.get_num_threads() == before and (one._n_jobs, two._n_jobs) == (1, 2)
    np.testing.assert_array_equal(one.predict(X), two.predict(X))
    # aeon's own multithreading check, which aeon's configuration leaves off by default
    for datatype in (
        "EqualLengthMultivariate-Classification-numpy3D",
        "UnequalLengthMultivariate-Classification-np-list",
    ):
        check_estimator_multithreading(MiniRocketClassifier(**SMALL), datatype)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"n_kernels": 0}, "n_kernels: expected an int"),
        ({"n_kernels": 2.5}, "n_kernels: expected an int"),
        ({"n_jobs": 10**6}, "n_jobs: expected None or an int"),
        ({"n_jobs": "all"}, "n_jobs: expected None or an int"),
        ({"device": "gpu"}, "device: expected"),
        ({"precision": "64"}, "precision: expected"),
        ({"head": "svm"}, "head: expected"),
    ],
)
def test_bad_parameters_fail_in_fit_naming_them(params, match):
    X, y = waves(10, 0)
    with pytest.raises(ValueError, match=match):
        MiniRocketClassifier(**{**SMALL, **params}).fit(X, y)


def test_in_aeon_pipeline_with_a_transformer():
    X, y = waves(24, 0, lengths=(20, 60))
    Xt, yt = waves(12, 1, lengths=(20, 60))
    pipe = ClassifierPipeline([Normalizer()], MiniRocketClassifier(random_state=0, **SMALL), random_state=0)
    assert pipe.get_tag("capability:unequal_length")
    pipe.fit(X, y)
    assert pipe.score(Xt, yt) >= 0.9
    (_, normalizer), (_, fitted) = pipe.steps_  # the pipeline's fitted clones
    assert isinstance(fitted, MiniRocketClassifier) and fitted.is_fitted
    np.testing.assert_allclose(pipe.predict_proba(Xt), fitted.predict_proba(normalizer.transform(Xt)), rtol=1e-6)


def test_in_aeon_ensemble_with_aeon_classifiers():
    from aeon.classification import DummyClassifier

    X, y = waves(24, 0)
    Xt, yt = waves(12, 1)
    members = [MiniRocketClassifier(**SMALL), HydraClassifier(device="cpu"), DummyClassifier()]
    ens = ClassifierEnsemble(members, random_state=0).fit(X, y)
    proba = ens.predict_proba(Xt)
    assert proba.shape == (12, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert ens.score(Xt, yt) >= 0.9
