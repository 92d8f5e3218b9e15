"""MiniRocket and Hydra in torch: aeon's features from aeon's parameters, aeon's fit, unequal lengths, state dicts."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from archkit.layers import Hydra, SparseScaler
from archkit.layers.hydra import hydra_dilations
from archkit.layers.rocket import MiniRocket, fit_dilations

aeon_rocket = pytest.importorskip("aeon.transformations.collection.convolution_based")
aeon_datasets = pytest.importorskip("aeon.datasets")
aeon_hydra = pytest.importorskip("aeon.classification.convolution_based._hydra")


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


# --- Hydra -------------------------------------------------------------------------------------
def relative(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize("name", ["BasicMotions", "GunPoint", "ItalyPowerDemand"])
def test_hydra_features_equal_aeons_given_aeons_kernels(name):
    x = bundled(name)
    fitted = aeon_rocket.HydraTransformer(random_state=1).fit(x)
    module = Hydra.from_aeon(fitted)
    assert module.num_features == fitted.transform(x[:1]).shape[1]
    for data in (x, bundled(name, "test")):
        ref = fitted.transform(data).numpy()
        ours = module(torch.from_numpy(data)).numpy()
        assert ours.shape == ref.shape
        assert relative(ours, ref) <= 1e-4
        # the min kernels' counts are integers: equal to aeon's unless two outputs tie within float32 rounding
        d, s, hk, _ = module.weights.shape
        counts = (ours.reshape(len(data), d, s, 2, hk)[:, :, :, 1], ref.reshape(len(data), d, s, 2, hk)[:, :, :, 1])
        assert np.mean(counts[0] == counts[1]) >= 0.999


def test_hydra_ties_go_to_the_first_kernel_as_in_aeon():
    # a series that is zero on long stretches: there all kernels of a group output exactly 0 and tie
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 120)).astype(np.float32)
    x[:, :, 30:90] = 0
    x[1] = 0  # a whole case of zeros
    fitted = aeon_rocket.HydraTransformer(random_state=3).fit(x)
    ref = fitted.transform(x).numpy()
    ours = Hydra.from_aeon(fitted)(torch.from_numpy(x)).numpy()
    assert relative(ours, ref) <= 1e-4
    counts = ours.reshape(-1, 2, 2, 32, 8)[:, :, 1]  # (cases x dilations, input, group, kernel): the min counts
    assert (counts[..., 0] > 0).any()  # the all-zero case: every tie went to kernel 0
    np.testing.assert_array_equal(ours[1], ref[1])


def test_hydra_fit_draws_kernels_as_aeon_does():
    x = np.zeros((3, 10, 500), np.float32)
    module = Hydra.fit(x, seed=0)
    ref = aeon_rocket.HydraTransformer(random_state=0).fit(x)._hydra
    np.testing.assert_array_equal(module.dilations.numpy(), ref.dilations.numpy())
    assert module.weights.shape == ref.W[:, :, :, 0].shape
    assert module.channel_indices.shape == torch.stack(ref.idx).shape  # clip(10 // 2, 2, 8) = 5 per group
    assert torch.allclose(module.weights.mean(-1), torch.zeros(()), atol=1e-6)
    assert torch.allclose(module.weights.abs().sum(-1), torch.ones(()), atol=1e-5)
    assert module.num_features == aeon_rocket.HydraTransformer(random_state=0).fit_transform(x[:1]).shape[1]
    for length in (9, 10, 17, 100, 8192):
        expected = 2 ** torch.arange(int(np.log2((length - 1) / 8)) + 1)
        np.testing.assert_array_equal(hydra_dilations(length), expected.numpy())
    assert hydra_dilations(3).tolist() == [1]
    one = Hydra.fit(x, num_groups=1)  # one group: the series only, no difference
    assert one.weights.shape[1] == 1 and one.num_features == len(one.dilations) * 2 * 8
    a, b = Hydra.fit(x, seed=0), Hydra.fit(x, seed=1)
    assert torch.equal(a.weights, Hydra.fit(x, seed=0).weights) and not torch.equal(a.weights, b.weights)


def test_hydra_a_case_gives_the_same_features_in_any_batch_and_on_any_thread_count():
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((7, 3, 200)).astype(np.float32))
    module = Hydra.fit(x, seed=0)
    together = module(x)
    alone = torch.cat([module(x[i : i + 1]) for i in range(7)])
    assert torch.equal(together, alone)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = module(x)
        torch.set_num_threads(2)
        two = module(x)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two) and torch.equal(one, together)


def test_hydra_padded_case_gives_the_unpadded_features():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3, 120)).astype(np.float32)
    module = Hydra.fit(x, seed=0)
    lengths = np.array([120, 9, 40, 77, 1, 2])  # 1: no first difference at all
    padded = x.copy()
    for i, n in enumerate(lengths):
        padded[i, :, n:] = rng.standard_normal((3, 120 - n))  # garbage past the end must not matter
    together = module(torch.from_numpy(padded), torch.from_numpy(lengths))
    alone = torch.cat([module(torch.from_numpy(x[i : i + 1, :, :n])) for i, n in enumerate(lengths)])
    assert torch.equal(together, alone)
    assert torch.isfinite(together).all()
    assert torch.equal(module(torch.from_numpy(x))[0], together[0])
    assert not torch.equal(together[1], module(torch.from_numpy(padded[1:2]))[0])  # the padding would matter


def test_hydra_float64_module_gives_the_float32_features():
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((3, 2, 90)).astype(np.float32))
    module = Hydra.fit(x, seed=0)
    f32 = module(x)
    f64 = module.double()(x)
    assert f64.dtype == torch.float64
    torch.testing.assert_close(f64.float(), f32, rtol=1e-4, atol=1e-4)


def test_hydra_state_dict_round_trip_and_pickle():
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((5, 4, 60)).astype(np.float32))
    a, b = Hydra.fit(x, seed=0), Hydra.fit(x, seed=1)
    assert not torch.equal(a(x), b(x))
    b.load_state_dict(a.state_dict())  # the channel counts follow the loaded subsets
    assert torch.equal(a(x), b(x))
    assert set(a.state_dict()) == {"dilations", "weights", "channel_indices"}
    again = pickle.loads(pickle.dumps(a))
    assert torch.equal(a(x), again(x))


def test_sparse_scaler_is_aeons():
    x = bundled("BasicMotions")
    feats = aeon_rocket.HydraTransformer(random_state=0).fit_transform(x)
    ref = aeon_hydra._SparseScaler()
    ref.fit(feats)
    ours = SparseScaler.fit(feats.numpy())
    torch.testing.assert_close(ours(feats), ref.transform(feats), rtol=1e-5, atol=1e-5)
    assert (ours(feats)[feats <= 0] == 0).all()
    with pytest.raises(ValueError, match=r"features: expected shape \(n_cases, 4096\)"):
        ours(feats[:, :10])


def test_hydra_bad_input_names_the_argument():
    x = np.zeros((2, 2, 30), np.float32)
    module = Hydra.fit(x)
    with pytest.raises(
        ValueError, match=r"x: expected series shaped \(n_cases, 2, n_timepoints\), got shape \(2, 3, 30\)"
    ):
        module(torch.zeros(2, 3, 30))
    with pytest.raises(ValueError, match="lengths: expected 2 integer lengths"):
        module(torch.zeros(2, 2, 30), torch.tensor([3.0, 4.0]))
    with pytest.raises(ValueError, match=r"num_kernels: expected an int in \[1, 4096\], got 0"):
        Hydra.fit(x, num_kernels=0)
    with pytest.raises(ValueError, match="num_groups"):
        Hydra.fit(x, num_groups=-1)
    with pytest.raises(ValueError, match=r"x: expected series shaped \(n_cases, n_channels, n_timepoints\)"):
        Hydra.fit(np.zeros((2, 30)))
    with pytest.raises(ValueError, match=r"lengths: expected values in \[1, 30\]"):
        Hydra.fit(x, lengths=[0, 30])
    with pytest.raises(ValueError, match="channel_indices: expected channels in"):
        Hydra(2, module.dilations, module.weights, module.channel_indices + 5)
    with pytest.raises(ValueError, match="weights: expected shape"):
        Hydra(2, module.dilations, module.weights[..., :5], module.channel_indices)
    with pytest.raises(ValueError, match="fitted: expected a fitted aeon HydraTransformer, got str"):
        Hydra.from_aeon("hydra")


@pytest.mark.parametrize("method", ["exact", "conv"])
def test_forward_refuses_lengths_outside_the_series(method):
    x = np.random.default_rng(0).standard_normal((3, 2, 40)).astype(np.float32)
    module = MiniRocket.fit(x, num_features=84, seed=0, method=method)
    for bad in ([40, 41, 10], [0, 20, 10]):  # past the end would be cut silently, 0 has no step
        with pytest.raises(ValueError, match=r"lengths: expected values in \[1, 40\]"):
            module(torch.from_numpy(x), torch.tensor(bad))
    with pytest.raises(ValueError, match="lengths: expected 3 integer lengths"):
        module(torch.from_numpy(x), torch.tensor([10.0, 20.0, 30.0]))
