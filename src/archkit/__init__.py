"""archkit: working, tested, measured answers to common neural-architecture questions."""
from . import data, layers, models, studies, surgery, train
from .layers import ConvNormAct, FrozenBatchNorm, create_act, create_norm, reduce_channels
from .models import ResNet, ResNetConfig, create_model
from .surgery import SurgeryReport, count_macs, count_params

__version__ = "0.1.0"

__all__ = [
    "ConvNormAct", "FrozenBatchNorm", "ResNet", "ResNetConfig", "SurgeryReport",
    "count_macs", "count_params", "create_act", "create_model", "create_norm", "reduce_channels",
    "data", "layers", "models", "studies", "surgery", "train",
]
