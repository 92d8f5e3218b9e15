"""`archkit study NAME`: run a registered study."""
from __future__ import annotations

from pathlib import Path

import click

from ..studies import list_studies, run_study


@click.command()
@click.argument("name", type=click.Choice(list_studies()) if list_studies() else str)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: runs/study-NAME).")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Number of seeds.")
@click.option("--quick", is_flag=True, help="Tiny budget for a smoke run (numbers not meaningful).")
def study(name: str, out_dir: Path | None, seeds: int, quick: bool) -> None:
    """Run study NAME and write report.md + a PNG plot."""
    out = out_dir or Path("runs") / f"study-{name}"
    run_study(name, out, seeds=seeds, quick=quick)
    click.echo(f"wrote {out / 'report.md'}")
