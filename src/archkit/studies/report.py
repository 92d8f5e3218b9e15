"""Helpers every study uses to write its report.md and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from ..io import atomic_write_json, atomic_write_text
from ..utils import format_table, markdown_table, mean_std, new_figure, save_figure


class Budget(TypedDict):
    """The training budget a study gives each model (keyword arguments of fit_classifier)."""

    epochs: int
    batch_size: int
    lr: float


def write_report(out_dir: Path, title: str, body: str, results: dict[str, Any]) -> Path:
    """Write report.md (title + body markdown) and results.json atomically; returns the report path."""
    atomic_write_json(out_dir / "results.json", results)
    path = out_dir / "report.md"
    atomic_write_text(path, f"# {title}\n\n{body.strip()}\n")
    return path


__all__ = ["Budget", "format_table", "markdown_table", "mean_std", "new_figure", "save_figure", "write_report"]
