"""What the benchmark scripts share: a timing loop, shuffled batch order, bounded options, results written as JSON.

Not a script: the scripts import it from this folder (`sys.path.insert(0, str(Path(__file__).parent))`).
torch and archkit are imported inside the functions, so a script that only parses its options stays quick.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"


def sync(device: Any) -> None:
    """Wait for a CUDA device's queued work (a no-op on the CPU), so a clock reading covers it."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: Any, budget_s: float, max_steps: int, warmup: int = 2) -> dict[str, float]:
    """Run fn() `warmup` times, then time it until max_steps or budget_s: steps and seconds."""
    t_first = time.perf_counter()
    for _ in range(warmup):
        fn()
    sync(device)
    warm_s = time.perf_counter() - t_first
    steps, t0 = 0, time.perf_counter()
    while steps < max_steps and (steps < 2 or time.perf_counter() - t0 < budget_s):
        fn()
        steps += 1
        if steps % 5 == 0:
            sync(device)
    sync(device)
    return {"steps": steps, "seconds": time.perf_counter() - t0, "warmup_s": warm_s}


def batch_order(n: int, steps: int, batch: int, seed: int = 0) -> Any:
    """Row order for `steps` batches of `batch` rows out of n: one seeded shuffle per epoch, back to back."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.cat([torch.randperm(n, generator=gen) for _ in range(steps * batch // n + 1)])


def check_ints(args: argparse.Namespace, names: Iterable[str], low: int, high: int) -> None:
    """Stop with one line naming the option when one of `names` (attributes of args) lies outside [low, high]."""
    for name in names:
        if not low <= getattr(args, name) <= high:
            raise SystemExit(f"--{name.replace('_', '-')}: expected {low}..{high}, got {getattr(args, name)}")


def write_json(path: str | Path, record: dict, say: bool = True) -> None:
    """Write the results atomically (an interrupted run keeps the previous file whole); `say`: print where."""
    from archkit.io import atomic_write_json

    atomic_write_json(path, record)
    if say:
        print(f"wrote {path}")
