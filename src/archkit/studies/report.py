"""Helpers every study uses to write its report.md and plots."""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Sequence

from ..surgery.measure import format_table
from ..train.checkpoint import atomic_write, atomic_write_json, atomic_write_text


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    vals = list(values)
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table (floats to 4 significant digits)."""
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def new_figure(*args: Any, **kwargs: Any):
    """A matplotlib figure on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save (atomically) and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120))
    finally:
        plt.close(fig)


def write_report(out_dir: Path, title: str, body: str, results: dict[str, Any]) -> Path:
    """Write report.md (title + body markdown) and results.json atomically; returns the report path."""
    atomic_write_json(out_dir / "results.json", results)
    path = out_dir / "report.md"
    atomic_write_text(path, f"# {title}\n\n{body.strip()}\n")
    return path


__all__ = ["format_table", "markdown_table", "mean_std", "new_figure", "save_figure", "write_report"]
