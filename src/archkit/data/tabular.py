"""Numeric CSV tables for regression: inputs and a target column, with errors that name row and column."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def read_csv_table(
    path: str | Path, target: str | Sequence[str], inputs: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Read a header+numbers CSV into (X (N, D), y (N, T), input names, target names), float64.

    `inputs=None` takes every column that is not a target. Missing columns, non-numeric cells,
    empty cells, NaN and infinities raise ValueError naming the file row (1 = header) and column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--csv: file {str(path)!r} does not exist")
    targets = [target] if isinstance(target, str) else list(target)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise ValueError(f"--csv: {str(path)!r} is empty; expected a header row of column names")
        header = [h.strip() for h in header]
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise ValueError(f"--csv: {str(path)!r} has duplicate column names {dupes}")
        names = list(inputs) if inputs is not None else [h for h in header if h not in targets]
        for what, wanted in (("target", targets), ("input", names)):
            missing = [c for c in wanted if c not in header]
            if missing:
                raise ValueError(f"--csv: {what} column(s) {missing} not in {str(path)!r}; available columns: {header}")
        if not names:
            raise ValueError(f"--csv: {str(path)!r} has no input columns besides the target {targets}")
        idx = [header.index(c) for c in names + targets]
        rows: list[list[float]] = []
        for row_no, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue  # blank lines (e.g. a trailing newline) carry no data
            if len(row) != len(header):
                raise ValueError(
                    f"--csv: {str(path)!r} row {row_no} has {len(row)} fields, the header has {len(header)}"
                )
            values = []
            for i in idx:
                cell = row[i].strip()
                try:
                    v = float(cell)
                except ValueError:
                    shown = repr(cell) if cell else "an empty cell"
                    raise ValueError(
                        f"--csv: {str(path)!r} row {row_no}, column {header[i]!r}: expected a number, got {shown}"
                    ) from None
                if not math.isfinite(v):
                    raise ValueError(
                        f"--csv: {str(path)!r} row {row_no}, column {header[i]!r}: value is {cell} "
                        "(NaN/inf cannot be fitted; drop or fill that row)"
                    )
                values.append(v)
            rows.append(values)
    if not rows:
        raise ValueError(f"--csv: {str(path)!r} has a header but no data rows")
    table = np.asarray(rows, dtype=np.float64)
    return table[:, : len(names)], table[:, len(names) :], names, targets
