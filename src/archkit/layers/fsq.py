"""FSQ: finite scalar quantization (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple").

Each of d = len(levels) channels is bounded with tanh to `levels[i]` values and rounded with a
straight-through gradient; the implicit codebook is the grid of all combinations, prod(levels) codes,
so there is nothing to learn, no commitment loss and no dead codes to restart. Every grid point maps to
one integer index in [0, prod(levels)) (mixed radix, first channel fastest) and back, so an FSQ level
gives the priors, the sampler and `encode` the same integer code maps as the EMA codebook does.

When the embedding dim differs from len(levels), a linear projection maps it in (dim -> d) and out
(d -> dim). Bounding, rounding and the statistics run in fp32 with autocast off whatever the input
dtype; the output has the input's dtype. The paper's recommended level sets (its table 1):
2^8: (8, 6, 5), 2^10: (8, 5, 5, 5), 2^12: (7, 5, 5, 5, 5), 2^14: (8, 8, 8, 6, 5), 2^16: (8, 8, 8, 5, 5, 5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .quantize import QuantizerOutput, _no_autocast

# Paper table 1: levels for a target codebook size (what `fsq_levels_for` returns).
RECOMMENDED_LEVELS: dict[int, tuple[int, ...]] = {
    2**8: (8, 6, 5),
    2**10: (8, 5, 5, 5),
    2**12: (7, 5, 5, 5, 5),
    2**14: (8, 8, 8, 6, 5),
    2**16: (8, 8, 8, 5, 5, 5),
}


def fsq_levels_for(num_codes: int) -> tuple[int, ...]:
    """The paper's levels whose product is closest to `num_codes` (e.g. 512 -> (8, 6, 5) ... 1000)."""
    if not isinstance(num_codes, int) or num_codes < 2:
        raise ValueError(f"num_codes: expected an int >= 2, got {num_codes!r}")
    best = min(RECOMMENDED_LEVELS, key=lambda k: abs(math.log(k / num_codes)))
    return RECOMMENDED_LEVELS[best]


def check_levels(levels: Sequence[int], name: str = "levels") -> tuple[int, ...]:
    """`levels` as a tuple of ints >= 2, or a ValueError naming `name`."""
    try:
        out = tuple(levels)
    except TypeError:
        raise ValueError(f"{name}: expected a sequence of ints >= 2 (e.g. (8, 5, 5, 5)), got {levels!r}") from None
    if not out or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 2 for v in out):
        raise ValueError(f"{name}: expected a sequence of ints >= 2 (e.g. (8, 5, 5, 5)), got {levels!r}")
    if math.prod(out) > 2**24:
        raise ValueError(f"{name}: {out} gives {math.prod(out):,} codes; expected at most 2**24")
    return out


def _round_ste(z: torch.Tensor) -> torch.Tensor:
    return z + (z.round() - z).detach()


class FSQ(nn.Module):
    """Finite scalar quantizer with the VectorQuantizer interface: (B, dim, ...) -> QuantizerOutput."""

    _levels: torch.Tensor
    _basis: torch.Tensor
    steps: torch.Tensor

    def __init__(self, levels: Sequence[int] = (8, 5, 5, 5), dim: int | None = None, eps: float = 1e-3) -> None:
        super().__init__()
        self.levels = check_levels(levels)
        d = len(self.levels)
        self.dim = d if dim is None else dim
        if not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"dim: expected a positive int, got {dim!r}")
        self.num_codes = math.prod(self.levels)
        self.eps = eps
        lv = torch.tensor(self.levels, dtype=torch.float32)
        self.register_buffer("_levels", lv, persistent=False)
        basis = torch.cumprod(torch.tensor((1, *self.levels[:-1]), dtype=torch.long), 0)
        self.register_buffer("_basis", basis, persistent=False)
        self.project_in = nn.Linear(self.dim, d) if self.dim != d else nn.Identity()
        self.project_out = nn.Linear(d, self.dim) if self.dim != d else nn.Identity()
        # Training steps seen; VQVAE2 ties its code dropout to it (as for the EMA codebook).
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return f"levels={self.levels}, dim={self.dim}, num_codes={self.num_codes}"

    def _half_width(self) -> torch.Tensor:
        return (self._levels // 2).float()

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """tanh-bound each channel to (-L/2, L/2) (shifted by 1/2 for even L so rounding gives L values)."""
        half_l = (self._levels - 1) * (1 + self.eps) / 2
        offset = (self._levels % 2 == 0).float() * 0.5
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def codes_to_indices(self, zhat: torch.Tensor) -> torch.Tensor:
        """Grid points (..., d) scaled to [-1, 1] -> integer indices (...) in [0, num_codes)."""
        half = self._half_width()
        digits = (zhat * half + half).round().long()
        return (digits * self._basis).sum(-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Integer indices (...) -> grid points (..., d) in [-1, 1] (fp32)."""
        digits = (indices.long()[..., None] // self._basis) % self._levels.long()
        half = self._half_width()
        return (digits.float() - half) / half

    def _project(self, layer: nn.Module, z: torch.Tensor) -> torch.Tensor:
        if isinstance(layer, nn.Identity):
            return z
        assert isinstance(layer, nn.Linear)
        bias = None if layer.bias is None else layer.bias.float()
        return F.linear(z, layer.weight.float(), bias)

    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        if x.dim() < 2 or x.shape[1] != self.dim:
            raise ValueError(f"FSQ: expected input (B, {self.dim}, ...), got shape {tuple(x.shape)}")
        with _no_autocast(x.device.type):
            z = self._project(self.project_in, x.movedim(1, -1).float())
            zhat = _round_ste(self.bound(z)) / self._half_width()
            indices = self.codes_to_indices(zhat.detach())
            out = self._project(self.project_out, zhat)
        if self.training:
            self.steps.add_(1)
        counts = torch.bincount(indices.flatten(), minlength=self.num_codes).float()
        probs = counts / counts.sum().clamp_min(1)
        perplexity = torch.exp(-(probs * torch.log(probs.clamp_min(1e-10))).sum())
        usage = (counts > 0).float().mean()
        loss = x.new_zeros((), dtype=torch.float32)  # no codebook to commit to
        return QuantizerOutput(out.to(x.dtype).movedim(-1, 1), indices, loss, perplexity, usage)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes for an index map (B, ...) as a channels-first tensor (B, dim, ...)."""
        if indices.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"indices: expected an integer tensor, got dtype {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_codes):
            raise ValueError(
                f"indices: expected values in [0, {self.num_codes}), got [{int(indices.min())}, {int(indices.max())}]"
            )
        with _no_autocast(indices.device.type):
            out = self._project(self.project_out, self.indices_to_codes(indices))
        return out.movedim(-1, 1)  # fp32, as the EMA codebook's lookup


__all__ = ["FSQ", "RECOMMENDED_LEVELS", "check_levels", "fsq_levels_for"]
