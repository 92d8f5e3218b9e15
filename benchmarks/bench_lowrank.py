"""Benchmark truncated-SVD factorization on CPU: measured speedup vs the MAC reduction, all timed interleaved.

    python benchmarks/bench_lowrank.py            # full sizes, 5 runs x 40 interleaved repeats, 1 torch thread
    python benchmarks/bench_lowrank.py --quick    # smoke run: small sizes, 3 repeats

Cases: (a) Linear 4096->4096 at batch 64 vs LowRankLinear rank 256; (b) Conv2d 64->64 7x7 and 128->128
3x3 on a 56x56 map (batch 1) vs DecomposedConv2d (vertical Kx1 -> horizontal 1xK) at several ranks.
"MAC reduction" = dense MACs / factorized MACs (the ideal speedup); "efficiency" = measured speedup /
MAC reduction (target >= 0.7 for (a) and the 7x7 case). Writes benchmarks/results/bench_lowrank.json
(bench_lowrank_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archkit.layers import DecomposedConv2d, LowRankLinear
from archkit.surgery import count_macs, format_table, interleaved_latency, output_error
from archkit.train import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results"


def cases(quick: bool) -> list[dict[str, Any]]:
    """(name, dense layer, input, [(rank, factorized layer)]) for every case."""
    torch.manual_seed(0)
    features, batch, size = (1024, 16, 28) if quick else (4096, 64, 56)
    out = []
    dense = nn.Linear(features, features)
    out.append(
        {
            "case": f"(a) Linear {features}->{features}, batch {batch}",
            "dense": dense,
            "x": torch.randn(batch, features),
            "factored": [(r, LowRankLinear.from_dense(dense, rank=r)) for r in ([64, 256] if quick else [256])],
        }
    )
    for channels, k, ranks in ((64, 7, [8, 16, 32, 64, 128, 224]), (128, 3, [16, 32, 64, 96, 128, 192])):
        conv = nn.Conv2d(channels, channels, k, padding=k // 2)
        ranks = ranks[::2] if quick else ranks
        out.append(
            {
                "case": f"(b) Conv2d {channels}->{channels} {k}x{k}, {size}x{size}, batch 1",
                "dense": conv,
                "x": torch.randn(1, channels, size, size),
                "factored": [(r, DecomposedConv2d.from_dense(conv, rank=r)) for r in ranks],
            }
        )
    return out


def run(quick: bool, threads: int, repeats: int, runs: int = 1) -> dict[str, Any]:
    torch.set_num_threads(threads)
    all_cases = cases(quick)
    fns: dict[str, Callable[[], Any]] = {}
    for i, c in enumerate(all_cases):
        c["dense"].eval()
        fns[f"{i}|dense"] = lambda m=c["dense"], x=c["x"]: m(x)
        for r, m in c["factored"]:
            m.eval()
            fns[f"{i}|{r}"] = lambda m=m, x=c["x"]: m(x)
    t0 = time.perf_counter()
    # `runs` independent interleaved passes: the machine is shared, so report the median over passes
    # and the spread of the measured speedup across them
    passes = [interleaved_latency(fns, repeats=repeats, warmup=2) for _ in range(runs)]
    wall = time.perf_counter() - t0
    latency = {k: statistics.median(p[k] for p in passes) for k in fns}
    rows = []
    for i, c in enumerate(all_cases):
        dense_macs = count_macs(c["dense"], c["x"])
        with torch.no_grad():
            ref = c["dense"](c["x"])
        rows.append(
            {
                "case": c["case"],
                "variant": "dense",
                "rank": None,
                "macs": dense_macs,
                "mac_reduction": 1.0,
                "latency_ms": 1e3 * latency[f"{i}|dense"],
                "speedup": 1.0,
                "speedup_min": 1.0,
                "speedup_max": 1.0,
                "efficiency": 1.0,
                "rel_error": 0.0,
            }
        )
        for r, m in c["factored"]:
            macs = count_macs(m, c["x"])
            speedup = latency[f"{i}|dense"] / latency[f"{i}|{r}"]
            per_pass = [p[f"{i}|dense"] / p[f"{i}|{r}"] for p in passes]
            with torch.no_grad():
                rel = output_error(ref, m(c["x"]))[1]
            rows.append(
                {
                    "case": c["case"],
                    "variant": type(m).__name__,
                    "rank": r,
                    "macs": macs,
                    "mac_reduction": dense_macs / macs,
                    "latency_ms": 1e3 * latency[f"{i}|{r}"],
                    "speedup": speedup,
                    "speedup_min": min(per_pass),
                    "speedup_max": max(per_pass),
                    "efficiency": speedup / (dense_macs / macs),
                    "rel_error": rel,
                }
            )
    return {
        "quick": quick,
        "threads": threads,
        "repeats": repeats,
        "runs": runs,
        "wall_s": wall,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "rows": rows,
        "targets": _targets(rows),
    }


def _targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Efficiency >= 0.7 for the Linear case and for the 7x7 decompositions; where each conv stops paying off."""
    out: dict[str, Any] = {}
    for row in rows:
        if row["variant"] == "dense":
            continue
        key = "linear" if row["case"].startswith("(a)") else ("conv7x7" if "7x7" in row["case"] else "conv3x3")
        if key in ("linear", "conv7x7"):
            out.setdefault(f"{key}_efficiency>=0.7", {})[str(row["rank"])] = row["efficiency"] >= 0.7
        if row["speedup"] < 1.0:
            out.setdefault(f"{key}_slower_than_dense_at_ranks", []).append(row["rank"])
    return out


def table(result: dict[str, Any]) -> str:
    header = [
        "case",
        "variant",
        "rank",
        "MACs",
        "MAC reduction (dense/new)",
        "latency ms",
        "measured speedup",
        "speedup range over runs",
        "efficiency (speedup/MAC red.)",
        "pays off",
        "rel. error",
    ]
    rows = [
        [
            r["case"],
            r["variant"],
            r["rank"] if r["rank"] is not None else "-",
            r["macs"],
            r["mac_reduction"],
            r["latency_ms"],
            r["speedup"],
            f"{r['speedup_min']:.2f}-{r['speedup_max']:.2f}",
            r["efficiency"],
            "-" if r["variant"] == "dense" else ("yes" if r["speedup"] > 1.0 else "NO"),
            f"{r['rel_error']:.2g}",
        ]
        for r in result["rows"]
    ]
    return format_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke run)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every timing (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per run (default 40, quick 3)")
    parser.add_argument("--runs", type=int, default=None, help="independent interleaved runs (default 5, quick 1)")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 40)
    result = run(args.quick, args.threads, repeats, args.runs or (1 if args.quick else 5))
    print(table(result))
    print(
        f"\n{result['threads']} torch thread(s); per run the median of {repeats} interleaved repeats, "
        f"median over {result['runs']} run(s); {result['wall_s']:.0f}s"
    )
    for k, v in result["targets"].items():
        print(f"{k}: {v}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("bench_lowrank_quick.json" if args.quick else "bench_lowrank.json")
    atomic_write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
