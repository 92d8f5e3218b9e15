"""A plain VGG-style CNN whose KxK convs can be DecomposeMe layers (vertical Kx1 -> act -> horizontal 1xK)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..layers import DecomposedConv2d, create_act, create_norm


@dataclass
class PlainCNNConfig:
    """Configuration of `PlainCNN`. conv="decomposed" uses DecomposedConv2d with `mid_act` between the 1-D convs
    and `mid_norm` between the 1-D convs, mid channels = mid_ratio x the width whose parameter count equals
    the dense KxK conv; decompose_first=False keeps the first (few-input-channel) conv dense."""

    in_channels: int = 1
    num_classes: int = 10
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    kernel_size: int = 3
    conv: str = "dense"
    mid_ratio: float = 1.0
    mid_act: str | None = "relu"
    mid_norm: str | None = None
    decompose_first: bool = True
    norm: str | None = "batch"
    act: str = "relu"


def matched_mid_channels(in_channels: int, out_channels: int, kernel_size: int, ratio: float = 1.0) -> int:
    """Mid width m with m*K*(C_in + C_out) ~= ratio * C_in*C_out*K^2, i.e. the params of the dense conv (>= 1)."""
    return max(1, int(ratio * in_channels * out_channels * kernel_size / (in_channels + out_channels)))


class PlainCNN(nn.Module):
    """Stages of conv -> norm -> act -> 2x2 max-pool (none after the last), global average pool, linear head."""

    def __init__(self, config: PlainCNNConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or PlainCNNConfig()
        if cfg.conv not in ("dense", "decomposed"):
            raise ValueError(f"conv: expected 'dense' or 'decomposed', got {cfg.conv!r}")
        if not cfg.widths:
            raise ValueError("widths: expected at least one stage width")
        layers: list[nn.Module] = []
        in_ch, k = cfg.in_channels, cfg.kernel_size
        for i, width in enumerate(cfg.widths):
            if cfg.conv == "dense" or (i == 0 and not cfg.decompose_first):
                layers.append(nn.Conv2d(in_ch, width, k, padding=k // 2, bias=cfg.norm is None))
            else:
                mid = matched_mid_channels(in_ch, width, k, cfg.mid_ratio)
                # bias=True: the vertical conv needs one before its ReLU (the horizontal one is redundant before a norm)
                layers.append(DecomposedConv2d(in_ch, width, k, mid, act=cfg.mid_act, norm=cfg.mid_norm, bias=True))
            layers += [m for m in (create_norm(cfg.norm, width), create_act(cfg.act)) if m is not None]
            if i < len(cfg.widths) - 1:
                layers.append(nn.MaxPool2d(2))
            in_ch = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(in_ch, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"PlainCNN: expected input (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}")
        return self.head(torch.flatten(self.pool(self.features(x)), 1))
