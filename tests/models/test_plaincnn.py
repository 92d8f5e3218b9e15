import pytest
import torch

from archkit.layers import DecomposedConv2d
from archkit.models import PlainCNN, PlainCNNConfig, matched_mid_channels
from archkit.surgery import count_params


def test_dense_and_decomposed_shapes_and_params():
    x = torch.randn(2, 1, 16, 16)
    dense = PlainCNN(PlainCNNConfig())
    dec = PlainCNN(PlainCNNConfig(conv="decomposed", mid_ratio=0.97))
    assert dense(x).shape == dec(x).shape == (2, 10)
    assert sum(isinstance(m, DecomposedConv2d) for m in dec.modules()) == 3
    assert count_params(dec) <= count_params(dense)
    assert count_params(PlainCNN(PlainCNNConfig(conv="decomposed", mid_ratio=0.5))) < count_params(dec)


def test_matched_mid_channels():
    c_in, c_out, k = 32, 64, 3
    m = matched_mid_channels(c_in, c_out, k)
    assert m * k * (c_in + c_out) <= c_in * c_out * k * k < (m + 1) * k * (c_in + c_out)
    assert matched_mid_channels(1, 1, 3, 0.01) == 1


def test_bad_config():
    with pytest.raises(ValueError, match="conv"):
        PlainCNN(PlainCNNConfig(conv="sparse"))
    with pytest.raises(ValueError, match="input"):
        PlainCNN()(torch.randn(1, 3, 8, 8))
