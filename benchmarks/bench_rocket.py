"""MiniRocket transform throughput: archkit's torch module vs aeon's numba MiniRocket, and memory over streamed shards.

Measures, in one run:
1. cases/s of the transform on (N, C, T) = (16, 8, 8192) random series, aeon (numba, n_jobs = --threads)
   and archkit (torch, --threads intra-op threads) with each `method` ("exact": aeon's sums, "conv":
   one matrix product per case and dilation), timed round-robin
   (`archkit.surgery.interleaved_latency`) so machine noise hits all alike; all from the same fitted
   parameters (`MiniRocket.from_aeon`), and each method's features compared with aeon's;
2. with --hydra: the same for Hydra (8 kernels x 64 groups per dilation): aeon's HydraTransformer (torch
   conv1d over the batch) and archkit's `Hydra.from_aeon` of it (per case, matrix products), interleaved;
3. with --rss: the peak resident memory that transforming N and 4N cases of streamed .npy shards
   adds (a fresh process each, `archkit.surgery.peak_rss_growth_mib`; features written to a file).

    python benchmarks/bench_rocket.py                  # the real run (a few minutes on 2 busy cores)
    python benchmarks/bench_rocket.py --rss            # + the memory check
    python benchmarks/bench_rocket.py --hydra          # + Hydra, aeon's and archkit's
    python benchmarks/bench_rocket.py --tiny           # smoke run, numbers not meaningful
Writes benchmarks/results/bench_rocket.json (--tiny: bench_rocket_tiny.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# aeon's numba kernels run on an OpenMP pool whose idle threads spin; in the same process they starved
# torch (archkit's transform ran 50x slower right after an aeon call, 2 cores). Idle threads that sleep
# make the interleaved timing fair to both; set before torch and numba load their OpenMP runtimes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"


def throughput(
    n: int,
    length: int,
    channels: int,
    num_features: int,
    threads: int,
    repeats: int,
    device: str = "cpu",
    aeon_n: int | None = None,
    methods: tuple[str, ...] = ("exact", "conv"),
) -> dict[str, Any]:
    """Cases/s of aeon's transform (CPU) and archkit's (on `device`, each of `methods`), interleaved, from one
    set of parameters: cases_per_s keys "aeon" and "archkit_<method>".

    `aeon_n` (default n): aeon transforms only the first aeon_n cases (a GPU batch can be larger than
    what the CPU should be timed on); throughputs are per case either way.
    """
    from aeon.transformations.collection.convolution_based import MiniRocket as AeonMiniRocket

    from archkit.layers.rocket import MiniRocket
    from archkit.surgery import interleaved_latency
    from archkit.train.accelerate import create_accelerator

    torch.set_num_threads(threads)
    x = np.random.default_rng(0).standard_normal((n, channels, length)).astype(np.float32)
    aeon = AeonMiniRocket(n_kernels=num_features, n_jobs=threads, random_state=0).fit(x)
    accel = create_accelerator(device)
    xt = accel.to_device(torch.from_numpy(x))

    def runner(module: torch.nn.Module) -> Any:
        def run() -> np.ndarray:
            with torch.no_grad():
                return module(xt).cpu().numpy()

        return run

    xa = x[: aeon_n or n]
    t0 = time.perf_counter()
    ref = aeon.transform(xa)  # numba compiles on first use: warm everything up before timing
    warm = time.perf_counter() - t0
    fns: dict[str, Any] = {"aeon": lambda: aeon.transform(xa)}
    diffs = {}
    for method in methods:
        fns[f"archkit_{method}"] = runner(accel.prepare(MiniRocket.from_aeon(aeon, method=method)).eval())
        diffs[method] = np.abs(fns[f"archkit_{method}"]()[: len(xa)] - ref)
    seconds = interleaved_latency(fns, repeats=repeats, warmup=0)
    speed = {k: (len(xa) if k == "aeon" else n) / v for k, v in seconds.items()}
    return {
        "shape": [n, channels, length],
        "num_features": int(ref.shape[1]),
        "threads": threads,
        "device": str(accel.describe()["device"]),
        "cases_per_s": speed,
        "ratio_over_aeon": {k: v / speed["aeon"] for k, v in speed.items() if k != "aeon"},
        "aeon_warmup_s": warm,
        "features_differing_fraction": {m: float((d > 1e-6).mean()) for m, d in diffs.items()},
        "features_max_abs_diff": {m: float(d.max()) for m, d in diffs.items()},
        "features_relative_diff": {m: float(np.linalg.norm(d) / np.linalg.norm(ref)) for m, d in diffs.items()},
    }


def hydra_throughput(n: int, length: int, channels: int, threads: int, repeats: int) -> dict[str, Any]:
    """Cases/s of aeon's HydraTransformer and archkit's Hydra (same kernels, CPU), interleaved; features compared."""
    from aeon.transformations.collection.convolution_based import HydraTransformer

    from archkit.layers.hydra import Hydra
    from archkit.surgery import interleaved_latency

    torch.set_num_threads(threads)
    x = np.random.default_rng(0).standard_normal((n, channels, length)).astype(np.float32)
    aeon = HydraTransformer(n_jobs=threads, random_state=0).fit(x)
    module = Hydra.from_aeon(aeon).eval()
    xt = torch.from_numpy(x)
    torch.set_num_threads(threads)  # aeon's fit sets torch's thread count to its n_jobs

    def ours() -> np.ndarray:
        with torch.no_grad():
            return module(xt).numpy()

    ref = aeon.transform(x).numpy()
    diff = np.abs(ours() - ref)
    seconds = interleaved_latency({"aeon": lambda: aeon.transform(x), "archkit": ours}, repeats=repeats, warmup=0)
    speed = {k: n / v for k, v in seconds.items()}
    return {
        "shape": [n, channels, length],
        "num_features": int(ref.shape[1]),
        "threads": threads,
        "cases_per_s": speed,
        "ratio_over_aeon": speed["archkit"] / speed["aeon"],
        "features_relative_diff": float(np.linalg.norm(diff) / np.linalg.norm(ref)),
        "features_max_abs_diff": float(diff.max()),
    }


RSS_CHILD = """
import json, sys
import numpy as np
from archkit.data.sequences import open_shards
from archkit.layers.rocket import MiniRocket
from archkit.surgery import peak_rss_growth_mib
from archkit.train.rocket import transform_shards

folder, out, features = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open_shards(folder)
first = np.asarray(data.shards[0].x[:8]).transpose(0, 2, 1)
module = MiniRocket.fit(first, num_features=features, seed=0)
growth = peak_rss_growth_mib(lambda: transform_shards(module, data, "cpu", batch_size=8, out=out, overwrite=True))
print(json.dumps({"rss_growth_mib": growth, "cases": len(data)}))
"""


def rss_check(n: int, length: int, channels: int, num_features: int, shard_cases: int) -> dict[str, Any]:
    """Peak RSS added by transforming n and 4n streamed cases (fresh process each)."""
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench_rocket_") as tmp:
        rng = np.random.default_rng(0)
        folder = Path(tmp) / "shards"
        folder.mkdir()
        for count in (n, 4 * n):
            for f in folder.iterdir():
                f.unlink()
            for k, start in enumerate(range(0, count, shard_cases)):
                m = min(shard_cases, count - start)
                np.save(folder / f"s{k:04d}_x.npy", rng.standard_normal((m, length, channels)).astype(np.float32))
                np.save(folder / f"s{k:04d}_y.npy", np.zeros(m, np.int64))
            proc = subprocess.run(
                [sys.executable, "-c", RSS_CHILD, str(folder), str(Path(tmp) / "f.npy"), str(num_features)],
                capture_output=True,
                text=True,
                timeout=3600,
            )
            if proc.returncode:
                raise RuntimeError(proc.stderr[-2000:])
            rows[count] = json.loads(proc.stdout.strip().splitlines()[-1])
    small, large = rows[n]["rss_growth_mib"], rows[4 * n]["rss_growth_mib"]
    return {
        "cases": [n, 4 * n],
        "series_mib": [c * length * channels * 4 / 2**20 for c in (n, 4 * n)],
        "rss_growth_mib": [small, large],
        "ratio_4n_over_n": large / small if small > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16, help="cases per timed transform")
    p.add_argument("--length", type=int, default=8192)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--num-features", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rss", action="store_true", help="also measure peak RSS at N and 4N streamed cases")
    p.add_argument("--hydra", action="store_true", help="also time Hydra: aeon's HydraTransformer and archkit's")
    p.add_argument("--rss-n", type=int, default=64)
    p.add_argument("--tiny", action="store_true", help="tiny sizes: exercises the code, numbers not meaningful")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    for name in ("n", "length", "channels", "num_features", "threads", "repeats", "rss_n"):
        value, high = getattr(a, name), {"length": 1 << 20, "num_features": 1_000_000}.get(name, 100_000)
        if not 1 <= value <= high:
            p.error(f"--{name.replace('_', '-')}: expected an int in [1, {high}], got {value}")
    if a.tiny:
        a.n, a.length, a.num_features, a.repeats, a.rss_n = 4, 256, 168, 2, 8
    out = a.out or RESULTS / ("bench_rocket_tiny.json" if a.tiny else "bench_rocket.json")
    from archkit.io import atomic_write_json
    from archkit.utils import format_table

    result: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "torch": torch.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }
    t = throughput(a.n, a.length, a.channels, a.num_features, a.threads, a.repeats)
    result["throughput"] = t
    rows = [[k, f"{v:.2f}", f"{v / t['cases_per_s']['aeon']:.2f}x"] for k, v in t["cases_per_s"].items()]
    print(f"MiniRocket transform on {tuple(t['shape'])}, {t['num_features']} features, {a.threads} threads")
    print(format_table(["transform", "cases/s", "vs aeon"], rows))
    for m, frac in t["features_differing_fraction"].items():
        print(f"features vs aeon, {m}: {frac:.2e} differ, max |diff| {t['features_max_abs_diff'][m]:.3g}")
    if a.hydra:
        h = hydra_throughput(a.n, a.length, a.channels, a.threads, a.repeats)
        result["hydra"] = h
        print(f"Hydra transform on {tuple(h['shape'])}, {h['num_features']} features, {a.threads} threads")
        print(format_table(["transform", "cases/s"], [[k, f"{v:.2f}"] for k, v in h["cases_per_s"].items()]))
        print(
            f"archkit / aeon: {h['ratio_over_aeon']:.2f}x; features vs aeon: {h['features_relative_diff']:.2e} relative"
        )
    if a.rss:
        r = rss_check(a.rss_n, a.length, a.channels, a.num_features, shard_cases=max(a.rss_n // 4, 1))
        result["rss"] = r
        print(
            format_table(
                ["cases", "series MiB", "peak RSS growth MiB"],
                [[c, f"{s:.0f}", f"{g:.0f}"] for c, s, g in zip(r["cases"], r["series_mib"], r["rss_growth_mib"])],
            )
        )
        print(f"peak RSS growth at 4N / at N: {r['ratio_4n_over_n']}")
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
