import math

import pytest
import torch

from archkit.train import confusion_matrix, iou_per_class, mean_iou


def test_hand_made_case():
    target = torch.tensor([[0, 0], [1, 1]])
    pred = torch.tensor([[0, 1], [1, 1]])
    # class 0: TP 1, FN 1, FP 0 -> 1/2; class 1: TP 2, FP 1 -> 2/3
    assert mean_iou(pred, target, 2) == pytest.approx((1 / 2 + 2 / 3) / 2)
    iou = iou_per_class(pred, target, 4)
    assert iou[0].item() == pytest.approx(0.5) and iou[1].item() == pytest.approx(2 / 3)
    assert math.isnan(iou[2].item()) and math.isnan(iou[3].item())
    assert mean_iou(pred, target, 4) == pytest.approx((1 / 2 + 2 / 3) / 2)  # absent classes are ignored


def test_perfect_and_all_wrong():
    target = torch.randint(0, 5, (3, 8, 8))
    assert mean_iou(target.clone(), target, 5) == 1.0
    assert mean_iou((target + 1) % 5, target, 5) == 0.0


def test_predicted_but_absent_class_counts_as_zero():
    target = torch.zeros(4, dtype=torch.long)
    pred = torch.tensor([0, 0, 0, 2])
    assert mean_iou(pred, target, 3) == pytest.approx((3 / 4 + 0.0) / 2)


def test_confusion_matrix_counts():
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 0, 1, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


@pytest.mark.parametrize(
    "pred, target, n, match",
    [
        (torch.zeros(2, 2, dtype=torch.long), torch.zeros(4, dtype=torch.long), 2, "shapes"),
        (torch.zeros(4), torch.zeros(4, dtype=torch.long), 2, "integer"),
        (torch.tensor([0, 3]), torch.tensor([0, 1]), 2, "pred"),
        (torch.tensor([0, 1]), torch.tensor([0, 1]), 0, "num_classes"),
    ],
)
def test_bad_input(pred, target, n, match):
    with pytest.raises(ValueError, match=match):
        mean_iou(pred, target, n)
