"""Building blocks: conv/norm/act triplets, norm and activation factories."""
from .act import ACT_CHOICES, create_act
from .conv import ORDERS, ConvNormAct, reduce_channels, same_padding
from .norm import NORM_CHOICES, ChannelLayerNorm, FrozenBatchNorm, create_norm, largest_group_count
from .quantize import QuantizerOutput, VectorQuantizer
from .pixelcnn import CausalSelfAttention2d, GatedPixelCNNLayer, ShiftedConv2d
from .features import (
    FEATURE_CHOICES, Concat, FeatureStack, Identity, IdentityFeatures, Polynomial, RandomFourier, Sinusoidal,
    create_feature, create_features,
)
from .lowrank import LowRankConv2d, LowRankLinear
from .decompose import DecomposedConv2d

__all__ = [
    "ACT_CHOICES", "NORM_CHOICES", "ORDERS",
    "ChannelLayerNorm", "ConvNormAct", "FrozenBatchNorm", "QuantizerOutput", "VectorQuantizer",
    "CausalSelfAttention2d", "GatedPixelCNNLayer", "ShiftedConv2d",
    "FEATURE_CHOICES", "Concat", "FeatureStack", "Identity", "IdentityFeatures", "Polynomial", "RandomFourier",
    "Sinusoidal", "create_feature", "create_features",
    "DecomposedConv2d", "LowRankConv2d", "LowRankLinear",
    "create_act", "create_norm", "largest_group_count", "reduce_channels", "same_padding",
]
