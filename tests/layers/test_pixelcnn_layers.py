import pytest
import torch

from archkit.layers.pixelcnn import GatedPixelCNNLayer, ShiftedConv2d, horizontal_conv, vertical_conv


@pytest.mark.parametrize("kernel,offset", [((3, 5), (2, 2)), ((1, 2), (0, 2)), ((1, 1), (1, 0)), ((2, 3), (1, 1))])
def test_window_matches_full_conv(kernel, offset):
    conv = ShiftedConv2d(3, 4, kernel, offset)
    x = torch.randn(2, 3, 5, 6)
    full = conv(x)
    assert full.shape == (2, 4, 5, 6)
    for rows, cols in [((0, 1), (0, 6)), ((4, 5), (0, 6)), ((2, 3), (3, 4)), ((0, 5), (0, 1)), ((1, 3), (5, 6))]:
        got = conv.window(x, rows, cols)
        torch.testing.assert_close(got, full[..., rows[0] : rows[1], cols[0] : cols[1]], rtol=1e-5, atol=1e-6)


def _dependence(conv, shape=(1, 1, 7, 7), at=(3, 3)):
    x = torch.randn(shape, requires_grad=True)
    conv(x)[0, :, at[0], at[1]].sum().backward()
    return x.grad[0, 0] != 0


def test_vertical_and_horizontal_receptive_fields():
    v = _dependence(vertical_conv(1, 2, 5))  # rows 1..3, cols 1..5
    want = torch.zeros(7, 7, dtype=torch.bool)
    want[1:4, 1:6] = True
    assert torch.equal(v, want)
    h_first = _dependence(horizontal_conv(1, 2, 5, include_center=False))
    want = torch.zeros(7, 7, dtype=torch.bool)
    want[3, 1:3] = True
    assert torch.equal(h_first, want)
    h = _dependence(horizontal_conv(1, 2, 5, include_center=True))
    want[3, 3] = True
    assert torch.equal(h, want)


def test_layer_conditioning_changes_output_and_is_required():
    torch.manual_seed(0)
    layer = GatedPixelCNNLayer(8, 3, num_classes=4, cond_channels=5).eval()
    v = h = torch.randn(2, 8, 4, 4)
    cond = torch.randn(2, 5, 4, 4)
    a = layer(v, h, layer.condition(torch.tensor([0, 1]), cond))
    b = layer(v, h, layer.condition(torch.tensor([2, 1]), cond))
    assert not torch.allclose(a[1][0], b[1][0]) and torch.allclose(a[1][1], b[1][1])
    c = layer(v, h, layer.condition(torch.tensor([0, 1]), cond + 1))
    assert not torch.allclose(a[0], c[0]) and not torch.allclose(a[1], c[1])
    with pytest.raises(ValueError, match="labels"):
        layer.condition(None, cond)
    with pytest.raises(ValueError, match="cond"):
        layer.condition(torch.tensor([0, 1]), None)


def test_layer_rejects_even_kernel():
    with pytest.raises(ValueError, match="kernel_size"):
        GatedPixelCNNLayer(8, 4)
