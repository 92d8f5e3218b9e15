"""The images a VQ-VAE-2 run trains and is evaluated on: in-memory sets sliced, image folders streamed.

`TrainBatches` gives each training step its batch in the (seed, epoch)-determined order, from any step
(resume); `image_batches` walks a split in order; `evaluate_vqvae` scores a held-out split (MSE, PSNR,
code usage); `write_recon` draws originals above reconstructions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.images import ImageData
from ..data.loader import EpochBatchSampler, make_loader
from ..models.vqvae import VQVAE2
from ..utils import save_image_grid
from .accelerate import Accelerator, create_accelerator, model_device, unwrap_model
from .distributed import DistInfo


def image_batches(
    data: Any, batch_size: int = 128, workers: int = 0, pin_memory: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """(images, labels or None) batches in order: of a tensor or in-memory ImageData by slicing, of any other
    dataset through a DataLoader with `workers` processes, or of a DataLoader as it comes."""
    if isinstance(data, ImageData):
        for i in range(0, len(data), batch_size):
            yield data.images[i : i + batch_size], None if data.labels is None else data.labels[i : i + batch_size]
        return
    if isinstance(data, torch.Tensor):
        for i in range(0, len(data), batch_size):
            yield data[i : i + batch_size], None
        return
    loader = (
        data
        if isinstance(data, torch.utils.data.DataLoader)
        else make_loader(data, batch_size, shuffle=False, workers=workers, pin_memory=pin_memory)
    )
    yield from loader


@torch.no_grad()
def write_recon(model: nn.Module, data: Any, path: Path, accel: Accelerator, n: int = 16) -> None:
    x = torch.stack([data[i][0] for i in range(min(n, len(data)))])
    model = _inner_vqvae(model)
    was = model.training
    model.eval()
    with torch.no_grad(), accel.autocast():
        recon = model.decode_codes(model.encode(accel.to_device(x))).float().cpu()
    model.train(was)
    save_image_grid([x, recon], path)


class TrainBatches:
    """The images of each training step, in the order of `EpochBatchSampler` (a function of seed and epoch).

    In-memory data is indexed directly; a streamed dataset goes through `make_loader` (workers, pinned
    memory on CUDA). Both yield the same batches, and `batch(step)` may start anywhere (resume).
    """

    def __init__(
        self, data: Any, batch_size: int, seed: int, info: DistInfo, workers: int = 0, device: Any = None
    ) -> None:
        self.data, self.in_memory = data, isinstance(data, ImageData)
        self.loader: DataLoader | None = None
        if self.in_memory:
            self.sampler = EpochBatchSampler(len(data), batch_size, seed, rank=info.rank, world_size=info.world_size)
        else:
            self.loader = make_loader(
                data, batch_size, seed=seed, workers=workers, device=device, rank=info.rank, world_size=info.world_size
            )
            self.sampler = cast(EpochBatchSampler, self.loader.batch_sampler)  # the one make_loader builds
        self.steps_per_epoch = self.sampler.batches_per_epoch
        self._it: Iterator[Any] | None = None
        self._next_step = -1

    def batch(self, step: int) -> torch.Tensor:
        """This rank's images of global step `step` (0-based)."""
        epoch, k = divmod(step, self.steps_per_epoch)
        if self._it is None or step != self._next_step or k == 0:
            self.sampler.set_epoch(epoch, k)
            self._it = iter(self.sampler) if self.loader is None else iter(self.loader)  # None: in memory
        self._next_step = step + 1
        item: Any = next(self._it)  # in memory: a list of indices; else a loader batch (images, labels)
        return self.data.images[item] if self.in_memory else item[0]


def _inner_vqvae(model: nn.Module) -> VQVAE2:
    return cast(VQVAE2, unwrap_model(model))  # the VQVAE2 inside DDP / torch.compile wrappers


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def evaluate_vqvae(
    model: nn.Module, images: Any, batch_size: int = 128, accel: Accelerator | None = None
) -> dict[str, Any]:
    """Held-out PSNR, per-level code usage/perplexity over the whole set, and the top-swap effect.

    `images`: a tensor, an ImageData, a dataset or a DataLoader (see `image_batches`): streamed in batches.

    top_swap: every image is decoded with its top-level codes replaced by another image's; the
    mean squared change of the reconstruction (and its PSNR against the original reconstruction)
    says how much information the top level carries (0 change = a useless top level).
    """
    model = _inner_vqvae(model)
    accel = accel or create_accelerator(model_device(model))
    was = model.training
    model.eval()
    sq_err, swap_change, n_pix = 0.0, 0.0, 0
    counts: list[torch.Tensor] | None = None
    num_codes = [model.level_quantizer(l).num_codes for l in range(len(model.quantizers))]
    for x, _ in image_batches(images, batch_size):
        x = accel.to_device(x)
        with accel.autocast():
            codes = model.encode(x)
            recon = model.decode_codes(codes).float().clamp(0, 1)
            swapped = model.decode_codes([codes[0].roll(1, 0), *codes[1:]]).float().clamp(0, 1) if len(x) > 1 else None
        sq_err += (recon - x).pow(2).sum().item()
        n_pix += x.numel()
        if swapped is not None:
            swap_change += (swapped - recon).pow(2).sum().item()
        batch_counts = [torch.bincount(c.flatten(), minlength=k).double().cpu() for c, k in zip(codes, num_codes)]
        counts = batch_counts if counts is None else [a + b for a, b in zip(counts, batch_counts)]
    model.train(was)
    levels = []
    for c, k in zip(counts or [], num_codes):
        p = c / c.sum().clamp_min(1)
        levels.append(
            {
                "codes": k,
                "codes_used": int((c > 0).sum()),
                "usage": float((c > 0).double().mean()),
                "perplexity": float(torch.exp(-(p * p.clamp_min(1e-12).log()).sum())),
            }
        )
    mse = sq_err / max(n_pix, 1)
    swap = swap_change / max(n_pix, 1)
    return {"mse": mse, "psnr": psnr(mse), "top_swap_mse": swap, "top_swap_psnr": psnr(swap), "levels": levels}
