"""Long classification tasks (T=8192, 8 channels, 4 classes) built from real series bundled inside aeon.

Nothing is downloaded: the source series are UCR/UEA sets that ship with the installed aeon package.

- "needle": one BasicMotions recording (6 accelerometer/gyroscope channels, 4 activities, 100 steps),
  stretched 3-5x, is added at a random place to a long unlabelled background: real ACSF1 appliance
  power series (cropped and tiled on every channel), a slow random drift and white noise. The class is
  the activity of the hidden recording; 2 of the 8 channels carry background only.
- "order": two JapaneseVowels utterances (8 of the 12 cepstrum channels, stretched to a fixed width)
  of speakers A and B (classes 0 and 1) or C and D (classes 2 and 3), a quarter of the sequence or more
  apart. Class 0 is A then B, class 1 is B then A (2 and 3 likewise for C and D), so which motifs are
  present gives only the pair: a model that pools local features over the whole sequence without their
  order is capped at 50% (chance 25%). One utterance of another speaker is added as a distractor.

Train and test cases are built from disjoint source series: the source set (its train and test files
pooled) is split in half per class, with the task's seed, before any case is made. The same holds for
the ACSF1 background. Generation is deterministic for (task, seed, split, n, length).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..io import atomic_write, atomic_write_json, claim_out_folder

REAL_TASKS = ("needle", "order")
TASKS = REAL_TASKS
TASK_FILE = "task.json"  # marks a folder as archkit's own (only such folders are ever replaced)
TASK_KIND = "archkit-long-task"
SPLITS = ("train", "test")
MAX_CASES = 1_000_000
MIN_LENGTH, MAX_LENGTH = 256, 65_536
CHANNELS = 8


@dataclass(frozen=True)
class TaskInfo:
    """What a long task is made of (written to task.json beside the shards)."""

    name: str
    classes: tuple[str, ...]
    source: str
    background: str


INFO = {
    "needle": TaskInfo(
        "needle",
        ("badminton", "running", "standing", "walking"),
        "BasicMotions (aeon, bundled)",
        "ACSF1 appliance power series (aeon, bundled) + slow drift + white noise",
    ),
    "order": TaskInfo(
        "order",
        ("A then B", "B then A", "C then D", "D then C"),
        "JapaneseVowels speakers 1-4 as A-D, speakers 5-9 as distractors (aeon, bundled)",
        "slow drift + white noise",
    ),
}


def _check_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= int(value) <= high:
        raise ValueError(f"{name}: expected an int in [{low}, {high}], got {value!r}")
    return int(value)


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task: expected one of {list(TASKS)}, got {task!r}")
    return task


def _pooled(name: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Every case of a bundled set (train and test files pooled) as (T_i, C) float32 arrays, and its labels."""
    from .aeon_sets import load_real_dataset

    d = load_real_dataset(name)
    series = [d.x_train[i, : d.lengths_train[i]] for i in range(len(d.x_train))]
    series += [d.x_test[i, : d.lengths_test[i]] for i in range(len(d.x_test))]
    return series, np.concatenate([d.y_train, d.y_test])


def source_split(y: np.ndarray, seed: int, split: str) -> np.ndarray:
    """Indices of the source cases that `split` may use: half of each class (train) or the other half (test)."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {list(SPLITS)}, got {split!r}")
    rng = np.random.default_rng([seed, 7919])
    out = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        half = (len(idx) + 1) // 2
        out.append(idx[:half] if split == "train" else idx[half:])
    return np.sort(np.concatenate(out))


def _resample(series: np.ndarray, width: int) -> np.ndarray:
    """Linear interpolation of (L, C) to (width, C)."""
    t = np.linspace(0.0, len(series) - 1, width)
    i0 = np.minimum(t.astype(np.int64), len(series) - 1)
    i1 = np.minimum(i0 + 1, len(series) - 1)
    f = (t - i0)[:, None].astype(np.float32)
    return series[i0] * (1 - f) + series[i1] * f


def _drift_and_noise(rng: np.random.Generator, n: int, length: int, drift: float, noise: float) -> np.ndarray:
    """(n, length, 8): a slow random walk (knots every 64 steps, linearly joined) plus white noise."""
    knots = np.cumsum(rng.standard_normal((n, length // 64 + 2, CHANNELS), dtype=np.float32), axis=1) * drift
    knots -= knots.mean(1, keepdims=True)
    t = np.arange(length) / 64.0
    i0 = t.astype(np.int64)
    f = (t - i0).astype(np.float32)[None, :, None]
    x = knots[:, i0] * (1 - f) + knots[:, i0 + 1] * f
    x += noise * rng.standard_normal((n, length, CHANNELS), dtype=np.float32)
    return x


def _balanced_labels(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % classes).astype(np.int64)


def make_needle(
    n: int, seed: int = 0, split: str = "train", length: int = 8192, draw: int = 0, info: list | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, length, 8) float32, y (n,) int64) of the needle task (see the module docstring).

    `info`: a list that gets one dict per case: the recording hidden (`source`, its index in BasicMotions'
    train + test files), where (`start`, `width` in steps) and its `scale`.
    """
    series, labels = _pooled("BasicMotions")
    bg_series, bg_labels = _pooled("ACSF1")
    src, bg_src = source_split(labels, seed, split), source_split(bg_labels, seed, split)
    rng = np.random.default_rng([seed, SPLITS.index(split), draw, n, length, 1])
    y = _balanced_labels(rng, n, 4)
    x = _drift_and_noise(rng, n, length, drift=0.02, noise=0.15)
    bg = np.stack([bg_series[i][:, 0] for i in bg_src])  # (P, 1460) real appliance power, standardized
    reps = -(-length // bg.shape[1]) + 1
    picks = rng.integers(0, len(bg), (n, CHANNELS, reps))
    offsets = rng.integers(0, reps * bg.shape[1] - length + 1, (n, CHANNELS))
    stretch = rng.uniform(3.0, 5.0, n) * min(1.0, length / 8192)
    for i in range(n):
        tiles = bg[picks[i]].reshape(CHANNELS, -1)  # (8, reps * 1460)
        rows = tiles[np.arange(CHANNELS)[:, None], offsets[i][:, None] + np.arange(length)[None, :]]
        x[i] += 0.25 * rows.T
        pool = src[labels[src] == y[i]]
        source = int(pool[rng.integers(0, len(pool))])
        needle = series[source]
        width = max(round(float(len(needle) * max(stretch[i], 1.0))), 2)
        scale = rng.uniform(0.8, 1.25)
        seg = _resample(needle, width) * scale
        pos = int(rng.integers(0, length - width + 1))
        x[i, pos : pos + width, : seg.shape[1]] += seg
        if info is not None:
            info.append({"source": source, "start": pos, "width": width, "scale": float(scale)})
    return x, y


def make_order(
    n: int, seed: int = 0, split: str = "train", length: int = 8192, draw: int = 0, info: list | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, length, 8) float32, y (n,) int64) of the order task (see the module docstring).

    `info`: a list that gets one dict per case: the `width` of every utterance and the `starts` of the
    first, the second and the distractor, with their `sources` (indices in JapaneseVowels' train + test files).
    """
    series, labels = _pooled("JapaneseVowels")
    src = source_split(labels, seed, split)
    rng = np.random.default_rng([seed, SPLITS.index(split), draw, n, length, 2])
    y = _balanced_labels(rng, n, 4)
    x = _drift_and_noise(rng, n, length, drift=0.02, noise=0.3)
    width, gap = max(32, length // 32), length // 4
    by_speaker = [src[labels[src] == s] for s in range(9)]
    distractors = np.concatenate(by_speaker[4:])
    first, second = y, y ^ 1  # speakers A=0 B=1 C=2 D=3: class 0 is A..B, 1 B..A, 2 C..D, 3 D..C
    p1 = rng.integers(0, length - 2 * width - gap + 1, n)
    p2 = p1 + width + gap + (rng.random(n) * (length - width - (p1 + width + gap) + 1)).astype(np.int64)
    pd = rng.integers(0, length - width + 1, n)
    for i in range(n):
        sources = []
        for speaker, pos in ((first[i], p1[i]), (second[i], p2[i]), (-1, pd[i])):
            pool = distractors if speaker < 0 else by_speaker[speaker]
            sources.append(int(pool[rng.integers(0, len(pool))]))
            motif = _resample(series[sources[-1]][:, :CHANNELS], width)
            x[i, pos : pos + width] += motif * rng.uniform(0.8, 1.25)
        if info is not None:
            info.append({"width": width, "starts": [int(p1[i]), int(p2[i]), int(pd[i])], "sources": sources})
    return x, y


def make_real_task(
    task: str, n: int, seed: int = 0, split: str = "train", length: int = 8192, draw: int = 0, info: list | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One split of a long task in memory: (x (n, length, 8) float32, y (n,) int64).

    `seed` fixes which source series each split may use (and the cases); `draw` gives further cases
    from the same source series (shards of one split differ only in their draw). `info`: a list that
    gets one dict per case saying where its labelled segments are (see make_needle, make_order), e.g. to
    see which cases a model gets wrong.
    """
    _check_task(task)
    n = _check_int(n, "n", 1, MAX_CASES)
    length = _check_int(length, "length", MIN_LENGTH, MAX_LENGTH)
    seed = _check_int(seed, "seed", 0, 2**31 - 1)
    draw = _check_int(draw, "draw", 0, MAX_CASES)
    if info is not None and not isinstance(info, list):
        raise ValueError(f"info: expected a list to fill with one dict per case, or None; got {type(info).__name__}")
    return (make_needle if task == "needle" else make_order)(n, seed, split, length, draw, info)


def write_real_task(
    folder: str | os.PathLike,
    task: str,
    n_train: int,
    n_test: int,
    seed: int = 0,
    length: int = 8192,
    shard_size: int = 256,
) -> Path:
    """Write a long task as .npy shards: folder/train/part-NNNNN_x.npy + _y.npy, folder/test/..., folder/task.json.

    Shards are made and written one at a time (memory stays at one shard), each atomically. A folder
    written earlier by this function is replaced; any other non-empty folder is refused.
    Read the splits back with `open_shards(folder / "train")` (streamed, memory-mapped).
    """
    _check_task(task)
    n_train = _check_int(n_train, "n_train", 1, MAX_CASES)
    n_test = _check_int(n_test, "n_test", 1, MAX_CASES)
    length = _check_int(length, "length", MIN_LENGTH, MAX_LENGTH)
    seed = _check_int(seed, "seed", 0, 2**31 - 1)
    shard_size = _check_int(shard_size, "shard_size", 1, MAX_CASES)
    folder = Path(folder)
    claim_out_folder(folder, "long task")  # a user's folder, or one holding a symlink (train/ -> elsewhere), is refused
    for split in SPLITS:
        shutil.rmtree(folder / split, ignore_errors=True)  # archkit's own shards of an earlier task (checked above)
    (folder / TASK_FILE).unlink(missing_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for k, start in enumerate(range(0, n, shard_size)):
            # one draw per shard, all from the split's own source series
            x, y = make_real_task(task, min(shard_size, n - start), seed=seed, split=split, length=length, draw=k)
            for suffix, arr in (("x", x), ("y", y)):
                atomic_write(folder / split / f"part-{k:05d}_{suffix}.npy", partial(_save, array=arr))
    info = INFO[task]
    atomic_write_json(
        folder / TASK_FILE,
        {
            "kind": TASK_KIND,
            "task": task,
            "seed": seed,
            "n_train": n_train,
            "n_test": n_test,
            "length": length,
            "channels": CHANNELS,
            "shard_size": shard_size,
            "classes": list(info.classes),
            "source": info.source,
            "background": info.background,
        },
    )
    return folder


def _save(tmp: str, array: np.ndarray) -> None:
    with open(tmp, "wb") as f:  # np.save(path) would append .npy to the temporary name
        np.save(f, array)


def task_classes(shards: str | os.PathLike) -> list[str] | None:
    """The class names of the task whose split `shards` is (FOLDER/train or FOLDER/test of make-task), else None.

    Read from FOLDER/task.json when it is one archkit wrote; its `classes` must be a non-empty list of
    distinct strings (a malformed one is refused naming the file), so every class of the task keeps its
    id and probability column even when a split lacks it.
    """
    path = Path(shards).parent / TASK_FILE
    if Path(shards).name not in SPLITS or not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"--shards: {str(path)!r} is not readable JSON: {e}") from None
    if not isinstance(info, dict) or info.get("kind") != TASK_KIND:
        return None  # someone else's task.json: not ours to interpret
    classes = info.get("classes")
    if (
        not isinstance(classes, list)
        or not classes
        or not all(isinstance(c, str) for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise ValueError(f"--shards: {str(path)!r} field 'classes': expected a list of distinct names, got {classes!r}")
    return classes
