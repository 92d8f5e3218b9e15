"""`archkit study NAME`: run a registered study."""

from __future__ import annotations

from pathlib import Path

import click

from ..studies import list_studies, run_study
from .options import accel_options


@click.command()
@click.argument("name", type=click.Choice(list_studies()) if list_studies() else str)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: runs/study-NAME).",
)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Number of seeds.")
@click.option("--quick", is_flag=True, help="Tiny budget for a smoke run (numbers not meaningful).")
@click.option(
    "--steps", type=click.IntRange(1, 1_000_000), default=None, help="quantizers: training steps per model [2000]."
)
@click.option(
    "--seconds",
    type=click.FloatRange(0, 7 * 24 * 3600, min_open=True),
    default=None,
    help="quantizers: equal-CPU-time budget per model in seconds [what the EMA codebook took for --steps].",
)
@accel_options
def study(
    name: str,
    out_dir: Path | None,
    seeds: int,
    quick: bool,
    steps: int | None,
    seconds: float | None,
    device: str,
    precision: str,
    compile: bool,
) -> None:
    """Run study NAME and write report.md + a PNG plot (its training loops run on --device/--precision)."""
    from ..io.outdir import check_out_folder
    from ..train.accelerate import create_accelerator, use_accelerator

    out = out_dir or Path("runs") / f"study-{name}"
    check_out_folder(out, "study folder")
    # the studies' loops train through fit_classifier, which takes this default; latency is still measured on the CPU
    with use_accelerator(create_accelerator(device, precision, compile)):
        try:
            run_study(name, out, seeds=seeds, quick=quick, steps=steps, seconds=seconds)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
    click.echo(f"wrote {out / 'report.md'}")
