"""Pixel-wise segmentation data generated from scikit-learn digits placed on a larger canvas.

Label map: 0 = background, 1 + d = a pixel of digit d. Digits never overlap, so every label pixel
belongs to exactly one placed digit. Test canvases use only the held-out digits of `load_digits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .digits import load_digits

NUM_SEG_CLASSES = 11  # background + 10 digits


@dataclass
class DigitCanvasConfig:
    """How canvases are drawn; the image-only fields (invert, noise) make shifted variants."""

    size: int = 32
    digit_size: int = 12
    min_digits: int = 1
    max_digits: int = 3
    threshold: float = 0.3  # resized digit intensity above which a pixel is labelled as the digit
    classes: tuple[int, ...] = tuple(range(10))  # digit classes allowed on the canvas
    invert: bool = False  # image -> 1 - image (bright background, dark digits)
    noise: float = 0.0  # std of additive Gaussian pixel noise (applied after invert)


@dataclass
class DigitCanvas:
    """Generated canvases: images (N, 1, S, S) float, masks (N, S, S) int64, and per-canvas placements."""

    images: torch.Tensor
    masks: torch.Tensor
    placements: list[list[tuple[int, int, int]]] = field(default_factory=list)  # (digit, row, col) of each box

    def __len__(self) -> int:
        return len(self.images)


def _check(config: DigitCanvasConfig, n: int, split: str) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    if not 1 <= config.digit_size <= config.size:
        raise ValueError(f"digit_size: expected 1..size={config.size}, got {config.digit_size}")
    if not 1 <= config.min_digits <= config.max_digits:
        raise ValueError(
            f"min_digits/max_digits: expected 1 <= min <= max, got {config.min_digits}, {config.max_digits}"
        )
    bad = [c for c in config.classes if c not in range(10)]
    if not config.classes or bad:
        raise ValueError(f"classes: expected a non-empty subset of 0..9, got {config.classes!r}")


def make_digit_canvas(
    n: int, config: DigitCanvasConfig | None = None, seed: int = 0, split: str = "train"
) -> DigitCanvas:
    """Draw `n` canvases with min..max non-overlapping digits each, deterministically from `seed`."""
    cfg = config or DigitCanvasConfig()
    _check(cfg, n, split)
    gen = torch.Generator().manual_seed(seed)
    x, y = load_digits(split, image_size=8)
    keep = torch.isin(y, torch.tensor(cfg.classes))
    x, y = x[keep], y[keep]
    digits = F.interpolate(x, size=(cfg.digit_size,) * 2, mode="bilinear", align_corners=False).clamp(0, 1)[:, 0]
    images = torch.zeros(n, 1, cfg.size, cfg.size)
    masks = torch.zeros(n, cfg.size, cfg.size, dtype=torch.long)
    placements: list[list[tuple[int, int, int]]] = []
    span, d = cfg.size - cfg.digit_size + 1, cfg.digit_size
    for i in range(n):
        want = int(torch.randint(cfg.min_digits, cfg.max_digits + 1, (1,), generator=gen))
        boxes: list[tuple[int, int, int]] = []
        for _ in range(50 * want):  # rejection sampling; a crowded canvas may end with fewer digits
            if len(boxes) == want:
                break
            r, c = (int(v) for v in torch.randint(0, span, (2,), generator=gen))
            if any(abs(r - r2) < d and abs(c - c2) < d for _, r2, c2 in boxes):
                continue
            k = int(torch.randint(0, len(digits), (1,), generator=gen))
            img = digits[k]
            images[i, 0, r : r + d, c : c + d] = img
            masks[i, r : r + d, c : c + d][img > cfg.threshold] = int(y[k]) + 1
            boxes.append((int(y[k]), r, c))
        placements.append(boxes)
    if cfg.invert:
        images = 1.0 - images
    if cfg.noise > 0:
        images = images + cfg.noise * torch.randn(images.shape, generator=gen)
    return DigitCanvas(images.contiguous(), masks, placements)


__all__ = ["NUM_SEG_CLASSES", "DigitCanvas", "DigitCanvasConfig", "make_digit_canvas"]
