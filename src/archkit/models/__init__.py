"""Reference models, each configured by a @dataclass saved beside its weights."""
from .registry import create_model, example_input, list_models
from .resnet import BasicBlock, Bottleneck, ResNet, ResNetConfig, resnet50_config

__all__ = [
    "BasicBlock", "Bottleneck", "ResNet", "ResNetConfig",
    "create_model", "example_input", "list_models", "resnet50_config",
]
