"""Figures and image grids, written atomically: the pictures in reports, runs and docs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io.atomic import atomic_write
from ..io.outfile import KIND_KEY, OWN_MARK


def new_figure(*args: Any, **kwargs: Any) -> Any:
    """A matplotlib (figure, axes) pair on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(
    fig: Any, path: str | Path, rect: tuple[float, float, float, float] | None = None, kind: str = "figure"
) -> Path:
    """Save (atomically) and close a figure; `rect` keeps room outside the axes (a legend below them).

    A PNG carries archkit's mark naming `kind` (io/outfile.py)."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=rect)
    try:
        marked = {"metadata": {"Software": OWN_MARK, KIND_KEY: kind}} if str(path).lower().endswith(".png") else {}
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, **marked))
    finally:
        plt.close(fig)


def save_image_grid(
    rows: Sequence[torch.Tensor], path: str | os.PathLike, pad: int = 2, kind: str = "image grid"
) -> Path:
    """Write rows of images (each (N, C, H, W) in [0, 1]) as one PNG grid, row after row, marked as `kind`."""
    from PIL import Image, PngImagePlugin

    if not rows:
        raise ValueError("rows: expected at least one row of images")
    n = max(r.shape[0] for r in rows)
    _c, h, w = rows[0].shape[1:]
    grid = torch.ones(3, len(rows) * (h + pad) + pad, n * (w + pad) + pad)
    for i, row in enumerate(rows):
        row = row.detach().float().cpu().clamp(0, 1)
        if row.shape[1] == 1:
            row = row.expand(-1, 3, -1, -1)
        for j in range(row.shape[0]):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, top : top + h, left : left + w] = row[j]
    arr = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", OWN_MARK)  # lets a later run recognise the file as its own to write over
    info.add_text(KIND_KEY, kind)
    return atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, pnginfo=info))


__all__ = ["new_figure", "save_figure", "save_image_grid"]
