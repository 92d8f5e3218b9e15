"""`archkit surgery fuse|freeze|replace-norm|selu|compare` (+ lowrank|decompose from cli/factorize.py).

Every subcommand loads a model with `model_source_options` / `load_model_and_input`, applies one
operation, prints its SurgeryReport and a `compare` table (params, MACs, latency, output error), and
with --out saves the result as a checkpoint that records the operations applied, so
`--checkpoint OUT` (here or in `compare --candidate`) rebuilds the same structure and loads it.
To add a subcommand from another module: define a click command that uses `model_source_options`,
then `surgery.add_command(that_command)` at the bottom of this file (cli/factorize.py does so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .factorize import decompose_cmd, lowrank_cmd
from .model_source import _common, _run, _surgery_command, load_model_and_input, model_source_options


@click.group()
def surgery() -> None:
    """Model surgery on built-in models or checkpoints: BatchNorm fold/freeze/replace/SELU, low-rank, decompose, compare."""


@surgery.command()
@_common
@_surgery_command
def fuse(source: dict[str, Any], out: Path | None, repeats: int) -> None:
    """Fold eval-mode BatchNorm into adjacent conv/linear layers (exact)."""
    _run("fuse_bn", out, repeats, source)


@surgery.command()
@_common
@_surgery_command
def freeze(source: dict[str, Any], out: Path | None, repeats: int) -> None:
    """Freeze BatchNorm statistics and affine parameters (for batch-size-1 fine-tuning)."""
    _run("freeze_bn", out, repeats, source)


@surgery.command("replace-norm")
@click.option("--norm", type=click.Choice(["group", "layer", "identity"]), default="group", show_default=True)
@click.option("--num-groups", type=click.IntRange(min=1), default=32, show_default=True)
@_common
@_surgery_command
def replace_norm_cmd(source: dict[str, Any], out: Path | None, repeats: int, norm: str, num_groups: int) -> None:
    """Replace BatchNorm with GroupNorm, LayerNorm over channels, or Identity."""
    _run("replace_norm", out, repeats, source, norm=norm, num_groups=num_groups)


@surgery.command()
@_common
@_surgery_command
def selu(source: dict[str, Any], out: Path | None, repeats: int) -> None:
    """Make a self-normalizing net: drop BN, SELU activations, AlphaDropout, LeCun-normal init."""
    _run("to_selu", out, repeats, source)


@surgery.command("compare")
@click.option(
    "--candidate",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Checkpoint folder of the model to compare against the reference.",
)
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True)
@model_source_options
@_surgery_command
def compare_cmd(source: dict[str, Any], candidate: Path, repeats: int) -> None:
    """Compare a reference (--model/--checkpoint) with a --candidate checkpoint on the same input."""
    from ..surgery import compare

    reference, x = load_model_and_input(**source)
    cand, _ = load_model_and_input(None, candidate, randomize_bn=False)
    click.echo(compare(reference, cand, x, repeats=repeats).to_table())


# truncated-SVD factorization subcommands live in their own module
surgery.add_command(lowrank_cmd)
surgery.add_command(decompose_cmd)
