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
