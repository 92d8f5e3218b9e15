"""Stage 2 of VQ-VAE-2's recipe: turn a dataset into code maps (memory-mapped, per split and level) for the priors."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.images import ImageData, open_image_dataset
from ..data.loader import DEFAULT_WORKERS
from ..models.vqvae import load_vqvae
from .accelerate import Accelerator, create_accelerator
from .vqvae import read_train_config
from .vqvae_data import image_batches


@torch.no_grad()
def encode_dataset(
    run_dir: str | Path,
    data: str | None = None,
    out: str | Path | None = None,
    batch_size: int = 256,
    image_size: int | None = None,
    device: str | Accelerator = "auto",
    precision: str = "32",
    compile: bool = False,
    workers: int = DEFAULT_WORKERS,
) -> Path:
    """Encode the train and test splits of a dataset (default: the run's own) into the folder RUN_DIR/codes.

    Batch by batch into memory-mapped `{split}_codes_{l}.npy` (l = 0 top .. L-1) and `{split}_labels.npy`,
    plus meta.json (num_codes, num_classes, shapes); the folder appears whole or not at all (codes.py).
    An image folder is streamed through a DataLoader with `workers` processes: it is never held in memory.
    """
    from .codes import CODES_DIR, CodesWriter

    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers: expected an int >= 0 (0 = decode in the main process), got {workers!r}")
    accel = create_accelerator(device, precision, compile)
    model = accel.prepare(load_vqvae(run_dir))
    encode = torch.compile(model.encode) if accel.compile else model.encode
    cfg = read_train_config(run_dir)
    name = data if data is not None else cfg.data
    size = image_size or cfg.image_size
    num_classes = 0
    target = Path(out) if out is not None else Path(run_dir) / CODES_DIR
    with CodesWriter(target, model.config.codes_per_level(), data=str(name), image_size=size) as writer:
        for split in ("train", "test"):
            ds = open_image_dataset(name, split, size, channels=model.config.in_channels)
            start = 0
            for x, _ in tqdm(
                image_batches(ds, batch_size, workers, pin_memory=accel.pin_memory),
                total=-(-len(ds) // batch_size),
                desc=f"encode {split}",
                leave=False,
            ):
                labels = None if ds.labels is None else ds.labels[start : start + len(x)]
                with accel.autocast():
                    codes = [c.cpu() for c in encode(accel.to_device(x))]
                writer.write(split, len(ds), start, codes, labels)
                start += len(x)
            if ds.labels is not None:
                num_classes = ds.num_classes
            if not isinstance(ds, ImageData):
                ds.warn_load_failures()
        return writer.commit(num_classes)
