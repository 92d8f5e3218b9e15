"""`archkit seq train` beyond the LSTM: `--model rocket|auto` runs, and the ROCKET baseline every run is compared with.

A run of `--model rocket` or `--model auto` reads the same data sources and the same train / held-out
split as an LSTM run (`load_training_data`), fits the estimator on the train split only, scores the
held-out split and writes to the run folder:
- `estimator.pkl`: the fitted estimator (a pickle, as scikit-learn models are saved: load only runs you
  trust); its SHA-256 is kept in summary.json and checked before `seq predict` unpickles it;
- `summary.json`: held-out accuracy, the CV table of `--model auto`, the ROCKET baseline.
Every run (LSTM runs too) also fits `RocketClassifier` on the same train split and scores the same
held-out rows (`rocket_baseline`); the CLI warns when the chosen model scores below it.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write, atomic_write_json, check_out_folder, mark_out_folder

ESTIMATOR = "estimator.pkl"
SUMMARY = "summary.json"
BASELINE = "baseline.json"
MODELS = ("lstm", "rocket", "auto")


def materialize(data: Any) -> tuple[list[np.ndarray] | np.ndarray, np.ndarray]:
    """(X, y) of a SequenceData view read in order: an (n, T, C) array, or a list of (T_i, C) series when lengths vary."""
    xs, ys, series = [], [], []
    for xb, yb, lb in data.batches(256, shuffle=False):
        ys.append(np.asarray(yb))
        if lb is None:
            xs.append(xb.numpy())
        else:
            series += [xb[i, : int(n)].numpy() for i, n in enumerate(lb)]
    y = np.concatenate(ys)
    if series:
        if xs:  # mixed shards (some with lengths, some without): every case as its own series
            series = [a for b in xs for a in b] + series
        return series, y
    return np.concatenate(xs), y


def _targets(loaded: tuple[Any, Any, list[str] | None]) -> tuple[Any, Any, int]:
    """(train, held_out, number of classes) with every shard's labels checked and turned into class ids."""
    from ..train.sequence import _validated_targets

    return _validated_targets(*loaded)


def rocket_baseline(
    train: Any,
    held: Any,
    seed: int = 0,
    device: str = "auto",
    precision: str = "32",
    x_train: Any = None,
    y_train: Any = None,
) -> dict[str, Any]:
    """Fit RocketClassifier on the train split, score the held-out split: {held_out_accuracy, fit_s, num_train}."""
    from .rocket import RocketClassifier

    if x_train is None:
        x_train, y_train = materialize(train)
    x_held, y_held = materialize(held)
    clf = RocketClassifier(random_state=seed, device=device, precision=precision)
    t0 = time.perf_counter()
    clf.fit(x_train, y_train)
    fit_s = time.perf_counter() - t0
    acc = float(np.mean(clf.predict(x_held) == y_held))
    return {
        "model": "RocketClassifier",
        "held_out_accuracy": acc,
        "fit_s": fit_s,
        "num_train": len(y_train),
        "num_held_out": len(y_held),
    }


def baseline_for_run(cfg: Any) -> dict[str, Any]:
    """The ROCKET baseline of an LSTM run (same data, same split as `train_sequence(cfg)`), written to BASELINE."""
    from ..train.sequence import load_training_data

    train, held, _ = _targets(load_training_data(cfg))
    base = rocket_baseline(train, held, seed=cfg.seed, device=cfg.device, precision=cfg.precision)
    atomic_write_json(Path(cfg.out) / BASELINE, base)
    return base


def train_estimator(cfg: Any, model: str, cv: int = 3, lstm_epochs: int | None = None) -> tuple[dict[str, Any], Any]:
    """Fit `--model rocket|auto` on cfg's train split; score held-out; fit the ROCKET baseline; write the run folder.

    Returns (summary, fitted estimator).
    """
    from ..train.sequence import load_training_data
    from .auto import AutoSequenceClassifier
    from .rocket import RocketClassifier

    if model not in MODELS[1:]:
        raise ValueError(f"--model: expected one of {list(MODELS)}, got {model!r}")
    out = Path(cfg.out)
    check_out_folder(out, "sequence run")  # a user's folder (their summary.json) is refused before any work
    for held_there in (ESTIMATOR, "checkpoint"):
        if (out / held_there).exists():
            raise ValueError(f"--out: {str(out)!r} already holds a run ({held_there}); choose a new --out")
    train, held, num_classes = _targets(load_training_data(cfg))
    x, y = materialize(train)
    common = {"random_state": cfg.seed, "device": cfg.device, "precision": cfg.precision}
    est = (
        RocketClassifier(**common)
        if model == "rocket"
        else AutoSequenceClassifier(cv=cv, lstm_epochs=lstm_epochs or cfg.epochs, verbose=cfg.progress, **common)
    )
    t0 = time.perf_counter()
    est.fit(x, y)
    fit_s = time.perf_counter() - t0
    x_held, y_held = materialize(held)
    acc = float(np.mean(est.predict(x_held) == y_held))
    summary: dict[str, Any] = {
        "model": model,
        "estimator": type(est).__name__,
        "held_out_accuracy": acc,
        "fit_s": fit_s,
        "num_train": len(y),
        "num_held_out": len(y_held),
        "num_classes": num_classes,
        "skipped_shards": train.skipped,
    }
    if model == "auto":
        summary.update(chosen=est.best_name_, tied_with=est.tied_with_, cv_folds=est.n_splits_, cv=est.cv_results_)
    if (model == "auto" and est.best_name_ == "rocket") or model == "rocket":
        summary["rocket_baseline"] = {"held_out_accuracy": acc, "same_model": True}
    else:
        summary["rocket_baseline"] = rocket_baseline(train, held, cfg.seed, cfg.device, cfg.precision, x, y)
    mark_out_folder(out, "sequence run")
    blob = pickle.dumps(est)
    atomic_write(out / ESTIMATOR, lambda tmp: Path(tmp).write_bytes(blob))
    summary["estimator_sha256"] = hashlib.sha256(blob).hexdigest()
    atomic_write_json(out / SUMMARY, summary)
    return summary, est


def load_run_estimator(run: str | Path) -> Any:
    """The fitted estimator of a `--model rocket|auto` run, after checking its SHA-256 against summary.json."""
    import json

    run = Path(run)
    path, summary = run / ESTIMATOR, run / SUMMARY
    if not path.is_file() or not summary.is_file():
        raise FileNotFoundError(
            f"--run: {str(run)!r} holds no {ESTIMATOR} + {SUMMARY} (a `seq train --model rocket|auto` run)"
        )
    blob = path.read_bytes()
    expected = json.loads(summary.read_text()).get("estimator_sha256")
    if hashlib.sha256(blob).hexdigest() != expected:
        raise ValueError(
            f"--run: {str(path)!r} does not match the SHA-256 in {SUMMARY} (changed or corrupt); refusing to load it"
        )
    return pickle.loads(blob)


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
