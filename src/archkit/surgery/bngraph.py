"""The graph side of fuse_bn: where each BatchNorm sits, what produces and consumes its data, an undoable edit."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.nn.modules.conv import _ConvNd

from .bnfold import FOLD_AFTER, FoldLayer, fold_into_consumer, fold_into_producer
from .edit import is_batchnorm, set_child
from .guard import identity_for
from .report import LayerChange


@dataclass
class Site:
    """A neighbour of a BN in the dataflow: a module call, a function call, the input or the output."""

    label: str
    name: str | None = None
    module: nn.Module | None = None
    exclusive: bool = True  # for a producer: its output feeds only this BN
    calls: int = 1


METADATA = {"shape", "dtype", "device", "ndim", "size", "dim"}


def fold_layer(site: Site) -> FoldLayer:
    """The conv/linear of a site that fuse_bn's producer / consumer checks accepted."""
    if not isinstance(site.module, (_ConvNd, nn.Linear)):
        raise TypeError(f"{site.label} is not a conv/linear")  # not reached: checked before folding
    return site.module


def data_users(node: fx.Node) -> list[fx.Node]:
    """Users that read the node's values (reading .shape / .size() / .dim() does not change with a fold)."""
    return [
        u
        for u in node.users
        if not (
            u.op in ("call_function", "call_method")
            and getattr(u.target, "__name__", u.target) in ("getattr", *METADATA)
            and (u.op == "call_method" or (len(u.args) > 1 and u.args[1] in METADATA))
        )
    ]


class BNTracer(fx.Tracer):
    """Keep every BatchNorm flavour (incl. archkit's) and every conv/linear subclass as one call_module node,
    so the guard can say why a subclass is not folded into."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_batchnorm(m) or isinstance(m, FOLD_AFTER) or super().is_leaf_module(m, module_qualified_name)


def join_name(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def describe(module: nn.Module, name: str) -> str:
    return f"{type(module).__name__} '{name}'"


@dataclass
class Edit:
    """One fold: BN `name` absorbed by `layers` (each as 'producer' or 'consumer'); undo restores everything."""

    name: str
    bn: nn.Module
    layers: list[tuple[FoldLayer, str]]
    scale: torch.Tensor
    shift: torch.Tensor
    change: LayerChange | None = None
    saved: list[tuple[FoldLayer, torch.Tensor, torch.Tensor | None]] | None = None

    def apply(self, model: nn.Module) -> None:
        self.saved = [
            (layer, layer.weight.detach().clone(), None if layer.bias is None else layer.bias.detach().clone())
            for layer, _ in self.layers
        ]
        for layer, role in self.layers:
            (fold_into_producer if role == "producer" else fold_into_consumer)(layer, self.scale, self.shift)
        set_child(model, self.name, identity_for(self.bn))

    def undo(self, model: nn.Module) -> None:
        with torch.no_grad():
            for layer, weight, bias in reversed(self.saved or []):
                layer.weight.copy_(weight)
                current = layer.bias  # a layer saved with a bias keeps one through the fold
                if bias is None:
                    layer.bias = None
                elif current is not None:
                    current.copy_(bias)
        set_child(model, self.name, self.bn)
