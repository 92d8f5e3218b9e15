"""freeze_bn / unfreeze_bn: make BatchNorm ignore train() so tiny-batch fine-tuning cannot corrupt it.

A frozen BN keeps its class family (EvalBatchNorm2d is an nn.BatchNorm2d), its parameters and buffers
and therefore its state_dict keys: checkpoints of frozen and unfrozen models are interchangeable.
What changes is behaviour: it always normalizes with the running statistics, never updates them, and
its affine parameters do not require grad.
"""
from __future__ import annotations

import copy

from torch import nn

from ..layers import FrozenBatchNorm
from .fuse import check_module, set_child
from .report import SurgeryReport


class _EvalMode:
    """Mixin: the module stays in eval mode whatever train() says."""

    def train(self, mode: bool = True):  # type: ignore[override]
        super().train(False)
        return self


class EvalBatchNorm1d(_EvalMode, nn.BatchNorm1d):
    """nn.BatchNorm1d frozen by `freeze_bn`: always uses (and never updates) its running statistics."""


class EvalBatchNorm2d(_EvalMode, nn.BatchNorm2d):
    """nn.BatchNorm2d frozen by `freeze_bn`: always uses (and never updates) its running statistics."""


class EvalBatchNorm3d(_EvalMode, nn.BatchNorm3d):
    """nn.BatchNorm3d frozen by `freeze_bn`: always uses (and never updates) its running statistics."""


_FROZEN = {nn.BatchNorm1d: EvalBatchNorm1d, nn.BatchNorm2d: EvalBatchNorm2d, nn.BatchNorm3d: EvalBatchNorm3d}
_THAWED = {v: k for k, v in _FROZEN.items()}


def _swap(bn: nn.Module, cls: type, requires_grad: bool) -> nn.Module:
    """Rebuild `bn` as `cls` with the same hyper-parameters, parameters and buffers."""
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    new.load_state_dict(bn.state_dict())
    new = new.to(device=bn.running_mean.device if bn.running_mean is not None else None)
    if bn.affine:
        new.to(bn.weight.dtype)
        new.weight.requires_grad_(requires_grad)
        new.bias.requires_grad_(requires_grad)
    new.train(bn.training)
    return new


def freeze_bn(model: nn.Module, inplace: bool = False) -> tuple[nn.Module, SurgeryReport]:
    """Freeze every BatchNorm{1,2,3}d: running statistics fixed, eval behaviour under train(), no grads."""
    check_module(model, "model", inplace, "freeze_bn")
    report = SurgeryReport("freeze_bn")
    if not inplace:
        model = copy.deepcopy(model)
    for name, m in list(model.named_modules()):
        if type(m) in _THAWED or isinstance(m, FrozenBatchNorm):
            report.add(name, "skipped", reason="already frozen")
        elif type(m) in _FROZEN:
            if not m.track_running_stats or m.running_mean is None:
                report.add(name, "skipped", reason="no running statistics to freeze (track_running_stats=False)")
                continue
            if not name:
                raise ValueError("freeze_bn: the model is a lone BatchNorm; wrap it in a container to freeze it")
            set_child(model, name, _swap(m, _FROZEN[type(m)], requires_grad=False).eval())
            report.add(name, "frozen", detail=f"{type(m).__name__} -> {_FROZEN[type(m)].__name__}")
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            report.add(name, "skipped", reason=f"unsupported BatchNorm kind {type(m).__name__} "
                       "(only nn.BatchNorm1d/2d/3d); convert it first")
    if not report.changes:
        report.notes.append("no BatchNorm layers found: model returned unchanged")
    return model, report


def unfreeze_bn(model: nn.Module, inplace: bool = False) -> tuple[nn.Module, SurgeryReport]:
    """Undo `freeze_bn`: plain trainable nn.BatchNorm{1,2,3}d that follow the model's train()/eval() again."""
    check_module(model, "model", inplace, "unfreeze_bn")
    report = SurgeryReport("unfreeze_bn")
    if not inplace:
        model = copy.deepcopy(model)
    for name, m in list(model.named_modules()):
        if type(m) in _THAWED:
            if not name:
                raise ValueError("unfreeze_bn: the model is a lone BatchNorm; wrap it in a container")
            thawed = _swap(m, _THAWED[type(m)], requires_grad=True)
            set_child(model, name, thawed.train(model.training))
            report.add(name, "unfrozen", detail=f"{type(m).__name__} -> {_THAWED[type(m)].__name__}")
    if not report.changes:
        report.notes.append("no frozen BatchNorm layers found: model returned unchanged")
    return model, report
