"""`archkit export --run DIR --format onnx|pt2 --out FILE`: deploy a checkpoint, surgery included.

DIR is a checkpoint folder (config.json + model.safetensors) or a run folder holding one in
checkpoint/. `load_model` rebuilds the model and replays the recorded surgery steps (fuse_bn,
lowrank, ...), then archkit.export writes the file and checks it against PyTorch on a random input.
"""

from __future__ import annotations

from pathlib import Path

import click
from torch import nn

from .options import EXISTING_RUN


def checkpoint_folder(run: Path) -> Path:
    """The checkpoint inside `run` (itself, or run/checkpoint)."""
    for folder in (run, run / "checkpoint"):
        if (folder / "config.json").is_file():
            return folder
    raise FileNotFoundError(
        f"--run: {str(run)!r} holds no checkpoint (expected config.json there or in {str(run / 'checkpoint')!r})"
    )


def export_inputs(model: nn.Module, batch_size: int, input_shape: list[int] | None, seed: int = 0) -> tuple:
    """Example inputs for the trace, from the model itself (`example_inputs`).

    SequenceClassifier gets fixed-length batches only: packing variable lengths branches on the
    lengths' values, which an exported graph cannot do.
    """
    from ..models import SequenceClassifier
    from ..utils import example_inputs_for

    inputs = example_inputs_for(model, batch_size=batch_size, seed=seed, input_shape=input_shape)
    if inputs is None:
        raise ValueError(f"--run: no example input is known for a {type(model).__name__}")
    return inputs[:1] if isinstance(model, SequenceClassifier) else tuple(inputs)


@click.command("export")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=EXISTING_RUN,
    help="Checkpoint folder (config.json + model.safetensors) or a run folder with checkpoint/.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "pt2"]),
    default=None,
    help="Output format (default: from the --out suffix).",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Batch size of the example input the graph is traced (and checked) with.",
)
@click.option(
    "--input-shape",
    default=None,
    help="First input's shape without the batch dim, e.g. 3,64,64 or 128,6 (default: saved with the checkpoint).",
)
@click.option("--rtol", type=float, default=1e-4, show_default=True, help="Allowed relative output error vs PyTorch.")
@click.option("--no-check", is_flag=True, help="Skip the onnxruntime / torch.export.load comparison.")
def export(
    run_dir: Path, fmt: str | None, out: Path, batch_size: int, input_shape: str | None, rtol: float, no_check: bool
) -> None:
    """Export a checkpoint (surgery replayed) to ONNX or .pt2 and check it against PyTorch."""
    from ..io import check_out_file, read_config
    from ..loading import load_model
    from ..surgery import export_model

    check_out_file(out, "exported model")
    folder = checkpoint_folder(run_dir)
    meta = read_config(folder)
    try:
        shape = [int(v) for v in input_shape.split(",")] if input_shape else meta.get("input_shape")
    except ValueError:
        raise ValueError(f"--input-shape: expected comma-separated ints such as 3,64,64, got {input_shape!r}") from None
    model = load_model(folder)
    inputs = export_inputs(model, batch_size, shape)
    result = export_model(model, inputs, out, format=fmt, check=not no_check, rtol=rtol)
    steps = [s.get("op") for s in meta.get("surgery", [])]
    click.echo(
        f"exported {meta.get('kind', type(model).__name__)}{' after ' + ', '.join(steps) if steps else ''} "
        f"to {result.path} ({result.format}), traced on inputs "
        f"{[tuple(t.shape) for t in inputs if t is not None]}"
    )
    if result.checked_with:
        click.echo(
            f"checked with {result.checked_with}: relative error {result.rel_error:.2e} "
            f"(max abs {result.max_abs_error:.2e}) <= rtol {rtol:g}"
        )
