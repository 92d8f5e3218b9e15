"""Generate images from a trained run: sample each level's prior top-down, then decode with the VQ-VAE-2."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from ..io import read_config
from ..models.vqvae import load_vqvae
from .accelerate import Accelerator, create_accelerator
from .prior import load_prior, prior_dir, prior_shape
from .provenance import check_provenance

MAX_DRAWS = 100_000  # rejection sampling draws at most this many samples (n / keep per class, summed)


@torch.no_grad()
def sample_images(
    run: str | Path,
    n: int,
    labels: torch.Tensor | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 100,
    method: str = "fast",
    device: str | Accelerator = "auto",
    precision: str = "32",
    compile: bool = False,
    accept_stale_codes: bool = False,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """n images (n, C, H, W) and their code maps (top first), on the CPU; labels (n,) for class-conditional priors.

    Priors trained on codes of other VQ-VAE weights than the run's are refused (both steps named)
    unless `accept_stale_codes`.

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
    check_priors(run, accept_stale_codes)
    shapes = [prior_shape(run, l) for l in range(levels)]
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels: expected {n} labels, got {len(labels)}")
    if priors[0].config.num_classes and labels is None:
        raise ValueError(
            f"labels: the priors are class-conditional ({priors[0].config.num_classes} classes); pass class labels"
        )
    gen = torch.Generator().manual_seed(seed)
    images: list[torch.Tensor] = []
    all_codes: list[list[torch.Tensor]] = [[] for _ in range(levels)]
    for s in range(0, n, batch_size):
        b = min(batch_size, n - s)
        y = None if labels is None or not priors[0].config.num_classes else labels[s : s + b].long()
        codes: list[torch.Tensor] = []
        with accel.autocast():
            for l, (prior, hw) in enumerate(zip(priors, shapes)):
                cond = codes[-1] if l > 0 else None
                codes.append(prior.sample((b, *hw), y, cond, temperature, gen, method))
            images.append(decode(codes).float().clamp(0, 1).cpu())
        for l, c in enumerate(codes):
            all_codes[l].append(c.cpu())
    return torch.cat(images), [torch.cat(c) for c in all_codes]


@torch.no_grad()
def class_confidence(
    classifier: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 256,
) -> torch.Tensor:
    """The classifier's probability that each image shows its own label: (N,) in [0, 1]."""
    device = images.device
    if isinstance(classifier, torch.nn.Module):
        classifier.eval()
        device = next(classifier.parameters(), images).device
    probs = [
        torch.softmax(classifier(images[s : s + batch_size].to(device)).double(), 1).cpu()
        for s in range(0, len(images), batch_size)
    ]
    return torch.cat(probs).gather(1, labels.long().view(-1, 1)).squeeze(1)


def select_most_confident(scores: torch.Tensor, drawn_labels: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """Indices into the drawn samples: for each class, its count in `wanted` with the highest scores.

    The result is ordered like `wanted` (each class's slots filled by descending score).
    """
    out = torch.empty(len(wanted), dtype=torch.long)
    for k in wanted.unique():
        slots = (wanted == k).nonzero().flatten()
        pool = (drawn_labels == k).nonzero().flatten()
        if len(pool) < len(slots):
            raise ValueError(f"class {int(k)}: {len(slots)} samples requested but only {len(pool)} drawn")
        best = pool[scores[pool].argsort(descending=True, stable=True)[: len(slots)]]
        out[slots] = best
    return out


@torch.no_grad()
def rejection_sample(
    run: str | Path,
    labels: torch.Tensor,
    keep: float,
    classifier: Callable[[torch.Tensor], torch.Tensor],
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 100,
    method: str = "fast",
    device: str | Accelerator = "auto",
    precision: str = "32",
    compile: bool = False,
    accept_stale_codes: bool = False,
) -> tuple[torch.Tensor, list[torch.Tensor], dict]:
    """Classifier-based rejection sampling (Razavi et al. 2019, section 3.3).

    For each class c requested n_c times, draws ceil(n_c / keep) samples of class c and keeps the
    n_c the classifier scores most confidently as c (at most MAX_DRAWS draws in all). Returns the kept images (ordered like `labels`),
    their code maps (top first) and a summary (drawn, kept, mean confidence of all drawn vs kept).
    """
    if not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ValueError(f"keep: expected a fraction in (0, 1], got {keep!r}")
    if labels is None or labels.dim() != 1 or len(labels) == 0:
        raise ValueError(
            "labels: rejection sampling keeps the samples that look most like their class; "
            "pass a 1-D tensor of class labels"
        )
    labels = labels.long()
    classes, counts = labels.unique(return_counts=True)
    check_draws(counts.tolist(), keep)
    drawn_labels = torch.cat([c.repeat(math.ceil(int(n) / keep)) for c, n in zip(classes, counts)])
    images, codes = sample_images(
        run,
        len(drawn_labels),
        drawn_labels,
        temperature=temperature,
        seed=seed,
        batch_size=batch_size,
        method=method,
        device=device,
        precision=precision,
        compile=compile,
        accept_stale_codes=accept_stale_codes,
    )
    scores = class_confidence(classifier, images, drawn_labels)
    idx = select_most_confident(scores, drawn_labels, labels)
    info = {
        "drawn": len(drawn_labels),
        "kept": len(idx),
        "keep": keep,
        "mean_confidence_drawn": float(scores.mean()),
        "mean_confidence_kept": float(scores[idx].mean()),
    }
    return images[idx], [c[idx] for c in codes], info


def check_priors(run: str | Path, accept_stale_codes: bool = False) -> None:
    """Refuse priors trained on codes of other VQ-VAE weights than the run's, naming both steps."""
    level = 0
    while prior_dir(run, level).is_dir():
        where = str(prior_dir(run, level))
        check_provenance(read_config(where), run, f"the codes the prior {where!r} was trained on", accept_stale_codes)
        level += 1


def check_draws(per_class: list[int], keep: float) -> int:
    """The draws rejection sampling needs (ceil(n / keep) per class); ValueError naming --keep above MAX_DRAWS."""
    if not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ValueError(f"keep: expected a fraction in (0, 1], got {keep!r}")
    draws = sum(math.ceil(int(n) / keep) for n in per_class)
    if draws > MAX_DRAWS:
        raise ValueError(
            f"--keep: keeping {keep:g} of the draws means {draws} samples ({sum(per_class)} wanted / keep); "
            f"at most {MAX_DRAWS} are drawn: raise --keep or ask for fewer samples"
        )
    return draws


def uniform_code_images(
    run: str | Path, n: int, seed: int = 0, device: str | Accelerator = "auto", precision: str = "32"
) -> torch.Tensor:
    """Images decoded from codes drawn uniformly at every level: the 'no prior' baseline (on the CPU)."""
    accel = create_accelerator(device, precision)
    vqvae = accel.prepare(load_vqvae(run))
    gen = torch.Generator().manual_seed(seed)
    codes = [
        torch.randint(k, (n, *prior_shape(run, l)), generator=gen) for l, k in enumerate(vqvae.config.codes_per_level())
    ]
    with torch.no_grad(), accel.autocast():
        return torch.cat(
            [
                vqvae.decode_codes(accel.to_device([c[s : s + 100] for c in codes])).float().clamp(0, 1).cpu()
                for s in range(0, n, 100)
            ]
        )


def save_grid(images: torch.Tensor, rows: int, path: str | Path, row_labels: list[str] | None = None) -> Path:
    """Save images (N, C, H, W) in [0, 1] as a PNG grid with `rows` rows (atomic write)."""
    from ..utils import new_figure, save_figure

    n = len(images)
    cols = max(1, -(-n // rows))
    fig, axes = new_figure(rows, cols, figsize=(0.6 * cols + (0.6 if row_labels else 0), 0.6 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        if k < n:
            img = images[k].detach().float().cpu().numpy()  # matplotlib wants arrays (a tensor warns in numpy 2)
            ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
        if row_labels and k % cols == 0:
            ax.set_ylabel(row_labels[k // cols], rotation=0, ha="right", va="center", fontsize=8)
    return save_figure(fig, path, kind="sample grid")


__all__ = [
    "MAX_DRAWS",
    "check_draws",
    "check_priors",
    "class_confidence",
    "rejection_sample",
    "sample_images",
    "save_grid",
    "select_most_confident",
    "uniform_code_images",
]
