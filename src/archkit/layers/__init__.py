"""Building blocks: conv/norm/act triplets, norm and activation factories."""
from .act import ACT_CHOICES, create_act
from .conv import ORDERS, ConvNormAct, reduce_channels, same_padding
from .norm import NORM_CHOICES, ChannelLayerNorm, FrozenBatchNorm, create_norm, largest_group_count

__all__ = [
    "ACT_CHOICES", "NORM_CHOICES", "ORDERS",
    "ChannelLayerNorm", "ConvNormAct", "FrozenBatchNorm",
    "create_act", "create_norm", "largest_group_count", "reduce_channels", "same_padding",
]
