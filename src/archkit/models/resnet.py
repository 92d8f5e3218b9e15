"""A ResNet-style classifier built from ConvNormAct, from digits-sized to ResNet-50-shaped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..layers import ConvNormAct, create_act
from ..utils.modules import param_dtype_device


@dataclass
class ResNetConfig:
    """Configuration of `ResNet`; `reduction_order` sets the order of every bottleneck's 1x1 reduction."""

    in_channels: int = 1
    num_classes: int = 10
    stem_channels: int = 16
    stem_kernel: int = 3
    stem_stride: int = 1
    stem_pool: bool = False
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    blocks: list[int] = field(default_factory=lambda: [1, 1, 1])
    bottleneck: bool = True
    expansion: int = 2
    reduction_order: str = "conv-norm-act"
    norm: str | None = "batch"
    act: str = "relu"


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 -> 1x1 expand, plus a (projected) shortcut, then the activation."""

    def __init__(self, in_ch: int, width: int, out_ch: int, stride: int, cfg: ResNetConfig) -> None:
        super().__init__()
        self.reduce = ConvNormAct(in_ch, width, 1, order=cfg.reduction_order, norm=cfg.norm, act=cfg.act)
        self.conv = ConvNormAct(width, width, 3, stride=stride, norm=cfg.norm, act=cfg.act)
        self.expand = ConvNormAct(width, out_ch, 1, norm=cfg.norm, act=None)
        self.shortcut = (
            ConvNormAct(in_ch, out_ch, 1, stride=stride, norm=cfg.norm, act=None)
            if stride != 1 or in_ch != out_ch
            else nn.Identity()
        )
        self.act = create_act(cfg.act) or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.expand(self.conv(self.reduce(x))) + self.shortcut(x))


class BasicBlock(nn.Module):
    """Two 3x3 convs plus a (projected) shortcut, then the activation."""

    def __init__(self, in_ch: int, width: int, out_ch: int, stride: int, cfg: ResNetConfig) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_ch, width, 3, stride=stride, norm=cfg.norm, act=cfg.act)
        self.conv2 = ConvNormAct(width, out_ch, 3, norm=cfg.norm, act=None)
        self.shortcut = (
            ConvNormAct(in_ch, out_ch, 1, stride=stride, norm=cfg.norm, act=None)
            if stride != 1 or in_ch != out_ch
            else nn.Identity()
        )
        self.act = create_act(cfg.act) or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, stages of residual blocks (stride 2 between stages), global average pool, linear head."""

    def __init__(self, config: ResNetConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or ResNetConfig()
        if len(cfg.widths) != len(cfg.blocks):
            raise ValueError(f"widths and blocks must have equal length, got {cfg.widths} and {cfg.blocks}")
        stem: list[nn.Module] = [
            ConvNormAct(
                cfg.in_channels, cfg.stem_channels, cfg.stem_kernel, stride=cfg.stem_stride, norm=cfg.norm, act=cfg.act
            )
        ]
        if cfg.stem_pool:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        stages, in_ch = [], cfg.stem_channels
        for i, (width, n) in enumerate(zip(cfg.widths, cfg.blocks)):
            out_ch = width * cfg.expansion if cfg.bottleneck else width
            block = Bottleneck if cfg.bottleneck else BasicBlock
            layers = []
            for j in range(n):
                layers.append(block(in_ch, width, out_ch, 2 if (j == 0 and i > 0) else 1, cfg))
                in_ch = out_ch
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(in_ch, cfg.num_classes)

    def example_inputs(self, batch_size: int = 2, seed: int = 0, input_shape: Sequence[int] | None = None) -> tuple:
        """Random images (B, C, S, S), S from `input_shape` (default 32): inputs surgery and export can trace."""
        dtype, device = param_dtype_device(self)
        size = input_shape[-1] if input_shape else 32
        gen = torch.Generator().manual_seed(seed)
        return (torch.randn((batch_size, self.config.in_channels, size, size), generator=gen).to(device, dtype),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"ResNet: expected input (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}")
        return self.head(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


def resnet50_config(num_classes: int = 1000) -> ResNetConfig:
    """The ResNet-50 shape: 7x7/2 stem + max-pool, bottleneck stages [3, 4, 6, 3], widths 64..512, x4."""
    return ResNetConfig(
        in_channels=3,
        num_classes=num_classes,
        stem_channels=64,
        stem_kernel=7,
        stem_stride=2,
        stem_pool=True,
        widths=[64, 128, 256, 512],
        blocks=[3, 4, 6, 3],
        expansion=4,
    )
