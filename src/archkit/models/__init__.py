"""Reference models, each configured by a @dataclass saved beside its weights."""

from ..utils.modules import example_inputs_for
from ..utils.moved import point_moved_names
from .cascade import CascadeCNN, CascadeCNNConfig
from .function import DomainError, DomainWarning, FunctionApproximator, FunctionApproximatorConfig
from .pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from .plaincnn import PlainCNN, PlainCNNConfig, matched_mid_channels
from .registry import MODEL_KINDS, create_model, example_input, list_models
from .resnet import BasicBlock, Bottleneck, ResNet, ResNetConfig, resnet50_config
from .segnet import SegNet, SegNetConfig
from .sequence import SequenceClassifier, SequenceClassifierConfig
from .vqvae import VQVAE2, VQVAE2Config, VQVAEOutput, load_vqvae
from .vqvae_layout import format_layout_table, format_presets, layout_table
from .vqvae_presets import PRESETS as VQVAE2_PRESETS

# Public names that moved: importing them from their old place fails with one line naming the new home.
point_moved_names(__name__, {"archkit.loading": ("build_model", "load_model")})
point_moved_names(
    f"{__name__}.registry",
    {"archkit.loading": ("build_model", "load_model"), "archkit.utils.modules": ("example_inputs_for",)},
)
point_moved_names(
    f"{__name__}.vqvae",
    {
        "archkit.models.vqvae_presets": ("PRESETS",),
        "archkit.models.vqvae_layout": ("format_layout_table", "format_presets", "layout_table"),
    },
)

__all__ = [
    "MODEL_KINDS",
    "VQVAE2",
    "VQVAE2_PRESETS",
    "BasicBlock",
    "Bottleneck",
    "CascadeCNN",
    "CascadeCNNConfig",
    "DomainError",
    "DomainWarning",
    "FunctionApproximator",
    "FunctionApproximatorConfig",
    "GatedPixelCNN",
    "GatedPixelCNNConfig",
    "PlainCNN",
    "PlainCNNConfig",
    "ResNet",
    "ResNetConfig",
    "SegNet",
    "SegNetConfig",
    "SequenceClassifier",
    "SequenceClassifierConfig",
    "VQVAE2Config",
    "VQVAEOutput",
    "create_model",
    "example_input",
    "example_inputs_for",
    "format_layout_table",
    "format_presets",
    "layout_table",
    "list_models",
    "load_vqvae",
    "matched_mid_channels",
    "resnet50_config",
]
