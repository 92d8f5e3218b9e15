"""Thread defaults for shared machines, applied when the `archkit` command starts (before torch loads).

torch's CPU kernels run on an OpenMP thread pool with one thread per usable core. By default the
OpenMP runtime (GNU libgomp in the PyPI wheels, Intel's libiomp in some other builds) lets an idle
worker spin for a while before it sleeps, on the bet that the next parallel region comes soon. On
a machine whose cores are busy with other processes that bet loses: the workers burn CPU waiting
for a sibling the scheduler has put aside, and a job that needs a few CPU-minutes on an idle
machine takes many times more CPU and wall time (`benchmarks/bench_threads.py` measures it).

So the `archkit` command, before torch starts its OpenMP runtime, sets
- `OMP_WAIT_POLICY=PASSIVE` (idle workers sleep at once; both libgomp and libiomp read it), unless
  you set `OMP_WAIT_POLICY`, `GOMP_SPINCOUNT` or `KMP_BLOCKTIME` yourself;
- `OMP_NUM_THREADS` to the usable CPU count (affinity mask and container CPU quota, as
  `joblib.cpu_count()` counts them) only when that is below the cores in the affinity mask, which
  torch would otherwise use, and you did not set `OMP_NUM_THREADS`.
Library use (`import torch` first, or archkit imported by your own program) is left untouched.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
CLI_MODULES = frozenset({"archkit", "archkit.cli", "archkit.cli.main", "archkit.__main__", "archkit.cli.__main__"})
CLI_SCRIPTS = frozenset({"archkit", "archkit.exe", "archkit-script.py"})


def is_archkit_command(argv: Sequence[str] | None = None, orig_argv: Sequence[str] | None = None) -> bool:
    """True when this process is the `archkit` console script or `python -m archkit` (also under torchrun)."""
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if not argv:
        return False
    if os.path.basename(argv[0]) in CLI_SCRIPTS:
        return True
    if argv[0] != "-m":  # while `python -m NAME` imports NAME's package, argv[0] is "-m"
        return False
    for i, arg in enumerate(orig_argv[1:], start=1):
        if arg == "-m":
            return i + 1 < len(orig_argv) and orig_argv[i + 1] in CLI_MODULES
        if arg.startswith("-m") and not arg.startswith("--"):
            return arg[2:] in CLI_MODULES
    return False


def affinity_cores() -> int:
    """Cores in this process's affinity mask: the thread count torch's OpenMP runtime picks by default."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def usable_cpus() -> int:
    """CPUs this process may use: the affinity mask capped by a container CPU quota (joblib's count)."""
    from joblib import cpu_count

    return max(1, min(affinity_cores(), int(cpu_count())))


def cli_thread_env(environ: Mapping[str, str], usable: int, affinity: int) -> dict[str, str]:
    """The variables the `archkit` command sets, given the environment and the CPU counts (pure)."""
    changes: dict[str, str] = {}
    if not any(var in environ for var in WAIT_VARS):
        changes["OMP_WAIT_POLICY"] = "PASSIVE"
    if "OMP_NUM_THREADS" not in environ and usable < affinity:
        changes["OMP_NUM_THREADS"] = str(usable)
    return changes


def apply_cli_thread_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the command's thread defaults in the environment unless torch is already loaded; returns them."""
    if "torch" in sys.modules:  # its OpenMP runtime has read the environment already
        return {}
    environ = os.environ if environ is None else environ
    changes = cli_thread_env(environ, usable_cpus(), affinity_cores())
    environ.update(changes)
    return changes


def apply_if_archkit_command() -> dict[str, str]:
    """`archkit/__init__.py` calls this first: thread defaults for the command, nothing for library use."""
    return apply_cli_thread_defaults() if is_archkit_command() else {}


def map_cases(fn: Callable[[int], T], n: int) -> list[T]:
    """[fn(0), ..., fn(n - 1)] spread over torch's CPU threads, one case per thread at a time.

    For work made of many small torch ops per case (MiniRocket's per-case transform): splitting each
    op over the threads barely pays (1.2x on two threads), running whole cases side by side does
    (1.7x), as aeon's numba code does. Every fn(i) runs torch on one thread; torch's thread count and
    the caller's grad mode are the same afterwards, and the results are those of a loop on one thread.
    """
    import torch

    total = torch.get_num_threads()
    if total == 1 or n == 0:
        return [fn(i) for i in range(n)]
    # even a single case goes to a worker: each fn runs on one torch thread whatever n is, so a case's
    # result can't depend on the cases it came with (a matrix product may round differently on two threads)
    workers = min(total, n)
    grad = torch.is_grad_enabled()  # thread-local in torch: a worker would not inherit no_grad

    def one(i: int) -> T:
        with torch.set_grad_enabled(grad):
            return fn(i)

    try:
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            return list(pool.map(one, range(n)))
    finally:
        torch.set_num_threads(total)  # the workers' setting is also torch's default for new threads


__all__ = [
    "CLI_MODULES",
    "WAIT_VARS",
    "affinity_cores",
    "apply_cli_thread_defaults",
    "apply_if_archkit_command",
    "cli_thread_env",
    "is_archkit_command",
    "map_cases",
    "usable_cpus",
]
