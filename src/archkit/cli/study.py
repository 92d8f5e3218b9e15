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
@accel_options
def study(name: str, out_dir: Path | None, seeds: int, quick: bool, device: str, precision: str, compile: bool) -> None:
    """Run study NAME and write report.md + a PNG plot (its training loops run on --device/--precision)."""
    from ..io.outdir import check_out_folder
    from ..train.accelerate import create_accelerator, use_accelerator

    out = out_dir or Path("runs") / f"study-{name}"
    check_out_folder(out, "study folder")
    # the studies' loops train through fit_classifier, which takes this default; latency is still measured on the CPU
    with use_accelerator(create_accelerator(device, precision, compile)):
        run_study(name, out, seeds=seeds, quick=quick)
    click.echo(f"wrote {out / 'report.md'}")
