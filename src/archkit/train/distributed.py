"""Process-group helpers for `torchrun` (DDP): one code path that is a no-op in a single process."""

from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class DistInfo:
    """Where this process sits: rank, world size, and whether a process group is active."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    enabled: bool = False
    device: torch.device = dataclasses.field(
        default_factory=lambda: torch.device("cpu")
    )  # where collectives of this module put their tensors (nccl: a GPU)
    # this call created the group: `cleanup_distributed` ends it. A caller that joined a group already
    # running (the demo's, shared by its stages) leaves it to whoever started it.
    owned: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 is the one that writes files and draws progress bars."""
        return self.rank == 0


def launched_rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun), known before any process group starts."""
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def init_distributed(device: torch.device | None = None) -> DistInfo:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on GPU).

    `device` is this rank's resolved device (archkit.train.accelerate.resolve_device gives each
    rank cuda:LOCAL_RANK); on CUDA it becomes the current device and the backend is nccl.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistInfo(device=device)
    world = int(os.environ["WORLD_SIZE"])
    if world <= 1:
        return DistInfo(device=device)
    # DDP imports torch._dynamo on construction; imported while a process group exists, it keeps
    # that group alive past destroy_process_group, so gloo's worker and socket threads ran on into
    # interpreter shutdown, where a rank could abort ("terminate called without an active
    # exception"). Imported first, the group is freed and its threads joined by cleanup_distributed.
    importlib.import_module("torch._dynamo")  # not `import torch._dynamo`: that would make `torch` local here
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(device)  # nccl and DDP bind to the current device
    owned = not dist.is_initialized()
    if owned:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    local = int(os.environ.get("LOCAL_RANK", 0))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, True, device, owned)


def cleanup_distributed(info: DistInfo) -> None:
    """Leave the process group (only if `init_distributed` created it), joining its threads.

    The barrier first: no rank tears its group down while another still has a collective in flight.
    """
    import gc

    import torch.distributed as dist

    if info.enabled and info.owned and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            gc.collect()  # DDP wrappers sit in reference cycles: free them, and their hold on the group
            dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.enabled:
        torch.distributed.barrier()


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True when `flag` is true on any rank (e.g. a Ctrl-C that reached only some processes)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather(t: torch.Tensor, info: DistInfo) -> list[torch.Tensor]:
    """Every rank's `t` (same shape and dtype on all ranks), in rank order; [t] in a single process."""
    if not info.enabled:
        return [t]
    parts = [torch.empty_like(t, device=info.device) for _ in range(info.world_size)]
    torch.distributed.all_gather(parts, t.to(info.device))
    return [p.to(t.device) for p in parts]


def shard(batch: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's contiguous slice of a global batch (rank r takes the r-th equal part)."""
    if not info.enabled:
        return batch
    if len(batch) % info.world_size:
        raise ValueError(
            f"batch_size: the global batch ({len(batch)}) must be divisible by the number of "
            f"processes ({info.world_size})"
        )
    n = len(batch) // info.world_size
    return batch[info.rank * n : (info.rank + 1) * n]


@torch.no_grad()
def replica_divergence(model: nn.Module, info: DistInfo) -> float:
    """Largest difference of any parameter or buffer between ranks (0.0 when replicas are identical)."""
    if not info.enabled:
        return 0.0
    import torch.distributed as dist

    worst = torch.zeros((), device=info.device)
    for t in list(model.parameters()) + list(model.buffers()):
        t = t.detach().float().to(info.device)
        hi, lo = t.clone(), t.clone()
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        worst = torch.maximum(worst, (hi - lo).abs().max() if t.numel() else worst)
    return float(worst)
