"""MultiRocket in torch: aeon's features from aeon's parameters, aeon's fit, the pooling, unequal lengths, batches."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from archkit.data import load_real_dataset
from archkit.layers import MultiRocket
from archkit.layers.multirocket import POOLS, pool_outputs

aeon_rocket = pytest.importorskip("aeon.transformations.collection.convolution_based")


def bundled(name: str, split: str = "train") -> np.ndarray:
    data = load_real_dataset(name)
    x = data.x_train if split == "train" else data.x_test
    return np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 2, 1))  # aeon's (N, C, T)


@pytest.mark.parametrize("name", ["BasicMotions", "GunPoint"])
def test_features_equal_aeons_given_aeons_parameters(name):
    x = bundled(name)
    fitted = aeon_rocket.MultiRocket(n_kernels=1_000, random_state=1).fit(x)
    module = MultiRocket.from_aeon(fitted)
    assert module.method == "exact" and module.num_features == 8 * 84 * (1_000 // 84)
    for data in (x, bundled(name, "test")):
        ref = fitted.transform(data)
        ours = module(torch.from_numpy(data)).numpy()
        assert ours.shape == ref.shape
        # outputs summed in aeon's order and rounding: PPV, LSPV and MIPV equal; MPV sums in float64 in
        # another order (7.6e-8 relative at most measured)
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
        width = ref.shape[1] // 8
        for block in (0, 1, 3, 4, 5, 7):  # PPV, LSPV, MIPV of the series, then of the difference
            np.testing.assert_array_equal(
                ours[:, block * width : (block + 1) * width], ref[:, block * width : (block + 1) * width]
            )


def test_conv_equals_aeon_except_at_float32_ties():
    x = bundled("GunPoint")
    fitted = aeon_rocket.MultiRocket(n_kernels=1_000, random_state=1).fit(x)
    ref = fitted.transform(x)
    conv = MultiRocket.from_aeon(fitted, method="conv")(torch.from_numpy(x)).numpy()
    differ = ~np.isclose(conv, ref, rtol=1e-4, atol=1e-6)
    assert differ.mean() <= 1e-3, differ.sum()  # 27 of 369,600 measured: outputs within rounding of a bias
    # a flipped comparison moves a stretch or a mean index by steps: 1.3e-4 relative measured
    assert np.linalg.norm(conv - ref) / np.linalg.norm(ref) <= 1e-3


def test_fit_draws_aeons_parameters():
    x = bundled("BasicMotions")
    ref = aeon_rocket.MultiRocket(n_kernels=1_000, random_state=3).fit(x)
    ours = MultiRocket.fit(x, num_features=8_000, seed=3)
    counts, indices, dilations, nfd, biases = ref.parameter
    np.testing.assert_array_equal(ours.series.channel_counts.numpy(), counts)
    np.testing.assert_array_equal(ours.series.channel_indices.numpy(), indices)
    np.testing.assert_array_equal(ours.series.dilations.numpy(), dilations)
    np.testing.assert_array_equal(ours.difference.dilations.numpy(), ref.parameter1[2])
    np.testing.assert_array_equal(ours.series.num_features_per_dilation.numpy(), nfd)
    # quantiles of float64 outputs here, of float32 ones in aeon
    np.testing.assert_allclose(ours.series.biases.numpy(), biases, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ours.difference.biases.numpy(), ref.parameter1[4], rtol=1e-5, atol=1e-4)
    same = np.isclose(ours(torch.from_numpy(x)).numpy(), ref.transform(x), rtol=1e-4, atol=1e-6)
    assert same.mean() >= 0.999


def lspv_loop(values: np.ndarray, bias: float) -> int:
    """aeon's count, step by step: the longest gap between steps below the bias (first and last steps count)."""
    last, longest = 0, 0
    for j, v in enumerate(values):
        if v < bias:
            longest, last = max(longest, j - last), j
    return max(longest, len(values) - 1 - last)


def test_pooling_matches_the_definitions():
    rng = np.random.default_rng(0)
    out = torch.from_numpy(rng.standard_normal((2, 3, 40)).astype(np.float32))
    out[0, 0, 5:20] = 5.0  # a long stretch
    out[1, 2] = -3.0  # nothing positive
    out[0, 1, 10] = 0.25  # equal to the bias: neither above nor below
    biases = torch.tensor([[0.0, 1.0], [0.25, -1.0], [0.5, 0.0]])
    got = pool_outputs(out, biases).view(2, 3, 2, len(POOLS)).numpy()
    for i in range(2):
        for k in range(3):
            for f in range(2):
                v, b = out[i, k].numpy(), float(biases[k, f])
                pos = np.flatnonzero(v > b)
                ppv, lspv, mpv, mipv = got[i, k, f]
                assert ppv == pytest.approx(len(pos) / 40)
                assert lspv == lspv_loop(v, b)
                assert mpv == pytest.approx(float(np.sum(v[pos] + np.float32(b))) / len(pos) if len(pos) else 0.0)
                assert mipv == pytest.approx(pos.mean() if len(pos) else -1.0)
    assert got[1, 2, 0, 3] == -1.0 and got[0, 0, 0, 1] >= 15


@pytest.mark.parametrize("method", ["exact", "conv"])
def test_a_case_gives_the_same_features_in_any_batch(method):
    x = np.random.default_rng(2).standard_normal((7, 3, 200)).astype(np.float32).cumsum(-1)
    module = MultiRocket.fit(x, num_features=1_400, seed=0, method=method)
    together = module(torch.from_numpy(x))
    for i in (0, 3, 6):
        assert torch.equal(module(torch.from_numpy(x[i : i + 1])), together[i : i + 1])
    assert torch.equal(module(torch.from_numpy(x[2:5])), together[2:5])


@pytest.mark.parametrize("method", ["exact", "conv"])
def test_padded_case_gives_the_unpadded_features(method):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 2, 120)).astype(np.float32)
    module = MultiRocket.fit(x, num_features=1_400, seed=0, method=method)
    lengths = np.array([120, 9, 40, 77, 3, 100])  # 3 and 9: shorter than most unpadded windows
    padded = x.copy()
    for i, n in enumerate(lengths):
        padded[i, :, n:] = rng.standard_normal((2, 120 - n))  # garbage past the end must not matter
    together = module(torch.from_numpy(padded), torch.from_numpy(lengths))
    alone = torch.cat([module(torch.from_numpy(x[i : i + 1, :, :n])) for i, n in enumerate(lengths)])
    assert torch.equal(together, alone) and torch.isfinite(together).all()
    assert torch.equal(module(torch.from_numpy(x))[0], together[0])


def test_unequal_lengths_fit_uses_each_case_valid_steps():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 2, 60)).astype(np.float32)
    lengths = np.array([60, 30, 45, 60, 20, 33, 60, 50])
    padded = x.copy()
    for i, n in enumerate(lengths):
        padded[i, :, n:] = 0
    a = MultiRocket.fit(padded, lengths=lengths, num_features=700, seed=0)
    for i, n in enumerate(lengths):
        padded[i, :, n:] = 100.0
    b = MultiRocket.fit(padded, lengths=lengths, num_features=700, seed=0)
    assert torch.equal(a.series.biases, b.series.biases) and torch.equal(a.difference.biases, b.difference.biases)


def test_float64_module_close_to_float32_and_state_dict_round_trip():
    x = np.random.default_rng(3).standard_normal((4, 2, 80)).astype(np.float32).cumsum(-1)
    a = MultiRocket.fit(x, num_features=700, seed=0)
    f32 = a(torch.from_numpy(x))
    f64 = pickle.loads(pickle.dumps(a)).double()(torch.from_numpy(x).double())
    assert f64.dtype == torch.float32 and (torch.isclose(f64, f32, rtol=1e-4, atol=1e-5)).float().mean() >= 0.999
    b = MultiRocket.fit(x * 2 + 1, num_features=700, seed=0)  # same shapes, other biases
    assert not torch.equal(a(torch.from_numpy(x)), b(torch.from_numpy(x)))
    b.load_state_dict(a.state_dict())
    assert torch.equal(b(torch.from_numpy(x)), f32)
    assert {k.split(".")[0] for k in a.state_dict()} == {"series", "difference"}
    assert torch.equal(pickle.loads(pickle.dumps(a))(torch.from_numpy(x)), f32)


def test_bad_input_names_the_argument():
    x = np.random.default_rng(0).standard_normal((2, 2, 30)).astype(np.float32)
    with pytest.raises(ValueError, match="num_features"):
        MultiRocket.fit(x, num_features=0)
    with pytest.raises(ValueError, match="at least 10 steps"):
        MultiRocket.fit(np.zeros((2, 1, 9), np.float32))
    module = MultiRocket.fit(x, num_features=700)
    with pytest.raises(ValueError, match=r"x: expected series shaped \(n_cases, 2"):
        module(torch.zeros(1, 3, 30))
    with pytest.raises(ValueError, match="lengths: expected at least 2 steps"):
        module(torch.zeros(2, 2, 30), torch.tensor([1, 30]))
    with pytest.raises(ValueError, match="fitted: expected a fitted aeon MultiRocket"):
        MultiRocket.from_aeon(object())
    with pytest.raises(ValueError, match="method: expected one of"):
        MultiRocket.fit(x, num_features=700, method="fft")
