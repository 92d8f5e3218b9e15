"""Generate images from a trained run: sample each level's prior top-down, then decode with the VQ-VAE-2."""
from __future__ import annotations

from pathlib import Path

import torch

from ..models.vqvae import load_vqvae
from .accelerate import Accelerator, create_accelerator
from .prior import load_prior, prior_shape


@torch.no_grad()
def sample_images(run: str | Path, n: int, labels: torch.Tensor | None = None, temperature: float = 1.0,
                  seed: int = 0, batch_size: int = 100, method: str = "fast", device: str | Accelerator = "auto",
                  precision: str = "32", compile: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """n images (n, C, H, W) and their code maps (top first), on the CPU; labels (n,) for class-conditional priors.

    The run may have been trained anywhere: weights load on the CPU and move to `device` (resolved
    here, not taken from the run). The uniforms come from a CPU generator, so codes do not depend on
    the device beyond floating-point rounding. `compile` compiles the VQ-VAE decoder (the cached
    sampler runs one position at a time, which torch.compile does not speed up).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    accel = create_accelerator(device, precision, compile)
    vqvae = accel.prepare(load_vqvae(run))
    decode = torch.compile(vqvae.decode_codes) if accel.compile else vqvae.decode_codes
    levels = vqvae.config.levels
    priors = [accel.prepare(load_prior(run, l)) for l in range(levels)]
    shapes = [prior_shape(run, l) for l in range(levels)]
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels: expected {n} labels, got {len(labels)}")
    if priors[0].config.num_classes and labels is None:
        raise ValueError(f"labels: the priors are class-conditional ({priors[0].config.num_classes} classes); "
                         "pass class labels")
    gen = torch.Generator().manual_seed(seed)
    images, all_codes = [], [[] for _ in range(levels)]
    for s in range(0, n, batch_size):
        b = min(batch_size, n - s)
        y = None if labels is None or not priors[0].config.num_classes else labels[s:s + b].long()
        codes: list[torch.Tensor] = []
        with accel.autocast():
            for l, (prior, hw) in enumerate(zip(priors, shapes)):
                cond = codes[-1] if l > 0 else None
                codes.append(prior.sample((b, *hw), y, cond, temperature, gen, method))
            images.append(decode(codes).float().clamp(0, 1).cpu())
        for l, c in enumerate(codes):
            all_codes[l].append(c.cpu())
    return torch.cat(images), [torch.cat(c) for c in all_codes]


def uniform_code_images(run: str | Path, n: int, seed: int = 0, device: str | Accelerator = "auto",
                        precision: str = "32") -> torch.Tensor:
    """Images decoded from codes drawn uniformly at every level: the 'no prior' baseline (on the CPU)."""
    accel = create_accelerator(device, precision)
    vqvae = accel.prepare(load_vqvae(run))
    gen = torch.Generator().manual_seed(seed)
    codes = [torch.randint(k, (n, *prior_shape(run, l)), generator=gen)
             for l, k in enumerate(vqvae.config.codes_per_level())]
    with torch.no_grad(), accel.autocast():
        return torch.cat([vqvae.decode_codes(accel.to_device([c[s:s + 100] for c in codes])).float().clamp(0, 1).cpu()
                          for s in range(0, n, 100)])


def save_grid(images: torch.Tensor, rows: int, path: str | Path, row_labels: list[str] | None = None) -> Path:
    """Save images (N, C, H, W) in [0, 1] as a PNG grid with `rows` rows (atomic write)."""
    from ..studies.report import new_figure, save_figure

    n = len(images)
    cols = max(1, -(-n // rows))
    fig, axes = new_figure(rows, cols, figsize=(0.6 * cols + (0.6 if row_labels else 0), 0.6 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        if k < n:
            img = images[k].detach().cpu()
            ax.imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0), cmap="gray", vmin=0, vmax=1)
        if row_labels and k % cols == 0:
            ax.set_ylabel(row_labels[k // cols], rotation=0, ha="right", va="center", fontsize=8)
    return save_figure(fig, path)


__all__ = ["sample_images", "save_grid", "uniform_code_images"]
