"""The report every surgery function returns next to the new model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LayerChange:
    """What happened to one module: action is e.g. "folded", "replaced", "frozen" or "skipped"."""

    name: str
    action: str
    detail: str = ""
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class SurgeryReport:
    """Per-layer record of a surgery: what changed, what was skipped and why, plus free notes."""

    operation: str
    changes: list[LayerChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verification: str = ""  # how the result was checked numerically, or why it could not be
    model_rel_error: float | None = None  # whole-model relative output error on the example inputs, when measured

    def add(self, name: str, action: str, detail: str = "", reason: str = "", **metrics: Any) -> LayerChange:
        change = LayerChange(name, action, detail, reason, dict(metrics))
        self.changes.append(change)
        return change

    def by_action(self, action: str) -> list[LayerChange]:
        return [c for c in self.changes if c.action == action]

    @property
    def skipped(self) -> list[LayerChange]:
        return self.by_action("skipped")

    @property
    def changed(self) -> list[LayerChange]:
        return [c for c in self.changes if c.action != "skipped"]

    def to_table(self) -> str:
        """A plain-text table, one row per layer, metrics as extra columns."""
        from .measure import format_table

        metric_keys: list[str] = []
        for c in self.changes:
            metric_keys += [k for k in c.metrics if k not in metric_keys]
        header = ["layer", "action", "detail", *metric_keys, "reason"]
        rows = [
            [c.name, c.action, c.detail, *[c.metrics.get(k, "") for k in metric_keys], c.reason] for c in self.changes
        ]
        lines = [f"{self.operation}: {len(self.changed)} changed, {len(self.skipped)} skipped"]
        if rows:
            lines.append(format_table(header, rows))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_table()
