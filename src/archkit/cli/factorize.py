"""`archkit surgery lowrank|decompose`: truncated-SVD factorization of a built-in model or a checkpoint.

Both print the per-layer SurgeryReport and the `compare` table. With --out the converted model is saved
as a checkpoint whose config.json records the exact per-layer ranks (and the input shape used for the
MAC check), so `--checkpoint OUT` rebuilds the same structure before loading the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import torch
from torch import nn

from .model_source import _common, _surgery_command, check_surgery_out, load_model_and_input, report_and_save


def _finetune(model: nn.Module, x: torch.Tensor, epochs: int, lr: float, seed: int) -> None:
    """Short fine-tune on scikit-learn digits at the example input's size (digits classifiers only)."""
    from ..data import load_digits
    from ..train import accuracy, fit_classifier

    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 1 or x.shape[-1] != x.shape[-2]:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else f"{len(x)} inputs"
        raise ValueError(f"--finetune-epochs: needs a digits classifier with (B, 1, S, S) input, got {got}")
    size = int(x.shape[-1])
    x_tr, y_tr = load_digits("train", size)
    x_te, y_te = load_digits("test", size)
    before = accuracy(model, x_te, y_te)
    fit = fit_classifier(model, x_tr, y_tr, epochs=epochs, lr=lr, x_test=x_te, y_test=y_te, seed=seed, progress=True)
    model.eval()
    after = fit.test_accuracy if fit.test_accuracy is not None else float("nan")  # set: x_test was given
    click.echo(
        f"fine-tune: {epochs} epoch(s) on digits {size}x{size}, test accuracy {100 * before:.2f}% -> "
        f"{100 * after:.2f}%\n"
    )


def _convert(
    operation: str,
    source: dict[str, Any],
    out: Path | None,
    repeats: int,
    rank: int | None,
    energy: float,
    layers: tuple[str, ...],
    finetune_epochs: int,
    finetune_lr: float,
    act: str | None = None,
) -> None:
    from .. import surgery as s

    check_surgery_out(out, source)
    model, x = load_model_and_input(**source)
    kwargs: dict[str, Any] = dict(rank=rank, energy=energy, layers=list(layers) or None, example_inputs=x)
    if operation == "decompose":
        kwargs["act"] = act
    new, report = getattr(s, operation)(model, **kwargs)
    if finetune_epochs:
        _finetune(new, x, finetune_epochs, finetune_lr, source["seed"])
    step = s.record_step(operation, report, x, **({"act": act} if operation == "decompose" else {}))
    report_and_save(model, new, report, x, out, [step], repeats)


def _factorize_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--finetune-lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)(f)
    f = click.option(
        "--finetune-epochs",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Fine-tune the converted model on scikit-learn digits (digits classifiers only).",
    )(f)
    f = click.option("--layers", multiple=True, help="Only these layer names / fnmatch patterns (repeatable).")(f)
    f = click.option(
        "--energy",
        type=click.FloatRange(min=0, max=1, min_open=True),
        default=0.9,
        show_default=True,
        help="Keep the smallest rank retaining this share of squared singular values.",
    )(f)
    f = click.option(
        "--rank", type=click.IntRange(min=1), default=None, help="Fixed rank for every layer (overrides --energy)."
    )(f)
    return f


@click.command("lowrank")
@_factorize_options
@_common
@_surgery_command
def lowrank_cmd(source: dict[str, Any], out: Path | None, repeats: int, **options: Any) -> None:
    """Factorize Linear and 1x1 conv layers by truncated SVD where that saves MACs."""
    _convert("lowrank", source, out, repeats, **options)


@click.command("decompose")
@click.option(
    "--act",
    type=click.Choice(["none", "relu", "selu", "gelu", "silu"]),
    default="none",
    show_default=True,
    help="Nonlinearity between the 1-D convs (none = exact linear form; else fine-tune).",
)
@_factorize_options
@_common
@_surgery_command
def decompose_cmd(source: dict[str, Any], out: Path | None, repeats: int, act: str, **options: Any) -> None:
    """Decompose KxK convs into vertical Kx1 -> horizontal 1xK convs (DecomposeMe / Jaderberg scheme 2)."""
    _convert("decompose", source, out, repeats, act=None if act == "none" else act, **options)
