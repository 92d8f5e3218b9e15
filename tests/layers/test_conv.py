import pytest
import torch
from torch import nn

from archkit.layers import ConvNormAct, FrozenBatchNorm, create_act, create_norm, reduce_channels


@pytest.mark.parametrize("order", ["conv-norm-act", "norm-act-conv", "conv"])
def test_reduction_shapes(order):
    block = reduce_channels(16, 8, order=order)
    assert block(torch.randn(2, 16, 5, 7)).shape == (2, 8, 5, 7)


def test_order_layout_and_norm_channels():
    post = ConvNormAct(16, 8, order="conv-norm-act")
    assert list(dict(post.named_children())) == ["conv", "norm", "act"]
    assert post.norm.num_features == 8 and post.conv.bias is None
    pre = ConvNormAct(16, 8, order="norm-act-conv")
    assert list(dict(pre.named_children())) == ["norm", "act", "conv"]
    assert pre.norm.num_features == 16 and pre.conv.bias is not None
    lin = ConvNormAct(16, 8, order="conv")
    assert list(dict(lin.named_children())) == ["conv"] and lin.conv.bias is not None


def test_same_padding_and_stride():
    block = ConvNormAct(3, 4, kernel_size=5, stride=2)
    assert block(torch.randn(1, 3, 16, 16)).shape == (1, 4, 8, 8)
    with pytest.raises(ValueError, match="odd kernel_size"):
        ConvNormAct(3, 4, kernel_size=4)


def test_unknown_names_list_choices():
    with pytest.raises(ValueError, match=r"norm.*'batch'"):
        ConvNormAct(3, 4, norm="instance")
    with pytest.raises(ValueError, match=r"act.*'relu'"):
        ConvNormAct(3, 4, act="mish")
    with pytest.raises(ValueError, match="order"):
        ConvNormAct(3, 4, order="act-conv")


def test_module_classes_accepted():
    block = ConvNormAct(4, 6, norm=nn.InstanceNorm2d, act=nn.Tanh)
    assert isinstance(block.norm, nn.InstanceNorm2d) and isinstance(block.act, nn.Tanh)
    assert isinstance(create_norm("group", 12, num_groups=8), nn.GroupNorm)
    assert create_norm("group", 12, num_groups=8).num_groups == 6
    assert create_act(None) is None


def test_frozen_batchnorm_matches_eval_bn():
    bn = nn.BatchNorm2d(6)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_()
        bn.bias.normal_()
    bn.eval()
    frozen = FrozenBatchNorm.from_batchnorm(bn).train()
    x = torch.randn(1, 6, 4, 4)
    torch.testing.assert_close(frozen(x), bn(x))
    assert not list(frozen.parameters())
