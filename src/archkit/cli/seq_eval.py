"""`archkit seq evaluate` and `seq predict --shards`: score a `seq train` run on data streamed batch by batch.

Both kinds of run are read the same way (`load_run`): an LSTM run through its checkpoint, a
`--model rocket|auto` run through `load_run_estimator`. The data are checked against the run before any
work (channels, steps, labels) and while streamed (NaN/inf); outputs are written only at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..train.sequence_score import PredictProba
from .options import EXISTING_RUN, accel_options

EVALUATION = "evaluation.json"  # marks an evaluation folder (io.outdir.KINDS: "sequence evaluation")
EVALUATION_KIND = "archkit-sequence-evaluation"
CONFUSION_PNG = "confusion.png"
RUN_SUMMARY = "summary.json"
MAX_BATCH = 65_536
MAX_WORKERS = 64


@dataclass
class LoadedRun:
    """What scoring needs from a `seq train` run, whichever model it holds."""

    folder: Path
    model: str  # "lstm", "rocket" or "auto"
    predict: PredictProba  # probabilities over all `classes`, column k = class id k
    classes: list[str]
    in_features: int
    timesteps: int | None  # None when the run did not record one (runs on --dataset, older runs)
    summary: dict[str, Any] = field(default_factory=dict)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_run(run: Path, device: str = "auto", precision: str = "32", compile: bool = False) -> LoadedRun:
    """The run's model as a PredictProba, its class names, channels and T; one-line ValueError for another folder."""
    from ..io import checkpoint_exists, read_config
    from ..train.sequence import CHECKPOINT
    from .seqauto import refuse_interrupted_refit

    refuse_interrupted_refit(run)  # its checkpoint/ is a refit in progress, on standardized inputs
    summary = _read_json(run / RUN_SUMMARY)
    if checkpoint_exists(run / CHECKPOINT):
        return _load_lstm(run, summary, read_config(run / CHECKPOINT), device, precision, compile)
    if summary.get("model") in ("rocket", "auto"):
        return _load_estimator(run, summary)
    raise ValueError(
        f"--run: {str(run)!r} is not a `seq train` run (neither the checkpoint/ of an LSTM run "
        f"nor the {RUN_SUMMARY} of a --model rocket|auto run)"
    )


def _names(classes: Any, n: int) -> list[str]:
    return [str(c) for c in classes] if isinstance(classes, list) and len(classes) == n else [str(i) for i in range(n)]


def _timesteps(summary: dict[str, Any]) -> int | None:
    t = summary.get("timesteps")
    return int(t) if isinstance(t, int) else None


def _load_lstm(
    run: Path, summary: dict[str, Any], config: dict[str, Any], device: str, precision: str, compile: bool
) -> LoadedRun:
    from ..loading import load_model
    from ..models.sequence import SequenceClassifier
    from ..train.accelerate import create_accelerator
    from ..train.sequence import CHECKPOINT
    from ..train.sequence_score import lstm_proba

    model = load_model(run / CHECKPOINT)
    if not isinstance(model, SequenceClassifier):
        raise ValueError(f"--run: {str(run)!r} holds a {type(model).__name__} checkpoint, not a `seq train` run")
    n = model.config.num_classes
    accel = create_accelerator(device, precision, compile)
    return LoadedRun(
        run,
        "lstm",
        lstm_proba(model, accel),
        _names(config.get("classes"), n),
        model.config.in_features,
        _timesteps(summary),
        summary,
    )


def _load_estimator(run: Path, summary: dict[str, Any]) -> LoadedRun:
    from .seqrun import load_run_estimator

    est = load_run_estimator(run)
    ids = np.asarray(est.classes_).astype(np.int64)
    n = int(summary.get("num_classes") or int(ids.max()) + 1)
    channels = int(summary.get("in_features") or est.n_features_in_)

    def predict(xb: Any, lb: Any) -> np.ndarray:
        x = xb.numpy()
        series = x if lb is None else [x[i, : int(k)] for i, k in enumerate(lb)]  # unequal lengths: one series each
        p = np.asarray(est.predict_proba(series), dtype=np.float32)
        full = np.zeros((len(p), n), np.float32)  # columns of est.classes_ -> column = class id
        full[:, ids] = p
        return full

    classes = _names(summary.get("classes"), n)
    return LoadedRun(run, str(summary["model"]), predict, classes, channels, _timesteps(summary), summary)


def _open_checked(run: LoadedRun, shards: Path | None, x: Path | None, y: Path | None, labels: bool) -> tuple[Any, str]:
    from ..train.sequence_score import check_like_training, check_task_classes, class_targets, open_scored_data

    data, option = open_scored_data(shards, x, y)
    check_like_training(data, run.in_features, run.timesteps, option)
    if shards is not None and run.classes != [str(i) for i in range(len(run.classes))]:  # named classes: same task?
        check_task_classes(run.classes, shards, option)
    return (class_targets(data, run.classes, "--y" if x is not None else option) if labels else data), option


def predict_shards(
    run_dir: Path,
    shards: Path | None,
    x_path: Path | None,
    batch_size: int,
    workers: int,
    device: str,
    precision: str,
    compile: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(class ids (N,), probabilities (N, C)) for every series of a shard folder, in the shards' row order."""
    from ..train.sequence_score import stream_proba

    if shards is None or x_path is not None:
        raise click.UsageError("data: give exactly one of --x or --shards")
    run = load_run(run_dir, device, precision, compile)
    data, option = _open_checked(run, shards, None, None, labels=False)
    proba, _ = stream_proba(data, run.predict, batch_size, workers, option=option)
    if data.skipped:  # warned by open_shards too; here: what it means for the rows of pred.npy
        click.echo(f"warning: {data.skipped} corrupt shard file(s) skipped: their rows have no predictions", err=True)
    return proba.argmax(1).astype(np.int64), proba


def note_run(cfg: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """Add to a finished run's summary.json what scoring it later needs: class names, channels, T, the test folder."""
    from ..data.real_tasks import task_classes
    from ..io import atomic_write_json
    from ..train.sequence_score import source_shape

    out = Path(cfg.out)
    saved = _read_json(out / RUN_SUMMARY)
    if not saved or "held_out_accuracy" not in summary:  # interrupted or nothing held out: nothing to note
        return summary
    extra: dict[str, Any] = {}
    shape = source_shape(cfg.x, cfg.shards)
    if shape is not None:
        extra.update(in_features=shape[0], timesteps=shape[1])
    classes = summary.get("classes") or (task_classes(cfg.shards) if cfg.shards else None)
    if classes:
        extra["classes"] = list(classes)
    if cfg.test_shards:
        extra.update(test_shards=str(cfg.test_shards), test_accuracy=summary["held_out_accuracy"])
    atomic_write_json(out / RUN_SUMMARY, {**saved, **extra})
    return {**summary, **extra}


def _check_out(out: Path) -> None:
    from ..io import check_out_folder

    check_out_folder(out, "sequence evaluation")  # new, empty, or an earlier evaluation (io/outdir.py)


@click.command("evaluate")
@click.option("--run", "run_dir", required=True, type=EXISTING_RUN, help="Run folder from `seq train`.")
@click.option(
    "--shards",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of labelled shards, e.g. the test/ split of `seq make-task`.",
)
@click.option("--x", "x_path", type=click.Path(dir_okay=False, path_type=Path), help="Or X.npy (N, T, F) ...")
@click.option("--y", "y_path", type=click.Path(dir_okay=False, path_type=Path), help="... with Y.npy ids or one-hot.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help=f"New or empty folder (or an earlier evaluation): {EVALUATION} + {CONFUSION_PNG}.",
)
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=64, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(0, MAX_WORKERS),
    default=0,
    show_default=True,
    help="DataLoader processes reading the next batches while the model runs (0: read here).",
)
@accel_options
def evaluate(
    run_dir: Path,
    shards: Path | None,
    x_path: Path | None,
    y_path: Path | None,
    out_dir: Path,
    batch_size: int,
    workers: int,
    device: str,
    precision: str,
    compile: bool,
) -> None:
    """Score a run on labelled data, streamed: accuracy, balanced accuracy, per-class recall/precision, confusion."""
    import torch

    from ..io import OWN_MARK, atomic_write_json, mark_out_folder
    from ..train.metrics import confusion_matrix
    from ..train.sequence_eval import save_confusion_png
    from ..train.sequence_score import classification_report, stream_proba

    if (shards is None) == (x_path is None) or (shards is not None and y_path is not None):
        raise click.UsageError("data: give exactly one of --shards or --x with --y")
    _check_out(out_dir)
    run = load_run(run_dir, device, precision, compile)
    data, option = _open_checked(run, shards, x_path, y_path, labels=True)
    proba, y = stream_proba(data, run.predict, batch_size, workers, option=option, desc="evaluate")
    pred = proba.argmax(1)
    n = len(run.classes)
    cm = confusion_matrix(torch.as_tensor(pred), torch.as_tensor(y, dtype=torch.long), n).numpy()
    report = classification_report(cm, run.classes)
    result = {
        "kind": EVALUATION_KIND,
        "written_by": f"{OWN_MARK} seq evaluate",  # lets a later evaluate recognise the folder as its own
        "run": str(run_dir),
        "model": run.model,
        "data": {"shards": str(shards)} if shards is not None else {"x": str(x_path), "y": str(y_path)},
        "skipped_shards": data.skipped,
        "classes": run.classes,
        **report,
        "confusion_matrix": cm.tolist(),
    }
    mark_out_folder(out_dir, "sequence evaluation")
    save_confusion_png(cm, run.classes, out_dir / CONFUSION_PNG, title=f"confusion matrix ({len(y)} cases)")
    atomic_write_json(out_dir / EVALUATION, result)
    recall = ", ".join(f"{r['class']} {_pct(r['recall'])}" for r in report["per_class"])
    click.echo(
        f"accuracy {_pct(report['accuracy'])}, balanced accuracy {_pct(report['balanced_accuracy'])} "
        f"on {len(y)} cases (run {run_dir}, {run.model})"
    )
    click.echo(f"recall per class: {recall}")
    if data.skipped:
        click.echo(f"warning: {data.skipped} corrupt shard file(s) skipped: not scored", err=True)
    click.echo(f"wrote {out_dir / EVALUATION} and {out_dir / CONFUSION_PNG}")


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


__all__ = ["LoadedRun", "evaluate", "load_run", "note_run", "predict_shards"]
