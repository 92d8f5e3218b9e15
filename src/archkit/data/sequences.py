"""Sequence-classification data that need not fit in memory: arrays, memory-mapped .npy and shards.

- `open_npy(x, y)`: one X.npy (N, T, F) opened with mmap_mode="r" + its labels.
- `open_shards(folder)`: a folder of shards, `NAME.npz` (arrays x, y, optional lengths) and/or
  `NAME_x.npy` + `NAME_y.npy` (+ optional `NAME_lengths.npy`); corrupt shards are skipped with
  one warning and a count. A shard is corrupt when its labels are not numbers or a length lies
  outside [1, T] (T: the shard's padded length), besides unreadable files and mismatched rows.
- `SequenceData.batches(...)`: shuffled batches streamed shard by shard through a DataLoader
  (`workers`, `pin_memory`); only the requested rows are read, so X is never loaded whole.

Real data bundled with aeon lives in `aeon_sets.py`; the generated long task in `synthetic_task.py`; long tasks built from real series in `real_tasks.py`.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch

from .checks import check_label_dtype, check_lengths
from .loader import ignore_sigint
from .memmap import read_rows


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
            if self.x_loader is None:
                raise ValueError(f"shard {self.name!r}: neither an x array nor a loader for it")
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

    def map_targets(self, fn: Callable[[np.ndarray, tuple[int, ...]], np.ndarray]) -> SequenceData:
        """A copy whose per-shard targets are `fn(y, x_shape)` (used to validate/convert labels once)."""
        shards = [replace(s, y=fn(s.y, s.x_shape)) for s in self.shards]
        return SequenceData(shards, list(self.rows), self.skipped)

    def split(self, fraction: float, seed: int = 0) -> tuple[SequenceData, SequenceData]:
        """(rest, held_out): a fixed random `fraction` of each shard's rows is held out."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction: expected a float in (0, 1), got {fraction!r}")
        rng = np.random.default_rng(seed)
        keep, held = [], []
        for r in self.rows:
            perm = rng.permutation(r)
            n_held = round(len(r) * fraction)
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

    def batches(
        self,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        block: int = 1,
        start: int = 0,
        workers: int = 0,
        pin_memory: bool = False,
    ) -> Iterator[tuple[torch.Tensor, np.ndarray, torch.Tensor | None]]:
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
        x = torch.from_numpy(read_rows(shard.x, idx))
        lengths = None if shard.lengths is None else torch.from_numpy(shard.lengths[idx].astype(np.int64))
        return x, shard.y[idx], lengths

    def release(self) -> None:
        """Drop the loaded .npz shard, if any."""
        if self._current is not None:
            self._current.release()
            self._current = None

    def __getstate__(self) -> dict[str, Any]:
        shards = [
            replace(s, x_array=MemmapRef.of(s.x_array)) if MemmapRef.of(s.x_array) else s for s in self.data.shards
        ]
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
        xb = torch.from_numpy(read_rows(self.x, rows))  # a copy: memmaps are read-only
        lb = None if self.lengths is None else torch.as_tensor(np.asarray(self.lengths[rows]), dtype=torch.long)
        return xb, lb

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "x": MemmapRef.of(self.x) or self.x}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if isinstance(self.x, MemmapRef):
            self.x = self.x.open()


def sequence_loader(
    dataset: torch.utils.data.Dataset, workers: int = 0, pin_memory: bool = False, start: int = 0
) -> torch.utils.data.DataLoader:
    """A DataLoader over a dataset whose items already are batches (PlannedBatches, RowBatches), in order from `start`."""
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers: expected an int >= 0 (0 = read in the main process), got {workers!r}")
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        sampler=range(start, len(cast(Sized, dataset))),  # a map-style dataset of batches has a length
        num_workers=workers,
        pin_memory=pin_memory,
        collate_fn=_as_is,
        worker_init_fn=ignore_sigint if workers else None,
        # its own generator: the loader's per-pass seed draw must not advance torch's global RNG, which a
        # resumed run restores (dropout masks after a resume would otherwise differ from the run's own)
        generator=torch.Generator().manual_seed(0),
    )


@dataclass
class MemmapRef:
    """Where a read-only np.memmap lives, to map it again in another process instead of pickling its data."""

    filename: str
    offset: int
    dtype: str
    shape: tuple[int, ...]
    order: Literal["C", "F"]

    @classmethod
    def of(cls, a: Any) -> MemmapRef | None:
        import mmap

        # only a whole mapping (base = the mmap itself); a view of one keeps its parent's offset: pickle the data
        if not isinstance(a, np.memmap) or a.filename is None or not isinstance(a.base, mmap.mmap):
            return None
        return cls(str(a.filename), int(a.offset), a.dtype.str, tuple(a.shape), "C" if a.flags.c_contiguous else "F")

    def open(self) -> np.memmap:
        return np.memmap(
            self.filename, dtype=np.dtype(self.dtype), mode="r", offset=self.offset, shape=self.shape, order=self.order
        )


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
        check_lengths(lengths, shape[0], shape[1], "lengths")
    return SequenceData([Shard(name, y, lengths, x_array=x, x_shape=shape)])


def open_npy(
    x_path: str | os.PathLike, y_path: str | os.PathLike, lengths_path: str | os.PathLike | None = None
) -> SequenceData:
    """Open X.npy (N, T, F) memory-mapped (never loaded whole) and Y.npy ((N,) labels or (N, C) one-hot)."""
    x = _load_npy(x_path, "--x", mmap=True)
    y = _load_npy(y_path, "--y", mmap=False)
    check_label_dtype(y, f"--y ({str(y_path)!r})")
    lengths = None if lengths_path is None else _load_npy(lengths_path, "--lengths", mmap=False)
    return from_arrays(x, y, lengths, name=Path(x_path).name)


def open_x(x_path: str | os.PathLike) -> np.ndarray:
    """Open X.npy memory-mapped for streaming prediction."""
    x = _load_npy(x_path, "--x", mmap=True)
    if x.ndim != 3:
        raise ValueError(
            f"--x: expected sequences shaped (num_sequences, timesteps, features), got shape {x.shape} in {str(x_path)!r}"
        )
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
        raise ValueError(
            f"shard folder {str(folder)!r} holds no readable shards "
            f"(expected NAME.npz with arrays x, y or NAME_x.npy + NAME_y.npy)"
        )
    features = {s.x_shape[-1] for s in shards}
    if len(features) > 1:
        raise ValueError(f"shards in {str(folder)!r} disagree on the number of features: {sorted(features)}")
    return SequenceData(shards, skipped=len(bad))


def _check_shard(name: str, x_shape: tuple[int, ...], y: np.ndarray, lengths: np.ndarray | None) -> None:
    if len(x_shape) != 3:
        raise ValueError(f"x has shape {x_shape}, expected (N, T, F)")
    check_label_dtype(y, "y")
    if len(y) != x_shape[0]:
        raise ValueError(f"y has {len(y)} rows but x has {x_shape[0]}")
    if lengths is not None:
        check_lengths(lengths, x_shape[0], x_shape[1], "lengths")


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
