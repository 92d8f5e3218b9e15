"""VectorQuantizer: lookup, straight-through gradients, EMA only in training, init from data, restarts."""

import pytest
import torch

from archkit.layers import QuantizerOutput, VectorQuantizer
from archkit.layers.quantize import kmeans_plus_plus


@pytest.mark.parametrize("shape", [(4, 8, 10), (2, 8, 5, 6), (2, 8, 3, 4, 5)])
def test_any_spatial_rank_returns_codes_and_indices(shape):
    vq = VectorQuantizer(16, 8)
    x = torch.randn(shape)
    out = vq.train()(x)
    assert isinstance(out, QuantizerOutput)
    assert out.quantized.shape == x.shape
    assert out.indices.shape == (shape[0], *shape[2:]) and out.indices.dtype == torch.int64
    # quantized values are exactly codebook rows at the returned indices
    assert torch.allclose(out.quantized, vq.lookup(out.indices), atol=1e-5)
    assert out.perplexity.item() >= 1.0 and out.perplexity.item() <= 16.0 and 0.0 < out.usage.item() <= 1.0


def test_lookup_picks_the_nearest_code():
    vq = VectorQuantizer(4, 2, init="random").eval()
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]]))
    x = torch.tensor([[9.0, 1.0], [1.0, 8.0], [0.5, -0.2], [11.0, 9.0]]).t().unsqueeze(0)  # (1, 2, 4)
    assert vq(x).indices.tolist() == [[1, 2, 0, 3]]


def test_straight_through_gradient_and_commitment_loss():
    vq = VectorQuantizer(8, 4).train()
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = vq(x)
    (out.quantized.sum() + out.loss).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    expected = 0.25 * (x.detach() - out.quantized.detach()).pow(2).mean()
    assert torch.allclose(out.loss, expected)


def test_codebook_initialized_from_first_batch_and_eval_does_not_move_it():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4)
    x = torch.randn(8, 4, 4, 4) * 5 + 100  # far away from the Gaussian initial codebook
    vq.eval()(x)
    assert not bool(vq.initialized) and vq.codebook.abs().max() < 10  # eval: untouched
    before = vq.state_dict()
    before = {k: v.clone() for k, v in before.items()}
    vq.eval()(x)
    for k, v in vq.state_dict().items():
        assert torch.equal(v, before[k]), k
    vq.train()(x)
    assert bool(vq.initialized)
    assert vq.codebook.mean() > 90  # seeded from encoder outputs
    frozen = vq.codebook.clone()
    vq.eval()(x + 1)
    assert torch.equal(vq.codebook, frozen)
    vq.train()(x + 1)
    assert not torch.equal(vq.codebook, frozen)  # EMA moves in training mode


def test_kmeans_plus_plus_spreads_over_clusters():
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    x = torch.cat([c + torch.randn(100, 2, generator=g) for c in centers])
    picked = kmeans_plus_plus(x, 3, torch.Generator().manual_seed(1))
    nearest = torch.cdist(picked, centers).argmin(1)
    assert sorted(nearest.tolist()) == [0, 1, 2]


def test_dead_code_restart_revives_codes():
    torch.manual_seed(0)
    data = torch.randn(4, 2, 8, 8)
    no_restart = VectorQuantizer(32, 2, init="random", restart_after=0).train()
    with_restart = VectorQuantizer(32, 2, init="random", restart_after=3).train()
    with torch.no_grad():  # a far-away random codebook: nearly all codes are dead from the start
        for vq in (no_restart, with_restart):
            vq.codebook.mul_(0.01).add_(20)
            vq.ema_sum.copy_(vq.codebook)
    for _ in range(10):
        a, b = no_restart(data), with_restart(data)
    assert a.usage.item() * 32 <= 2
    assert with_restart.restarts > 0
    assert b.usage.item() * 32 >= 16


def test_bad_input_is_named():
    vq = VectorQuantizer(8, 4)
    with pytest.raises(ValueError, match=r"expected input \(B, 4"):
        vq(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="num_codes"):
        VectorQuantizer(0, 4)
    with pytest.raises(ValueError, match="init"):
        VectorQuantizer(8, 4, init="zeros")
    with pytest.raises(ValueError, match="indices"):
        vq.lookup(torch.tensor([[9]]))


def _state(vq):
    return {k: v.clone() for k, v in vq.state_dict().items()}


def test_a_nan_batch_leaves_the_codebook_and_ema_state_unchanged_and_is_counted():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4, restart_after=2).train()
    clean = torch.randn(8, 4, 4, 4)
    vq(clean)  # initialized from data
    before = _state(vq)
    bad = clean.clone()
    bad[0, 1, 2, 3] = float("nan")
    bad[1, 0, 0, 0] = float("inf")
    for _ in range(3):  # several bad batches in a row: also no restart fires on the count they would add
        with pytest.warns(RuntimeWarning, match="NaN or inf.*skipped"):
            vq(bad)
    for k, v in vq.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert vq.skipped_updates == 3
    for _ in range(4):  # later clean batches train and decode finite codes
        out = vq(torch.randn(8, 4, 4, 4))
    assert torch.isfinite(vq.codebook).all() and torch.isfinite(vq.ema_sum).all()
    assert torch.isfinite(out.quantized).all() and not torch.equal(vq.codebook, before["codebook"])


def test_strict_raises_on_a_non_finite_batch():
    vq = VectorQuantizer(8, 4, strict=True).train()
    with pytest.raises(ValueError, match="NaN or inf"):
        vq(torch.full((2, 4, 3), float("nan")))
    assert not bool(vq.initialized)


def test_a_nan_batch_in_eval_mode_changes_nothing_and_warns_nothing():
    import warnings

    vq = VectorQuantizer(8, 4).eval()
    before = _state(vq)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vq(torch.full((2, 4, 3), float("nan")))
    assert all(torch.equal(v, before[k]) for k, v in vq.state_dict().items())


@pytest.mark.parametrize("dim", [1, 3])
def test_restart_from_a_single_pooled_vector_gives_finite_codes(dim):
    vq = VectorQuantizer(8, dim, init="random", restart_after=1).train()
    x = torch.randn(1, dim, 1)  # one position: the restart pool is a single vector
    for _ in range(3):
        vq(x)
    assert vq.restarts > 0
    assert torch.isfinite(vq.codebook).all() and torch.isfinite(vq.ema_sum).all()
    assert torch.isfinite(vq(x).quantized).all()


def _fp16_matmul_on_cpu() -> bool:
    try:
        torch.ones(2, 2, dtype=torch.float16) @ torch.ones(2, 2, dtype=torch.float16)
        return True
    except RuntimeError:
        return False


@pytest.mark.parametrize(
    "dtype",
    [
        torch.bfloat16,
        pytest.param(
            torch.float16,
            marks=pytest.mark.skipif(not _fp16_matmul_on_cpu(), reason="no fp16 matmul on this CPU build"),
        ),
    ],
)
def test_half_precision_inputs_use_fp32_distances_and_keep_fp32_buffers(dtype):
    torch.manual_seed(0)
    ref = VectorQuantizer(16, 4).train()
    vq = VectorQuantizer(16, 4).train()
    x = torch.randn(4, 4, 5, 5)
    xh = x.to(dtype)
    ref(xh.float())  # the same (rounded) values in fp32
    out = vq(xh)
    assert out.quantized.dtype == dtype and out.loss.dtype == dtype
    for name in ("codebook", "ema_sum", "ema_count"):
        assert getattr(vq, name).dtype == torch.float32, name
        torch.testing.assert_close(getattr(vq, name), getattr(ref, name), rtol=0, atol=0)
    # the whole module cast to half precision: the codebook state still stays fp32
    vq.to(dtype)
    assert vq.codebook.dtype == torch.float32 and vq.ema_sum.dtype == torch.float32
    assert vq(xh).quantized.dtype == dtype


def test_bf16_autocast_keeps_distances_and_ema_in_fp32():
    torch.manual_seed(0)
    enc = torch.nn.Conv2d(3, 4, 1)
    vq = VectorQuantizer(16, 4).train()
    ref = VectorQuantizer(16, 4).train()
    x = torch.randn(4, 3, 5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = enc(x)
        assert z.dtype == torch.bfloat16
        out = vq(z)
    ref(z.float())
    assert out.quantized.dtype == torch.bfloat16
    assert vq.codebook.dtype == torch.float32 and vq.ema_sum.dtype == torch.float32
    torch.testing.assert_close(vq.codebook, ref.codebook, rtol=0, atol=0)
    assert torch.equal(out.indices, ref.eval()(z.float()).indices)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_nearest_is_the_closest_code(dtype):
    g = torch.Generator().manual_seed(0)
    vq = VectorQuantizer(num_codes=64, dim=8)
    with torch.no_grad():
        vq.codebook.copy_(torch.randn(64, 8, generator=g) * 3)
    flat = (torch.randn(500, 8, generator=g) * 3).to(dtype)
    chosen = vq.nearest(flat)
    d = torch.cdist(flat.double(), vq.codebook.double())  # exact distances of the inputs as given
    assert torch.all(d.gather(1, chosen[:, None]).squeeze(1) <= d.min(1).values + 1e-4)
