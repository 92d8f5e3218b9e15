"""randomize_bn_stats: give BatchNorm layers non-trivial statistics, so folding is never a no-op in tests."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import FrozenBatchNorm


@torch.no_grad()
def randomize_bn_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """Set every BN's running_mean ~ N(0, s) (s ~ U(0.1, 1) per layer), running_var ~ U(0.5, 2),
    weight ~ U(0.5, 1.5), bias ~ N(0, 0.5); in place, returns the model.

    A freshly built model has mean 0 / var 1 / weight 1 / bias 0, which makes BN nearly the identity at
    inference: fold errors would then go unnoticed. These ranges keep activations well scaled in deep nets.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"randomize_bn_stats: argument 'model' must be a torch.nn.Module, got {type(model).__name__}")
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if not isinstance(m, (_BatchNorm, FrozenBatchNorm)):
            continue
        mean, var, weight, bias = m.running_mean, m.running_var, m.weight, m.bias
        if not isinstance(mean, torch.Tensor) or not isinstance(var, torch.Tensor):
            continue
        n = int(m.num_features)

        def rand(lo: float, hi: float, n: int = n) -> torch.Tensor:
            return torch.rand(n, generator=gen, dtype=torch.float64) * (hi - lo) + lo

        std = float(rand(0.1, 1.0)[0])
        mean.copy_(torch.randn(n, generator=gen, dtype=torch.float64) * std)
        var.copy_(rand(0.5, 2.0))
        if isinstance(weight, torch.Tensor) and isinstance(bias, torch.Tensor):
            weight.copy_(rand(0.5, 1.5))
            bias.copy_(torch.randn(n, generator=gen, dtype=torch.float64) * 0.5)
    return model
