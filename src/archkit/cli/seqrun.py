"""`archkit seq train` beyond the LSTM: `--model rocket|auto` runs, and the ROCKET baseline every run is compared with.

A run of `--model rocket` or `--model auto` reads the same data sources and the same train / held-out
split as an LSTM run (`load_training_data`), fits the estimator on the train split only, scores the
held-out split and writes to the run folder:
- `estimator/`: the fitted estimator as safetensors + JSON (`archkit.estimators.saving`); nothing in a
  run folder is unpickled. A run folder of an earlier archkit holding `estimator.pkl` is refused;
- `summary.json`: held-out accuracy, the fit's timings, the CV table of `--model auto`, the ROCKET baseline.
`--model rocket` is fitted streamed (`RocketClassifier.fit_shards`): memory flat in the number of
cases; its passes save their state in `fit_state/` every CHECKPOINT_EVERY batches, and rerunning
the same command (or with --resume) continues a killed fit. `--model auto` chooses by cross-validation on a
stratified subsample of at most `max_cv_cases` cases (read into memory), then refits the winner on every case,
streamed either way: a ROCKET-family winner by `fit_shards`, an LSTM winner by `train_sequence` as `--model lstm`
trains (`seqauto.py`: checkpoints, `metrics.jsonl`, and `--resume` continues a killed refit).
Every run (LSTM runs too) also fits `RocketClassifier` on the same train split and scores the same
held-out rows (`rocket_baseline`); the CLI warns when the chosen model scores below it.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_json, check_out_folder, mark_out_folder

ESTIMATOR = "estimator"  # folder: estimator.safetensors + estimator.json
PICKLED = "estimator.pkl"  # what runs of earlier versions hold
FIT_STATE = "fit_state"
SUMMARY = "summary.json"
BASELINE = "baseline.json"
MODELS = ("lstm", "rocket", "auto")
CHECKPOINT_EVERY = 50  # batches between saves of a streamed fit's state


def subsample(data: Any, max_cases: int, seed: int) -> Any:
    """A view of SequenceData `data` holding a stratified subsample of at most `max_cases` of its cases (none read)."""
    from ..data.sequences import SequenceData
    from ..estimators.autocv import stratified_subsample

    y = np.concatenate([np.asarray(s.y)[r] for s, r in zip(data.shards, data.rows)])
    keep = np.zeros(len(y), bool)
    keep[stratified_subsample(y, max_cases, seed)] = True
    bounds = np.cumsum([0] + [len(r) for r in data.rows])
    rows = [r[keep[a:b]] for r, a, b in zip(data.rows, bounds[:-1], bounds[1:])]
    return SequenceData(data.shards, rows, data.skipped)


def materialize(data: Any) -> tuple[list[np.ndarray] | np.ndarray, np.ndarray]:
    """(X, y) of a SequenceData view read in order: an (n, T, C) array, or a list of (T_i, C) series when lengths vary."""
    from ..estimators.rocket_stream import read_cases

    y = np.concatenate([np.asarray(s.y)[r] for s, r in zip(data.shards, data.rows)])
    return read_cases(data), y


def streamed_accuracy(est: Any, data: Any, batch_size: int = 256) -> float:
    """Accuracy of `est` on every case of SequenceData `data`, read and predicted a batch at a time."""
    hits = 0
    for xb, yb, lb in data.batches(batch_size, shuffle=False):
        x = xb.numpy() if lb is None else [xb[i, : int(n)].numpy() for i, n in enumerate(lb)]
        hits += int(np.sum(est.predict(x) == np.asarray(yb)))
    return hits / max(len(data), 1)


def _targets(loaded: tuple[Any, Any, list[str] | None]) -> tuple[Any, Any, int]:
    """(train, held_out, number of classes) with every shard's labels checked and turned into class ids."""
    from ..train.sequence import _validated_targets

    return _validated_targets(*loaded)


def rocket_baseline(
    train: Any, held: Any, seed: int = 0, device: str = "auto", precision: str = "32", num_classes: int | None = None
) -> dict[str, Any]:
    """Fit RocketClassifier on the train split (streamed), score the held-out split: {held_out_accuracy, fit_s, ...}."""
    from ..estimators.rocket import RocketClassifier

    clf = RocketClassifier(random_state=seed, device=device, precision=precision)
    t0 = time.perf_counter()
    clf.fit_shards(train, classes=None if num_classes is None else np.arange(num_classes))
    fit_s = time.perf_counter() - t0
    return {
        "model": "RocketClassifier",
        "held_out_accuracy": streamed_accuracy(clf, held),
        "fit_s": fit_s,
        "num_train": len(train),
        "num_held_out": len(held),
    }


def baseline_for_run(cfg: Any) -> dict[str, Any]:
    """The ROCKET baseline of an LSTM run (same data, same split as `train_sequence(cfg)`), written to BASELINE."""
    from ..train.sequence import load_training_data

    train, held, k = _targets(load_training_data(cfg))
    base = rocket_baseline(train, held, seed=cfg.seed, device=cfg.device, precision=cfg.precision, num_classes=k)
    atomic_write_json(Path(cfg.out) / BASELINE, base)
    return base


def train_estimator(
    cfg: Any,
    model: str,
    cv: int = 3,
    lstm_epochs: int | None = None,
    resume: bool = False,
    hook: Any = None,
    every: int = CHECKPOINT_EVERY,
    max_cv_cases: int = 2_000,
    explicit: Collection[str] = (),
) -> tuple[dict[str, Any], Any]:
    """Fit `--model rocket|auto` on cfg's train split; score held-out; fit the ROCKET baseline; write the run folder.

    `--model rocket` continues from `fit_state/` when the folder holds one (a killed fit); `resume`
    demands that it does. `--model auto --resume` continues an interrupted streamed refit of an LSTM
    winner (`auto_choice.json` + `checkpoint/`) without running the CV again. `hook(pass, batches_done)`
    runs after every batch of a streamed ROCKET fit. Returns (summary, fitted estimator); the summary of an
    interrupted LSTM refit has `stopped: "interrupted"` and the estimator is None. `explicit`: the flags given
    (the CLI's), so that a resumed refit takes the saved data and split for the others, as `--model lstm` does.
    """
    from ..estimators.auto import AutoSequenceClassifier
    from ..estimators.rocket import RocketClassifier
    from ..io import checkpoint_exists
    from ..train.sequence import CHECKPOINT, load_training_data
    from .seqauto import AUTO_CHOICE, channel_stats, finish_refit, read_choice, refit_lstm, save_choice

    if model not in MODELS[1:]:
        raise ValueError(f"--model: expected one of {list(MODELS)}, got {model!r}")
    out = Path(cfg.out)
    check_out_folder(out, "sequence run")  # a user's folder (their summary.json) is refused before any work
    refit = resume and model == "auto" and (out / AUTO_CHOICE).is_file() and checkpoint_exists(out / CHECKPOINT)
    for held_there in (ESTIMATOR, PICKLED, CHECKPOINT):
        if (out / held_there).exists() and not (refit and held_there == CHECKPOINT):
            raise ValueError(f"--out: {str(out)!r} already holds a run ({held_there}); choose a new --out")
    state = out / FIT_STATE
    if resume and not refit and (model != "rocket" or not state.is_dir()):
        raise ValueError(
            f"--resume: {str(out)!r} holds no interrupted --model rocket fit ({FIT_STATE}/) nor "
            f"--model auto refit ({AUTO_CHOICE} and {CHECKPOINT}/) to continue"
        )
    resumed = read_choice(out, cfg, explicit) if refit else None  # cfg gets the interrupted run's data and split
    train, held, num_classes = _targets(load_training_data(cfg))
    mark_out_folder(out, "sequence run")  # before the fit writes its state: an interrupted run stays ours
    common = {"random_state": cfg.seed, "device": cfg.device, "precision": cfg.precision}
    t0 = time.perf_counter()
    if model == "rocket":
        from ..train.accelerate import resolve_device
        from ..train.distributed import cleanup_distributed, init_distributed

        # under torchrun every rank transforms its share of the batches and the head's statistics are summed;
        # rank 0 then scores, saves and reports alone (the others return after the fit)
        info = init_distributed(resolve_device(cfg.device))
        est: Any = RocketClassifier(batch_size=cfg.batch_size, **common)
        try:
            _fit_rocket(est, train, state, every, cfg, hook)
        finally:
            cleanup_distributed(info)
        if not info.is_main:
            return {"rank": info.rank, "world_size": info.world_size}, est
        num_train = len(train)
    elif resumed is not None:  # an interrupted refit of an LSTM winner: its choice is saved, the CV is not run again
        choice, est, mean, scale = resumed
        chosen = choice["chosen"]
        est, refitted = refit_lstm(cfg, est, train, held, num_classes, (mean, scale), resume=True)
        num_train = len(train)
    else:  # choose on a bounded stratified subsample, then refit the winner on every case, streamed
        auto = AutoSequenceClassifier(
            cv=cv, lstm_epochs=lstm_epochs or cfg.epochs, verbose=cfg.progress, max_cv_cases=max_cv_cases, **common
        )
        x, y = materialize(subsample(train, max_cv_cases, cfg.seed))  # at most max_cv_cases cases in memory
        chosen, est = auto.select(x, y)
        del x, y  # the refit streams; the subsample's memory is not kept through it
        choice = {
            "chosen": chosen,
            "tied_with": auto.tied_with_,
            "cv_folds": auto.n_splits_,
            "cv_cases": auto.cv_cases_,  # the stratified subsample the choice was made on (--max-cv-cases bounds it)
            "cv": auto.cv_results_,  # per candidate: out-of-fold accuracy and fit seconds per fold
            "cv_skipped": sorted(auto.skipped_),
        }
        if isinstance(est, RocketClassifier):  # ROCKET family: streamed over the shards, as --model rocket
            est.set_params(batch_size=cfg.batch_size)
            _fit_rocket(est, train, state, every, cfg, hook)
            refitted = {"streamed": True, "trainer": "RocketClassifier.fit_shards"}
        else:  # an LSTM: streamed over the shards by --model lstm's trainer, with the winner's settings
            stats = channel_stats(train, workers=cfg.workers, progress=cfg.progress)
            save_choice(out, cfg, choice, est, *stats)
            est, refitted = refit_lstm(cfg, est, train, held, num_classes, stats)
        num_train = len(train)
    if model == "auto" and est is None:  # interrupted: the checkpoint and the choice are saved for --resume
        return {"model": model, "chosen": chosen, "stopped": "interrupted", "refit": refitted}, None
    if model == "auto" and refitted["trainer"] == "train_sequence":
        finish_refit(out)  # before estimator/ is written: a folder never holds both (run loaders try checkpoint/ first)
    fit_s = time.perf_counter() - t0
    acc = streamed_accuracy(est, held)
    summary: dict[str, Any] = {
        "model": model,
        "estimator": type(est).__name__,
        "held_out_accuracy": acc,
        "fit_s": fit_s,
        "num_train": num_train,
        "num_held_out": len(held),
        "num_classes": num_classes,
        "skipped_shards": train.skipped,
    }
    if model == "rocket":
        summary["fit"] = est.fit_info_
    if model == "auto":
        summary.update(choice, refit=refitted)
    if model == "rocket" or (model == "auto" and chosen == "rocket"):
        summary["rocket_baseline"] = {"held_out_accuracy": acc, "same_model": True}
    else:
        summary["rocket_baseline"] = rocket_baseline(train, held, cfg.seed, cfg.device, cfg.precision, num_classes)
    est.save(out / ESTIMATOR)
    atomic_write_json(out / SUMMARY, summary)
    return summary, est


def _fit_rocket(est: Any, train: Any, state: Path, every: int, cfg: Any, hook: Any) -> None:
    """`fit_shards` on the training split: the head scores the classes the split holds (a class of the task it
    lacks gets a column of zeros at predict time, so pred == proba.argmax)."""
    est.fit_shards(train, None, state, every=every, workers=cfg.workers, progress=cfg.progress, hook=hook)


def is_estimator_run(run: str | Path) -> bool:
    """Whether `run` is a `--model rocket|auto` run folder (of this archkit or, pickled, of an earlier one)."""
    return (Path(run) / ESTIMATOR).is_dir() or (Path(run) / PICKLED).is_file()


def load_run_estimator(run: str | Path) -> Any:
    """The fitted estimator of a `--model rocket|auto` run (safetensors + JSON; a pickled run is refused)."""
    from ..estimators import load_estimator

    run = Path(run)
    if (run / PICKLED).is_file() and not (run / ESTIMATOR).is_dir():
        raise ValueError(
            f"--run: {str(run)!r} holds {PICKLED}, a pickle written by an earlier archkit, which archkit no longer "
            f"loads; refit it: rerun `archkit seq train ... --out NEW` with that run's data and --model"
        )
    if not (run / ESTIMATOR).is_dir():
        raise FileNotFoundError(f"--run: {str(run)!r} holds no {ESTIMATOR}/ (a `seq train --model rocket|auto` run)")
    return load_estimator(run / ESTIMATOR)


def predict_run_estimator(run: str | Path, x: Any, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(class ids (N,), probabilities (N, C)) of a `--model rocket|auto` run for X (N, T, F), `batch_size` rows at a time.

    C is the task's number of classes (summary.json's num_classes): a class absent from the train split
    keeps its column, at probability 0, so column k is class id k and pred == proba.argmax(1).
    """
    from ..utils.validation import check_finite_rows

    est = load_run_estimator(run)
    if x.shape[-1] != est.n_features_in_:
        raise ValueError(f"--x: the model expects {est.n_features_in_} features per step, X has {x.shape[-1]}")
    num_classes = run_num_classes(run, est.classes_)
    probs = []
    for i in range(0, len(x), batch_size):
        chunk = np.asarray(x[i : i + batch_size], dtype=np.float32)
        check_finite_rows(chunk, "--x", offset=i)
        probs.append(est.predict_proba(chunk))
    seen = np.concatenate(probs) if probs else np.zeros((0, len(est.classes_)), np.float32)
    p = np.zeros((len(seen), num_classes), np.float32)
    p[:, np.asarray(est.classes_, dtype=np.int64)] = seen
    return p.argmax(1).astype(np.int64), p


def run_num_classes(run: str | Path, seen: np.ndarray) -> int:
    """The task's number of classes saved in a run's summary.json (runs saved before it: the classes seen in fit)."""
    import json

    value = json.loads((Path(run) / SUMMARY).read_text()).get("num_classes")
    least = int(np.max(seen)) + 1 if len(seen) else 0
    if value is None:
        return least
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(
            f"--run: {str(Path(run) / SUMMARY)!r} has num_classes {value!r}; expected an int >= {least} "
            f"(the estimator knows class id {least - 1})"
        )
    return value


def below_baseline(accuracy: float, baseline: dict[str, Any]) -> str | None:
    """A warning line when `accuracy` is below the ROCKET baseline's held-out accuracy, else None."""
    ref = baseline.get("held_out_accuracy")
    if ref is None or baseline.get("same_model") or accuracy >= ref:
        return None
    return (
        f"warning: the chosen model's held-out accuracy {accuracy:.4f} is below the ROCKET baseline's {ref:.4f} "
        f"on the same split; consider --model rocket or --model auto"
    )
