"""`seq train --model auto` with an LSTM winner: its refit on every case, streamed as `--model lstm` trains.

The winner (an `LSTMClassifier` chosen on the CV subsample) is refitted by `train_sequence` over the run's
shards: the same loader, checkpoints (`checkpoint/` every `checkpoint_every` steps and at each epoch's end),
`metrics.jsonl`, progress bar and `--resume` as a `--model lstm` run, with the winner's architecture and
optimization mapped onto `SeqTrainConfig`. The split is never read into memory: the winner's per-channel
standardization is computed in one streamed pass (the statistics `LSTMClassifier.fit` computes in memory, in
float64, equal to rounding) and applied to each batch as it is read. Before the refit, the choice is written to `auto_choice.json`, so a
killed refit continues with `--resume` without running the CV again. Once done, the fitted `LSTMClassifier`
is saved as the run's `estimator/` (loaded like any `--model auto` run) and the refit's own `checkpoint/`
and `auto_choice.json` are removed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..data.memmap import read_rows
from ..data.sequences import MemmapRef, SequenceData
from ..io import atomic_write_json

AUTO_CHOICE = "auto_choice.json"  # the CV's choice, kept while the streamed refit of an LSTM winner runs
STATS_BATCH = 256  # cases per read of the standardization pass
# what a resumed refit must read as the interrupted one did: the data source and the train / held-out split
SPLIT_FIELDS = (
    *("x", "y", "shards", "dataset", "val_fraction", "test_shards", "seed"),
    *("long_task_train", "long_task_test", "long_task_length"),
)


def channel_stats(
    data: SequenceData, batch_size: int = STATS_BATCH, workers: int = 0, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (mean, scale) over the valid steps of every case, streamed: `LSTMClassifier`'s statistics.

    Batches are merged by Chan et al.'s pairwise update (float64), so the result is that of one pass over
    all the steps at once; a constant channel gets scale 1.
    """
    from tqdm.auto import tqdm

    n, mean, m2 = 0, np.zeros(data.in_features), np.zeros(data.in_features)
    batches = data.batches(batch_size, shuffle=False, workers=workers)
    total = data.num_batches(batch_size)
    for xb, _, lb in tqdm(batches, total=total, desc="channel statistics", disable=not progress, leave=False):
        x = xb.numpy().astype(np.float64)
        valid = x.reshape(-1, x.shape[2]) if lb is None else np.concatenate([x[i, : int(k)] for i, k in enumerate(lb)])
        nb, mb = len(valid), valid.mean(0)
        delta, total = mb - mean, n + nb
        mean = mean + delta * nb / total
        m2 = m2 + ((valid - mb) ** 2).sum(0) + delta**2 * n * nb / total
        n = total
    std = np.sqrt(m2 / max(n, 1))
    return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


class StandardizedRows:
    """A shard's X read row by row, standardized per channel as `LSTMClassifier` does (padding kept at zero)."""

    def __init__(self, x: Any, lengths: np.ndarray | None, mean: np.ndarray, scale: np.ndarray) -> None:
        self.x, self.lengths, self.mean, self.scale = x, lengths, mean, scale

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape)

    def __getitem__(self, idx: Any) -> np.ndarray:
        from ..estimators.sequence import _apply

        lengths = None if self.lengths is None else np.asarray(self.lengths[idx])
        return _apply(read_rows(self.x, idx), lengths, self.mean, self.scale)

    def __getstate__(self) -> dict[str, Any]:  # a memory map travels to a spawned worker as where it lives
        return {**self.__dict__, "x": MemmapRef.of(self.x) or self.x}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if isinstance(self.x, MemmapRef):
            self.x = self.x.open()


def _load_standardized(loader: Any, lengths: Any, mean: np.ndarray, scale: np.ndarray) -> StandardizedRows:
    return StandardizedRows(loader(), lengths, mean, scale)


def standardized(data: SequenceData, mean: np.ndarray, scale: np.ndarray) -> SequenceData:
    """A view of `data` whose batches come standardized (nothing is read until a batch is)."""
    shards = []
    for s in data.shards:
        if s.x_array is None and s.x_loader is not None:  # .npz: still loaded when the stream reaches it
            loader = partial(_load_standardized, s.x_loader, s.lengths, mean, scale)
            shards.append(replace(s, x_loader=loader))
        else:
            shards.append(replace(s, x_array=StandardizedRows(s.x, s.lengths, mean, scale), x_loader=None))
    return SequenceData(shards, list(data.rows), data.skipped)


def refit_config(cfg: Any, winner: Any) -> Any:
    """cfg's data, folder, device and budget with the winner's architecture, optimization and seed."""
    from sklearn.utils import check_random_state

    params = winner.get_params()
    seed = int(check_random_state(params["random_state"]).randint(2**31 - 1))  # LSTMClassifier.fit's seed
    fields = {k: params[k] for k in winner._RUN_FIELDS}
    return dataclasses.replace(cfg, seed=seed, eval_batch_size=params["predict_batch_size"], **fields)


def save_choice(out: Path, cfg: Any, choice: dict[str, Any], winner: Any, mean: np.ndarray, scale: np.ndarray) -> None:
    """Write the CV's choice, the run's data and split, and the channel statistics before the refit (for --resume)."""
    state = {
        **choice,
        "params": winner.get_params(),
        "run": {k: getattr(cfg, k) for k in SPLIT_FIELDS},
        "channel_mean": mean.tolist(),
        "channel_scale": scale.tolist(),
    }
    atomic_write_json(out / AUTO_CHOICE, state)


def read_choice(out: Path, cfg: Any, explicit: Any = ()) -> tuple[dict[str, Any], Any, np.ndarray, np.ndarray]:
    """(the choice, the unfitted winner, mean, scale) that `save_choice` wrote; one-line error for a damaged file.

    cfg (changed in place) gets the run's saved data and split as `--resume` of `--model lstm` does: a flag
    not given takes the saved value; the seed, --val-fraction and --test-shards given otherwise are refused.
    """
    from ..estimators.sequence import LSTMClassifier
    from ..train.resume import resume_config
    from ..train.sequence import DATA_FIELDS, RESUME_FIXED

    path = out / AUTO_CHOICE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        winner = LSTMClassifier(**state.pop("params"))
        run = state.pop("run")
        mean = np.asarray(state.pop("channel_mean"), np.float32)
        scale = np.asarray(state.pop("channel_scale"), np.float32)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(
            f"--resume: {str(path)!r} does not hold the choice of a --model auto run ({type(e).__name__}: {e}); "
            f"train into a new --out"
        ) from None
    resume_config(cfg, run, RESUME_FIXED, explicit, f"{str(path)!r} field 'run'", groups=[DATA_FIELDS])
    return state, winner, mean, scale


def refit_lstm(
    cfg: Any,
    winner: Any,
    train: SequenceData,
    held: SequenceData | None,
    num_classes: int,
    stats: tuple[np.ndarray, np.ndarray],
    resume: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Refit `winner` on every case of `train`, streamed by `train_sequence`: (fitted LSTMClassifier or None, info).

    None when the refit was interrupted (its checkpoint is saved; `--resume` continues it).
    """
    from sklearn.base import clone

    from ..loading import load_model
    from ..train.sequence import CHECKPOINT, train_sequence

    mean, scale = stats
    run_cfg = refit_config(cfg, winner)
    names = [str(i) for i in range(num_classes)]  # ids already: every class of the task keeps its output
    held_std = None if held is None else standardized(held, mean, scale)
    result = train_sequence(run_cfg, resume=resume, data=(standardized(train, mean, scale), held_std, names))
    info = {
        "streamed": True,
        "trainer": "train_sequence",  # what --model lstm trains with
        "epochs": result["epoch"],
        "steps": result["step"],
        "batch_size": run_cfg.batch_size,
        "stopped": result["stopped"],
        "train_time_s": result["train_time_s"],
    }
    if result["stopped"] == "interrupted":
        return None, info
    out = Path(cfg.out)
    est = clone(winner)
    est.model_ = load_model(out / CHECKPOINT)
    est.classes_ = np.arange(num_classes)
    est.n_features_in_, est.n_timepoints_ = int(train.in_features), None
    est.channel_mean_, est.channel_scale_ = mean, scale
    est.fit_summary_ = result
    return est, info


def refuse_interrupted_refit(run: Path) -> None:
    """One-line error for a run folder whose auto refit was interrupted: its checkpoint is no model to score yet."""
    if (Path(run) / AUTO_CHOICE).is_file():
        raise ValueError(
            f"--run: {str(run)!r} holds an interrupted --model auto refit ({AUTO_CHOICE}); finish it first: "
            f"archkit seq train ... --model auto --out {run} --resume"
        )


def finish_refit(out: Path) -> None:
    """Remove the refit's own checkpoint and choice once the run's estimator/ is saved (it holds the network)."""
    from ..train.sequence import CHECKPOINT

    shutil.rmtree(out / CHECKPOINT, ignore_errors=True)
    (out / AUTO_CHOICE).unlink(missing_ok=True)
