"""The rotation trick (Fifty et al. 2024, "Restructuring Vector Quantization with the Rotation Trick").

The straight-through estimator copies the decoder's gradient at the code q unchanged onto the encoder
output e, so e gets no signal about *where* inside its Voronoi cell it sits. The rotation trick instead
writes q as a rotation and rescaling of e,

    q = (|q| / |e|) R e,   R = I - 2 r r^T + 2 q^ e^T,   r = (e^ + q^) / |e^ + q^|   (e^ = e/|e|, q^ = q/|q|)

and treats (|q|/|e|) R as a constant (no gradient through it). The forward value is still q, while the
gradient reaching e is rotated and scaled by the same map: points that would move further from their code
are pushed harder, which the paper measures as far higher codebook usage and lower reconstruction error.
R is applied as two Householder-style reflections, O(d) per vector, without forming a d x d matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rotate_to(e: torch.Tensor, q: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """q in the forward pass, with the rotation trick's gradient to e; e, q are (..., d), computed in fp32 or wider."""
    if e.shape != q.shape:
        raise ValueError(f"rotate_to: e and q must have the same shape, got {tuple(e.shape)} and {tuple(q.shape)}")
    dtype = torch.promote_types(e.dtype, torch.float32)  # fp32 at least (fp64 stays fp64)
    e32, q32 = e.to(dtype), q.detach().to(dtype)
    e_norm = e32.detach().norm(dim=-1, keepdim=True).clamp_min(eps)
    q_norm = q32.norm(dim=-1, keepdim=True).clamp_min(eps)
    e_hat, q_hat = e32.detach() / e_norm, q32 / q_norm
    r = F.normalize(e_hat + q_hat, dim=-1, eps=eps)
    # R e = e - 2 r (r . e) + 2 q^ (e^ . e): linear in e, the reflections themselves held constant
    rotated = e32 - 2 * r * (r * e32).sum(-1, keepdim=True) + 2 * q_hat * (e_hat * e32).sum(-1, keepdim=True)
    rotated = rotated * (q_norm / e_norm)
    # the value is exactly q (not q up to rounding), so decoding a code map equals the training forward
    return (q32 + (rotated - rotated.detach())).to(e.dtype)


__all__ = ["rotate_to"]
