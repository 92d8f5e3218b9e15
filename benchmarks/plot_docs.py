"""The docs' benchmark pictures (function.md, lowrank.md, sequences.md), drawn from the committed results JSON.

Each figure reads the file its benchmark writes and nothing else, so a rerun of the benchmark followed by
`make docs` (which runs this script) redraws the picture from the new numbers:

- function-rmse: `bench_function.py`'s RMSE inside the training domain and in the extrapolation band, per method
  and function (log scale), with each method's fit time beside its bars.
- lowrank-speedup: `bench_lowrank.py`'s measured speedup against the MAC reduction, per layer and rank (log-log),
  with the ideal (speedup = MAC reduction) and the 0.7 efficiency target drawn.
- sequences-averages: `vs_aeon_long.py`'s mean accuracy per row over the bundled sets, the two long tasks and all
  of them (the summary's `averages`), archkit's auto marked.

    python benchmarks/plot_docs.py                      # every figure -> docs/img/
    python benchmarks/plot_docs.py --only lowrank-speedup --results R.json --out plot.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
IMG = ROOT / "docs" / "img"
FUNCTION_KIND = "function benchmark figure"  # the kind of figure archkit's mark on each PNG names
LOWRANK_KIND = "low-rank benchmark figure"
AVERAGES_KIND = "sequence averages figure"
EFFICIENCY_TARGET = 0.7  # docs/lowrank.md: measured speedup / MAC reduction the decomposition should reach


def _require(record: Any, key: str, what: str) -> Any:
    """record[key], or a ValueError naming the key and what was expected there."""
    if not isinstance(record, dict) or key not in record:
        raise ValueError(f"results: expected a {key!r} entry ({what})")
    return record[key]


def function_rows(results: dict[str, Any]) -> list[tuple[str, list[tuple[str, float, float, float]]]]:
    """[(function, [(method, RMSE in-domain, RMSE band, fit s)])]: fewest inputs first, archkit's methods first."""
    functions = _require(results, "functions", "function -> methods -> RMSE and seconds")
    if not isinstance(functions, dict) or not functions:
        raise ValueError("results: expected a non-empty 'functions' object of function -> methods")
    out = []
    for name, record in sorted(
        functions.items(), key=lambda kv: len(kv[1].get("domain", ())) if isinstance(kv[1], dict) else 0
    ):
        methods = _require(record, "methods", f"method -> figures for {name!r}")
        rows = [
            (m, float(v["rmse_in"]), float(v["rmse_band"]), float(v["seconds"]))
            for m, v in sorted(methods.items(), key=lambda kv: (not kv[0].startswith("archkit"), kv[0]))
        ]
        if rows:
            out.append((name, rows))
    if not out:
        raise ValueError("results: no function has any method's figures")
    return out


def plot_function(results: dict[str, Any], out: Path) -> Path:
    """RMSE in-domain and in the extrapolation band per method, one panel per function (log scale)."""
    import numpy as np

    from archkit.utils.plots import new_figure, save_figure

    shown = function_rows(results)
    most = max(len(rows) for _, rows in shown)
    fig, axes = new_figure(len(shown), 1, figsize=(9.0, 1.2 + 0.42 * most * len(shown)), squeeze=False)
    for ax, (name, rows) in zip(axes[:, 0], shown):
        y = np.arange(len(rows))
        rmse_in = [r[1] for r in rows]
        rmse_band = [r[2] for r in rows]
        ax.barh(y - 0.2, rmse_in, height=0.4, color="tab:blue", label="inside the training domain")
        ax.barh(y + 0.2, rmse_band, height=0.4, color="tab:orange", label="extrapolation band (25 % beyond)")
        ax.set_xscale("log")
        ax.set_yticks(y, [f"{m}  ({s:.1f} s)" for m, _, _, s in rows], fontsize=8)
        ax.invert_yaxis()
        for i, (_, a, b, _s) in enumerate(rows):
            ax.text(a, i - 0.2, f" {a:.1e}", va="center", fontsize=7)
            ax.text(b, i + 0.2, f" {b:.2g}", va="center", fontsize=7)
        low = min(min(rmse_in), min(rmse_band))
        high = max(max(rmse_in), max(rmse_band))
        ax.set_xlim(low / 3, high * 12)  # room for the value written after the longest bar
        expression = str(results["functions"][name].get("expression", name))
        same = expression.replace(" ", "") == name.replace(" ", "")
        ax.set_title(name if same else f"{name}   ({expression})", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("RMSE (log scale; shorter is better); fit time in brackets")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    samples = results.get("samples", "?")
    machine = results.get("machine", "machine not recorded")
    note = results.get("note", "")
    fig.suptitle(
        f"Function approximation: {samples} noiseless samples, one seed\n{machine}; {note}".rstrip("; "),
        fontsize=10,
    )
    return save_figure(fig, out, kind=FUNCTION_KIND, rect=(0, 0.03, 1, 1))  # the legend sits under the panels


def lowrank_cases(results: dict[str, Any]) -> list[tuple[str, list[tuple[float, float, float, float, int]]]]:
    """[(case, [(MAC reduction, speedup, min, max, rank)])] for the factorized rows (the dense ones are the 1x)."""
    rows = _require(results, "rows", "a list of measured variants")
    if not isinstance(rows, list):
        raise ValueError(f"results: expected 'rows' to be a list, got {type(rows).__name__}")
    cases: dict[str, list[tuple[float, float, float, float, int]]] = {}
    for row in rows:
        if row.get("rank") is None:  # the dense layer: speedup 1 by definition
            continue
        cases.setdefault(str(row["case"]), []).append(
            (
                float(row["mac_reduction"]),
                float(row["speedup"]),
                float(row["speedup_min"]),
                float(row["speedup_max"]),
                int(row["rank"]),
            )
        )
    if not cases:
        raise ValueError("results: no factorized row (every row has rank null)")
    return [(case, sorted(points)) for case, points in cases.items()]


def plot_lowrank(results: dict[str, Any], out: Path) -> Path:
    """Measured speedup against MAC reduction per layer, ranks marked, with the ideal and the 0.7 target lines."""
    import matplotlib.ticker as mticker

    from archkit.utils.plots import new_figure, save_figure

    shown = lowrank_cases(results)
    fig, ax = new_figure(figsize=(7.5, 5.6))
    reductions = [p[0] for _, pts in shown for p in pts]
    speedups = [p[2] for _, pts in shown for p in pts] + [p[3] for _, pts in shown for p in pts]
    lo, hi = min(min(reductions), min(speedups)) / 1.4, max(max(reductions), max(speedups)) * 1.4
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, label="ideal: speedup = MAC reduction")
    ax.plot([lo, hi], [EFFICIENCY_TARGET * lo, EFFICIENCY_TARGET * hi], "--", color="grey", lw=1)
    ax.text(lo * 2.2, EFFICIENCY_TARGET * lo * 2.2, " target: 0.7 × ideal", ha="left", va="top", fontsize=8)
    ax.axhline(1.0, color="black", lw=0.8, alpha=0.6)
    ax.text(hi / 1.2, 1.0, "as fast as dense", ha="right", va="bottom", fontsize=8)
    for k, (case, points) in enumerate(shown):
        x = [p[0] for p in points]
        y = [p[1] for p in points]
        err = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
        ax.errorbar(x, y, yerr=err, marker="o", ms=5, capsize=3, lw=1.2, label=case)
        if len(points) > 1:  # a sweep: name each rank beside its point
            for xi, yi, (_, _, _, _, rank) in zip(x, y, points):
                # one side per case, so ranks at the same MAC reduction (full rank: 1x) do not overprint
                ax.annotate(
                    f"r{rank}", (xi, yi), textcoords="offset points", xytext=(5, -11 + 14 * (k % 2)), fontsize=7
                )
        else:
            ax.annotate(f"rank {points[0][4]}", (x[0], y[0]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    for axis in (ax.xaxis, ax.yaxis):  # after set_*scale, which resets the formatters
        axis.set_major_locator(mticker.LogLocator(base=2))
        axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}×"))
        axis.set_minor_formatter(mticker.NullFormatter())
    ax.set_xlabel("MAC reduction (dense MACs / factorized MACs, log scale)")
    ax.set_ylabel("measured speedup over the dense layer (median over runs, log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    threads = results.get("threads", "?")
    runs, repeats = results.get("runs", "?"), results.get("repeats", "?")
    torch_version = results.get("torch", "torch version not recorded")
    ax.set_title(
        f"Low-rank layers: measured speedup against MAC reduction (random weights)\n"
        f"CPU, {threads} torch thread, torch {torch_version}; {runs} runs × {repeats} interleaved repeats, "
        "bars: range over runs",
        fontsize=9,
    )
    return save_figure(fig, out, kind=LOWRANK_KIND)


def average_rows(results: dict[str, Any]) -> tuple[list[str], list[tuple[str, str, dict[str, float]]]]:
    """(the data sets averaged over, [(column key, title, {row: mean accuracy %})]): the sets, the long tasks, all."""
    averages = _require(results, "averages", "vs_aeon_long.py's mean accuracy per row over the data sets")
    rows = _require(averages, "rows", "row -> {'sets', 'long', 'all'} mean accuracy %")
    if not isinstance(rows, dict) or not rows:
        raise ValueError("results: expected a non-empty 'averages.rows' object of row -> mean accuracies")
    data = [str(d) for d in averages.get("data", [])]
    n_long = sum(d in ("needle", "order") for d in data)
    titles = {
        "sets": f"{len(data) - n_long} bundled UCR/UEA sets",
        "long": f"{n_long} long tasks (T = 8192)",
        "all": f"all {len(data)}",
    }
    return data, [(key, title, {r: float(v[key]) for r, v in rows.items()}) for key, title in titles.items()]


def plot_averages(results: dict[str, Any], out: Path) -> Path:
    """Each row's mean accuracy over the sets, the long tasks and all of them: rows in the order of the last."""
    from archkit.utils.plots import new_figure, save_figure

    data, columns = average_rows(results)
    per_data = results.get("per_data", {})
    seeds = {
        len(per_data[d][r].get("runs", [])) for d in data if d in per_data for r in columns[0][2] if r in per_data[d]
    }
    span = f"{min(seeds)}" if len(seeds) == 1 else f"{min(seeds, default=0)}–{max(seeds, default=0)}"
    seeds_said = f"{span} seeds" if seeds else "the recorded seeds"
    order = sorted(columns[-1][2], key=lambda r: columns[-1][2][r])  # best over all at the top
    fig, axes = new_figure(1, len(columns), figsize=(4.2 * len(columns), 0.5 + 0.36 * len(order)), squeeze=False)
    for col, (ax, (_key, title, values)) in enumerate(zip(axes[0], columns)):
        for i, row in enumerate(order):
            ours = row.startswith("archkit")
            colour = "tab:red" if row == "archkit-auto" else ("tab:blue" if ours else "tab:grey")
            ax.plot([values[row]], [i], "o" if ours else "s", color=colour, ms=7, mec="black" if not ours else colour)
            ax.annotate(f"{values[row]:.2f}", (values[row], i), textcoords="offset points", xytext=(7, -3), fontsize=7)
        auto = values.get("archkit-auto")
        if auto is not None:  # the line to read every row against
            ax.axvline(auto, color="tab:red", lw=0.8, ls=":")
        low, high = min(values.values()), max(values.values())
        ax.set_xlim(low - 0.08 * (high - low) - 0.1, high + 0.25 * (high - low) + 0.1)
        ax.set_yticks(range(len(order)), order if col == 0 else [""] * len(order), fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("mean test accuracy, %")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"Mean accuracy over {len(data)} data sets per row: archkit (circles; auto in red, dotted line) and aeon "
        f"(squares)\neach data set: mean over {seeds_said}; torch threads: {results.get('threads', '?')}, shared 2-core CPU; "
        "rows measured on every data set",
        fontsize=10,
    )
    return save_figure(fig, out, kind=AVERAGES_KIND)


# name -> (draw, its kind, the results JSON its benchmark writes, the PNG the docs show)
FIGURES: dict[str, tuple[Callable[[dict[str, Any], Path], Path], str, Path, Path]] = {
    "function-rmse": (plot_function, FUNCTION_KIND, RESULTS / "bench_function.json", IMG / "function-rmse.png"),
    "lowrank-speedup": (plot_lowrank, LOWRANK_KIND, RESULTS / "bench_lowrank.json", IMG / "lowrank-speedup.png"),
    "sequences-averages": (
        plot_averages,
        AVERAGES_KIND,
        RESULTS / "bench_sequences_vs_aeon_long.json",
        IMG / "sequences-averages.png",
    ),
}


def draw(name: str, results: Path | None = None, out: Path | None = None) -> Path:
    """Draw figure `name` from `results` (default: the committed JSON) into `out` (default: docs/img/NAME.png)."""
    from archkit.io import check_out_file

    plot, kind, default_results, default_out = FIGURES[name]
    out = default_out if out is None else out
    check_out_file(out, kind)  # a PNG archkit did not draw (or drew as something else) is never written over
    record = json.loads((default_results if results is None else results).read_text(encoding="utf-8"))
    return plot(record, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(FIGURES), help="draw this figure only (default: all of them)")
    parser.add_argument("--results", type=Path, help="the results JSON to read (with --only)")
    parser.add_argument("--out", type=Path, help="the PNG to write (with --only)")
    args = parser.parse_args(argv)
    if (args.results or args.out) and not args.only:
        parser.error("--results/--out: expected --only NAME with them (each figure reads its own results)")
    if args.out is not None and args.out.suffix.lower() != ".png":
        parser.error(f"--out: expected a .png path, got {str(args.out)!r}")
    for name in [args.only] if args.only else sorted(FIGURES):
        try:
            path = draw(name, args.results, args.out)
        except (OSError, ValueError, KeyError, TypeError) as err:
            print(f"plot_docs: {name}: {err}", file=sys.stderr)
            return 2
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
