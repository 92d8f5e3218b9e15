"""`archkit prior train`, `archkit sample`, `archkit evaluate`: stage 2 of VQ-VAE-2 from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .options import EXISTING_RUN, RESUME_HELP, accel_options, given_flags

STALE = click.option(
    "--accept-stale-codes",
    is_flag=True,
    help="Use codes (or priors trained on codes) of other VQ-VAE weights than the run's; refused by default.",
)


@click.group()
def prior() -> None:
    """Gated PixelCNN priors over the codes of a VQ-VAE-2 run (one per level, trained separately)."""


@prior.command()
@click.option(
    "--run",
    "run",
    type=EXISTING_RUN,
    required=True,
    help="Run folder with a trained VQ-VAE and its codes (`vqvae encode`).",
)
@click.option("--level", default="top", show_default=True, help="top | bottom | level index (0 = top).")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--channels", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--layers", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--kernel-size", type=click.IntRange(min=3), default=5, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True)
@click.option(
    "--attention-every",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Causal self-attention after every K-th gated layer (the paper's top prior); 0 = none.",
)
@click.option("--attention-heads", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--eval-every", type=click.IntRange(min=1), default=250, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--codes",
    type=click.Path(),
    default=None,
    help="Codes folder of `vqvae encode` (default RUN/codes; a legacy codes.npz also works).",
)
@click.option(
    "--resume",
    is_flag=True,
    help=RESUME_HELP.format(
        "--steps, --batch-size, --lr, --eval-every, --codes, --accept-stale-codes, --device, --precision, --compile"
    ),
)
@STALE
@accel_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(run: Path, quiet: bool, **kwargs: Any) -> None:
    """Train (or --resume) the prior of one level; Ctrl-C saves a checkpoint and exits cleanly."""
    from ..train.prior import PriorTrainConfig, train_prior

    rec = train_prior(PriorTrainConfig(run=str(run), **kwargs), progress=not quiet, explicit=given_flags())
    if rec.get("rank", 0):  # another torchrun rank: rank 0 reports
        return
    click.echo(
        f"prior level {rec.get('level')} at step {rec.get('step')}: held-out "
        f"{rec.get('test_bits_per_code', float('nan')):.3f} bits/code, code accuracy held-out "
        f"{rec.get('test_accuracy', float('nan')):.3f} vs train {rec.get('train_accuracy', float('nan')):.3f}"
    )


@click.command()
@click.option(
    "--run", "run", type=EXISTING_RUN, required=True, help="Run folder with a VQ-VAE and a prior for every level."
)
@click.option("--class", "classes", type=int, multiple=True, help="Class to sample (repeatable); default: all.")
@click.option("--n", type=click.IntRange(1, 10_000), default=16, show_default=True, help="Samples per row (class).")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--method", type=click.Choice(["fast", "naive"]), default="fast", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("samples.png"), show_default=True)
@click.option(
    "--reject-with",
    type=click.Choice(["classifier"]),
    default=None,
    help="Rejection sampling (VQ-VAE-2 section 3.3): draw n/keep per class, keep the n the run's "
    "evaluation classifier finds most like their class.",
)
@click.option(
    "--keep",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.5,
    show_default=True,
    help="Share of the draws kept by --reject-with.",
)
@click.option(
    "--classifier-epochs",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Epochs of the classifier when it is not cached in RUN/classifier/ yet (as `archkit evaluate`).",
)
@STALE
@accel_options
def sample(
    run: Path,
    classes: tuple[int, ...],
    n: int,
    temperature: float,
    seed: int,
    method: str,
    out: Path,
    reject_with: str | None,
    keep: float,
    classifier_epochs: int,
    accept_stale_codes: bool,
    device: str,
    precision: str,
    compile: bool,
) -> None:
    """Sample the top level, then each lower level conditioned on the one above; decode; one row per class."""
    import torch

    from ..io import check_out_file
    from ..train.generate import check_draws, check_priors, sample_images, save_grid
    from ..train.prior import load_prior

    check_out_file(out, "sample grid")  # a user's own samples.png is never written over
    if reject_with:
        check_draws([n], keep)  # bounded before any work: one class's draws
    check_priors(run, accept_stale_codes)
    num_classes = load_prior(run, 0).config.num_classes or 0
    if classes and not num_classes:
        raise ValueError("--class: the priors of this run are unconditional (no labels); drop --class")
    for k in classes:
        if not 0 <= k < num_classes:
            raise ValueError(f"--class: expected a class in [0, {num_classes}), got {k}")
    rows = list(classes) if classes else list(range(num_classes))
    labels = torch.tensor(rows).repeat_interleave(n) if rows else None
    note = ""
    if reject_with:
        from ..train.evaluate import run_classifier
        from ..train.generate import rejection_sample

        if labels is None:
            raise ValueError(
                "--reject-with: needs class-conditional priors (the classifier scores the requested class)"
            )
        check_draws([n] * len(rows), keep)
        clf = run_classifier(
            run, epochs=classifier_epochs, seed=seed, progress=True, device=device, precision=precision
        )
        images, _, info = rejection_sample(
            run,
            labels,
            keep,
            clf,
            temperature=temperature,
            seed=seed,
            method=method,
            device=device,
            precision=precision,
            compile=compile,
            accept_stale_codes=accept_stale_codes,
        )
        note = (
            f"; kept {info['kept']} of {info['drawn']} draws, mean classifier confidence "
            f"{info['mean_confidence_drawn']:.3f} -> {info['mean_confidence_kept']:.3f}"
        )
    else:
        images, _ = sample_images(
            run,
            n * max(len(rows), 1),
            labels,
            temperature=temperature,
            seed=seed,
            method=method,
            device=device,
            precision=precision,
            compile=compile,
            accept_stale_codes=accept_stale_codes,
        )
    save_grid(images, max(len(rows), 1), out, row_labels=[str(k) for k in rows] or None)
    click.echo(f"wrote {out} ({len(images)} samples, {max(len(rows), 1)} rows{note})")


@click.command()
@click.option("--run", "run", type=EXISTING_RUN, required=True, help="Run folder with a VQ-VAE and trained priors.")
@click.option("--per-class", type=click.IntRange(min=2), default=50, show_default=True, help="Samples per class.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--classifier-epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON (default RUN/eval.json)."
)
@click.option(
    "--reject-keep",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Also evaluate classifier-rejection sampling keeping this share of the draws.",
)
@STALE
@accel_options
def evaluate(
    run: Path,
    per_class: int,
    temperature: float,
    classifier_epochs: int,
    seed: int,
    out: Path | None,
    reject_keep: float | None,
    accept_stale_codes: bool,
    device: str,
    precision: str,
    compile: bool,
) -> None:
    """Class agreement, CAS and Frechet distance (classifier features) for samples, real images, uniform codes."""
    from ..io import check_out_file
    from ..train.evaluate import evaluate_run

    if out is not None:  # the default, RUN/eval.json, is the run's own
        check_out_file(out, "evaluation JSON")
    result = evaluate_run(
        run,
        per_class=per_class,
        temperature=temperature,
        classifier_epochs=classifier_epochs,
        seed=seed,
        out=out,
        progress=True,
        reject_keep=reject_keep,
        device=device,
        precision=precision,
        compile=compile,
        accept_stale_codes=accept_stale_codes,
    )
    click.echo(format_eval(result))
    click.echo(f"wrote {out or run / 'eval.json'}")


def format_eval(result: dict) -> str:
    """The evaluation as a plain-text table."""
    from ..surgery import format_table

    rows = [
        [name, f"{r['class_agreement']:.3f}", f"{r['cas']:.3f}", f"{r['frechet_distance']:.2f}"]
        for name, r in result["rows"].items()
    ]
    text = format_table(["images", "class agreement", "CAS", "Frechet (clf features)"], rows)
    if result.get("rejection"):
        r = result["rejection"]
        text += (
            f"\nrejection: kept {r['kept']} of {r['drawn']} draws (keep {r['keep']}); its class agreement is "
            f"scored by the classifier that selected them"
        )
    for p in result["priors"]:
        text += (
            f"\nprior level {p['level']}: code accuracy held-out {p['test_accuracy']:.3f} vs train "
            f"{p['train_accuracy']:.3f}; {p['test_bits_per_code']:.3f} bits/code held-out"
        )
    return text


__all__ = ["evaluate", "format_eval", "prior", "sample", "train"]
