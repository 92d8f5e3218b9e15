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
from .edit import check_module
from .report import SurgeryReport


class _EvalMode(nn.Module):
    """Mixin: the module stays in eval mode whatever train() says."""

    def train(self, mode: bool = True) -> _EvalMode:
        super().train(False)
        return self


class EvalBatchNorm1d(_EvalMode, nn.BatchNorm1d):
    """nn.BatchNorm1d frozen by `freeze_bn`: always uses (and never updates) its running statistics."""


class EvalBatchNorm2d(_EvalMode, nn.BatchNorm2d):
    """nn.BatchNorm2d frozen by `freeze_bn`: always uses (and never updates) its running statistics."""


class EvalBatchNorm3d(_EvalMode, nn.BatchNorm3d):
    """nn.BatchNorm3d frozen by `freeze_bn`: always uses (and never updates) its running statistics."""


_FROZEN: dict[type, type] = {
    nn.BatchNorm1d: EvalBatchNorm1d,
    nn.BatchNorm2d: EvalBatchNorm2d,
    nn.BatchNorm3d: EvalBatchNorm3d,
}
_THAWED: dict[type, type] = {v: k for k, v in _FROZEN.items()}


def _frozen_class(cls: type) -> type:
    """The frozen twin of a BatchNorm class: EvalBatchNorm*d, or Eval<Name> made once for other BN subclasses
    (e.g. MaskedBatchNorm1d), so the module keeps its own forward and signature."""
    if cls not in _FROZEN:
        name = f"Eval{cls.__name__}"
        while name in globals():
            name += "_"
        frozen = type(
            name, (_EvalMode, cls), {"__module__": __name__, "__doc__": f"{cls.__name__} frozen by `freeze_bn`."}
        )
        globals()[name] = frozen  # importable by name, so pickling finds it in this process
        _FROZEN[cls], _THAWED[frozen] = frozen, cls
    return _FROZEN[cls]


def _swap(bn: nn.Module, cls: type, requires_grad: bool) -> None:
    """Turn `bn` into `cls` in place: same object, parameters, buffers, dtype and device; only behaviour changes."""
    bn.__class__ = cls
    for p in bn.parameters(recurse=False):
        p.requires_grad_(requires_grad)


def freeze_bn(model: nn.Module, inplace: bool = False) -> tuple[nn.Module, SurgeryReport]:
    """Freeze every BatchNorm: running statistics fixed, eval behaviour under train(), no grads.

    Any nn.BatchNorm*d subclass works (its own forward is kept, e.g. MaskedBatchNorm1d(h, mask)), in any
    dtype and on any device: the modules are converted in place, never rebuilt.
    """
    check_module(model, "model", inplace, "freeze_bn")
    report = SurgeryReport("freeze_bn")
    if not inplace:
        model = copy.deepcopy(model)
    for name, m in list(model.named_modules()):
        if type(m) in _THAWED or isinstance(m, FrozenBatchNorm):
            report.add(name, "skipped", reason="already frozen")
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if isinstance(m, nn.modules.lazy.LazyModuleMixin) and m.has_uninitialized_params():
                report.add(name, "skipped", reason="lazy BatchNorm is not initialized yet (run one forward first)")
                continue
            if not m.track_running_stats or m.running_mean is None:
                report.add(name, "skipped", reason="no running statistics to freeze (track_running_stats=False)")
                continue
            if not name:
                raise ValueError("freeze_bn: the model is a lone BatchNorm; wrap it in a container to freeze it")
            old = type(m).__name__
            _swap(m, _frozen_class(type(m)), requires_grad=False)
            m.eval()
            report.add(name, "frozen", detail=f"{old} -> {type(m).__name__}")
    if not report.changes:
        report.notes.append("no BatchNorm layers found: model returned unchanged")
    return model, report


def unfreeze_bn(model: nn.Module, inplace: bool = False) -> tuple[nn.Module, SurgeryReport]:
    """Undo `freeze_bn`: plain trainable BatchNorm that follows the model's train()/eval() again."""
    check_module(model, "model", inplace, "unfreeze_bn")
    report = SurgeryReport("unfreeze_bn")
    if not inplace:
        model = copy.deepcopy(model)
    for name, m in list(model.named_modules()):
        if type(m) in _THAWED:
            if not name:
                raise ValueError("unfreeze_bn: the model is a lone BatchNorm; wrap it in a container")
            old = type(m).__name__
            _swap(m, _THAWED[type(m)], requires_grad=True)
            m.train(model.training)
            report.add(name, "unfrozen", detail=f"{old} -> {type(m).__name__}")
    if not report.changes:
        report.notes.append("no frozen BatchNorm layers found: model returned unchanged")
    return model, report
