"""DataLoaders that stream a dataset from disk in the same batch order as the in-memory loops.

`EpochBatchSampler` yields the batches of one epoch of a permutation that depends only on
(seed, epoch), starting at any batch k (exact resume), and under DDP this rank's contiguous slice
of every global batch, so K ranks together see the same images per step as one process.
`make_loader` wraps a map-style dataset in a DataLoader with that sampler, worker processes,
persistent workers and pinned memory on CUDA.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sized
from typing import Any, cast

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

DEFAULT_WORKERS = 2  # decode in 2 background processes: enough to keep one small model fed, cheap to start


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffle of epoch `epoch`: a pure function of (seed, epoch), so resume replays it exactly."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


class EpochBatchSampler(Sampler[list[int]]):
    """Batch indices of one epoch (set with `set_epoch(epoch, start_batch)`), this rank's slice of each.

    shuffle=True: batch k is `perm[k*B:(k+1)*B]` of `epoch_permutation(n, seed, epoch)` and the last
    partial batch is dropped (a step always sees B images). shuffle=False: the rows in order, the last
    batch kept. With world_size > 1 rank r takes the r-th contiguous part of every global batch (the
    contract of `archkit.train.distributed.shard`), unlike DistributedSampler's interleaving.
    """

    def __init__(
        self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n: expected a positive number of items, got {n!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if not isinstance(world_size, int) or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank/world_size: expected 0 <= rank < world_size, got {rank}/{world_size}")
        if batch_size % world_size:
            raise ValueError(
                f"batch_size: the global batch ({batch_size}) must be divisible by the number of "
                f"processes ({world_size})"
            )
        if shuffle and n < batch_size:
            raise ValueError(f"batch_size: {batch_size} is larger than the dataset ({n} items)")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        """Global batches in a full epoch."""
        return self.n // self.batch_size if self.shuffle else -(-self.n // self.batch_size)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Make the next iteration yield epoch `epoch` from batch `start_batch` on (a resume point)."""
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch: expected 0..{self.batches_per_epoch}, got {start_batch}")
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def __iter__(self) -> Iterator[list[int]]:
        order = epoch_permutation(self.n, self.seed, self.epoch) if self.shuffle else torch.arange(self.n)
        for k in range(self.start_batch, self.batches_per_epoch):
            batch = order[k * self.batch_size : (k + 1) * self.batch_size]
            part = -(-len(batch) // self.world_size)
            yield batch[self.rank * part : (self.rank + 1) * part].tolist()


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    seed: int = 0,
    shuffle: bool = True,
    workers: int = DEFAULT_WORKERS,
    pin_memory: bool | None = None,
    device: Any = None,
    rank: int = 0,
    world_size: int = 1,
    prefetch_factor: int = 2,
) -> DataLoader:
    """A DataLoader over `dataset` whose batches follow `EpochBatchSampler` (reach it as `loader.batch_sampler`).

    `workers` processes decode in the background (0: in this process) and stay alive across epochs;
    memory is pinned when `pin_memory` is true, or by default when `device` is a CUDA device.
    Call `loader.batch_sampler.set_epoch(epoch, start_batch)` before iterating an epoch.
    """
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers: expected an int >= 0 (0 = load in the main process), got {workers!r}")
    if pin_memory is None:
        pin_memory = device is not None and torch.device(device).type == "cuda"
    n = len(cast(Sized, dataset))  # a map-style dataset has a length
    sampler = EpochBatchSampler(n, batch_size, seed=seed, shuffle=shuffle, rank=rank, world_size=world_size)
    background = workers > 0  # the DataLoader's defaults otherwise
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=bool(pin_memory),
        persistent_workers=background,
        prefetch_factor=prefetch_factor if background else None,
        worker_init_fn=ignore_sigint if background else None,
    )


def ignore_sigint(worker_id: int) -> None:
    """DataLoader worker init: Ctrl-C reaches the whole process group; only the main process handles it
    (it saves a checkpoint), so a worker must not die of it mid-batch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


__all__ = ["DEFAULT_WORKERS", "EpochBatchSampler", "epoch_permutation", "ignore_sigint", "make_loader"]
