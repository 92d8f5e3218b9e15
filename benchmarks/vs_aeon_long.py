"""`bench_sequences.py --vs aeon --long`: archkit's sequence models next to aeon's ROCKET family, 3 seeds.

Data: the two long tasks of archkit.data.real_tasks (T=8192, 8 channels, 4 classes, built from series
bundled with aeon; train and test from disjoint source series; the seed changes both the source split
and the cases) and the six bundled UCR/UEA sets on their official splits.
Rows: archkit LSTM on raw steps, archkit LSTM with a conv front end, archkit ROCKET (RocketClassifier;
"-padded": on series zero-padded to one length, as aeon's rows get unequal ones; "-streamed": fitted by
`fit_shards`, features streamed into a ridge chosen by GCV), archkit auto
(AutoSequenceClassifier: stratified 3-fold CV on the train split), aeon MiniRocket, MultiRocket,
MultiRocketHydra, Hydra and QUANT (aeon's defaults, one thread; unequal series zero-padded to one length).
Each (method, data, seed) is one fit on the train split and one prediction of the test split: accuracy,
fit seconds, predict milliseconds per case.
Results are written after every fit and a rerun skips what is already there, so runs can be split
across invocations (--methods, --data) and merged (--summarize).
LSTM budgets are bounded (LSTM_EPOCHS) so a run fits on a shared 2-core CPU; the cost is stated with the figures.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

LONG = ["needle", "order"]
SETS = ["BasicMotions", "ItalyPowerDemand", "GunPoint", "ArrowHead", "JapaneseVowels", "OSULeaf"]
METHODS = [
    "archkit-lstm",
    "archkit-lstm-conv",
    "archkit-rocket",
    "archkit-rocket-padded",
    "archkit-rocket-streamed",
    "archkit-hydra",
    "archkit-rocket-hydra",
    "archkit-multirocket",
    "archkit-multirocket-hydra",
    "archkit-auto",
    "aeon-minirocket",
    "aeon-multirocket",
    "aeon-multirocket-hydra",
    "aeon-hydra",
    "aeon-quant",
]
# aeon's rows: estimator class by row (QUANT is interval-based, the others convolution-based).
AEON = {
    "aeon-minirocket": "convolution_based.MiniRocketClassifier",
    "aeon-multirocket": "convolution_based.MultiRocketClassifier",
    "aeon-multirocket-hydra": "convolution_based.MultiRocketHydraClassifier",
    "aeon-hydra": "convolution_based.HydraClassifier",
    "aeon-quant": "interval_based.QUANTClassifier",
}
# Runs written before "aeon-hydra" meant HydraClassifier (7 Dec 2026) named MultiRocketHydra so; their
# runs carry no "estimator" and summarize() files them under aeon-multirocket-hydra.
LEGACY_AEON_HYDRA = "aeon-multirocket-hydra"
LONG_SIZES = {"n_train": 96, "n_test": 48, "length": 8192}
# Epochs of the LSTM rows and of auto's LSTM candidates (bounded for a shared 2-core CPU: see the docs).
LSTM_EPOCHS = {"long-raw": 3, "long-conv": 20, "sets": 10}
QUICK = {"n_train": 24, "n_test": 16, "length": 512, "epochs": 1}
LONG_RAW = dict(frontend="none", fcn_channels=0, hidden=64, layers=1, bidirectional=False, pool="last", batch_size=16)


def load(data: str, seed: int, quick: bool) -> tuple[Any, np.ndarray, Any, np.ndarray, int]:
    """(x_train, y_train, x_test, y_test, steps): (n, T, C) arrays, or lists of (T_i, C) series for unequal lengths."""
    if data in LONG:
        from archkit.data.real_tasks import make_real_task

        s = QUICK if quick else LONG_SIZES
        xtr, ytr = make_real_task(data, s["n_train"], seed=seed, split="train", length=s["length"])
        xte, yte = make_real_task(data, s["n_test"], seed=seed, split="test", length=s["length"])
        return xtr, ytr, xte, yte, s["length"]
    from archkit.data import load_real_dataset

    d = load_real_dataset(data)
    if len(set(d.lengths_train.tolist()) | set(d.lengths_test.tolist())) > 1:
        series = lambda x, n: [x[i, : n[i]] for i in range(len(x))]  # noqa: E731
        return (
            series(d.x_train, d.lengths_train),
            d.y_train,
            series(d.x_test, d.lengths_test),
            d.y_test,
            int(max(d.lengths_train.max(), d.lengths_test.max())),
        )
    return d.x_train, d.y_train, d.x_test, d.y_test, int(d.x_train.shape[1])


def _aeon_array(x: Any, steps: int) -> np.ndarray:
    """aeon's (n, channels, T), zero-padded to `steps` when the series have unequal lengths."""
    if isinstance(x, list):
        x = np.stack([np.pad(s, ((0, steps - len(s)), (0, 0))) for s in x])
    return np.ascontiguousarray(x.transpose(0, 2, 1))


def make(method: str, data: str, seed: int, steps: int, quick: bool) -> Any:
    """The estimator of one row (unfitted)."""
    from archkit.estimators import LSTMClassifier

    long = data in LONG
    epochs = {k: QUICK["epochs"] if quick else v for k, v in LSTM_EPOCHS.items()}
    if method == "archkit-lstm":
        if long:
            return LSTMClassifier(epochs=epochs["long-raw"], random_state=seed, **LONG_RAW)
        return LSTMClassifier(epochs=epochs["sets"], frontend="none", fcn_channels=0, random_state=seed)
    if method == "archkit-lstm-conv":
        from archkit.estimators.auto import make_candidate

        return make_candidate("lstm-conv", steps, epochs["long-conv" if long else "sets"], 10_000, "auto", "32", seed)
    if method in ("archkit-rocket", "archkit-rocket-padded", "archkit-rocket-streamed"):
        from archkit.estimators import RocketClassifier

        return RocketClassifier(random_state=seed)
    if method in ("archkit-hydra", "archkit-rocket-hydra"):
        from archkit.estimators import RocketClassifier

        features = "hydra" if method == "archkit-hydra" else "minirocket+hydra"
        return RocketClassifier(features=features, random_state=seed)
    if method in ("archkit-multirocket", "archkit-multirocket-hydra"):
        from archkit.estimators.auto import make_candidate

        name = "multirocket" if method == "archkit-multirocket" else "multirocket-hydra"
        return make_candidate(name, steps, 1, 10_000, "auto", "32", seed)  # 50,000 features, as aeon's
    if method == "archkit-auto":
        from archkit.estimators import AutoSequenceClassifier

        return AutoSequenceClassifier(lstm_epochs=epochs["long-conv" if long else "sets"], cv=3, random_state=seed)
    if method in AEON:
        cls = aeon_class(method)
        if cls is None:
            raise ValueError(f"method: {method!r} needs {AEON[method]}, which the installed aeon lacks")
        threads = {} if method == "aeon-quant" else {"n_jobs": 1}  # QUANTClassifier takes no n_jobs
        return cls(random_state=seed, **threads)
    raise ValueError(f"method: unknown {method!r}; expected one of {METHODS}")


def _as_data(x: Any, y: np.ndarray) -> Any:
    """(n, T, C) array or list of (T_i, C) series as SequenceData (zero-padded, true lengths kept)."""
    from archkit.data.sequences import from_arrays
    from archkit.estimators import as_padded_series

    padded, lengths, _ = as_padded_series(x, "ntc")
    return from_arrays(padded, y, lengths)


def aeon_class(method: str) -> Any:
    """aeon's estimator class of an aeon row, or None when the installed aeon does not have it."""
    import importlib

    module, name = AEON[method].rsplit(".", 1)
    try:
        return getattr(importlib.import_module(f"aeon.classification.{module}"), name)
    except (ImportError, AttributeError):
        return None


def fit_one(method: str, data: str, seed: int, quick: bool) -> dict[str, Any]:
    xtr, ytr, xte, yte, steps = load(data, seed, quick)
    clf = make(method, data, seed, steps, quick)
    if method.startswith("aeon-"):
        xtr, xte = _aeon_array(xtr, steps), _aeon_array(xte, steps)
    elif method == "archkit-rocket-padded":  # what aeon's rows see: unequal series zero-padded to one length
        xtr, xte = (_aeon_array(x, steps).transpose(0, 2, 1) for x in (xtr, xte))
    wall, cpu = time.perf_counter(), time.process_time()
    if method == "archkit-rocket-streamed":  # RocketClassifier.fit_shards: streamed features, ridge by GCV
        clf.fit_shards(_as_data(xtr, ytr))
    else:
        clf.fit(xtr, ytr)
    fit_s, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
    t0 = time.perf_counter()
    pred = clf.predict(xte)
    predict_s = time.perf_counter() - t0
    out = {
        "accuracy": 100 * float(np.mean(pred == yte)),
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu,
        "predict_ms_per_case": 1000 * predict_s / len(yte),
        "n_train": len(ytr),
        "n_test": len(yte),
        "steps": steps,
    }
    if method.startswith("aeon-"):
        out["estimator"] = type(clf).__name__
    if method == "archkit-auto":
        out.update(chosen=clf.best_name_, tied_with=clf.tied_with_, cv=clf.cv_results_, folds=clf.n_splits_)
    return out


def run(
    out: Path, methods: list[str], datas: list[str], seeds: int, quick: bool, first_seed: int = 0
) -> dict[str, Any]:
    """Fit seeds first_seed .. seeds - 1 (a second process can take the later seeds, with its own `out`)."""
    from archkit.io import atomic_write_json

    res: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    res.update(
        {
            "quick": quick,
            "seeds": seeds,
            "long_sizes": QUICK if quick else LONG_SIZES,
            "lstm_epochs": LSTM_EPOCHS,
            "threads": os.environ.get("OMP_NUM_THREADS"),
            "note": __doc__.split("\n\n")[1],
        }
    )
    res.setdefault("runs", {})
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown {unknown}; expected some of {METHODS}")
    for m in [m for m in methods if m in AEON and aeon_class(m) is None]:
        print(f"{m} left out: {AEON[m]} is not in the installed aeon", flush=True)
        methods = [x for x in methods if x != m]
    for seed in range(first_seed, seeds):
        for data in datas:
            for method in methods:
                key = f"{method}/{data}/{seed}"
                if key in res["runs"]:
                    continue
                r = fit_one(method, data, seed, quick)
                res["runs"][key] = r
                extra = f" chose {r['chosen']}" if "chosen" in r else ""
                print(
                    f"  {key}: {r['accuracy']:.1f}% fit {r['fit_s']:.0f}s predict {r['predict_ms_per_case']:.1f} ms/case{extra}",
                    flush=True,
                )
                atomic_write_json(out, res)
    return res


def summarize(files: list[Path]) -> dict[str, Any]:
    """Merge run files into per-(method, data) means over seeds, and check the targets."""
    merged: dict[str, Any] = {"runs": {}, "sources": [str(f) for f in files]}
    for f in files:
        r = json.loads(f.read_text())
        for key, run in r.get("runs", {}).items():
            if key.startswith("aeon-hydra/") and "estimator" not in run:
                key = LEGACY_AEON_HYDRA + key[len("aeon-hydra") :]
            merged["runs"][key] = run
        for k in ("quick", "seeds", "long_sizes", "lstm_epochs", "threads", "note"):
            merged.setdefault(k, r.get(k))
    table: dict[str, dict[str, Any]] = {}
    for key, r in merged["runs"].items():
        method, data, _ = key.split("/")
        cell = table.setdefault(data, {}).setdefault(method, {"runs": [], "fit_s": [], "predict_ms": [], "chosen": []})
        cell["runs"].append(r["accuracy"])
        cell["fit_s"].append(r["fit_s"])
        cell["predict_ms"].append(r["predict_ms_per_case"])
        if "chosen" in r:
            cell["chosen"].append(r["chosen"])
    for cells in table.values():
        for cell in cells.values():
            cell.update(
                accuracy_mean=float(np.mean(cell["runs"])),
                accuracy_std=float(np.std(cell["runs"])),
                fit_s_mean=float(np.mean(cell["fit_s"])),
                predict_ms_mean=float(np.mean(cell["predict_ms"])),
            )
    merged["per_data"] = table
    targets: dict[str, Any] = {}
    sets = [s for s in SETS if {"archkit-auto", "aeon-minirocket"} <= set(table.get(s, {}))]
    if sets:
        a = float(np.mean([table[s]["archkit-auto"]["accuracy_mean"] for s in sets]))
        m = float(np.mean([table[s]["aeon-minirocket"]["accuracy_mean"] for s in sets]))
        targets["sets_auto_vs_minirocket"] = {"sets": sets, "auto": a, "minirocket": m, "met": a >= m}
    for t in LONG:
        if {"archkit-auto", "aeon-multirocket"} <= set(table.get(t, {})):
            a, m = table[t]["archkit-auto"]["accuracy_mean"], table[t]["aeon-multirocket"]["accuracy_mean"]
            targets[f"{t}_auto_vs_multirocket"] = {"auto": a, "multirocket": m, "met": a >= m}
    merged["targets"] = targets
    merged["averages"] = averages(table)
    return merged


def averages(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each row's mean accuracy over the six sets, the two long tasks and all eight (rows measured on all eight),
    and whether archkit's auto is at or above every aeon row on all eight."""
    rows: dict[str, Any] = {}
    for method in METHODS:
        if all(method in table.get(d, {}) for d in LONG + SETS):
            acc = {d: table[d][method]["accuracy_mean"] for d in LONG + SETS}
            rows[method] = {
                "sets": float(np.mean([acc[d] for d in SETS])),
                "long": float(np.mean([acc[d] for d in LONG])),
                "all": float(np.mean(list(acc.values()))),
            }
    out: dict[str, Any] = {"data": LONG + SETS, "rows": rows}
    aeon = {m: v["all"] for m, v in rows.items() if m in AEON}
    if "archkit-auto" in rows and aeon:
        auto = rows["archkit-auto"]["all"]
        out["auto_at_or_above_every_aeon_row"] = all(auto >= v for v in aeon.values())
        out["aeon_rows_above_auto"] = {m: v - auto for m, v in aeon.items() if v > auto}
    return out


def markdown(s: dict[str, Any]) -> str:
    """The docs' tables: every row on the long tasks, auto next to aeon's rows on the sets, and the averages."""
    from archkit.utils import markdown_table

    t = s["per_data"]

    def cell(c: dict[str, Any]) -> str:
        return f"{c['accuracy_mean']:.1f} ± {c['accuracy_std']:.1f}"

    def chose(c: dict[str, Any], of: str = "") -> str:  # auto's choices over the seeds, e.g. "rocket (2 of 3)"
        return ", ".join(f"{n} ({c['chosen'].count(n)}{of})" for n in sorted(set(c["chosen"])))

    def long_row(d: str, m: str, c: dict[str, Any]) -> list[Any]:
        n, fit, ms = len(c["runs"]), c["fit_s_mean"], c["predict_ms_mean"]
        return [d, m, cell(c), n, f"{fit:.0f}", f"{ms:.0f}", chose(c, f" of {n}")]

    long_rows = [long_row(d, m, c) for d in LONG if d in t for m, c in t[d].items()]
    long_rows.sort(key=lambda r: (LONG.index(r[0]), METHODS.index(r[1])))
    header = ["data", "method", "accuracy % (mean ± std)", "seeds", "fit s", "predict ms/case", "auto chose"]
    parts = [markdown_table(header, long_rows)]
    aeon = [m for m in AEON if any(m in t.get(d, {}) for d in SETS)]
    no_auto = {"chosen": []}
    set_rows = [
        [d, cell(t[d]["archkit-auto"]) if "archkit-auto" in t[d] else "-", chose(t[d].get("archkit-auto", no_auto))]
        + [cell(t[d][m]) if m in t[d] else "-" for m in aeon]
        for d in SETS
        if d in t
    ]
    parts.append(markdown_table(["set", "archkit auto", "auto chose", *aeon], set_rows))
    avg = s["averages"]["rows"]
    rows = [[m, f"{v['sets']:.2f}", f"{v['long']:.2f}", f"{v['all']:.2f}"] for m, v in avg.items()]
    parts.append(markdown_table(["row", "6 sets", "2 long tasks", "all 8"], rows))
    return "\n\n".join(parts)


def print_summary(s: dict[str, Any]) -> None:
    """The summary as the docs' tables (every row on the long tasks, the sets, the averages), then the targets."""
    print(markdown(s))
    for name, t in s["targets"].items():
        print(f"target {name}: {json.dumps(t)}")


def main(argv: list[str] | None = None) -> None:
    import argparse

    from archkit.io import atomic_write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, numbers not meaningful")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--data", default=",".join(LONG + SETS), help="comma list of long tasks and bundled sets")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--first-seed", type=int, default=0, help="start at this seed (seeds first..seeds-1; split seeds across runs)"
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="summary JSON (default results/bench_sequences_vs_aeon_long.json)"
    )
    ap.add_argument("--summarize", nargs="+", type=Path, default=None, help="merge these run files, print, write --out")
    ap.add_argument("--markdown", action="store_true", help="(the tables are always printed; kept for old commands)")
    ap.add_argument("--picture", type=Path, default=None, help="only draw a few cases per class of each long task here")
    ap.add_argument(
        "--rss",
        type=Path,
        default=None,
        metavar="CACHE",
        help="only the memory check: write needle shards (512 and 2048 cases) under CACHE and stream them",
    )
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from _long_checks import picture, rss_check

    if args.rss:
        res = rss_check(args.rss)
        dest = Path(__file__).parent / "results" / "bench_sequences_long_rss.json"
        atomic_write_json(dest, res)
        print(
            f"peak RSS growth 4N / N: {res['ratio_peak_rss']:.2f} (anonymous memory: {res['ratio_anon']:.2f}); wrote {dest}"
        )
        return
    if args.picture:
        print(f"wrote {picture(args.picture)}")
        return
    out = args.out or Path(__file__).parent / "results" / (
        "bench_sequences_vs_aeon_long" + ("_quick" if args.quick else "") + ".json"
    )
    if args.summarize:
        summary = summarize(args.summarize)
    else:
        runs = out.with_name(out.stem + ".runs.json")
        run(runs, args.methods.split(","), args.data.split(","), args.seeds, args.quick, args.first_seed)
        summary = summarize([runs])
    atomic_write_json(out, summary)
    print_summary(summary)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
