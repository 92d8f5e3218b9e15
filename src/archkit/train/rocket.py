"""Run a ROCKET-family transform over series that need not fit in memory, on the device the accelerator chose.

    features = rocket_features(module, x, lengths)                   # an array (N, C, T) in memory or memmapped
    features = transform_shards(module, open_shards("shards/"))      # streamed shards (N, T, C), archkit's layout
    path = transform_shards(module, data, out="features.npy")        # written row block by row block

Batches are read one at a time (memory flat in N when `out` is given: each block of features goes to
the file with a positioned write, never through a growing array or a memory map). Under torchrun
every rank transforms every world_size-th batch; with `out` each rank writes its own rows of the one
file, without it the blocks are gathered so every rank returns the whole array, equal to one process.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.memmap import read_rows
from ..data.sequences import PlannedBatches, SequenceData, from_arrays, open_shards, sequence_loader
from ..io.atomic import atomic_path
from .accelerate import Accelerator, create_accelerator

MAX_BATCH = 1 << 20


def _dist() -> tuple[int, int]:
    """(rank, world size) of the active process group, (0, 1) without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


@torch.no_grad()
def _features(module: nn.Module, accel: Accelerator, x: torch.Tensor, lengths: torch.Tensor | None) -> np.ndarray:
    """One batch (B, C, T) -> (B, F) float32 on the host."""
    x = accel.to_device(x)
    lengths = None if lengths is None else accel.to_device(lengths)
    with accel.autocast():
        out = module(x, lengths)
    return out.float().cpu().numpy()


def transform_shards(
    module: nn.Module,
    data: SequenceData | str | os.PathLike,
    accelerator: Accelerator | str | None = None,
    batch_size: int = 64,
    out: str | os.PathLike | None = None,
    workers: int = 0,
    overwrite: bool = False,
) -> np.ndarray | Path:
    """Features (N, F) of every sequence of `data` (SequenceData, or a shard folder), in the data's row order.

    Sequences are (N, T, C) as archkit stores them; the module gets (B, C, T) and the batch's lengths.
    `accelerator`: an Accelerator or a device name ("auto" when None). With `out`, the features go to
    that .npy file and its path is returned. An existing file there is refused before any work (a .npy
    carries no mark of who wrote it); `overwrite=True` replaces a .npy array, never another kind of file.
    """
    if out is not None:
        _check_out(Path(out), overwrite)
    if isinstance(data, (str, os.PathLike)):
        data = open_shards(data)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size: expected an int in [1, {MAX_BATCH}], got {batch_size!r}")
    accel = accelerator if isinstance(accelerator, Accelerator) else create_accelerator(accelerator or "auto")
    module = accel.prepare(module).eval()
    num_features = int(getattr(module, "num_features", 0)) or None
    rank, world = _dist()
    plan = data.batch_plan(batch_size, shuffle=False)
    starts = np.concatenate([[0], np.cumsum([len(rows) for _, rows in plan])]).astype(np.int64)
    mine = list(range(rank, len(plan), world))
    loader = sequence_loader(PlannedBatches(data, [plan[k] for k in mine]), workers, accel.pin_memory)
    if out is not None:
        return _write(module, accel, loader, mine, starts, len(data), num_features, Path(out), rank, world)
    blocks = []
    for k, (x, _, lengths) in zip(mine, loader):
        blocks.append((int(starts[k]), _features(module, accel, x.transpose(1, 2), lengths)))
    if world > 1:
        gathered: list[Any] = [None] * world
        torch.distributed.all_gather_object(gathered, blocks)
        blocks = [b for part in gathered for b in part]
    blocks.sort(key=lambda b: b[0])
    if not blocks:
        return np.zeros((0, num_features or 0), np.float32)
    return np.concatenate([b for _, b in blocks])


def _write(
    module: nn.Module,
    accel: Accelerator,
    loader: Any,
    mine: list[int],
    starts: np.ndarray,
    n: int,
    num_features: int | None,
    path: Path,
    rank: int,
    world: int,
) -> Path:
    if num_features is None:
        raise ValueError("module: writing features to a file needs a module with a `num_features` attribute")
    header = _npy_header((n, num_features))
    with contextlib.ExitStack() as stack:
        # rank 0 makes the temp file (new, unguessable name; removed on any error) and moves it in at the end
        tmp = stack.enter_context(atomic_path(path)) if rank == 0 else None
        if tmp is not None:
            with open(tmp, "r+b") as f:
                f.write(header)
                f.truncate(len(header) + n * num_features * 4)
        tmp = _from_rank0(tmp, world)
        fd = os.open(tmp, os.O_WRONLY)
        try:
            for k, (x, _, lengths) in zip(mine, loader):
                feats = np.ascontiguousarray(_features(module, accel, x.transpose(1, 2), lengths), dtype="<f4")
                os.pwrite(fd, feats.tobytes(), len(header) + int(starts[k]) * num_features * 4)
            os.fsync(fd)
        finally:
            os.close(fd)
        _barrier(world)
    _barrier(world)
    return path


def _from_rank0(value: Any, world: int) -> Any:
    """Rank 0's `value` on every rank (the temp file's name)."""
    if world > 1:
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        value = box[0]
    return value


def _check_out(path: Path, overwrite: bool) -> None:
    if path.is_symlink():
        raise ValueError(f"out: {str(path)!r} is a symlink; archkit does not write through links: give a new path")
    if not path.exists():
        return
    if path.suffix != ".npy" or not path.is_file():
        raise ValueError(f"out: {str(path)!r} exists and is not a .npy file; archkit replaces only .npy features")
    if not overwrite:
        raise ValueError(
            f"out: {str(path)!r} exists; pass overwrite=True to replace it (a .npy file carries no mark of "
            f"who wrote it, so archkit does not replace one unasked)"
        )


def _npy_header(shape: tuple[int, int]) -> bytes:
    """The .npy header of a C-ordered little-endian float32 array of `shape`."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue()


def rocket_features(
    module: nn.Module,
    x: Any,
    lengths: Any = None,
    accelerator: Accelerator | str | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Features (N, F) of series x (N, C, T) (aeon's layout; an array or memmap), `batch_size` cases at a time."""
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 3:
        raise ValueError(f"x: expected series shaped (n_cases, n_channels, n_timepoints), got shape {shape}")
    view = _ChannelsLast(x)
    data = from_arrays(view, np.zeros(shape[0], np.int64), lengths, name="x")
    result = transform_shards(module, data, accelerator, batch_size)
    assert isinstance(result, np.ndarray)
    return result


class _ChannelsLast:
    """(N, C, T) array-like seen as (N, T, C) rows (read lazily, one batch of rows at a time)."""

    def __init__(self, x: Any) -> None:
        self.x = x
        self.shape = (x.shape[0], x.shape[2], x.shape[1])

    def __getitem__(self, idx: Any) -> np.ndarray:
        return read_rows(self.x, idx).transpose(0, 2, 1)
