"""Real sequence data: the UCR/UEA classification sets bundled inside the installed aeon package (never downloaded)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .sequences import SequenceData, from_arrays
from .synthetic_task import LONG_TASK

SEQ_EXTRA_HINT = "install the `seq` extra: pip install 'archkit[seq]' (it provides aeon's bundled UCR/UEA datasets)"


@dataclass
class RealDataset:
    """A bundled UCR/UEA set as padded (N, T, F) float32 arrays, int labels and true lengths."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    lengths_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    lengths_test: np.ndarray
    classes: list[str]

    def train(self) -> SequenceData:
        return from_arrays(self.x_train, self.y_train, self.lengths_train, name=f"{self.name}_TRAIN")

    def test(self) -> SequenceData:
        return from_arrays(self.x_test, self.y_test, self.lengths_test, name=f"{self.name}_TEST")


def _aeon_data_dir() -> Path:
    try:
        import aeon.datasets
    except ImportError:
        raise ImportError(f"real sequence datasets need aeon: {SEQ_EXTRA_HINT}") from None
    return Path(aeon.datasets.__file__).parent / "data"


def list_real_datasets() -> list[str]:
    """Classification sets shipped inside the installed aeon package (train and test .ts files)."""
    found = []
    for d in sorted(_aeon_data_dir().iterdir()):
        train, test = d / f"{d.name}_TRAIN.ts", d / f"{d.name}_TEST.ts"
        if train.is_file() and test.is_file() and _is_classification(train):
            found.append(d.name)
    return found


def _is_classification(ts_file: Path) -> bool:
    with open(ts_file, encoding="utf-8", errors="replace") as f:
        for line in f:
            low = line.strip().lower()
            if low.startswith("@classlabel"):
                return low.split()[1:2] == ["true"]
            if low.startswith("@data"):
                return False
    return False


@lru_cache(maxsize=8)
def load_real_dataset(name: str) -> RealDataset:
    """Load a bundled UCR/UEA set (no download): channels standardized with train statistics."""
    bundled = list_real_datasets()
    if name not in bundled:
        raise ValueError(
            f"dataset: {name!r} is not bundled with the installed aeon (archkit never downloads); "
            f"bundled: {bundled} (or {LONG_TASK!r} for the generated task)"
        )
    from aeon.datasets import load_classification

    splits = {s: load_classification(name, split=s, extract_path=str(_aeon_data_dir())) for s in ("train", "test")}
    classes = sorted(set(splits["train"][1].tolist()) | set(splits["test"][1].tolist()))
    index = {c: i for i, c in enumerate(classes)}
    arrays = {}
    for s, (x, y) in splits.items():
        series = [np.asarray(a, dtype=np.float32).T for a in x]  # aeon: (F, T) per case -> (T, F)
        lengths = np.array([len(a) for a in series], dtype=np.int64)
        padded = np.zeros((len(series), lengths.max(), series[0].shape[1]), dtype=np.float32)
        for i, a in enumerate(series):
            padded[i, : len(a)] = a
        arrays[s] = (padded, np.array([index[v] for v in y], dtype=np.int64), lengths)
    # Standardize each channel with statistics over the valid train steps only.
    xtr, _, ltr = arrays["train"]
    valid = np.concatenate([xtr[i, : ltr[i]] for i in range(len(xtr))])
    mean, std = np.nanmean(valid, 0), np.nanstd(valid, 0) + 1e-6
    for s, (x, y, lengths) in arrays.items():
        x = np.nan_to_num((x - mean) / std)
        for i, n in enumerate(lengths):
            x[i, n:] = 0.0
        arrays[s] = (x.astype(np.float32), y, lengths)
    return RealDataset(name, *arrays["train"], *arrays["test"], classes=[str(c) for c in classes])
