"""SegNet: a small fully convolutional encoder-decoder (additive skips) for pixel-wise labels.

Every conv is a post-activation ConvNormAct, so each BN directly follows a conv and can be folded;
skips are added (not concatenated) so no BN ever sits after a concat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ConvNormAct


@dataclass
class SegNetConfig:
    """Config of `SegNet`: one encoder level per width (stride 2 between levels), mirrored decoder."""

    in_channels: int = 1
    num_classes: int = 11
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    norm: str | None = "batch"
    act: str = "relu"


class SegNet(nn.Module):
    """(B, in, H, W) -> (B, num_classes, H, W) logits; any H, W (decoder resizes to each skip)."""

    def __init__(self, config: SegNetConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or SegNetConfig()
        if not cfg.widths or any(not isinstance(w, int) or w < 1 for w in cfg.widths):
            raise ValueError(f"widths: expected a non-empty list of positive ints, got {cfg.widths!r}")
        block = lambda i, o, s=1: ConvNormAct(i, o, 3, stride=s, norm=cfg.norm, act=cfg.act)  # noqa: E731
        self.down = nn.ModuleList()
        prev = cfg.in_channels
        for i, w in enumerate(cfg.widths):
            self.down.append(nn.Sequential(block(prev, w, 1 if i == 0 else 2), block(w, w)))
            prev = w
        # up[j] maps level j+1 back to level j's width; merge[j] refines after adding the skip.
        self.up = nn.ModuleList([block(cfg.widths[j + 1], cfg.widths[j]) for j in range(len(cfg.widths) - 1)])
        self.merge = nn.ModuleList([block(cfg.widths[j], cfg.widths[j]) for j in range(len(cfg.widths) - 1)])
        self.head = nn.Conv2d(cfg.widths[0], cfg.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level in self.down:
            x = level(x)
            skips.append(x)
        for j in reversed(range(len(self.up))):
            skip = skips[j]
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = self.merge[j](self.up[j](x) + skip)
        return self.head(x)


__all__ = ["SegNet", "SegNetConfig"]
