"""archkit.aeon's classifiers vs aeon's own, same names, same splits: accuracy and fit time.

For each bundled set (aeon's official train/test split, read offline from the installed aeon) and
seed, fits aeon's MiniRocketClassifier / MultiRocketClassifier / HydraClassifier and
archkit.aeon's classes of the same name with the same arguments (`random_state=seed`, `n_jobs=1`,
aeon's defaults otherwise; archkit's `device` from --device), one after the other (the order
alternates with the seed), and scores both on the test split. Times are CPU seconds of this process
(`time.process_time`, one thread: run with OMP_NUM_THREADS=1) for fit and for predict on the test
split; wall seconds are in the JSON too. Before a set is timed, each classifier is fitted once on a
slice of it (numba compiles aeon's kernels on first use; torch warms up too).

Unequal-length sets (JapaneseVowels) go to archkit as aeon hands them, a list of (C, T_i) series;
aeon's three cannot take them (capability:unequal_length is False), so they get the series
zero-padded at the end to the longest length of the set, as aeon's docs advise.

    OMP_NUM_THREADS=1 nice python benchmarks/bench_aeon_api.py          # 5 sets x 3 seeds (minutes)
    python benchmarks/bench_aeon_api.py --tiny                         # smoke run, numbers not meaningful
Writes benchmarks/results/bench_aeon_api.json (--tiny: bench_aeon_api_tiny.json).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

# aeon's numba kernels run on an OpenMP pool whose idle threads spin and starve torch in the same process
# (see bench_rocket.py); set before torch and numba load their OpenMP runtimes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

RESULTS = Path(__file__).parent / "results"
SETS = ("BasicMotions", "ItalyPowerDemand", "GunPoint", "ArrowHead", "JapaneseVowels")
CLASSIFIERS = ("MiniRocketClassifier", "MultiRocketClassifier", "HydraClassifier")
IMPLS = ("aeon", "archkit")
MAX_SEEDS = 20


def load(name: str) -> dict[str, Any]:
    """aeon's train/test split of a bundled set, as aeon's loader returns it (never downloaded)."""
    import aeon.datasets
    from aeon.datasets import load_classification

    bundled = Path(aeon.datasets.__file__).parent / "data"
    if not (bundled / name).is_dir():
        raise SystemExit(f"--sets: {name!r} is not bundled with the installed aeon (this script never downloads)")
    out: dict[str, Any] = {}
    for split in ("train", "test"):
        X, y = load_classification(name, split=split, extract_path=str(bundled))
        out[split] = (X, np.asarray(y))
    return out


def padded(data: dict[str, Any]) -> dict[str, Any] | None:
    """The set with every series zero-padded at the end to the set's longest, or None when already equal."""
    if all(isinstance(data[s][0], np.ndarray) for s in ("train", "test")):
        return None
    longest = max(x.shape[-1] for s in ("train", "test") for x in data[s][0])
    out = {}
    for s in ("train", "test"):
        X, y = data[s]
        arr = np.zeros((len(X), X[0].shape[0], longest), dtype=np.float64)
        for i, x in enumerate(X):
            arr[i, :, : x.shape[-1]] = x
        out[s] = (arr, y)
    return out


def make(impl: str, name: str, seed: int, device: str, tiny: bool) -> Any:
    """A fresh classifier: aeon's, or archkit.aeon's of the same name, with the same arguments."""
    if impl == "aeon":
        from aeon.classification import convolution_based as module
    else:
        import archkit.aeon as module
    kwargs: dict[str, Any] = {"random_state": seed, "n_jobs": 1}
    if tiny and name != "HydraClassifier":
        kwargs["n_kernels"] = 84
    if impl == "archkit":
        kwargs["device"] = device
    return getattr(module, name)(**kwargs)


def run_one(clf: Any, train: tuple[Any, Any], test: tuple[Any, Any]) -> dict[str, float]:
    """Fit on train, predict test: accuracy, CPU and wall seconds of each."""
    cpu, wall = time.process_time(), time.perf_counter()
    clf.fit(*train)
    fit_cpu, fit_wall = time.process_time() - cpu, time.perf_counter() - wall
    cpu, wall = time.process_time(), time.perf_counter()
    pred = clf.predict(test[0])
    return {
        "accuracy": float(np.mean(np.asarray(pred) == test[1])),
        "fit_cpu_s": fit_cpu,
        "fit_wall_s": fit_wall,
        "predict_cpu_s": time.process_time() - cpu,
        "predict_wall_s": time.perf_counter() - wall,
    }


def warm_up(data: dict[str, Any], pad: dict[str, Any] | None, device: str) -> None:
    """Fit every classifier once on a slice of the set, so first-use compilation stays out of the timings."""
    for impl in IMPLS:
        X, y = (pad or data)["train"] if impl == "aeon" else data["train"]
        keep = np.concatenate([np.flatnonzero(y == c)[:3] for c in np.unique(y)])
        part = (X[keep] if isinstance(X, np.ndarray) else [X[i] for i in keep], y[keep])
        for name in CLASSIFIERS:
            make(impl, name, 0, device, tiny=True).fit(*part)


def bench(sets: list[str], seeds: list[int], device: str, tiny: bool) -> list[dict[str, Any]]:
    """One record per (set, classifier, implementation, seed)."""
    records = []
    for set_name in sets:
        data = load(set_name)
        pad = padded(data)
        if tiny:  # a few cases per class, numbers not meaningful
            data = {s: _first(data[s], 10) for s in data}
            pad = None if pad is None else {s: _first(pad[s], 10) for s in pad}
        warm_up(data, pad, device)
        for seed in seeds:
            for name in CLASSIFIERS:
                order = IMPLS if seed % 2 == 0 else IMPLS[::-1]
                for impl in order:
                    split = pad if (impl == "aeon" and pad is not None) else data
                    r = run_one(make(impl, name, seed, device, tiny), split["train"], split["test"])
                    records.append({"set": set_name, "classifier": name, "impl": impl, "seed": seed, **r})
                    print(
                        f"{set_name:16s} {name:22s} {impl:7s} seed {seed}: acc {100 * r['accuracy']:.1f} %  "
                        f"fit {r['fit_cpu_s']:.2f} CPU s",
                        flush=True,
                    )
    return records


def _first(split: tuple[Any, Any], per_class: int) -> tuple[Any, Any]:
    X, y = split
    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)]))
    return (X[keep] if isinstance(X, np.ndarray) else [X[i] for i in keep], y[keep])


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean +- std over seeds per (set, classifier, impl); archkit's fit time as a ratio of aeon's."""
    from archkit.utils.tables import mean_std

    rows = []
    keys = list(dict.fromkeys((r["set"], r["classifier"]) for r in records))  # in the order they ran
    for set_name, name in keys:
        row: dict[str, Any] = {"set": set_name, "classifier": name}
        for impl in IMPLS:
            mine = [r for r in records if (r["set"], r["classifier"], r["impl"]) == (set_name, name, impl)]
            for field in ("accuracy", "fit_cpu_s", "predict_cpu_s"):
                m, s = mean_std([r[field] for r in mine])
                row[f"{impl}_{field}"] = m
                row[f"{impl}_{field}_std"] = s
            row["n_seeds"] = len(mine)
        row["fit_ratio"] = row["archkit_fit_cpu_s"] / max(row["aeon_fit_cpu_s"], 1e-9)
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    from archkit.utils import format_table

    header = [
        "set",
        "classifier",
        "aeon acc %",
        "archkit acc %",
        "aeon fit CPU s",
        "archkit fit CPU s",
        "fit ratio",
        "aeon predict CPU s",
        "archkit predict CPU s",
    ]
    body = [
        [
            r["set"],
            r["classifier"],
            f"{100 * r['aeon_accuracy']:.1f} +- {100 * r['aeon_accuracy_std']:.1f}",
            f"{100 * r['archkit_accuracy']:.1f} +- {100 * r['archkit_accuracy_std']:.1f}",
            f"{r['aeon_fit_cpu_s']:.2f}",
            f"{r['archkit_fit_cpu_s']:.2f}",
            f"{r['fit_ratio']:.2f}",
            f"{r['aeon_predict_cpu_s']:.2f}",
            f"{r['archkit_predict_cpu_s']:.2f}",
        ]
        for r in rows
    ]
    return format_table(header, body)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=list(SETS), help=f"bundled aeon sets (default: {' '.join(SETS)})")
    p.add_argument("--seeds", type=int, default=3, help=f"seeds 0..N-1 (1..{MAX_SEEDS}; default 3)")
    p.add_argument("--device", default="cpu", help="archkit's device (default cpu; aeon's run on the CPU)")
    p.add_argument("--tiny", action="store_true", help="smoke run: 10 cases per class, 84 kernels, 1 seed")
    p.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results/...)")
    args = p.parse_args(argv)
    if not 1 <= args.seeds <= MAX_SEEDS:
        p.error(f"--seeds: expected an int in [1, {MAX_SEEDS}], got {args.seeds}")
    from archkit.estimators.accel import check_accel

    try:
        check_accel(args.device, "32")
    except ValueError as e:
        p.error(str(e).replace("device:", "--device:", 1))
    import aeon
    import sklearn
    import torch

    from archkit.io import atomic_write_json

    seeds = list(range(1 if args.tiny else args.seeds))
    records = bench(args.sets, seeds, args.device, args.tiny)
    rows = summarize(records)
    print(table(rows))
    out = args.out or RESULTS / ("bench_aeon_api_tiny.json" if args.tiny else "bench_aeon_api.json")
    atomic_write_json(
        out,
        {
            "command": "python benchmarks/bench_aeon_api.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "conditions": {
                "torch_threads": torch.get_num_threads(),
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                "cpu_count": os.cpu_count(),
                "device": args.device,
                "versions": {"aeon": aeon.__version__, "torch": torch.__version__, "sklearn": sklearn.__version__},
                "python": platform.python_version(),
                "tiny": args.tiny,
            },
            "summary": rows,
            "runs": records,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
