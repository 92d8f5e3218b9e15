"""Built-in models by name, so the CLI and benchmarks can say `--model resnet-digits`."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .resnet import ResNet, ResNetConfig, resnet50_config
from .sequence import SequenceClassifier, SequenceClassifierConfig
from .vqvae import VQVAE2, VQVAE2Config
from .pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from .function import FunctionApproximator, FunctionApproximatorConfig

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


def example_inputs_for(model: nn.Module, batch_size: int = 2, seed: int = 0,
                       input_shape: list[int] | tuple[int, ...] | None = None) -> tuple | None:
    """Random positional inputs for an archkit model, by kind; None for other modules.

    Images (B, C, S, S) for ResNet / VQVAE2 (VQVAE2: in [0, 1], S a multiple of its downsampling), integer
    code maps (B, S, S) (+ labels, + the conditioning code map) for GatedPixelCNN, (B, T, C) sequences +
    lengths (some shorter than T, so padding is exercised) for SequenceClassifier, (B, in_dim) features for
    FunctionApproximator. `input_shape` is the first input's shape without the batch dim (as saved with a
    checkpoint); it sets S or T.
    """
    gen = torch.Generator().manual_seed(seed)
    b = batch_size
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None and param.dtype.is_floating_point else torch.float32
    device = param.device if param is not None else None

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=gen).to(device=device, dtype=dtype)

    shape = list(input_shape) if input_shape is not None else None
    if isinstance(model, ResNet):
        size = shape[-1] if shape else 32
        return (rand(b, model.config.in_channels, size, size),)
    if isinstance(model, VQVAE2):
        factor = model.config.downsample_factor(0)
        size = shape[-1] if shape else max(16, factor)
        size = max(factor, size // factor * factor)
        return (torch.rand((b, model.config.in_channels, size, size), generator=gen).to(device=device, dtype=dtype),)
    if isinstance(model, GatedPixelCNN):
        cfg = model.config
        s = cfg.cond_scale
        size = shape[-1] if shape else 4 * s
        size = max(s, size // s * s)
        inputs: list = [torch.randint(cfg.num_codes, (b, size, size), generator=gen).to(device)]
        inputs.append(torch.randint(cfg.num_classes, (b,), generator=gen).to(device) if cfg.num_classes else None)
        if cfg.cond_num_codes:
            inputs.append(torch.randint(cfg.cond_num_codes, (b, size // s, size // s), generator=gen).to(device))
        while inputs and inputs[-1] is None:
            inputs.pop()
        return tuple(inputs)
    if isinstance(model, SequenceClassifier):
        cfg = model.config
        steps = shape[0] if shape else (4 * cfg.conv_stride ** cfg.conv_blocks if cfg.frontend == "conv" else 24)
        lengths = torch.linspace(steps, max(1, steps // 2), b).round().long().to(device)
        return rand(b, steps, cfg.in_features), lengths
    if isinstance(model, FunctionApproximator):
        return (rand(b, model.config.in_dim),)
    return None


def build_model(meta: dict, source: str = "checkpoint") -> nn.Module:
    """Build the (untrained) model a checkpoint's config.json describes, surgery steps included."""
    from ..surgery import replay_surgery
    from ..train.checkpoint import config_from_dict

    if not isinstance(meta, dict):
        raise ValueError(f"{source}: expected a JSON object with fields 'kind' and 'config', got {type(meta).__name__}")
    kind = meta.get("kind")
    if kind not in MODEL_KINDS:
        raise ValueError(f"{source}: field 'kind' is {kind!r}; loadable kinds are {sorted(MODEL_KINDS)}")
    model_cls, config_cls = MODEL_KINDS[kind]
    model = model_cls(config_from_dict(config_cls, meta.get("config"), f"{source} field 'config'")).eval()
    return replay_surgery(model, list(meta.get("surgery", [])), source)


def load_model(folder: str | Path) -> nn.Module:
    """Rebuild any archkit model from a checkpoint folder (config.json + model.safetensors), surgery included."""
    from ..train.checkpoint import load_weights, read_config

    model = build_model(read_config(folder), repr(str(Path(folder) / "config.json")))
    return load_weights(folder, model).eval()
