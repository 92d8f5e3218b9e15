"""`archkit vqvae train|encode|reconstruct`: VQ-VAE-2 stage 1 from the command line (torchrun-ready)."""
from __future__ import annotations

from pathlib import Path

import click

from ..data.loader import DEFAULT_WORKERS
from ..train.vqvae import VQVAETrainConfig
from .options import accel_options, given_accel_flags


def _num_codes(value: str) -> int | list[int]:
    try:
        parts = [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected an int or a comma-separated list of ints (top level first), got {value!r}")
    return parts[0] if len(parts) == 1 else parts


@click.group()
def vqvae() -> None:
    """Train a hierarchical VQ-VAE (VQ-VAE-2), encode datasets to codes, reconstruct images."""


@vqvae.command()
@click.option("--data", default="digits", show_default=True, help="digits | natural | PATH to an image folder.")
@click.option("--image-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run folder.")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None, help="Train for N epochs instead of --steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Global batch (split across torchrun processes).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=3e-4, show_default=True)
@click.option("--eval-every", type=click.IntRange(min=1), default=250, show_default=True, help="Held-out eval + recon.png + checkpoint every N steps.")
@click.option("--log-every", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run in --out at its saved step and optimizer state.")
@click.option("--tensorboard/--no-tensorboard", default=False, show_default=True, help="Also log to RUN_DIR/tensorboard.")
@click.option("--levels", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--hidden-channels", type=click.IntRange(min=2), default=128, show_default=True)
@click.option("--res-blocks", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--res-channels", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--code-dim", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--num-codes", default="512", show_default=True, help="Codebook size: one int, or one per level (top first), e.g. 256,512.")
@click.option("--norm", type=click.Choice(["none", "batch", "group", "layer"]), default="none", show_default=True)
@click.option("--codebook-init", type=click.Choice(["kmeans++", "data", "random"]), default="kmeans++", show_default=True)
@click.option("--restart-after", type=click.IntRange(min=0), default=50, show_default=True, help="Re-seed codes unused this many steps (0 = never).")
@click.option("--code-dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Share of training images decoded without the lower levels (keeps the top level informative).")
@click.option("--workers", type=click.IntRange(min=0), default=DEFAULT_WORKERS, show_default=True,
              help="DataLoader processes decoding an image folder --data (0: the main process; built-in sets are in memory).")
@accel_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(out: Path, num_codes: str, norm: str, quiet: bool, **kwargs) -> None:
    """Train (or --resume) a VQVAE2; Ctrl-C saves a checkpoint and exits cleanly."""
    from ..train.vqvae import train_vqvae

    cfg = VQVAETrainConfig(out=str(out), num_codes=_num_codes(num_codes), norm=None if norm == "none" else norm, **kwargs)
    result = train_vqvae(cfg, progress=not quiet, explicit=given_accel_flags())
    if result:  # rank 0 only
        levels = ", ".join(f"level {l}: {lv['codes_used']}/{lv['codes']} codes" for l, lv in enumerate(result["levels"]))
        state = "interrupted, saved" if result["interrupted"] else "done"
        click.echo(f"{state} at step {result['step']}: held-out PSNR {result['psnr']:.2f} dB; {levels}; "
                   f"top-swap change {result['top_swap_mse']:.2e} MSE -> {out}")


@vqvae.command()
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True, help="Run folder of `vqvae train`.")
@click.option("--data", default=None, help="Dataset to encode (default: the run's training data).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Codes folder to write (default: RUN/codes).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=DEFAULT_WORKERS, show_default=True,
              help="DataLoader processes decoding an image folder (0: the main process).")
@accel_options
def encode(run_dir: Path, data: str | None, out: Path | None, batch_size: int, workers: int, device: str, precision: str,
           compile: bool) -> None:
    """Write every level's code map (and labels) of the train and test splits to a codes folder (memory-mapped .npy)."""
    from ..train.vqvae import encode_dataset

    path = encode_dataset(run_dir, data=data, out=out, batch_size=batch_size, device=device, precision=precision,
                          compile=compile, workers=workers)
    click.echo(f"wrote {path}")


@vqvae.command()
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True, help="Run folder of `vqvae train`.")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=Path("reconstruction.png"), show_default=True)
@click.option("--image-size", type=click.IntRange(min=1), default=None, help="Default: the run's training size.")
@accel_options
def reconstruct(run_dir: Path, images: tuple[Path, ...], out: Path, image_size: int | None, device: str,
                precision: str, compile: bool) -> None:
    """Reconstruct IMAGE files through the codes; writes originals above reconstructions to --out."""
    import torch

    from ..data.images import load_image_file, save_image_grid
    from ..models.vqvae import load_vqvae
    from ..train.accelerate import create_accelerator
    from ..train.vqvae import psnr, read_train_config

    accel = create_accelerator(device, precision, compile)
    model = accel.prepare(load_vqvae(run_dir))
    size = image_size or read_train_config(run_dir).image_size
    x = torch.stack([load_image_file(p, size, channels=model.config.in_channels) for p in images])
    encode, decode = ((torch.compile(model.encode), torch.compile(model.decode_codes)) if accel.compile
                      else (model.encode, model.decode_codes))
    with torch.no_grad(), accel.autocast():
        recon = decode(encode(accel.to_device(x))).float().clamp(0, 1).cpu()
    save_image_grid([x, recon], out)
    mse = (recon - x).pow(2).mean().item()
    click.echo(f"wrote {out} ({len(images)} image(s), PSNR {psnr(mse):.2f} dB)")
