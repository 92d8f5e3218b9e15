"""Built-in models by name, so the CLI and benchmarks can say `--model resnet-digits`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .function import FunctionApproximator, FunctionApproximatorConfig
from .pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from .resnet import ResNet, ResNetConfig, resnet50_config
from .sequence import SequenceClassifier, SequenceClassifierConfig
from .vqvae import VQVAE2, VQVAE2Config

# config-class name (the "kind" in config.json) -> (model class, config class). Each model module
# registers itself here so `load_model(folder)` can rebuild any archkit checkpoint.
MODEL_KINDS: dict[str, tuple[type[nn.Module], type]] = {
    "ResNetConfig": (ResNet, ResNetConfig),
    "SequenceClassifierConfig": (SequenceClassifier, SequenceClassifierConfig),
    "VQVAE2Config": (VQVAE2, VQVAE2Config),
    "GatedPixelCNNConfig": (GatedPixelCNN, GatedPixelCNNConfig),
    "FunctionApproximatorConfig": (FunctionApproximator, FunctionApproximatorConfig),
}

# name -> (factory, example-input shape without batch)
_BUILTIN: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "resnet-digits": (lambda: ResNet(ResNetConfig()), (1, 8, 8)),
    "resnet-digits32": (lambda: ResNet(ResNetConfig()), (1, 32, 32)),
    "resnet50": (lambda: ResNet(resnet50_config()), (3, 224, 224)),
}


def list_models() -> list[str]:
    """Names accepted by `create_model`."""
    return sorted(_BUILTIN)


def create_model(name: str) -> nn.Module:
    """Build a built-in model (random init) by name."""
    if name not in _BUILTIN:
        raise ValueError(f"model: unknown name {name!r}; expected one of {list_models()}")
    return _BUILTIN[name][0]()


def example_input(name: str, batch_size: int = 1, seed: int = 0) -> torch.Tensor:
    """A random input of the right shape for a built-in model."""
    if name not in _BUILTIN:
        raise ValueError(f"model: unknown name {name!r}; expected one of {list_models()}")
    return torch.randn((batch_size, *_BUILTIN[name][1]), generator=torch.Generator().manual_seed(seed))
