"""archkit: working, tested, measured answers to common neural-architecture questions."""
from . import data, estimators, layers, models, studies, surgery, train
from .layers import (ConvNormAct, DecomposedConv2d, FrozenBatchNorm, LowRankConv2d, LowRankLinear, VectorQuantizer,
                     create_act, create_norm, reduce_channels)
from .models import (VQVAE2, FunctionApproximator, FunctionApproximatorConfig, GatedPixelCNN, GatedPixelCNNConfig,
                     ResNet, ResNetConfig, SequenceClassifier, SequenceClassifierConfig, VQVAE2Config, create_model,
                     load_model, load_vqvae)
from .train import Accelerator, create_accelerator
from .surgery import (SurgeryReport, compare, count_macs, count_params, decompose, freeze_bn, fuse_bn, lowrank,
                      replace_norm, to_selu, unfreeze_bn)
from .surgery import export_model as export
from .estimators import FunctionRegressor, LSTMClassifier

__version__ = "0.1.0"

__all__ = [
    # layers
    "ConvNormAct", "DecomposedConv2d", "FrozenBatchNorm", "LowRankConv2d", "LowRankLinear", "VectorQuantizer",
    "create_act", "create_norm", "reduce_channels",
    # models
    "FunctionApproximator", "FunctionApproximatorConfig", "GatedPixelCNN", "GatedPixelCNNConfig", "ResNet",
    "ResNetConfig", "SequenceClassifier", "SequenceClassifierConfig", "VQVAE2", "VQVAE2Config", "create_model",
    "load_model", "load_vqvae",
    # surgery
    "SurgeryReport", "compare", "count_macs", "count_params", "decompose", "freeze_bn", "fuse_bn", "lowrank",
    "replace_norm", "to_selu", "unfreeze_bn",
    # train
    "Accelerator", "create_accelerator",
    # deployment and scikit-learn
    "export", "FunctionRegressor", "LSTMClassifier",
    # subpackages
    "data", "estimators", "layers", "models", "studies", "surgery", "train",
]
