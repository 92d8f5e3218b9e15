"""`archkit seq train|predict|make-task`: long-sequence classification (LSTMs, ROCKET, or a cross-validated choice)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from ..models.sequence import CONV_NORMS, FRONTENDS, POOLS
from .options import EXISTING_RUN, RESUME_HELP, accel_options, given_flags
from .seq_eval import evaluate
from .seq_task import make_task

if TYPE_CHECKING:
    import numpy as np

    from ..models.sequence import SequenceClassifier


@click.group()
def seq() -> None:
    """Classify (N, T, F) sequences (one label per sequence): LSTMs, ROCKET, or the one k-fold CV picks."""


seq.add_command(make_task)
seq.add_command(evaluate)


@seq.command()
@click.option(
    "--x", "x_path", type=click.Path(dir_okay=False, path_type=Path), help="X.npy of shape (N, T, F) (memory-mapped)."
)
@click.option(
    "--y", "y_path", type=click.Path(dir_okay=False, path_type=Path), help="Y.npy: (N,) class ids or (N, C) one-hot."
)
@click.option(
    "--shards",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of NAME.npz / NAME_x.npy+NAME_y.npy shards.",
)
@click.option(
    "--dataset", help="'long-task' (generated, T=8192) or a UCR/UEA set bundled with aeon, e.g. BasicMotions."
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder.")
@click.option(
    "--model",
    type=click.Choice(["lstm", "rocket", "auto"]),
    default="rocket",
    show_default=True,
    help="rocket: MiniRocket + ridge head, the default (accurate at long lengths, one fit). auto: stratified k-fold "
    "CV on the train split picks among the ROCKET family and LSTMs (their epochs: --epochs), the cheapest within "
    "one standard error of the best. lstm: the SequenceClassifier below (the LSTM options apply to it only; on "
    "raw steps it stays near chance at thousands of steps: use --frontend conv). Every run also scores a ROCKET "
    "baseline.",
)
@click.option("--cv", type=click.IntRange(2, 20), default=3, show_default=True, help="Folds of --model auto.")
@click.option(
    "--max-cv-cases",
    type=click.IntRange(4, 1_000_000),
    default=2_000,
    show_default=True,
    help="--model auto chooses on a stratified subsample of at most this many training cases (read into memory), "
    "then refits the winner on every case.",
)
@click.option(
    "--resume",
    is_flag=True,
    help=RESUME_HELP.format(
        "--x, --y, --shards (the same data, e.g. moved), --epochs, --max-steps, --lr, --lr-schedule, "
        "--weight-decay, --label-smoothing, --workers, --device, --precision, --compile"
    )
    + " A ROCKET run continues from its saved fit state (rerunning the same command does too); an interrupted "
    "auto refit of an LSTM winner continues without running the CV again.",
)
@click.option(
    "--frontend",
    type=click.Choice(FRONTENDS),
    default="none",
    show_default=True,
    help="'conv': strided Conv1d blocks shorten T before the LSTM (much faster on long sequences).",
)
@click.option(
    "--pool",
    type=click.Choice(POOLS),
    default="last",
    show_default=True,
    help="How the LSTM outputs become one vector.",
)
@click.option("--hidden", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--layers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--bidirectional", is_flag=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--conv-channels", type=click.IntRange(min=1), default=64, show_default=True)
@click.option(
    "--conv-kernel",
    type=click.IntRange(min=1),
    default=7,
    show_default=True,
    help="Odd kernel size of the conv frontend.",
)
@click.option("--conv-stride", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--conv-blocks", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--conv-norm",
    type=click.Choice(CONV_NORMS),
    default="none",
    show_default=True,
    help="'batch': BatchNorm after every frontend conv (statistics over valid steps only; needs --frontend conv).",
)
@click.option(
    "--fcn-channels",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="> 0: add the LSTM-FCN branch (3 conv+BatchNorm+ReLU blocks, global average pool) beside the LSTM.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=3e-3, show_default=True)
@click.option(
    "--lr-schedule",
    type=click.Choice(["constant", "cosine"]),
    default="constant",
    show_default=True,
    help="cosine: decay the learning rate to 0 over --epochs.",
)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=1e-2, show_default=True)
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option(
    "--max-steps", type=click.IntRange(min=0), default=0, help="Stop after this many optimizer steps (0: no limit)."
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="Held-out share of --x/--y or --shards (datasets use their own test split).",
)
@click.option(
    "--test-shards",
    type=click.Path(file_okay=False, path_type=Path),
    help="Score this shard folder (e.g. make-task's test/) instead of a held-out share: all of the data trains.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="DataLoader processes reading batches ahead (0: read in the main process; same batches either way).",
)
@accel_options
def train(
    x_path: Path | None,
    y_path: Path | None,
    shards: Path | None,
    dataset: str | None,
    out_dir: Path,
    model: str,
    cv: int,
    max_cv_cases: int,
    resume: bool,
    frontend: str,
    pool: str,
    hidden: int,
    layers: int,
    bidirectional: bool,
    dropout: float,
    conv_channels: int,
    conv_kernel: int,
    conv_stride: int,
    conv_blocks: int,
    conv_norm: str,
    fcn_channels: int,
    epochs: int,
    batch_size: int,
    lr: float,
    lr_schedule: str,
    weight_decay: float,
    label_smoothing: float,
    max_steps: int,
    val_fraction: float,
    test_shards: Path | None,
    seed: int,
    workers: int,
    device: str,
    precision: str,
    compile: bool,
) -> None:
    """Train a sequence classifier on a train split; score the held-out split next to a ROCKET baseline.

    --model lstm writes checkpoint/, metrics.jsonl, confusion.png, summary.json and baseline.json;
    --model rocket|auto write estimator/ (safetensors + JSON) and summary.json (an LSTM chosen by auto also
    metrics.jsonl); both fit streamed (memory flat in the number of cases) and a killed fit continues.
    """
    from ..train.sequence import SeqTrainConfig, train_sequence
    from .seq_eval import note_run
    from .seqauto import AUTO_CHOICE
    from .seqrun import baseline_for_run, below_baseline, train_estimator

    cfg = SeqTrainConfig(
        out=str(out_dir),
        x=_str(x_path),
        y=_str(y_path),
        shards=_str(shards),
        dataset=dataset,
        frontend=frontend,
        pool=pool,
        hidden=hidden,
        layers=layers,
        bidirectional=bidirectional,
        dropout=dropout,
        conv_channels=conv_channels,
        conv_kernel=conv_kernel,
        conv_stride=conv_stride,
        conv_blocks=conv_blocks,
        conv_norm=conv_norm,
        fcn_channels=fcn_channels,
        weight_decay=weight_decay,
        label_smoothing=label_smoothing,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        lr_schedule=lr_schedule,
        max_steps=max_steps,
        val_fraction=val_fraction,
        test_shards=_str(test_shards),
        seed=seed,
        device=device,
        precision=precision,
        compile=compile,
        workers=workers,
    )
    if resume and "model" not in given_flags() and (out_dir / "checkpoint").is_dir():
        # resuming without repeating --model: the run's own kind (an LSTM run, or auto's refit of an LSTM winner)
        model = "auto" if (out_dir / AUTO_CHOICE).is_file() else "lstm"
    if model != "lstm":
        given = given_flags(rename={"x_path": "x", "y_path": "y"})
        summary, _ = train_estimator(cfg, model, cv, epochs, resume, max_cv_cases=max_cv_cases, explicit=given)
        if summary.get("rank", 0) != 0:  # another torchrun rank: its share of the fit is done, rank 0 reports
            return
        if summary.get("stopped") == "interrupted":
            click.echo(
                f"auto chose {summary['chosen']}; its refit was interrupted at step {summary['refit']['steps']}; "
                f"resume with: archkit seq train ... --model auto --out {out_dir} --resume"
            )
            return
        if model == "auto":
            table = ", ".join(f"{n} {r['mean']:.4f} +- {r['std']:.4f}" for n, r in summary["cv"].items())
            tie = f" (within one standard error: {', '.join(summary['tied_with'])})" if summary["tied_with"] else ""
            click.echo(f"{summary['cv_folds']}-fold CV accuracy on the train split: {table}")
            how = summary["refit"]["trainer"]
            click.echo(
                f"auto chose {summary['chosen']}{tie}; refitted on {summary['num_train']} cases, streamed ({how})"
            )
        click.echo(f"held-out accuracy {summary['held_out_accuracy']:.4f}; wrote {out_dir}")
    else:
        summary = train_sequence(cfg, resume=resume, explicit=given_flags(rename={"x_path": "x", "y_path": "y"}))
        if summary["stopped"] == "interrupted":
            click.echo(
                f"interrupted at step {summary['step']}; resume with: archkit seq train ... --out {out_dir} --resume"
            )
            return
        click.echo(
            f"held-out accuracy {summary['held_out_accuracy']:.4f} after {summary['step']} steps "
            f"({summary['train_sequences_per_s']:.1f} sequences/s); wrote {out_dir}"
        )
        summary["rocket_baseline"] = baseline_for_run(cfg)
    base = summary["rocket_baseline"]
    same = " (the chosen model itself)" if base.get("same_model") else ""
    click.echo(f"ROCKET baseline on the same split: held-out accuracy {base['held_out_accuracy']:.4f}{same}")
    warning = below_baseline(summary["held_out_accuracy"], base)
    if warning:
        click.echo(warning, err=True)
    summary = note_run(cfg, summary)  # class names, channels, T (and the test folder) for `seq evaluate`
    if test_shards is not None:
        click.echo(f"test accuracy {summary['test_accuracy']:.4f} on {test_shards} (nothing held out of training)")


@seq.command()
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=EXISTING_RUN,
    help="Run folder from `seq train`.",
)
@click.option("--x", "x_path", type=click.Path(dir_okay=False, path_type=Path), help="X.npy of shape (N, T, F).")
@click.option(
    "--shards",
    type=click.Path(file_okay=False, path_type=Path),
    help="Or a folder of shards, streamed batch by batch; predictions keep the shards' row order.",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="pred.npy: (N,) class ids.",
)
@click.option(
    "--proba",
    "proba_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write (N, C) probabilities here.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="DataLoader processes reading the next batches while the model runs (0: read here).",
)
@accel_options
def predict(
    run_dir: Path,
    x_path: Path | None,
    shards: Path | None,
    out_path: Path,
    proba_path: Path | None,
    batch_size: int,
    workers: int,
    device: str,
    precision: str,
    compile: bool,
) -> None:
    """Predict class ids for X.npy or a shard folder, streamed in batches from memory maps."""
    from ..data.sequences import open_x
    from ..io import check_distinct, check_out_file
    from ..loading import load_model
    from ..train.sequence import CHECKPOINT
    from ..train.sequence_eval import predict_sequences
    from .seqauto import refuse_interrupted_refit
    from .seqrun import is_estimator_run, predict_run_estimator

    refuse_interrupted_refit(run_dir)
    check_distinct({"--out": out_path, "--proba": proba_path}, {"--x": x_path})
    for path, what, option in ((out_path, "predictions", "--out"), (proba_path, "probabilities", "--proba")):
        if path is not None:  # .npy carries no mark of who wrote it: an existing file is never written over
            check_out_file(path, what, option)
    if x_path is None or shards is not None:
        from .seq_eval import predict_shards

        pred, proba = predict_shards(run_dir, shards, x_path, batch_size, workers, device, precision, compile)
        _save_npy(out_path, pred)
        if proba_path is not None:
            _save_npy(proba_path, proba)
        click.echo(f"wrote {len(pred)} predictions to {out_path}")
        return
    x = open_x(x_path)
    if is_estimator_run(run_dir):  # a --model rocket|auto run
        pred, proba = predict_run_estimator(run_dir, x, batch_size)
        _save_npy(out_path, pred)
        if proba_path is not None:
            _save_npy(proba_path, proba)
        click.echo(f"wrote {len(pred)} predictions to {out_path}")
        return
    model = cast("SequenceClassifier", load_model(run_dir / CHECKPOINT))  # what a --model lstm run saves
    if x.shape[-1] != model.config.in_features:
        raise ValueError(
            f"--x: the model expects {model.config.in_features} features per step, {str(x_path)!r} has {x.shape[-1]}"
        )
    pred, proba = predict_sequences(
        model,
        x,
        batch_size=batch_size,
        progress=True,
        device=device,
        precision=precision,
        compile=compile,
        workers=workers,
        name="--x",
    )
    _save_npy(out_path, pred)
    if proba_path is not None:
        _save_npy(proba_path, proba)
    click.echo(f"wrote {len(pred)} predictions to {out_path}")


def _str(p: Path | None) -> str | None:
    return None if p is None else str(p)


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Atomic .npy write (np.save appends .npy to a path, so write through a file handle)."""
    import numpy as np

    from ..io import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    atomic_write(path, write)
