"""archkit: working, tested, measured answers to common neural-architecture questions."""

# First, before anything imports torch: the `archkit` command's CPU thread defaults (see archkit.threads).
from .threads import apply_if_archkit_command as _apply_if_archkit_command

_apply_if_archkit_command()

from . import data, estimators, io, layers, loading, models, studies, surgery, train, utils
from .estimators import AutoSequenceClassifier, FunctionRegressor, LSTMClassifier, RocketClassifier
from .layers import (
    FSQ,
    ConvNormAct,
    DecomposedConv2d,
    FrozenBatchNorm,
    LowRankConv2d,
    LowRankLinear,
    MiniRocket,
    VectorQuantizer,
    create_act,
    create_norm,
    reduce_channels,
)
from .loading import build_model, load_model
from .models import (
    VQVAE2,
    FunctionApproximator,
    FunctionApproximatorConfig,
    GatedPixelCNN,
    GatedPixelCNNConfig,
    ResNet,
    ResNetConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
    VQVAE2Config,
    create_model,
    load_vqvae,
)
from .surgery import (
    SurgeryReport,
    compare,
    count_macs,
    count_params,
    decompose,
    freeze_bn,
    fuse_bn,
    lowrank,
    replace_norm,
    to_selu,
    unfreeze_bn,
)
from .surgery import export_model as export
from .train import Accelerator, create_accelerator
from .utils import ArchkitWarning, FolderLayoutWarning, UnreadableFilesWarning

__version__ = "0.2.0"

__all__ = [
    "FSQ",
    "VQVAE2",
    # train
    "Accelerator",
    "ArchkitWarning",
    "AutoSequenceClassifier",
    # layers
    "ConvNormAct",
    "DecomposedConv2d",
    "FolderLayoutWarning",
    "FrozenBatchNorm",
    # models
    "FunctionApproximator",
    "FunctionApproximatorConfig",
    "FunctionRegressor",
    "GatedPixelCNN",
    "GatedPixelCNNConfig",
    "LSTMClassifier",
    "LowRankConv2d",
    "LowRankLinear",
    "MiniRocket",
    "ResNet",
    "ResNetConfig",
    "RocketClassifier",
    "SequenceClassifier",
    "SequenceClassifierConfig",
    # surgery
    "SurgeryReport",
    "UnreadableFilesWarning",
    "VQVAE2Config",
    "VectorQuantizer",
    "build_model",
    "compare",
    "count_macs",
    "count_params",
    "create_accelerator",
    "create_act",
    "create_model",
    "create_norm",
    # subpackages
    "data",
    "decompose",
    "estimators",
    # deployment and scikit-learn
    "export",
    "freeze_bn",
    "fuse_bn",
    "io",
    "layers",
    "load_model",
    "load_vqvae",
    "loading",
    "lowrank",
    "models",
    "reduce_channels",
    "replace_norm",
    "studies",
    "surgery",
    "to_selu",
    "train",
    "unfreeze_bn",
    "utils",
]
