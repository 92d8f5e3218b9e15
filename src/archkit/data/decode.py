"""Decoding an image file of any mode Pillow reads into floats in [0, 1], resized and cropped.

The rules, in order:
1. EXIF orientation is applied first (a photo taken upright loads upright).
2. Transparency (LA, RGBA, palette images with a transparent colour, ...) is composited onto a white
   background (`BACKGROUND`), before any resize: a transparent pixel is white at every image size.
3. Values are scaled by their bit depth: 8-bit modes by 255, 16-bit grey (`I;16`, `I;16B`, ...) by
   65535, 32-bit integer `I` as 16-bit data (by 65535, clipped: Pillow reads 16-bit PNG/TIFF this
   way), float `F` taken as intensities and clipped to [0, 1] (NaN becomes 0). Pillow reads 16-bit
   RGB files as 8-bit RGB already. CMYK, YCbCr, LAB and HSV go through Pillow's RGB conversion.
4. Grey to RGB repeats the channel; RGB to grey uses ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B).
5. The short side is resized to `image_size` (bicubic), then a square is cropped. 8-bit images are
   resized as 8-bit, higher bit depths as 32-bit floats per channel, so no precision is lost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["BACKGROUND", "GRAY_MODES", "channels_for_modes", "decode_image"]

BACKGROUND = 255  # white, on the 8-bit scale: what a transparent pixel becomes
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def channels_for_modes(modes: set[str]) -> int:
    """1 when every mode seen is greyscale, else 3."""
    return 1 if modes <= GRAY_MODES else 3


def _has_alpha(img: Any) -> bool:
    return img.mode in _ALPHA_MODES or (img.mode in ("P", "L", "RGB") and "transparency" in img.info)


def _flatten_8bit(img: Any) -> Any:
    """An 8-bit "L" or "RGB" image: transparency composited onto BACKGROUND, other modes converted."""
    from PIL import Image

    if _has_alpha(img):
        grey = img.mode in ("LA", "La", "L")
        rgba = img.convert("RGBA")
        out = Image.alpha_composite(Image.new("RGBA", rgba.size, (BACKGROUND,) * 4), rgba).convert("RGB")
        return out.convert("L") if grey else out
    if img.mode in ("L", "RGB"):
        return img
    return img.convert("L" if img.mode == "1" else "RGB")


def _wide_array(img: Any) -> np.ndarray:
    """(H, W) float32 in [0, 1] of a 16-bit, 32-bit integer or float image."""
    arr = np.asarray(img)
    if img.mode == "F":
        return np.clip(np.nan_to_num(arr.astype(np.float32), nan=0.0), 0.0, 1.0)
    return np.clip(arr.astype(np.float32) / 65535.0, 0.0, 1.0)


def _box(
    w: int, h: int, size: int, crop: str, rng: np.random.Generator | None
) -> tuple[int, int, tuple[int, int, int, int]]:
    """(new width, new height, crop box) for a short-side resize to `size` and a square crop."""
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if crop == "random" and rng is not None:
        left, top = int(rng.integers(0, nw - size + 1)), int(rng.integers(0, nh - size + 1))
    else:
        left, top = (nw - size) // 2, (nh - size) // 2
    return nw, nh, (left, top, left + size, top + size)


def decode_image(
    img: Any, image_size: int, channels: int, crop: str = "center", rng: np.random.Generator | None = None
) -> torch.Tensor:
    """A PIL image as a (channels, S, S) float tensor in [0, 1], following the module's rules."""
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(img) or img
    width, height = img.size
    nw, nh, box = _box(width, height, image_size, crop, rng)
    if img.mode in _WIDE_MODES:
        plane = Image.fromarray(_wide_array(img), mode="F")
        arr = np.asarray(plane.resize((nw, nh), Image.Resampling.BICUBIC).crop(box), dtype=np.float32)
        arr = np.clip(arr, 0.0, 1.0)[..., None]
    else:
        flat = _flatten_8bit(img).resize((nw, nh), Image.Resampling.BICUBIC).crop(box)
        flat = flat.convert("L" if channels == 1 else "RGB")  # Pillow's ITU-R 601 luma, rounded to 8 bits
        arr = np.asarray(flat, dtype=np.float32) / 255.0
        arr = arr[..., None] if arr.ndim == 2 else arr
    if channels == 3 and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
