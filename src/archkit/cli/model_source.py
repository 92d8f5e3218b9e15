"""Where a surgery command's model and example input come from (built-in name or checkpoint) and where it saves."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import torch
from torch import nn

from ..models import list_models


def model_source_options(f: Callable) -> Callable:
    """Add --model / --checkpoint / --batch-size / --image-size / --randomize-bn / --seed to a command."""
    options = [
        click.option(
            "--model",
            "model_name",
            type=click.Choice(list_models()),
            default=None,
            help="A built-in model (random init).",
        ),
        click.option(
            "--checkpoint",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="An archkit checkpoint folder (config.json + model.safetensors).",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Batch size of the example input used for the comparison.",
        ),
        click.option(
            "--image-size",
            type=click.IntRange(min=1),
            default=None,
            help="Input height/width (code-map size for a PixelCNN, steps for a sequence model) for "
            "--checkpoint (default: the size saved with it).",
        ),
        click.option(
            "--randomize-bn",
            is_flag=True,
            help="Randomize BN statistics first, so folding a fresh model is not a near-identity.",
        ),
        click.option("--seed", type=int, default=0, show_default=True),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def load_model_and_input(
    model_name: str | None,
    checkpoint: Path | None,
    batch_size: int = 1,
    image_size: int | None = None,
    randomize_bn: bool = False,
    seed: int = 0,
) -> tuple[nn.Module, Any]:
    """(eval-mode model, random example input) from a built-in name or a checkpoint folder.

    The input fits the model's kind (`archkit.models.example_inputs_for`): images for ResNet/VQVAE2, code
    maps (+ labels, + conditioning map) for GatedPixelCNN, (B, T, C) sequences + lengths for
    SequenceClassifier, features for FunctionApproximator; a tuple when the model takes several arguments.
    """
    from ..io import load_weights, read_config
    from ..loading import build_model
    from ..models import create_model, example_input, example_inputs_for
    from ..surgery import randomize_bn_stats

    if (model_name is None) == (checkpoint is None):
        raise click.UsageError("give exactly one of --model NAME or --checkpoint DIR")
    x: Any  # one tensor, or a tuple when the model takes several arguments
    if model_name is not None:
        torch.manual_seed(seed)
        model, x = create_model(model_name), example_input(model_name, batch_size, seed=seed)
    else:
        assert checkpoint is not None  # exactly one of the two, checked above
        meta = read_config(checkpoint)
        model = load_weights(checkpoint, build_model(meta, repr(str(checkpoint / "config.json"))))
        # carried into the next --out; Module.__setattr__ is typed for tensors and modules but stores any value
        model._archkit_surgery = list(meta.get("surgery", []))  # type: ignore[assignment]
        shape = meta.get("input_shape")
        if image_size is not None:
            shape = [image_size, image_size]
        inputs = example_inputs_for(model, batch_size, seed, input_shape=shape)
        if inputs is None:
            raise click.UsageError(f"--checkpoint: no example input is known for a {meta.get('kind')!r} model")
        x = inputs[0] if len(inputs) == 1 else inputs
    if randomize_bn:
        randomize_bn_stats(model, seed)
    return model.eval(), x


def first_input(x: Any) -> torch.Tensor:
    """The first tensor of an example input (the one whose shape is saved with a checkpoint)."""
    return x[0] if isinstance(x, tuple) else x


def report_and_save(
    reference: nn.Module,
    candidate: nn.Module,
    report: Any,
    x: Any,
    out: Path | None,
    ops: list[dict[str, Any]],
    repeats: int,
) -> None:
    """Print the surgery report and the compare table; with `out`, save the candidate as a checkpoint."""
    from ..io import save_checkpoint
    from ..io.outdir import check_out_folder, mark_out_folder
    from ..surgery import compare

    if out is not None:
        check_out_folder(out, "checkpoint")
    click.echo(report.to_table())
    click.echo("")
    click.echo(compare(reference, candidate, x, repeats=repeats).to_table())
    if out is not None:
        config = getattr(candidate, "config", None)
        if config is None:
            raise ValueError("--out: this model has no .config dataclass to save beside its weights")
        previous = getattr(reference, "_archkit_surgery", [])
        mark_out_folder(out, "checkpoint")
        save_checkpoint(out, candidate, config, surgery=[*previous, *ops], input_shape=list(first_input(x).shape[1:]))
        click.echo(f"saved -> {out}")


def _common(f: Callable) -> Callable:
    f = click.option(
        "--repeats",
        type=click.IntRange(min=1),
        default=20,
        show_default=True,
        help="Timed runs per model (interleaved).",
    )(f)
    f = click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Save the result as a checkpoint folder.",
    )(f)
    return model_source_options(f)


def check_surgery_out(out: Path | None, source: dict[str, Any]) -> None:
    """Before any surgery runs: --out must not be the source --checkpoint, nor a user's folder."""
    from ..io.outdir import check_distinct, check_out_folder

    if out is not None:
        check_distinct({"--out": out}, {"--checkpoint": source.get("checkpoint")})  # the source checkpoint is kept
        check_out_folder(out, "checkpoint")


def _run(op: str, out: Path | None, repeats: int, source: dict[str, Any], **op_kwargs: Any) -> None:
    from ..surgery import SURGERY_STEPS, record_step

    check_surgery_out(out, source)
    model, x = load_model_and_input(**source)
    check = {"example_inputs": x} if op == "fuse_bn" else {}  # verify the fold on the input compared below
    new, report = SURGERY_STEPS[op](model, **op_kwargs, **check)
    report_and_save(model, new, report, x, out, [record_step(op, **op_kwargs)], repeats)


def _source(kwargs: dict[str, Any]) -> dict[str, Any]:
    keys = ("model_name", "checkpoint", "batch_size", "image_size", "randomize_bn", "seed")
    return {k: kwargs.pop(k) for k in keys}


def _surgery_command(f: Callable) -> Callable:
    @functools.wraps(f)
    def wrapper(**kwargs: Any) -> None:
        return f(_source(kwargs), **kwargs)

    return wrapper
