"""Sequence-classification data that need not fit in memory, plus real and generated datasets.

- `open_npy(x, y)`: one X.npy (N, T, F) opened with mmap_mode="r" + its labels.
- `open_shards(folder)`: a folder of shards, `NAME.npz` (arrays x, y, optional lengths) and/or
  `NAME_x.npy` + `NAME_y.npy` (+ optional `NAME_lengths.npy`); corrupt shards are skipped with
  one warning and a count.
- `SequenceData.batches(...)`: shuffled batches streamed shard by shard through a DataLoader
  (`workers`, `pin_memory`); only the requested rows are read, so X is never loaded whole.
- `load_real_dataset(name)`: UCR/UEA sets bundled inside the installed aeon package (never downloads).
- `make_long_task` / `write_long_task`: a generated 8192-step, 8-channel, 4-class task whose label
  needs one event near the start and one near the end.
"""
from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .loader import ignore_sigint

SEQ_EXTRA_HINT = "install the `seq` extra: pip install 'archkit[seq]' (it provides aeon's bundled UCR/UEA datasets)"
LONG_TASK = "long-task"  # name of the generated dataset wherever a dataset name is accepted


# ----------------------------------------------------------------------------------------------
# Streaming from disk
# ----------------------------------------------------------------------------------------------
@dataclass
class Shard:
    """One file (or file pair) of sequences; `x` is memory-mapped (.npy) or loaded on first use (.npz)."""

    name: str
    y: np.ndarray
    lengths: np.ndarray | None = None
    x_array: Any = None  # an array-like with .shape and fancy row indexing (np.memmap, ndarray, ...)
    x_loader: Callable[[], Any] | None = None  # for .npz shards: loads x when the stream reaches it
    x_shape: tuple[int, ...] = ()

    @property
    def x(self) -> Any:
        if self.x_array is None:
            self.x_array = self.x_loader()
        return self.x_array

    def release(self) -> None:
        """Drop a loaded .npz array (memory-mapped .npy arrays cost nothing to keep)."""
        if self.x_loader is not None:
            self.x_array = None


@dataclass
class SequenceData:
    """A list of shards and, per shard, the rows that belong to this view (e.g. a train split)."""

    shards: list[Shard]
    rows: list[np.ndarray] = field(default_factory=list)
    skipped: int = 0  # corrupt shard files left out when the data was opened

    def __post_init__(self) -> None:
        if not self.rows:
            self.rows = [np.arange(len(s.y)) for s in self.shards]

    def __len__(self) -> int:
        return int(sum(len(r) for r in self.rows))

    @property
    def in_features(self) -> int:
        return int(self.shards[0].x_shape[-1])

    @property
    def timesteps(self) -> int:
        return int(max(s.x_shape[1] for s in self.shards))

    def map_targets(self, fn: Callable[[np.ndarray, tuple[int, ...]], np.ndarray]) -> "SequenceData":
        """A copy whose per-shard targets are `fn(y, x_shape)` (used to validate/convert labels once)."""
        shards = [replace(s, y=fn(s.y, s.x_shape)) for s in self.shards]
        return SequenceData(shards, list(self.rows), self.skipped)

    def split(self, fraction: float, seed: int = 0) -> tuple["SequenceData", "SequenceData"]:
        """(rest, held_out): a fixed random `fraction` of each shard's rows is held out."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction: expected a float in (0, 1), got {fraction!r}")
        rng = np.random.default_rng(seed)
        keep, held = [], []
        for r in self.rows:
            perm = rng.permutation(r)
            n_held = int(round(len(r) * fraction))
            held.append(np.sort(perm[:n_held]))
            keep.append(np.sort(perm[n_held:]))
        if sum(len(h) for h in held) == 0 or sum(len(k) for k in keep) == 0:
            raise ValueError(f"fraction: {fraction} of {len(self)} sequences leaves an empty train or held-out split")
        return SequenceData(self.shards, keep, self.skipped), SequenceData(self.shards, held, self.skipped)

    def num_batches(self, batch_size: int) -> int:
        return int(sum(-(-len(r) // batch_size) for r in self.rows))

    def batch_plan(self, batch_size: int, shuffle: bool, seed: int = 0, block: int = 1) -> list[tuple[int, np.ndarray]]:
        """The (shard index, sorted row indices) of every batch, in order; cheap (no data is read).

        Shuffling permutes the shard order and, within a shard, blocks of `block` contiguous rows
        (block=1: every row) and the rows inside each block. Rows of a batch are sorted so a
        memory-mapped read walks the file forward.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if not isinstance(block, int) or block < 1:
            raise ValueError(f"block: expected a positive int, got {block!r}")
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.shards)) if shuffle else np.arange(len(self.shards))
        plan = []
        for si in order:
            rows = self.rows[si]
            if shuffle and len(rows):
                blocks = [rows[i : i + block] for i in range(0, len(rows), block)]
                rows = np.concatenate([rng.permutation(blocks[b]) for b in rng.permutation(len(blocks))])
            plan += [(int(si), np.sort(rows[i : i + batch_size])) for i in range(0, len(rows), batch_size)]
        return plan

    def batches(self, batch_size: int, shuffle: bool = True, seed: int = 0, block: int = 1, start: int = 0,
                workers: int = 0, pin_memory: bool = False) -> Iterator[tuple[torch.Tensor, np.ndarray, torch.Tensor | None]]:
        """Yield (x (B, T, F) float32 tensor, y rows, lengths or None), skipping the first `start` batches.

        Only the rows of each batch are read from the shard (fancy indexing on the memory map), through a
        DataLoader: `workers` processes read batches ahead in order (0: read here), `pin_memory` pins them
        for a CUDA copy. The batches are those of `batch_plan` whatever the number of workers.
        """
        plan = PlannedBatches(self, self.batch_plan(batch_size, shuffle, seed, block))
        # one loader per pass: workers live for one epoch (a new plan each epoch), a fork per epoch is cheap
        loader = sequence_loader(plan, workers, pin_memory, start)
        try:
            yield from loader
        finally:
            plan.release()


def _as_is(item: Any) -> Any:
    """DataLoader collate for items that already are batches: y stays a numpy array, as without a loader."""
    return item


class PlannedBatches(torch.utils.data.Dataset):
    """Item k = batch k of a batch plan, (x float32 tensor, y rows, lengths or None), read from its shard.

    A worker process keeps the current .npz shard loaded while its batches come (plans keep a shard's
    batches together) and drops it when the plan moves on. Memory-mapped .npy shards travel to spawned
    workers as (file, offset, dtype, shape) and are mapped again there, never pickled as a copy.
    """

    def __init__(self, data: SequenceData, plan: list[tuple[int, np.ndarray]]) -> None:
        self.data, self.plan = data, plan
        self._current: Shard | None = None

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, np.ndarray, torch.Tensor | None]:
        si, idx = self.plan[k]
        shard = self.data.shards[si]
        if self._current is not None and self._current is not shard:
            self._current.release()
        self._current = shard
        x = torch.from_numpy(np.ascontiguousarray(shard.x[idx], dtype=np.float32))
        lengths = None if shard.lengths is None else torch.from_numpy(shard.lengths[idx].astype(np.int64))
        return x, shard.y[idx], lengths

    def release(self) -> None:
        """Drop the loaded .npz shard, if any."""
        if self._current is not None:
            self._current.release()
            self._current = None

    def __getstate__(self) -> dict[str, Any]:
        shards = [replace(s, x_array=MemmapRef.of(s.x_array)) if MemmapRef.of(s.x_array) else s for s in self.data.shards]
        return {"data": SequenceData(shards, self.data.rows, self.data.skipped), "plan": self.plan, "_current": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for s in state["data"].shards:
            if isinstance(s.x_array, MemmapRef):
                s.x_array = s.x_array.open()
        self.__dict__.update(state)


class RowBatches(torch.utils.data.Dataset):
    """Item k = rows k*B .. (k+1)*B of X (N, T, F) as a float32 tensor, with the lengths or None (for prediction)."""

    def __init__(self, x: Any, batch_size: int, lengths: Any = None) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        self.x, self.batch_size, self.lengths = x, batch_size, lengths

    def __len__(self) -> int:
        return -(-int(self.x.shape[0]) // self.batch_size)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        rows = slice(k * self.batch_size, (k + 1) * self.batch_size)
        xb = torch.from_numpy(np.array(self.x[rows], dtype=np.float32))  # a copy: memmaps are read-only
        lb = None if self.lengths is None else torch.as_tensor(np.asarray(self.lengths[rows]), dtype=torch.long)
        return xb, lb

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "x": MemmapRef.of(self.x) or self.x}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if isinstance(self.x, MemmapRef):
            self.x = self.x.open()


def sequence_loader(dataset: torch.utils.data.Dataset, workers: int = 0, pin_memory: bool = False,
                    start: int = 0) -> torch.utils.data.DataLoader:
    """A DataLoader over a dataset whose items already are batches (PlannedBatches, RowBatches), in order from `start`."""
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers: expected an int >= 0 (0 = read in the main process), got {workers!r}")
    extra = {"worker_init_fn": ignore_sigint} if workers else {}
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=range(start, len(dataset)), num_workers=workers,
                                       pin_memory=pin_memory, collate_fn=_as_is, **extra)


@dataclass
class MemmapRef:
    """Where a read-only np.memmap lives, to map it again in another process instead of pickling its data."""

    filename: str
    offset: int
    dtype: str
    shape: tuple[int, ...]
    order: str

    @classmethod
    def of(cls, a: Any) -> "MemmapRef | None":
        import mmap

        # only a whole mapping (base = the mmap itself); a view of one keeps its parent's offset: pickle the data
        if not isinstance(a, np.memmap) or a.filename is None or not isinstance(a.base, mmap.mmap):
            return None
        return cls(str(a.filename), int(a.offset), a.dtype.str, tuple(a.shape), "C" if a.flags.c_contiguous else "F")

    def open(self) -> np.memmap:
        return np.memmap(self.filename, dtype=np.dtype(self.dtype), mode="r", offset=self.offset, shape=self.shape,
                         order=self.order)


def from_arrays(x: Any, y: Any, lengths: Any = None, name: str = "arrays") -> SequenceData:
    """Wrap in-memory (or any array-like with .shape and row indexing) X (N, T, F) and Y as SequenceData."""
    y = np.asarray(y)
    shape = tuple(x.shape)
    if len(shape) != 3:
        raise ValueError(f"x: expected sequences shaped (num_sequences, timesteps, features), got shape {shape}")
    if len(y) != shape[0]:
        raise ValueError(f"y: expected one target per sequence ({shape[0]} rows like x), got {len(y)} rows")
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (shape[0],):
            raise ValueError(f"lengths: expected shape ({shape[0]},), got {lengths.shape}")
    return SequenceData([Shard(name, y, lengths, x_array=x, x_shape=shape)])


def open_npy(x_path: str | os.PathLike, y_path: str | os.PathLike, lengths_path: str | os.PathLike | None = None) -> SequenceData:
    """Open X.npy (N, T, F) memory-mapped (never loaded whole) and Y.npy ((N,) labels or (N, C) one-hot)."""
    x = _load_npy(x_path, "--x", mmap=True)
    y = _load_npy(y_path, "--y", mmap=False)
    lengths = None if lengths_path is None else _load_npy(lengths_path, "--lengths", mmap=False)
    return from_arrays(x, y, lengths, name=Path(x_path).name)


def open_x(x_path: str | os.PathLike) -> np.memmap:
    """Open X.npy memory-mapped for streaming prediction."""
    x = _load_npy(x_path, "--x", mmap=True)
    if x.ndim != 3:
        raise ValueError(f"--x: expected sequences shaped (num_sequences, timesteps, features), got shape {x.shape} in {str(x_path)!r}")
    return x


def _load_npy(path: str | os.PathLike, what: str, mmap: bool) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: file {str(path)!r} does not exist")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{what}: {str(path)!r} is not a readable .npy array: {e}") from None


def open_shards(folder: str | os.PathLike) -> SequenceData:
    """Open every shard in `folder` (sorted by name); corrupt ones are skipped with ONE warning + count."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"shard folder {str(folder)!r} does not exist")
    shards: list[Shard] = []
    bad: list[str] = []
    for path in sorted(folder.iterdir()):
        try:
            if path.suffix == ".npz":
                shards.append(_open_npz_shard(path))
            elif path.name.endswith("_x.npy"):
                shards.append(_open_npy_shard(path))
        except Exception as e:  # any unreadable shard is skipped, never fatal (reported below)
            bad.append(f"{path.name} ({type(e).__name__}: {e})")
    if bad:
        warnings.warn(f"skipped {len(bad)} corrupt shard file(s) in {str(folder)!r}; first: {bad[0]}", stacklevel=2)
    if not shards:
        raise ValueError(f"shard folder {str(folder)!r} holds no readable shards "
                         f"(expected NAME.npz with arrays x, y or NAME_x.npy + NAME_y.npy)")
    features = {s.x_shape[-1] for s in shards}
    if len(features) > 1:
        raise ValueError(f"shards in {str(folder)!r} disagree on the number of features: {sorted(features)}")
    return SequenceData(shards, skipped=len(bad))


def _check_shard(name: str, x_shape: tuple[int, ...], y: np.ndarray, lengths: np.ndarray | None) -> None:
    if len(x_shape) != 3:
        raise ValueError(f"x has shape {x_shape}, expected (N, T, F)")
    if len(y) != x_shape[0]:
        raise ValueError(f"y has {len(y)} rows but x has {x_shape[0]}")
    if lengths is not None and lengths.shape != (x_shape[0],):
        raise ValueError(f"lengths has shape {lengths.shape}, expected ({x_shape[0]},)")


def _open_npy_shard(path: Path) -> Shard:
    stem = path.name[: -len("_x.npy")]
    x = np.load(path, mmap_mode="r", allow_pickle=False)
    y = np.load(path.with_name(f"{stem}_y.npy"), allow_pickle=False)
    lpath = path.with_name(f"{stem}_lengths.npy")
    lengths = np.load(lpath, allow_pickle=False) if lpath.is_file() else None
    _check_shard(stem, x.shape, y, lengths)
    return Shard(stem, y, lengths, x_array=x, x_shape=tuple(x.shape))


def _open_npz_shard(path: Path) -> Shard:
    # Read only the header of x now (shape check); the array itself is loaded when streamed.
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if not {"x.npy", "y.npy"} <= names:
            raise ValueError(f"expected arrays 'x' and 'y', found {sorted(n[:-4] for n in names)}")
        with zf.open("x.npy") as f:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, _ = read_header(f)
    with np.load(path, allow_pickle=False) as z:
        y = z["y"]
        lengths = z["lengths"] if "lengths" in z.files else None
    _check_shard(path.stem, tuple(shape), y, lengths)

    def load_x() -> np.ndarray:
        with np.load(path, allow_pickle=False) as z:
            return z["x"]

    return Shard(path.stem, y, lengths, x_loader=load_x, x_shape=tuple(shape))


# ----------------------------------------------------------------------------------------------
# Real data: UCR/UEA sets bundled inside the installed aeon package
# ----------------------------------------------------------------------------------------------
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
        raise ValueError(f"dataset: {name!r} is not bundled with the installed aeon (archkit never downloads); "
                         f"bundled: {bundled} (or {LONG_TASK!r} for the generated task)")
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


# ----------------------------------------------------------------------------------------------
# Generated long-sequence task
# ----------------------------------------------------------------------------------------------
LONG_TASK_CLASSES = ["A0-B0", "A0-B1", "A1-B0", "A1-B1"]


def make_long_task(n: int, seed: int = 0, length: int = 8192, features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, length, features) float32, y (n,) int64): label = 2 * early event + late event.

    Noise everywhere; one pulse in the first quarter on channel 0 or 1 (event A) and one in the
    last quarter on channel 2 or 3 (event B); decoy pulses on the remaining channels. Label
    `2*A + B`: the end of a sequence alone tells only B, so a model that forgets the start is
    stuck at 50% (chance is 25%).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    if length < 64:
        raise ValueError(f"length: expected at least 64 steps, got {length}")
    if features < 4:
        raise ValueError(f"features: expected at least 4 channels (events use channels 0-3), got {features}")
    rng = np.random.default_rng(seed)
    x = (0.5 * rng.standard_normal((n, length, features), dtype=np.float32))
    width = max(length // 128, 4)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    quarter = length // 4
    pos_a = rng.integers(0, quarter - width, n)
    pos_b = rng.integers(length - quarter, length - width, n)
    for i in range(n):
        x[i, pos_a[i] : pos_a[i] + width, a[i]] += 2.0
        x[i, pos_b[i] : pos_b[i] + width, 2 + b[i]] += 2.0
        if features > 4:  # a decoy pulse anywhere, on a channel that carries no label information
            c, p = rng.integers(4, features), rng.integers(0, length - width)
            x[i, p : p + width, c] += 2.0
    return x, (2 * a + b).astype(np.int64)


def write_long_task(folder: str | os.PathLike, n: int, seed: int = 0, length: int = 8192, features: int = 8,
                    chunk: int = 64) -> tuple[Path, Path]:
    """Write the long task to folder/X.npy + folder/Y.npy in chunks (never all in memory); reuses existing files."""
    folder = Path(folder)
    xp, yp = folder / "X.npy", folder / "Y.npy"
    if xp.is_file() and yp.is_file():
        try:
            x = np.load(xp, mmap_mode="r")
            if x.shape == (n, length, features) and len(np.load(yp)) == n:
                return xp, yp
        except (ValueError, OSError):
            pass  # unreadable leftovers from an interrupted run: rebuild them
    from ..train.checkpoint import atomic_write  # local: archkit.train imports archkit.data

    ys = []

    def write_x(tmp: str) -> None:  # chunk by chunk into a memmap, so X never has to fit in memory
        x = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, length, features))
        for start in range(0, n, chunk):
            xc, yc = make_long_task(min(chunk, n - start), seed=seed * 100_003 + start, length=length, features=features)
            x[start : start + len(xc)] = xc
            ys.append(yc)
        x.flush()

    atomic_write(xp, write_x)
    atomic_write(yp, lambda tmp: np.save(tmp, np.concatenate(ys)))
    return xp, yp
