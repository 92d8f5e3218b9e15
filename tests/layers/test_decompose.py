import itertools

import pytest
import torch
from torch import nn

from archkit.layers import DecomposedConv2d
from archkit.surgery import output_error

GRID = [  # kernel, stride, padding, dilation (padding None = "same")
    *itertools.product([3, 5, (3, 5)], [1, 2, (2, 1)], [None, 0, 2, (1, 3)], [1, 2, (1, 2)]),
    *itertools.product([2, 4, (2, 3)], [1, 2], [0, 1, (1, 2)], [1, 2]),  # even kernels need explicit padding
]


@pytest.mark.parametrize("kernel,stride,padding,dilation", GRID)
def test_output_shape_equals_conv2d(kernel, stride, padding, dilation):
    x = torch.randn(1, 3, 15, 12)
    ks = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    dec = DecomposedConv2d(3, 5, kernel, mid_channels=4, stride=stride, padding=padding, dilation=dilation)
    ref_pad = padding
    if padding is None:
        d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
        ref_pad = (d[0] * (ks[0] - 1) // 2, d[1] * (ks[1] - 1) // 2)
    ref = nn.Conv2d(3, 5, kernel, stride, ref_pad, dilation)
    assert dec(x).shape == ref(x).shape


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation,bias",
    [
        (3, 2, 1, 1, True),
        (3, 1, 2, 2, False),
        ((3, 5), (2, 1), (1, 2), (2, 1), True),
        (4, 2, 1, 1, True),
        (5, 1, 0, 1, True),
    ],
)
def test_full_rank_linear_decompose_is_exact(kernel, stride, padding, dilation, bias):
    conv = nn.Conv2d(4, 6, kernel, stride, padding, dilation, bias=bias)
    dec = DecomposedConv2d.from_dense(conv)  # act=None: the linear separable form
    kh, kw = conv.kernel_size
    assert dec.rank == min(4 * kh, 6 * kw)
    x = torch.randn(2, 4, 16, 14)
    assert output_error(conv(x), dec(x))[1] <= 1e-5


def test_truncation_error_shrinks_with_rank():
    conv = nn.Conv2d(8, 8, 3, padding=1)
    x = torch.randn(2, 8, 10, 10)
    errs = [output_error(conv(x), DecomposedConv2d.from_dense(conv, rank=r)(x))[1] for r in (1, 4, 12, 24)]
    assert errs == sorted(errs, reverse=True) and errs[-1] <= 1e-5 < errs[0]


def test_structure_norm_act_and_bias():
    layer = DecomposedConv2d(3, 8, 3, mid_channels=5, stride=2, norm="batch", act="relu")
    assert layer.vertical.kernel_size == (3, 1) and layer.vertical.stride == (2, 1)
    assert layer.horizontal.kernel_size == (1, 3) and layer.horizontal.stride == (1, 2)
    assert isinstance(layer.norm, nn.BatchNorm2d) and isinstance(layer.act, nn.ReLU)
    assert layer.vertical.bias is None  # the norm cancels it
    assert DecomposedConv2d(3, 8, 3, 5, act="relu").vertical.bias is not None
    assert DecomposedConv2d(3, 8, 3, 5, act=None).vertical.bias is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="kernel_size"):
        DecomposedConv2d(3, 8, 4, mid_channels=2)  # even kernel with "same" padding
    with pytest.raises(ValueError, match="mid_channels"):
        DecomposedConv2d(3, 8, 3, mid_channels=0)
    with pytest.raises(ValueError, match="groups=2"):
        DecomposedConv2d.from_dense(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="rank"):
        DecomposedConv2d.from_dense(nn.Conv2d(4, 4, 3), rank=0)
    with pytest.raises(ValueError, match="act"):
        DecomposedConv2d(3, 8, 3, 2, act="nope")
