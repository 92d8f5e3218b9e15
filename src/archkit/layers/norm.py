"""Normalization layers and the `create_norm` factory used by every block in archkit."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

NormSpec = str | type | Callable[[int], nn.Module] | None

NORM_CHOICES = ("batch", "group", "layer", "frozen", None)


class FrozenBatchNorm(nn.Module):
    """BatchNorm with fixed statistics and affine parameters: an exact per-channel affine map.

    Works for any input rank (B, C, ...). Everything is a buffer, so nothing trains and
    `train()` changes nothing; the state_dict keys match `nn.BatchNorm*d` for easy loading.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    @classmethod
    def from_batchnorm(cls, bn: nn.modules.batchnorm._BatchNorm) -> FrozenBatchNorm:
        """Copy statistics and affine parameters out of a (trained) BatchNorm."""
        frozen = cls(bn.num_features, bn.eps)
        with torch.no_grad():
            if bn.affine:
                frozen.weight.copy_(bn.weight)
                frozen.bias.copy_(bn.bias)
            if bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None:
                frozen.running_mean.copy_(bn.running_mean)
                frozen.running_var.copy_(bn.running_var)
        return frozen.to(bn.weight.device if bn.affine else frozen.weight.device)

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-channel (scale, shift) this layer applies: y = x * scale + shift."""
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"FrozenBatchNorm: expected input (B, {self.num_features}, ...), got shape {tuple(x.shape)}"
            )
        scale, shift = self.scale_shift()
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * scale.view(shape) + shift.view(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dimension of a channels-first tensor (B, C, ...)."""

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


def largest_group_count(num_channels: int, num_groups: int) -> int:
    """The largest divisor of `num_channels` that is <= `num_groups` (GroupNorm needs a divisor)."""
    for g in range(min(num_groups, num_channels), 0, -1):
        if num_channels % g == 0:
            return g
    return 1


def _batchnorm_for_dim(dim: int) -> type:
    return {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dim]


def create_norm(norm: NormSpec, num_channels: int, dim: int = 2, num_groups: int = 32) -> nn.Module | None:
    """Build a normalization layer from a name, a module class or a factory; None means no norm."""
    if norm is None:
        return None
    if isinstance(norm, str):
        key = norm.lower()
        if key == "batch":
            return _batchnorm_for_dim(dim)(num_channels)
        if key == "group":
            return nn.GroupNorm(largest_group_count(num_channels, num_groups), num_channels)
        if key == "layer":
            return ChannelLayerNorm(num_channels)
        if key == "frozen":
            return FrozenBatchNorm(num_channels)
        raise ValueError(f"norm: unknown name {norm!r}; expected one of {list(NORM_CHOICES)} or a module class")
    if callable(norm):
        return norm(num_channels)
    raise TypeError(f"norm: expected a name, a module class or None, got {type(norm).__name__}")
