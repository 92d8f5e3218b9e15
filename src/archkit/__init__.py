"""archkit: working, tested, measured answers to common neural-architecture questions."""
from . import data, layers, models, studies, surgery, train
from .layers import ConvNormAct, FrozenBatchNorm, create_act, create_norm, reduce_channels
from .models import ResNet, ResNetConfig, SequenceClassifier, SequenceClassifierConfig, create_model
from .models import FunctionApproximator, FunctionApproximatorConfig
from .surgery import SurgeryReport, compare, count_macs, count_params, freeze_bn, fuse_bn
from .layers import DecomposedConv2d, LowRankConv2d, LowRankLinear
from .surgery import decompose, lowrank
from .models import GatedPixelCNN, GatedPixelCNNConfig
from .layers import VectorQuantizer
from .models import VQVAE2, VQVAE2Config, load_vqvae

__version__ = "0.1.0"

__all__ = [
    "ConvNormAct", "FrozenBatchNorm", "ResNet", "ResNetConfig", "SurgeryReport",
    "compare", "count_macs", "count_params", "freeze_bn", "fuse_bn", "create_act", "create_model", "create_norm", "reduce_channels",
    "SequenceClassifier", "SequenceClassifierConfig",
    "FunctionApproximator", "FunctionApproximatorConfig",
    "DecomposedConv2d", "LowRankConv2d", "LowRankLinear", "decompose", "lowrank",
    "GatedPixelCNN", "GatedPixelCNNConfig",
    "VectorQuantizer", "VQVAE2", "VQVAE2Config", "load_vqvae",
    "data", "layers", "models", "studies", "surgery", "train",
]
