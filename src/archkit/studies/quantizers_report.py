"""The `quantizers` study's summary (mean +- std over seeds), verdict against EMA, report text and plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..utils import markdown_table, mean_std, new_figure, save_figure


def summarize(rows: list[dict[str, Any]], quantizers: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Mean and std over seeds per quantizer, for both budgets."""
    out: dict[str, dict[str, Any]] = {}
    for q in quantizers:
        s = [r for r in rows if r["quantizer"] == q and r["budget"] == "steps"]
        t = [r for r in rows if r["quantizer"] == q and r["budget"] == "cpu_time"]
        levels = len(s[0]["usage"])
        out[q] = {
            "seeds": len(s),
            "psnr": mean_std([r["psnr"] for r in s]),
            "psnr_equal_time": mean_std([r["psnr"] for r in t]) if t else None,
            "steps_equal_time": mean_std([r["steps"] for r in t]) if t else None,
            "usage": [mean_std([r["usage"][l] for r in s]) for l in range(levels)],
            "perplexity": [mean_std([r["perplexity"][l] for r in s]) for l in range(levels)],
            "codes": s[0]["codes"],
            "prior_bits_per_code": mean_std([r["prior_bits_per_code"] for r in s]),
            "frechet_distance": mean_std([r["frechet_distance"] for r in s]),
            "images_per_cpu_s": mean_std([r["images_per_cpu_s"] for r in s]),
            "images_per_s": mean_std([r["images_per_s"] for r in s]),
        }
    return out


def verdict(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether a quantizer beats EMA: higher PSNR at equal CPU time (by more than the seeds' spread), or PSNR
    within that spread with >= 99 % usage on every level and a lower top-prior NLL. With fewer than two seeds
    there is no spread to compare with: "wins" is None (no verdict)."""
    ema = summary["ema"]
    out: dict[str, Any] = {}
    for q, s in summary.items():
        if q == "ema":
            continue
        key = "psnr_equal_time" if s["psnr_equal_time"] and ema["psnr_equal_time"] else "psnr"
        diff = s[key][0] - ema[key][0]
        spread = max(s[key][1], ema[key][1], 0.05)
        full = all(u[0] >= 0.99 for u in s["usage"])
        lower_nll = s["prior_bits_per_code"][0] < ema["prior_bits_per_code"][0]
        wins = diff > spread or (abs(diff) <= spread and full and lower_nll)
        decided = min(s.get("seeds", 2), ema.get("seeds", 2)) >= 2  # records written before "seeds": as before
        out[q] = {
            "psnr_gain_db": diff,
            "compared_on": key,
            "spread_db": spread,
            "all_levels_99pct": full,
            "lower_prior_nll": lower_nll,
            "wins": wins if decided else None,
        }
    return out


def _pm(ms: tuple[float, float] | None, fmt: str = ".2f") -> str:
    return "-" if ms is None else f"{ms[0]:{fmt}} ± {ms[1]:{fmt}}"


def report_body(record: dict[str, Any]) -> str:
    """The markdown of report.md: what ran, the table, the verdict."""
    size, summary = record["size"], record["summary"]
    rows = []
    for q, s in summary.items():
        rows.append(
            [
                q,
                _pm(s["psnr"]),
                _pm(s["psnr_equal_time"]),
                _pm(s["steps_equal_time"], ".0f"),
                " / ".join(f"{u[0]:.1%}" for u in s["usage"]),
                " / ".join(f"{p[0]:.0f}" for p in s["perplexity"]),
                _pm(s["prior_bits_per_code"], ".3f"),
                _pm(s["frechet_distance"], ".1f"),
                f"{s['images_per_cpu_s'][0]:.1f}",
            ]
        )
    table = markdown_table(
        [
            "quantizer",
            "PSNR dB, equal steps",
            "PSNR dB, equal CPU time",
            "steps in that time",
            "codes used (top / bottom)",
            "perplexity (top / bottom)",
            "top prior bits/code",
            "Frechet distance",
            "images / CPU s",
        ],
        rows,
    )
    lines = [
        f"What ran: preset {record['preset']}, {record['seeds']} seed(s), {size['steps']} steps at batch "
        f"{size['batch_size']} per quantizer (cosine lr), interleaved every {size['chunk']} steps; equal CPU time "
        f"= {'the EMA run' if size['seconds'] is None else str(size['seconds']) + ' s'}; top prior "
        f"{size['prior_steps']} steps at batch 32; {size['samples']} prior samples per distance; "
        f"{record['threads']} thread(s) on {record['accelerator']['device']} ({record['accelerator']['precision']}).",
        "",
        table,
        "",
        "Mean ± std over seeds. Codes used and perplexity: held-out set, equal steps. Frechet distance: "
        "prior samples vs held-out crops, both decoded from the top level alone, in the features of a "
        "photograph classifier (lower is better).",
        "",
    ]
    for q, v in record["verdict"].items():
        if v["wins"] is None:
            head = f"- {q} vs ema: {v['psnr_gain_db']:+.2f} dB ({v['compared_on']}; one seed, no spread to judge it by: no verdict)"
        else:
            word = "beats" if v["wins"] else "does not beat"
            head = f"- {q} {word} ema: {v['psnr_gain_db']:+.2f} dB ({v['compared_on']}, seed spread {v['spread_db']:.2f} dB)"
        lines.append(
            f"{head}, every level >= 99 % used: {v['all_levels_99pct']}, lower prior NLL: {v['lower_prior_nll']}."
        )
    lines += ["", "![held-out PSNR and training curves](quantizers.png)"]
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], quantizers: tuple[str, ...], path: Path) -> None:
    """Training PSNR against CPU seconds (seed 0, equal steps) and held-out PSNR per quantizer and budget."""
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10, 4))
    for q in quantizers:
        r = next(x for x in rows if x["quantizer"] == q and x["budget"] == "steps")
        k = max(1, len(r["curve"]) // 50)
        pts = [r["curve"][i : i + k] for i in range(0, len(r["curve"]), k)]
        ax1.plot([p[-1][1] for p in pts], [sum(c[2] for c in p) / len(p) for p in pts], label=q)
    ax1.set(xlabel="training CPU seconds", ylabel="batch PSNR (dB)", title="training (seed 0)")
    ax1.legend()
    for i, budget in enumerate(("steps", "cpu_time")):
        vals = [
            mean_std([x["psnr"] for x in rows if x["quantizer"] == q and x["budget"] == budget] or [float("nan")])
            for q in quantizers
        ]
        ax2.bar(
            [j + 0.4 * i for j in range(len(quantizers))],
            [v[0] for v in vals],
            0.4,
            yerr=[v[1] for v in vals],
            label="equal steps" if budget == "steps" else "equal CPU time",
        )
    ax2.set_xticks([j + 0.2 for j in range(len(quantizers))], list(quantizers))
    lo = min(x["psnr"] for x in rows)
    ax2.set(ylabel="held-out PSNR (dB)", ylim=(lo - 1, None), title="held-out")
    ax2.legend()
    save_figure(fig, path)


__all__ = ["plot", "report_body", "summarize", "verdict"]
