"""Reference models, each configured by a @dataclass saved beside its weights."""
from .registry import (MODEL_KINDS, build_model, create_model, example_input, example_inputs_for, list_models,
                       load_model)
from .cascade import CascadeCNN, CascadeCNNConfig
from .segnet import SegNet, SegNetConfig
from .resnet import BasicBlock, Bottleneck, ResNet, ResNetConfig, resnet50_config
from .sequence import SequenceClassifier, SequenceClassifierConfig
from .vqvae import PRESETS as VQVAE2_PRESETS, VQVAE2, VQVAE2Config, VQVAEOutput, format_layout_table, layout_table, load_vqvae
from .pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from .plaincnn import PlainCNN, PlainCNNConfig, matched_mid_channels
from .function import DomainError, DomainWarning, FunctionApproximator, FunctionApproximatorConfig

__all__ = [
    "CascadeCNN", "CascadeCNNConfig", "SegNet", "SegNetConfig",
    "BasicBlock", "Bottleneck", "ResNet", "ResNetConfig",
    "SequenceClassifier", "SequenceClassifierConfig",
    "VQVAE2", "VQVAE2Config", "VQVAE2_PRESETS", "VQVAEOutput", "format_layout_table", "layout_table", "load_vqvae",
    "GatedPixelCNN", "GatedPixelCNNConfig",
    "PlainCNN", "PlainCNNConfig", "matched_mid_channels",
    "DomainError", "DomainWarning", "FunctionApproximator", "FunctionApproximatorConfig",
    "MODEL_KINDS", "build_model", "create_model", "example_input", "example_inputs_for", "list_models", "load_model", "resnet50_config",
]
