"""Studies: `archkit study NAME` runs an experiment on real data and writes report.md + a PNG plot.

Each study module has `run(out_dir: Path, seeds: int = 3, quick: bool = False) -> dict` and is
registered in STUDIES as "module:function" (imported lazily: studies pull in matplotlib etc.).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..io.outdir import claim_out_folder

STUDIES: dict[str, str] = {
    "reduction": "archkit.studies.reduction:run",
    "bn-batch1": "archkit.studies.bn_batch1:run",
    "decomposeme": "archkit.studies.decomposeme:run",
    "compress": "archkit.studies.compress:run",
    "quantizers": "archkit.studies.quantizers:run",
}
# Studies whose budget can be sized from the command line (`--steps`, `--seconds`).
SIZED = {"quantizers"}


def list_studies() -> list[str]:
    """Names accepted by `run_study`."""
    return sorted(STUDIES)


def run_study(name: str, out_dir: str | Path, seeds: int = 3, quick: bool = False, **budget: Any) -> dict[str, Any]:
    """Run a registered study, writing report.md and its plot(s) into out_dir; returns its results.

    `budget` (steps=, seconds=) sizes the studies in SIZED; other studies take none.
    """
    if name not in STUDIES:
        raise ValueError(f"study: unknown name {name!r}; expected one of {list_studies()}")
    if seeds < 1:
        raise ValueError(f"seeds: expected >= 1, got {seeds}")
    budget = {k: v for k, v in budget.items() if v is not None}
    if budget and name not in SIZED:
        raise ValueError(
            f"{'/'.join('--' + k for k in budget)}: study {name!r} has a fixed budget; "
            f"only {sorted(SIZED)} take --steps/--seconds"
        )
    module, attr = STUDIES[name].split(":")
    out = Path(out_dir)
    claim_out_folder(out, "study folder", "out_dir")  # a user's folder (their report.md) is refused
    return getattr(importlib.import_module(module), attr)(out, seeds=seeds, quick=quick, **budget)


__all__ = ["SIZED", "STUDIES", "list_studies", "run_study"]
