"""Segmentation metrics: per-class IoU and mean IoU from one confusion matrix."""

from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts; rows are targets, columns predictions."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target: expected equal shapes (label maps), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError("pred and target: expected integer label maps (take logits.argmax(1) first)")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    for name, t in (("pred", pred), ("target", target)):
        if t.numel() and (t.min() < 0 or t.max() >= num_classes):
            raise ValueError(
                f"{name}: labels must lie in 0..{num_classes - 1}, got range {int(t.min())}..{int(t.max())}"
            )
    return torch.bincount(target * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """IoU = TP / (TP + FP + FN) for each class over all pixels; NaN for a class absent from both."""
    cm = confusion_matrix(pred, target, num_classes).double()
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """Mean IoU over the classes that occur in `pred` or `target` (the standard dataset-level mIoU)."""
    iou = iou_per_class(pred, target, num_classes)
    present = ~iou.isnan()
    return float(iou[present].mean()) if present.any() else float("nan")


__all__ = ["confusion_matrix", "iou_per_class", "mean_iou"]
