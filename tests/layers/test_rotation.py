"""Rotation trick: the forward value is the code, the gradient is the rotated and rescaled upstream one."""

import pytest
import torch

from archkit.layers.rotation import rotate_to


def _rotation_matrix(e: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(|q|/|e|) R for one pair of vectors, written out as a d x d matrix."""
    eh, qh = e / e.norm(), q / q.norm()
    r = (eh + qh) / (eh + qh).norm()
    eye = torch.eye(len(e), dtype=e.dtype)
    return (q.norm() / e.norm()) * (eye - 2 * torch.outer(r, r) + 2 * torch.outer(qh, eh))


def test_value_is_the_code_and_gradient_is_the_transposed_rotation():
    torch.manual_seed(0)
    e = torch.randn(5, 6, dtype=torch.float64)
    q = torch.randn(5, 6, dtype=torch.float64)
    e.requires_grad_(True)
    out = rotate_to(e, q)
    torch.testing.assert_close(out, q)
    g = torch.randn(5, 6, dtype=torch.float64)
    (out * g).sum().backward()
    for i in range(5):
        m = _rotation_matrix(e[i].detach(), q[i])
        torch.testing.assert_close(m @ e[i].detach(), q[i])  # the map takes e to q
        torch.testing.assert_close(e.grad[i], m.t() @ g[i])
    # unlike the straight-through estimator, the gradient is not copied unchanged
    assert not torch.allclose(e.grad, g)


def test_half_inputs_keep_their_dtype_and_gradients_flow():
    e = torch.randn(4, 3, dtype=torch.bfloat16, requires_grad=True)
    out = rotate_to(e, torch.randn(4, 3))
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert e.grad is not None and torch.isfinite(e.grad).all() and e.grad.abs().sum() > 0


def test_opposite_and_zero_vectors_stay_finite():
    e = torch.tensor([[1.0, 0.0], [0.0, 0.0]], requires_grad=True)
    q = torch.tensor([[-2.0, 0.0], [1.0, 1.0]])
    out = rotate_to(e, q)
    torch.testing.assert_close(out, q)
    out.sum().backward()
    assert torch.isfinite(e.grad).all()
    with pytest.raises(ValueError, match="same shape"):
        rotate_to(e, q[:1])
