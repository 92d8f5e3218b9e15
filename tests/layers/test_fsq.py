"""FSQ: integer codes in range and back, straight-through gradients, fp32 statistics for half inputs."""

import math

import pytest
import torch

from archkit.layers.fsq import FSQ, check_levels, fsq_levels_for
from archkit.layers.quantize import QuantizerOutput


@pytest.mark.parametrize("levels", [(8, 5, 5, 5), (3, 4), (2, 2, 2)])
def test_every_grid_point_maps_to_its_own_index_and_back(levels):
    fsq = FSQ(levels)
    n = math.prod(levels)
    idx = torch.arange(n)
    codes = fsq.indices_to_codes(idx)
    assert codes.abs().max() <= 1.0
    assert torch.equal(fsq.codes_to_indices(codes), idx)
    assert len({tuple(c.tolist()) for c in codes}) == n  # distinct grid points


def test_output_tuple_codes_in_range_and_lookup_matches():
    fsq = FSQ((8, 5, 5, 5), dim=16).train()
    x = torch.randn(3, 16, 6, 5) * 3
    out = fsq(x)
    assert isinstance(out, QuantizerOutput)
    assert out.quantized.shape == x.shape
    assert out.indices.shape == (3, 6, 5) and out.indices.dtype == torch.int64
    assert int(out.indices.min()) >= 0 and int(out.indices.max()) < fsq.num_codes == 1000
    torch.testing.assert_close(out.quantized, fsq.lookup(out.indices))
    hist = torch.bincount(out.indices.flatten(), minlength=1000).float()
    probs = hist[hist > 0] / hist.sum()
    assert out.usage.item() == pytest.approx((hist > 0).float().mean().item())  # codes used this batch / all
    assert out.perplexity.item() == pytest.approx(torch.exp(-(probs * probs.log()).sum()).item(), rel=1e-4)
    assert out.loss.item() == 0.0
    assert int(fsq.steps) == 1
    fsq.eval()(x)
    assert int(fsq.steps) == 1  # only training steps count


def test_all_levels_are_reachable():
    fsq = FSQ((5, 4), dim=2)  # no projection: the input is bounded and rounded directly
    x = torch.linspace(-6, 6, 400)
    grid = torch.stack(torch.meshgrid(x, x, indexing="ij")).reshape(1, 2, -1)
    assert fsq(grid).indices.unique().numel() == 20


def test_gradients_flow_to_the_encoder_and_projections():
    enc = torch.nn.Conv2d(3, 8, 1)
    fsq = FSQ((7, 5, 5), dim=8).train()
    out = fsq(enc(torch.randn(2, 3, 4, 4)))
    out.quantized.pow(2).sum().backward()
    assert enc.weight.grad is not None and enc.weight.grad.abs().sum() > 0
    assert fsq.project_in.weight.grad.abs().sum() > 0 and fsq.project_out.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_quantize_in_fp32(dtype):
    fsq = FSQ((8, 5, 5, 5), dim=6)
    x = torch.randn(2, 6, 4, 4)
    xh = x.to(dtype)
    out = fsq(xh)
    ref = fsq(xh.float())
    assert out.quantized.dtype == dtype and out.perplexity.dtype == torch.float32
    assert torch.equal(out.indices, ref.indices)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = fsq(x)
    assert torch.equal(auto.indices, fsq(x).indices)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="levels"):
        FSQ((8, 1))
    with pytest.raises(ValueError, match="levels"):
        check_levels("abc")
    fsq = FSQ((3, 3), dim=4)
    with pytest.raises(ValueError, match=r"expected input \(B, 4"):
        fsq(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="indices"):
        fsq.lookup(torch.tensor([[9]]))
    assert math.prod(fsq_levels_for(1000)) == 1000 and math.prod(fsq_levels_for(300)) == 240
