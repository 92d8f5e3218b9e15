"""MiniRocket in torch: aeon's features from aeon's parameters, aeon's fit, unequal lengths, state dicts."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from archkit.layers.rocket import MiniRocket, fit_dilations

aeon_rocket = pytest.importorskip("aeon.transformations.collection.convolution_based")
aeon_datasets = pytest.importorskip("aeon.datasets")


def bundled(name: str, split: str = "train") -> np.ndarray:
    from pathlib import Path

    x, _ = aeon_datasets.load_classification(
        name, split=split, extract_path=str(Path(aeon_datasets.__file__).parent / "data")
    )
    return x.astype(np.float32)


@pytest.mark.parametrize("name", ["BasicMotions", "GunPoint", "ArrowHead", "ItalyPowerDemand"])
def test_features_equal_aeons_given_aeons_parameters(name):
    x = bundled(name)
    fitted = aeon_rocket.MiniRocket(n_kernels=10_000, random_state=1).fit(x)
    module = MiniRocket.from_aeon(fitted)
    assert module.method == "exact"  # from_aeon's default
    for data in (x, bundled(name, "test")):
        ref = fitted.transform(data)
        ours = module(torch.from_numpy(data)).numpy()
        assert ours.shape == ref.shape
        # The outputs are summed in aeon's order and rounded as aeon rounds them (float32): the same features,
        # even where an output ties a bias to within float32 rounding (GunPoint's few distinct values make
        # such ties frequent: 47 of its training split's 499,800 features flipped with conv1d's order).
        assert np.linalg.norm(ours - ref) / np.linalg.norm(ref) <= 1e-4
        np.testing.assert_array_equal(ours, ref)


def test_conv_equals_exact_except_at_float32_ties():
    x = bundled("ItalyPowerDemand")  # 24 steps: the most ties of the bundled sets
    fitted = aeon_rocket.MiniRocket(n_kernels=10_000, random_state=1).fit(x)
    exact = MiniRocket.from_aeon(fitted)(torch.from_numpy(x)).numpy()
    conv = MiniRocket.from_aeon(fitted, method="conv")(torch.from_numpy(x)).numpy()
    diff = np.abs(conv - exact)
    assert np.linalg.norm(conv - exact) / np.linalg.norm(exact) <= 2e-3  # 1.28e-3 measured
    # conv1d sums in another order: an output within float32 rounding of a bias may fall on its other side,
    # one position of one feature (91 of the 669,732 features here, each by one position of 8 or more)
    assert (diff > 0).mean() <= 3e-4, (diff > 0).sum()
    positions = x.shape[2] - 8 * int(fitted.parameters[2].max())  # the fewest any feature pools over
    assert diff.max() <= 2 / positions + 1e-6


@pytest.mark.parametrize("method", ["exact", "conv"])
def test_a_case_gives_the_same_features_in_any_batch(method):
    x = np.random.default_rng(2).standard_normal((7, 3, 200)).astype(np.float32)
    module = MiniRocket.fit(x, num_features=840, seed=0, method=method)
    together = module(torch.from_numpy(x))
    for i in (0, 3, 6):
        assert torch.equal(module(torch.from_numpy(x[i : i + 1])), together[i : i + 1])
    assert torch.equal(module(torch.from_numpy(x[2:5])), together[2:5])


def test_fit_gives_aeons_parameters():
    x = bundled("BasicMotions")
    ref = aeon_rocket.MiniRocket(n_kernels=1_000, random_state=7).fit(x)
    ours = MiniRocket.fit(x, num_features=1_000, seed=7)
    counts, indices, dilations, nfd, biases = ref.parameters
    assert ours.dilations.tolist() == dilations.tolist()
    assert ours.num_features_per_dilation.tolist() == nfd.tolist()
    assert ours.channel_counts.tolist() == counts.tolist()
    assert ours.channel_indices.tolist() == indices.tolist()
    np.testing.assert_allclose(ours.biases.numpy(), biases, rtol=1e-5, atol=1e-5)


def test_fit_dilations_is_aeons():
    from aeon.transformations.collection.convolution_based._minirocket import _fit_dilations

    for length, features, max_dil in [(8192, 10_000, 32), (100, 1_000, 32), (9, 84, 4)]:
        a, b = fit_dilations(length, features, max_dil)
        ra, rb = _fit_dilations(length, features, max_dil)
        assert a.tolist() == ra.tolist() and b.tolist() == rb.tolist()


def test_a_case_gives_the_same_features_alone_and_in_a_block_of_short_cases():
    # scikit-learn's subset check found this case: 3 steps padded with zeros to 9 tie a bias, and a matrix
    # product written at another memory alignment rounded the other way (MKL), flipping one feature
    from archkit.estimators import RocketClassifier

    x3 = 3 * np.random.RandomState(0).uniform(size=(20, 3))
    clf = RocketClassifier(num_features=84, random_state=1).fit(x3, x3[:, 0].astype(int))
    x = torch.from_numpy(clf._series(x3)[0])
    block = clf.transform_(x)
    alone = torch.cat([clf.transform_(x[i : i + 1]) for i in range(len(x))])
    assert torch.equal(block, alone)


def test_conv_features_are_the_same_on_one_thread_and_on_two():
    x = np.random.default_rng(1).standard_normal((5, 4, 300)).astype(np.float32)
    module = MiniRocket.fit(x, num_features=840, seed=0, method="conv")
    lengths = torch.tensor([300, 120, 9, 299, 64])
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = module(torch.from_numpy(x), lengths)
        torch.set_num_threads(2)  # cases side by side (archkit.threads.map_cases)
        two = module(torch.from_numpy(x), lengths)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


@pytest.mark.parametrize("method", ["exact", "conv"])
def test_padded_case_gives_the_unpadded_features(method):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3, 120)).astype(np.float32)
    module = MiniRocket.fit(x, num_features=500, seed=0, method=method)
    lengths = np.array([120, 9, 40, 77, 3, 100])  # 3 and 9: shorter than any unpadded window of most dilations
    padded = x.copy()
    for i, n in enumerate(lengths):
        padded[i, :, n:] = rng.standard_normal((3, 120 - n))  # garbage past the end must not matter
    together = module(torch.from_numpy(padded), torch.from_numpy(lengths))
    alone = torch.cat([module(torch.from_numpy(x[i : i + 1, :, :n])) for i, n in enumerate(lengths)])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-6)
    assert torch.isfinite(together).all()
    full = module(torch.from_numpy(x))
    torch.testing.assert_close(full[0], together[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", ["exact", "conv"])
def test_unequal_length_bundled_set_fits_and_matches_unpadded(method):
    series, _ = aeon_datasets.load_japanese_vowels(split="train")
    series = series[:30]
    lengths = np.array([s.shape[1] for s in series])
    x = np.zeros((len(series), series[0].shape[0], lengths.max()), np.float32)
    for i, s in enumerate(series):
        x[i, :, : s.shape[1]] = s
    module = MiniRocket.fit(x, lengths=lengths, num_features=840, seed=0, method=method)
    together = module(torch.from_numpy(x), torch.from_numpy(lengths))
    alone = torch.cat([module(torch.from_numpy(x[i : i + 1, :, :n])) for i, n in enumerate(lengths)])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", ["exact", "conv"])
def test_state_dict_round_trip_and_reload(method):
    x = np.random.default_rng(1).standard_normal((5, 2, 50)).astype(np.float32)
    a = MiniRocket.fit(x, num_features=300, seed=0, method=method)
    b = MiniRocket.fit(x, num_features=300, seed=1, method=method)
    assert not torch.equal(a(torch.from_numpy(x)), b(torch.from_numpy(x)))
    c = MiniRocket.fit(x * 2, num_features=300, seed=0, method=method)  # same shapes as a, other biases
    c.load_state_dict(a.state_dict())
    assert torch.equal(a(torch.from_numpy(x)), c(torch.from_numpy(x))) and c.method == method
    b = MiniRocket.from_state_dict(b.state_dict() | a.state_dict(), in_channels=2, method=method)
    assert torch.equal(a(torch.from_numpy(x)), b(torch.from_numpy(x))) and b.method == method
    again = pickle.loads(pickle.dumps(a))
    assert again.method == method and torch.equal(a(torch.from_numpy(x)), again(torch.from_numpy(x)))
    del a.__dict__["method"]  # pickled before `method` existed: the method its buffers were built for
    assert pickle.loads(pickle.dumps(a)).method == method
    assert set(a.state_dict()) == {
        "dilations",
        "num_features_per_dilation",
        "channel_counts",
        "channel_indices",
        "biases",
    }


def test_bad_input_names_the_argument():
    x = np.zeros((2, 2, 30), np.float32)
    with pytest.raises(ValueError, match="num_features"):
        MiniRocket.fit(x, num_features=0)
    with pytest.raises(ValueError, match="at least 9 steps"):
        MiniRocket.fit(np.zeros((2, 1, 5)))
    module = MiniRocket.fit(x + np.arange(30), num_features=100)
    with pytest.raises(ValueError, match=r"x: expected series shaped \(n_cases, 2"):
        module(torch.zeros(1, 3, 30))
    with pytest.raises(ValueError, match="lengths"):
        MiniRocket.fit(x, lengths=[0, 30])
    with pytest.raises(ValueError, match="method: expected one of"):
        MiniRocket.fit(x + np.arange(30), num_features=100, method="fft")
