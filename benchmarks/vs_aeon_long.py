"""`bench_sequences.py --vs aeon --long`: archkit's sequence models next to aeon's ROCKET family, 3 seeds.

Data: the two long tasks of archkit.data.real_tasks (T=8192, 8 channels, 4 classes, built from series
bundled with aeon; train and test from disjoint source series; the seed changes both the source split
and the cases) and the six bundled UCR/UEA sets on their official splits.
Rows: archkit LSTM on raw steps, archkit LSTM with a conv front end, archkit ROCKET (RocketClassifier;
"-padded": on series zero-padded to one length, as aeon's rows get unequal ones; "-streamed": fitted by
`fit_shards`, features streamed into a ridge chosen by GCV), archkit auto
(AutoSequenceClassifier: stratified 3-fold CV on the train split), aeon MiniRocket, aeon MultiRocket
and aeon MultiRocketHydra (when installed). Each (method, data, seed) is one fit on the train split and
one prediction of the test split: accuracy, fit seconds, predict milliseconds per case.
Results are written after every fit and a rerun skips what is already there, so runs can be split
across invocations (--methods, --data) and merged (--summarize).
LSTM budgets are bounded (LSTM_EPOCHS) so a run fits on a shared 2-core CPU; the cost is stated with the figures.
"""

from __future__ import annotations

import json
import os
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
    "aeon-hydra",
]
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
    from aeon.classification import convolution_based as cb

    if method == "aeon-minirocket":
        return cb.MiniRocketClassifier(random_state=seed, n_jobs=1)
    if method == "aeon-multirocket":
        return cb.MultiRocketClassifier(random_state=seed, n_jobs=1)
    if method == "aeon-hydra":
        return cb.MultiRocketHydraClassifier(random_state=seed, n_jobs=1)
    raise ValueError(f"method: unknown {method!r}; expected one of {METHODS}")


def _as_data(x: Any, y: np.ndarray) -> Any:
    """(n, T, C) array or list of (T_i, C) series as SequenceData (zero-padded, true lengths kept)."""
    from archkit.data.sequences import from_arrays
    from archkit.estimators import as_padded_series

    padded, lengths, _ = as_padded_series(x, "ntc")
    return from_arrays(padded, y, lengths)


def hydra_available() -> bool:
    try:
        from aeon.classification.convolution_based import MultiRocketHydraClassifier  # noqa: F401
    except ImportError:
        return False
    return True


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
    if "aeon-hydra" in methods and not hydra_available():
        print("aeon-hydra left out: MultiRocketHydraClassifier is not in the installed aeon", flush=True)
        methods = [m for m in methods if m != "aeon-hydra"]
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
        merged["runs"].update(r.get("runs", {}))
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
    return merged


def print_summary(s: dict[str, Any]) -> None:
    from archkit.utils import format_table

    rows = []
    for data in [d for d in LONG + SETS if d in s["per_data"]]:
        for method in [m for m in METHODS if m in s["per_data"][data]]:
            c = s["per_data"][data][method]
            chosen = ",".join(sorted(set(c["chosen"]))) if c["chosen"] else ""
            rows.append(
                [
                    data,
                    method,
                    f"{c['accuracy_mean']:.1f} +- {c['accuracy_std']:.1f} (n={len(c['runs'])})",
                    c["fit_s_mean"],
                    c["predict_ms_mean"],
                    chosen,
                ]
            )
    print(format_table(["data", "method", "accuracy %", "fit s", "predict ms/case", "auto chose"], rows))
    for name, t in s["targets"].items():
        print(f"target {name}: {json.dumps(t)}")


def picture(path: Path, per_class: int = 2, seed: int = 0, length: int = 8192) -> Path:
    """A PNG of `per_class` test cases per class for each long task (channels stacked, one panel per case)."""
    from archkit.data.real_tasks import INFO, make_real_task
    from archkit.utils import new_figure, save_figure

    fig, axes = new_figure(len(LONG) * 4, per_class, figsize=(6 * per_class, 1.6 * 4 * len(LONG)), squeeze=False)
    for ti, task in enumerate(LONG):
        x, y = make_real_task(task, 64, seed=seed, split="test", length=length)
        for c in range(4):
            for j, i in enumerate(np.flatnonzero(y == c)[:per_class]):
                ax = axes[ti * 4 + c, j]
                for ch in range(x.shape[2]):
                    ax.plot(x[i, :, ch] + 3 * ch, lw=0.3)
                ax.set_yticks([])
                ax.set_title(f"{task}: class {c} ({INFO[task].classes[c]})", fontsize=8)
    return save_figure(fig, path)


RSS_SIZES = (512, 2048)  # training cases at T=8192: 128 MiB and 512 MiB of .npy shards
RSS_FEATURES = (
    84  # MiniRocket features for the memory check (time on a loaded box; memory per batch does not grow with N)
)


def _rss_probe(folder: str, features_out: str) -> None:
    """(subprocess) transform every training shard of `folder` to a features file; print peak RSS growth as JSON."""
    import threading

    from archkit.data import open_shards
    from archkit.layers.rocket import MiniRocket
    from archkit.surgery import peak_rss_growth_mib
    from archkit.train.rocket import transform_shards

    data = open_shards(Path(folder) / "train")
    x0 = np.ascontiguousarray(data.shards[0].x[:64].transpose(0, 2, 1), dtype=np.float32)
    module = MiniRocket.fit(x0, None, RSS_FEATURES, 32, seed=0)
    anon = {"peak_kib": 0}
    stop = threading.Event()

    def sample() -> None:  # anonymous (heap) memory, apart from the file pages the memory maps bring in
        while not stop.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    anon["peak_kib"] = max(anon["peak_kib"], int(line.split()[1]))
            stop.wait(0.05)

    start_anon = int(
        next(ln.split()[1] for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("RssAnon:"))
    )
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    growth = peak_rss_growth_mib(
        lambda: transform_shards(module, data, "cpu", batch_size=32, out=features_out, overwrite=True)
    )
    wall = time.perf_counter() - t0
    stop.set()
    t.join()
    print(
        json.dumps(
            {
                "n": len(data),
                "peak_rss_growth_mib": growth,
                "anon_growth_mib": (anon["peak_kib"] - start_anon) / 1024,
                "seconds": wall,
            }
        )
    )


def rss_check(cache: Path) -> dict[str, Any]:
    """Peak RSS of the streamed ROCKET transform over needle-task shards at N and 4N training cases (fresh processes)."""
    import subprocess
    import sys

    from archkit.data.real_tasks import write_real_task

    out: dict[str, Any] = {"sizes": list(RSS_SIZES), "num_features": RSS_FEATURES, "length": 8192, "batch_size": 32}
    for n in RSS_SIZES:
        folder = cache / f"needle-{n}"
        if not (folder / "task.json").is_file():
            write_real_task(folder, "needle", n_train=n, n_test=16, seed=0, length=8192, shard_size=256)
        res = subprocess.run(
            [sys.executable, __file__, "--rss-probe", str(folder), str(cache / f"features-{n}.npy")],
            capture_output=True,
            text=True,
            check=True,
        )
        out[str(n)] = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"  rss n={n}: {out[str(n)]}", flush=True)
    a, b = out[str(RSS_SIZES[0])], out[str(RSS_SIZES[1])]
    out["ratio_peak_rss"] = b["peak_rss_growth_mib"] / max(a["peak_rss_growth_mib"], 1e-9)
    out["ratio_anon"] = b["anon_growth_mib"] / max(a["anon_growth_mib"], 1e-9)
    return out


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
    ap.add_argument("--picture", type=Path, default=None, help="only draw a few cases per class of each long task here")
    ap.add_argument(
        "--rss",
        type=Path,
        default=None,
        metavar="CACHE",
        help="only the memory check: write needle shards (512 and 2048 cases) under CACHE and stream them",
    )
    ap.add_argument("--rss-probe", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_probe:
        _rss_probe(*args.rss_probe)
        return
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
