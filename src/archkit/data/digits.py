"""scikit-learn's 1,797 handwritten digits as tensors, with one fixed held-out split."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

TEST_FRACTION = 0.2
SPLIT_SEED = 0  # fixed: every study, benchmark and model in archkit uses the same held-out digits


@lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    data = sk_load_digits()
    images = (data.images / 16.0).astype(np.float32)  # 0..16 -> 0..1
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, data.target, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=data.target
    )
    return x_tr, x_te, y_tr, y_te


def load_digits(split: str = "train", image_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as (N, 1, S, S) floats in [0, 1] and (N,) int64 labels; split is "train" or "test".

    Images are resized with bilinear interpolation when `image_size` != 8 (the native size).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size: expected a positive int, got {image_size!r}")
    x_tr, x_te, y_tr, y_te = _raw()
    x, y = (x_tr, y_tr) if split == "train" else (x_te, y_te)
    images = torch.from_numpy(x).unsqueeze(1)
    if image_size != 8:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False).clamp(0, 1)
    return images.contiguous(), torch.from_numpy(y).long()
