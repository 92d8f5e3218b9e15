import pytest
import torch

from archkit.models import CascadeCNN, CascadeCNNConfig, SegNet, SegNetConfig
from archkit.studies.reduction import is_conv_relu_chain, op_sequence
from archkit.surgery import fuse_bn, randomize_bn_stats


@pytest.mark.parametrize("order", ["conv-norm-act", "norm-act-conv", "conv"])
def test_cascade_forward_and_reduction_widths(order):
    model = CascadeCNN(CascadeCNNConfig(reduction_order=order))
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    conv = model.reduce0.conv
    assert conv.kernel_size == (1, 1) and conv.in_channels == 2 * conv.out_channels  # 2C -> C


def test_preact_cascade_folds_to_the_same_conv_relu_chain():
    seqs = {}
    for order in ("conv-norm-act", "norm-act-conv"):
        model = randomize_bn_stats(CascadeCNN(CascadeCNNConfig(reduction_order=order)), seed=1).eval()
        fused, report = fuse_bn(model)
        x = torch.randn(4, 1, 8, 8)
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-5)
        assert not report.skipped
        seqs[order] = op_sequence(fused)
        assert is_conv_relu_chain(seqs[order]), seqs[order]
    assert seqs["conv-norm-act"] == seqs["norm-act-conv"]


def test_bn_after_relu_is_left_unfolded():
    cfg = CascadeCNNConfig(reduction_order="norm-act-conv", block_order="conv-norm-act")
    fused, report = fuse_bn(CascadeCNN(cfg).eval())
    assert len(report.skipped) == len(cfg.widths)
    assert not is_conv_relu_chain(op_sequence(fused))


def test_cascade_bad_config():
    with pytest.raises(ValueError, match="reduction_order"):
        CascadeCNN(CascadeCNNConfig(reduction_order="act-conv"))
    with pytest.raises(ValueError, match="strides"):
        CascadeCNN(CascadeCNNConfig(widths=[8], strides=[1, 2]))


@pytest.mark.parametrize("size", [32, 30, 17])
def test_segnet_keeps_spatial_size(size):
    model = SegNet(SegNetConfig(widths=[4, 8, 8]))
    assert model(torch.randn(2, 1, size, size)).shape == (2, 11, size, size)


def test_segnet_bad_widths():
    with pytest.raises(ValueError, match="widths"):
        SegNet(SegNetConfig(widths=[]))
