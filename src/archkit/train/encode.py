"""Stage 2 of VQ-VAE-2's recipe: turn a dataset into code maps (memory-mapped, per split and level) for the priors."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.images import ImageData, open_image_dataset
from ..data.loader import DEFAULT_WORKERS
from ..io.outdir import check_out_folder
from ..models.vqvae import load_vqvae
from ..utils.validation import check_int
from .accelerate import Accelerator, create_accelerator
from .provenance import vqvae_provenance
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
    progress: bool = True,
) -> Path:
    """Encode the train and test splits of a dataset (default: the run's own) into the folder RUN_DIR/codes.

    Batch by batch into memory-mapped `{split}_codes_{l}.npy` (l = 0 top .. L-1) and `{split}_labels.npy`,
    plus meta.json (num_codes, num_classes, shapes, the VQ-VAE's step and weights hash); the folder appears
    whole or not at all (codes.py), and `out` must be new, empty or an older codes folder.
    An image folder is streamed through a DataLoader with `workers` processes: it is never held in memory;
    a file that fails to decode is replaced by the next readable image, written with that image's label.
    """
    from .codes import CODES_DIR, CodesWriter

    check_int(workers, "workers", 0)
    check_int(batch_size, "batch_size", 1)
    target = Path(out) if out is not None else Path(run_dir) / CODES_DIR
    check_out_folder(target, "codes folder")  # before any work: a user's folder or the run itself is refused
    accel = create_accelerator(device, precision, compile)
    model = accel.prepare(load_vqvae(run_dir))
    encode = torch.compile(model.encode) if accel.compile else model.encode
    cfg = read_train_config(run_dir)
    name = data if data is not None else cfg.data
    size = image_size or cfg.image_size
    num_classes = 0
    provenance = vqvae_provenance(run_dir)
    meta = dict(data=str(name), image_size=size, **provenance)
    with CodesWriter(target, model.config.codes_per_level(), **meta) as writer:
        for split in ("train", "test"):
            ds = open_image_dataset(name, split, size, channels=model.config.in_channels)
            if split == "train" and not isinstance(ds, ImageData):
                tqdm.write(ds.summary)
            start = 0
            for x, y in tqdm(
                image_batches(ds, batch_size, workers, pin_memory=accel.pin_memory),
                total=-(-len(ds) // batch_size),
                desc=f"encode {split}",
                leave=False,
                disable=not progress,
            ):
                labels = None if ds.labels is None else y  # each image's own label, also for a replaced file
                with accel.autocast():
                    codes = [c.cpu() for c in encode(accel.to_device(x))]
                writer.write(split, len(ds), start, codes, labels)
                start += len(x)
            if ds.labels is not None:
                num_classes = ds.num_classes
            if not isinstance(ds, ImageData):
                ds.warn_load_failures()
        return writer.commit(num_classes)
