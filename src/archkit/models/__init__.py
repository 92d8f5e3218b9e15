"""Reference models, each configured by a @dataclass saved beside its weights."""
from .registry import MODEL_KINDS, create_model, example_input, list_models, load_model
from .resnet import BasicBlock, Bottleneck, ResNet, ResNetConfig, resnet50_config

__all__ = [
    "BasicBlock", "Bottleneck", "ResNet", "ResNetConfig",
    "MODEL_KINDS", "create_model", "example_input", "list_models", "load_model", "resnet50_config",
]
