"""The long-sequence comparison as a picture: test accuracy against fit time, archkit's methods beside aeon's.

Reads the summary that `vs_aeon_long.py` writes (benchmarks/results/bench_sequences_vs_aeon_long.json: per data set,
per method, the mean accuracy and fit seconds over seeds) and draws three panels: the two long tasks at 8192 steps
(needle, order) and the mean over the bundled UCR/UEA sets (only methods measured on all of them). Fit time is on a
log axis; archkit's rows are filled circles, the peers' open squares. `make docs` runs it, so the picture in the README
and docs/sequences.md always shows the JSON that is committed.

    python benchmarks/plot_sequences.py                  # -> docs/img/long-sequences.png
    python benchmarks/plot_sequences.py --results R.json --out plot.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_sequences_vs_aeon_long.json"
OUT = ROOT / "docs" / "img" / "long-sequences.png"
KIND = "long-sequence comparison"  # the kind of figure archkit's mark on the PNG names
LONG_TASKS = ("needle", "order")
FLOOR = 40.0  # accuracy (%) under which a row is named beside the panel instead of squashing the others
# The JSON's method keys and how a reader knows them (aeon's class names; archkit's RocketClassifier features).
LABELS = {
    "aeon-minirocket": "aeon MiniRocket",
    "aeon-multirocket": "aeon MultiRocket",
    "aeon-multirocket-hydra": "aeon MultiRocketHydra",
    "aeon-hydra": "aeon Hydra",
    "aeon-quant": "aeon QUANT",
    "archkit-auto": "archkit auto",
    "archkit-rocket": "archkit MiniRocket",
    "archkit-multirocket": "archkit MultiRocket",
    "archkit-hydra": "archkit Hydra",
    "archkit-rocket-hydra": "archkit MiniRocket+Hydra",
    "archkit-multirocket-hydra": "archkit MultiRocket+Hydra",
    "archkit-lstm": "archkit LSTM (raw steps)",
    "archkit-lstm-conv": "archkit LSTM (conv front end)",
    "archkit-rocket-streamed": "archkit MiniRocket, streamed fit",
    "archkit-rocket-padded": "archkit MiniRocket, zero-padded",
}


def label(method: str) -> str:
    """The name a reader knows a method by (the key itself when it has no entry)."""
    return LABELS.get(method, method)


def panels(summary: dict[str, Any]) -> list[tuple[str, dict[str, tuple[float, float]]]]:
    """[(title, {method: (mean fit s, mean accuracy %)})]: the long tasks, then the mean over the bundled sets."""
    per_data = summary.get("per_data")
    if not isinstance(per_data, dict) or not per_data:
        raise ValueError("results: expected a 'per_data' object of data set -> method -> figures")
    out = []
    for task in LONG_TASKS:
        if task in per_data:
            rows = {m: (float(v["fit_s_mean"]), float(v["accuracy_mean"])) for m, v in per_data[task].items()}
            out.append((f"{task} (T = 8192, 8 channels, 4 classes)", rows))
    sets = [d for d in per_data if d not in LONG_TASKS]
    if sets:
        common = set.intersection(*(set(per_data[d]) for d in sets))
        rows = {
            m: (
                sum(float(per_data[d][m]["fit_s_mean"]) for d in sets) / len(sets),
                sum(float(per_data[d][m]["accuracy_mean"]) for d in sets) / len(sets),
            )
            for m in sorted(common)
        }
        out.append((f"mean over {len(sets)} bundled UCR/UEA sets", rows))
    return out


def plot(summary: dict[str, Any], out: Path) -> Path:
    """Draw the panels of `summary` into the PNG `out` (archkit's mark in it, written atomically)."""
    import matplotlib
    import matplotlib.ticker as mticker

    from archkit.utils.plots import new_figure, save_figure

    shown = panels(summary)
    methods = sorted({m for _, rows in shown for m in rows}, key=lambda m: (not m.startswith("archkit"), m))
    palette = "tab10" if len(methods) <= 10 else "tab20"  # one colour per method, the same in every panel
    colours = {m: matplotlib.colormaps[palette](i) for i, m in enumerate(methods)}
    fig, axes = new_figure(1, len(shown), figsize=(4.6 * len(shown), 4.4), squeeze=False)
    handles: dict[str, Any] = {}
    for ax, (title, rows) in zip(axes[0], shown):
        off_chart = []
        for method, (fit_s, acc) in rows.items():
            if acc < FLOOR:  # near chance (the LSTM on raw steps): named under the panel, not plotted
                off_chart.append(f"{label(method)}: {acc:.1f} %")
                continue
            ours = method.startswith("archkit")
            handles[method] = ax.scatter(
                fit_s,
                acc,
                marker="o" if ours else "s",
                s=55,
                color=colours[method],
                edgecolors="black" if not ours else colours[method],
                linewidths=1.2,
            )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(mticker.NullFormatter())
        below = "\n(off the chart: " + "; ".join(off_chart) + ")" if off_chart else ""
        ax.set_xlabel("fit time, s (one thread, log scale)" + below)
        ax.set_ylabel("test accuracy, %")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    order = [m for m in methods if m in handles]
    fig.legend(
        [handles[m] for m in order],
        [label(m) for m in order],
        loc="lower center",
        ncol=min(5, len(order)),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle("archkit (circles) and aeon (squares): accuracy against fit time, mean over seeds", fontsize=11)
    return save_figure(fig, out, kind=KIND, rect=(0, 0.03 + 0.05 * ((len(order) - 1) // 5 + 1), 1, 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the summary JSON of vs_aeon_long.py")
    parser.add_argument("--out", type=Path, default=OUT, help="the PNG to write")
    args = parser.parse_args(argv)
    if args.out.suffix.lower() != ".png":
        parser.error(f"--out: expected a .png path, got {str(args.out)!r}")
    try:
        from archkit.io import check_out_file

        check_out_file(args.out, KIND)  # a PNG archkit did not draw (or drew as something else) is never written over
        summary = json.loads(args.results.read_text(encoding="utf-8"))
        path = plot(summary, args.out)
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"plot_sequences: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
