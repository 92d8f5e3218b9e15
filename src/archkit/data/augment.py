"""Batch augmentations for image autoencoders: cheap, label-free, reproducible from a generator."""

from __future__ import annotations

import torch

AUGMENTATIONS = ("none", "flip-permute")


def flip_permute(
    x: torch.Tensor, generator: torch.Generator | None = None, offset: int = 0, total: int | None = None
) -> torch.Tensor:
    """Random horizontal flips and RGB channel orders per image of a (B, C, H, W) batch.

    `offset`/`total`: x is images offset..offset+B of a `total`-image global batch; the draws are made
    for the global batch and sliced, so DDP ranks together augment exactly as one process would.

    Why: a codebook learned from a handful of photographs only holds their colours; a held-out photo
    in another hue (a teal wall when training saw none) falls between codes. Permuting the channels
    shows every hue family at no cost. Images with C != 3 are only flipped.
    """
    if x.dim() != 4:
        raise ValueError(f"x: expected a batch (B, C, H, W), got shape {tuple(x.shape)}")
    b, c = x.shape[:2]
    total = b if total is None else total
    if not 0 <= offset <= total - b:
        raise ValueError(f"offset: expected 0..{total - b} for {b} images of a {total}-image batch, got {offset}")
    flip = (torch.rand(total, generator=generator) < 0.5)[offset : offset + b]
    perms = torch.stack([torch.randperm(3, generator=generator) for _ in range(total)])[offset : offset + b]
    out = torch.where(flip.view(b, 1, 1, 1).to(x.device), x.flip(-1), x)
    if c == 3:
        out = out.gather(1, perms.to(x.device).view(b, 3, 1, 1).expand_as(out))
    return out


def augment_batch(
    x: torch.Tensor, name: str, generator: torch.Generator | None = None, offset: int = 0, total: int | None = None
) -> torch.Tensor:
    """Apply the augmentation called `name` (one of AUGMENTATIONS) to a batch; "none" returns it unchanged."""
    if name == "none":
        return x
    if name == "flip-permute":
        return flip_permute(x, generator, offset, total)
    raise ValueError(f"augment: expected one of {list(AUGMENTATIONS)}, got {name!r}")
