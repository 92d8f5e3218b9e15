"""`archkit vqvae train|encode|reconstruct`: VQ-VAE-2 stage 1 from the command line (torchrun-ready)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..data.loader import DEFAULT_WORKERS
from ..models.vqvae import QUANTIZERS
from ..train.vqvae import VQVAETrainConfig
from .options import EXISTING_RUN, RESUME_HELP, accel_options, given_flags

RECONSTRUCTION = "reconstruction grid"  # the kind its PNG mark names (io/outfile.py)


def _num_codes(value: str) -> int | list[int]:
    try:
        parts = [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(
            f"expected an int or a comma-separated list of ints (top level first), got {value!r}"
        ) from None
    return parts[0] if len(parts) == 1 else parts


def _quantizer(value: str) -> str | list[str]:
    parts = [v.strip() for v in value.split(",")]
    bad = [p for p in parts if p not in QUANTIZERS]
    if bad:
        raise click.BadParameter(
            f"expected {' | '.join(QUANTIZERS)} or a comma-separated list (top first), got {value!r}"
        )
    return parts[0] if len(parts) == 1 else parts


def _fsq_levels(value: str) -> list[int] | list[list[int]]:
    try:
        grids = [[int(v) for v in g.split(",")] for g in value.split("/")]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated ints (e.g. 8,5,5,5), or one grid per level joined by '/', got {value!r}"
        ) from None
    return grids[0] if len(grids) == 1 else grids


@click.group()
def vqvae() -> None:
    """Train a hierarchical VQ-VAE (VQ-VAE-2), encode datasets to codes, reconstruct images."""


@vqvae.command()
@click.option(
    "--preset",
    default=None,
    help="Start from a named configuration (`--preset list` prints them); "
    "explicit flags override its fields. Default: digits-32's values.",
)
@click.option("--data", default=None, help="digits | natural | PATH to an image folder.  [default: digits]")
@click.option("--image-size", type=click.IntRange(min=1), default=None, help="[default: 32]")
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Run folder (required)."
)
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option(
    "--epochs", type=click.FloatRange(min=0, min_open=True), default=None, help="Train for N epochs instead of --steps."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Global batch (split across torchrun processes).",
)
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Peak learning rate.  [default: 3e-4]"
)
@click.option(
    "--lr-schedule",
    type=click.Choice(["constant", "cosine"]),
    default=None,
    help="cosine: decay the learning rate to 0 over the run.  [default: constant]",
)
@click.option(
    "--eval-every",
    type=click.IntRange(min=1),
    default=250,
    show_default=True,
    help="Held-out eval + recon.png + checkpoint every N steps.",
)
@click.option("--log-every", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--resume",
    is_flag=True,
    help=RESUME_HELP.format(
        "--steps, --epochs, --batch-size, --lr, --lr-schedule, --eval-every, --log-every, --tensorboard, "
        "--workers, --augment, --channels-last, --device, --precision, --compile"
    ),
)
@click.option(
    "--tensorboard/--no-tensorboard", default=False, show_default=True, help="Also log to RUN_DIR/tensorboard."
)
# Model flags default to "not given" (None): the preset's value, else VQVAETrainConfig's default.
@click.option("--levels", type=click.IntRange(min=1), default=None, help="[default: 2]")
@click.option("--hidden-channels", type=click.IntRange(min=2), default=None, help="[default: 128]")
@click.option("--res-blocks", type=click.IntRange(min=0), default=None, help="[default: 2]")
@click.option("--res-channels", type=click.IntRange(min=1), default=None, help="[default: 32]")
@click.option("--code-dim", type=click.IntRange(min=1), default=None, help="[default: 64]")
@click.option(
    "--num-codes",
    default=None,
    help="Codebook size: one int, or one per level (top first), e.g. 256,512.  [default: 512]",
)
@click.option("--norm", type=click.Choice(["none", "batch", "group", "layer"]), default=None, help="[default: none]")
@click.option(
    "--codebook-init", type=click.Choice(["kmeans++", "data", "random"]), default=None, help="[default: kmeans++]"
)
@click.option(
    "--restart-after",
    type=click.IntRange(min=0),
    default=None,
    help="Re-seed codes unused this many steps (0 = never).  [default: 50]",
)
@click.option(
    "--code-dropout",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="Share of training images decoded without the lower levels (keeps the top level informative).  [default: 0.1]",
)
@click.option(
    "--layout",
    type=click.Choice(["archkit", "paper"]),
    default=None,
    help="paper: the paper author's layers verbatim (docs/vqvae.md).  [default: archkit]",
)
@click.option(
    "--augment",
    type=click.Choice(["none", "flip-permute"]),
    default=None,
    help="Training batches: random flips and RGB channel orders (for few, differently coloured photos).  [default: none]",
)
@click.option(
    "--bottom-stride",
    type=click.Choice(["2", "4"]),
    default=None,
    callback=lambda c, p, v: v and int(v),
    help="Image side / bottom code map side; 2 gives 4x the codes per image.  [default: 4]",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=DEFAULT_WORKERS,
    show_default=True,
    help="DataLoader processes decoding an image folder --data (0: the main process; built-in sets are in memory).",
)
@click.option(
    "--quantizer",
    default=None,
    help="ema: EMA codebook (straight-through). rotation: EMA codebook with the rotation-trick gradient. "
    "fsq: finite scalar quantization (no codebook). One for all levels or one per level, top first, e.g. "
    "fsq,ema.  [default: ema]",
)
@click.option(
    "--fsq-levels",
    default=None,
    help="FSQ grid: values per channel, e.g. 8,5,5,5 (1000 codes); one grid per level joined by '/'.  [default: 8,8,8]",
)
@click.option(
    "--channels-last/--no-channels-last",
    default=None,
    help="NHWC memory layout for the model and batches (what fast bf16 convolutions want).  [default: on]",
)
@accel_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(
    preset: str | None,
    out: Path | None,
    num_codes: str | None,
    norm: str | None,
    quantizer: str | None,
    fsq_levels: str | None,
    quiet: bool,
    **kwargs: Any,
) -> None:
    """Train (or --resume) a VQVAE2; Ctrl-C saves a checkpoint and exits cleanly."""
    from ..models.vqvae_layout import format_presets
    from ..models.vqvae_presets import preset_fields
    from ..train.vqvae import train_vqvae

    if preset == "list":
        click.echo(format_presets())
        return
    if out is None:
        raise click.UsageError("Missing option '--out' (the run folder).")
    given = {k: v for k, v in kwargs.items() if v is not None}
    if num_codes is not None:
        given["num_codes"] = _num_codes(num_codes)
    if norm is not None:
        given["norm"] = None if norm == "none" else norm
    if quantizer is not None:
        given["quantizer"] = _quantizer(quantizer)
    if fsq_levels is not None:
        given["fsq_levels"] = _fsq_levels(fsq_levels)
    try:
        cfg = VQVAETrainConfig.from_preset(preset, out=str(out), **given)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--preset") from None
    explicit = given_flags()
    if preset is not None:  # a preset's fields count as given (on --resume, one that differs is refused)
        explicit |= {name for fields in preset_fields(preset) for name in fields}
    result = train_vqvae(cfg, progress=not quiet, explicit=explicit)
    if result:  # rank 0 only
        levels = ", ".join(
            f"level {l}: {lv['codes_used']}/{lv['codes']} codes" for l, lv in enumerate(result["levels"])
        )
        state = "interrupted, saved" if result["interrupted"] else "done"
        click.echo(
            f"{state} at step {result['step']}: held-out PSNR {result['psnr']:.2f} dB; {levels}; "
            f"top-swap change {result['top_swap_mse']:.2e} MSE -> {out}"
        )


@vqvae.command()
@click.option("--run", "run_dir", type=EXISTING_RUN, required=True, help="Run folder of `vqvae train`.")
@click.option("--data", default=None, help="Dataset to encode (default: the run's training data).")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Codes folder to write (default: RUN/codes).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=DEFAULT_WORKERS,
    show_default=True,
    help="DataLoader processes decoding an image folder (0: the main process).",
)
@accel_options
def encode(
    run_dir: Path,
    data: str | None,
    out: Path | None,
    batch_size: int,
    workers: int,
    device: str,
    precision: str,
    compile: bool,
) -> None:
    """Write every level's code map (and labels) of the train and test splits to a codes folder (memory-mapped .npy)."""
    from ..io import check_distinct
    from ..train.encode import encode_dataset

    check_distinct({"--out": out}, {"--run": run_dir})  # the codes never replace the run they come from
    path = encode_dataset(
        run_dir,
        data=data,
        out=out,
        batch_size=batch_size,
        device=device,
        precision=precision,
        compile=compile,
        workers=workers,
    )
    click.echo(f"wrote {path}")


@vqvae.command()
@click.option("--run", "run_dir", type=EXISTING_RUN, required=True, help="Run folder of `vqvae train`.")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("reconstruction.png"),
    show_default=True,
)
@click.option("--image-size", type=click.IntRange(min=1), default=None, help="Default: the run's training size.")
@accel_options
def reconstruct(
    run_dir: Path,
    images: tuple[Path, ...],
    out: Path,
    image_size: int | None,
    device: str,
    precision: str,
    compile: bool,
) -> None:
    """Reconstruct IMAGE files through the codes; writes originals above reconstructions to --out."""
    import torch

    from ..data.images import load_image_file
    from ..io import check_distinct, check_out_file
    from ..models.vqvae import load_vqvae
    from ..train.accelerate import create_accelerator
    from ..train.vqvae import read_train_config
    from ..train.vqvae_data import psnr
    from ..utils import save_image_grid

    check_distinct({"--out": out}, {f"IMAGE {str(p)!r}": p for p in images})  # never the image being read
    check_out_file(out, RECONSTRUCTION)  # a user's PNG is never written over
    accel = create_accelerator(device, precision, compile)
    model = accel.prepare(load_vqvae(run_dir))
    size = image_size or read_train_config(run_dir).image_size
    x = torch.stack([load_image_file(p, size, channels=model.config.in_channels) for p in images])
    encode, decode = (
        (torch.compile(model.encode), torch.compile(model.decode_codes))
        if accel.compile
        else (model.encode, model.decode_codes)
    )
    with torch.no_grad(), accel.autocast():
        recon = decode(encode(accel.to_device(x))).float().clamp(0, 1).cpu()
    save_image_grid([x, recon], out, kind=RECONSTRUCTION)
    mse = (recon - x).pow(2).mean().item()
    click.echo(f"wrote {out} ({len(images)} image(s), PSNR {psnr(mse):.2f} dB)")
