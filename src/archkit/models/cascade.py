"""CascadeCNN: a plain conv cascade whose 1x1 reductions (2C -> C) come in a chosen order.

Built for the reduction study: with `reduction_order="conv-norm-act"` the net is
conv-bn-relu | conv-bn-relu | ...; with "norm-act-conv" and pre-activation blocks it is
conv | bn-relu-conv | bn-relu-conv | ... | bn-relu -- the same cascade cut into different
triplets, so after BN folding both become the same chain of conv-relu pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..layers import ORDERS, ConvNormAct, create_act, create_norm, reduce_channels


@dataclass
class CascadeCNNConfig:
    """Config of `CascadeCNN`; each stage is a 1x1 reduction (wide -> width) then a 3x3 conv (width -> width * expansion)."""

    in_channels: int = 1
    num_classes: int = 10
    stem_channels: int = 32
    widths: list[int] = field(default_factory=lambda: [16, 16, 32])
    strides: list[int] = field(default_factory=lambda: [1, 2, 1])
    expansion: int = 2
    reduction_order: str = "conv-norm-act"
    # Order of the 3x3 blocks; None = pre-activation when the reductions are, else post-activation.
    block_order: str | None = None
    norm: str | None = "batch"
    act: str = "relu"

    def resolved_block_order(self) -> str:
        """The 3x3 block order actually used ("conv" reductions keep post-activation 3x3 blocks)."""
        if self.block_order is not None:
            return self.block_order
        return "norm-act-conv" if self.reduction_order == "norm-act-conv" else "conv-norm-act"


class CascadeCNN(nn.Sequential):
    """stem, [1x1 reduce, 3x3 conv] per stage, (final norm-act when pre-activation), pool, linear.

    No custom forward: a plain nn.Sequential traces with torch.fx, so fuse_bn sees the whole cascade.
    """

    def __init__(self, config: CascadeCNNConfig | None = None) -> None:
        cfg = config or CascadeCNNConfig()
        block_order = cfg.resolved_block_order()
        for name, order in (("reduction_order", cfg.reduction_order), ("block_order", block_order)):
            if order not in ORDERS:
                raise ValueError(f"{name}: unknown value {order!r}; expected one of {list(ORDERS)}")
        if len(cfg.widths) != len(cfg.strides) or not cfg.widths:
            raise ValueError(f"widths and strides: expected equal non-zero lengths, got {cfg.widths} and {cfg.strides}")
        preact = block_order == "norm-act-conv"
        layers: list[tuple[str, nn.Module]] = []
        # A pre-activation cascade starts with a bare conv: its output feeds the next block's norm.
        stem = (
            nn.Conv2d(cfg.in_channels, cfg.stem_channels, 3, padding=1)
            if preact
            else ConvNormAct(cfg.in_channels, cfg.stem_channels, 3, norm=cfg.norm, act=cfg.act)
        )
        layers.append(("stem", stem))
        ch = cfg.stem_channels
        for i, (width, stride) in enumerate(zip(cfg.widths, cfg.strides)):
            layers.append(
                (f"reduce{i}", reduce_channels(ch, width, order=cfg.reduction_order, norm=cfg.norm, act=cfg.act))
            )
            ch = width * cfg.expansion
            layers.append(
                (f"conv{i}", ConvNormAct(width, ch, 3, stride=stride, order=block_order, norm=cfg.norm, act=cfg.act))
            )
        if preact:  # close the cascade: the last conv's output still needs its norm + act
            final = [m for m in (create_norm(cfg.norm, ch), create_act(cfg.act)) if m is not None]
            layers.append(("final", nn.Sequential(*final)))
        layers += [
            ("pool", nn.AdaptiveAvgPool2d(1)),
            ("flatten", nn.Flatten()),
            ("head", nn.Linear(ch, cfg.num_classes)),
        ]
        super().__init__()
        for name, layer in layers:
            self.add_module(name, layer)
        self.config = cfg
