"""`bench_sequences.py --vs aeon`: archkit's LSTMClassifier next to aeon's MiniRocket and FCN, same splits, 3 seeds.

archkit's recipe is chosen per dataset on a validation split carved (stratified, 25%) from the TRAIN
split only: every candidate in ARCHKIT_CANDIDATES is fitted on the other 75% (seed 0), the best
validation accuracy wins (ties: the cheaper candidate), and that recipe is refitted on the whole train
split for each seed and scored once on the test split. aeon's estimators get their defaults, except
FCN's epochs (AEON_FCN_EPOCHS; aeon's default of 2000 is hours per set on this CPU).
Data: the sets bundled with aeon, loaded by archkit.data.load_real_dataset (channels standardized with
train statistics). archkit gets each series at its true length (a list of arrays, packed); aeon's
estimators cannot take unequal lengths, so JapaneseVowels reaches them zero-padded to its longest series.
Results are written after every fit (method, set, seed) and a rerun skips what is already there.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SETS = ["BasicMotions", "ItalyPowerDemand", "GunPoint", "ArrowHead", "JapaneseVowels", "OSULeaf"]  # cheapest first
METHODS = ["minirocket", "archkit", "aeon-fcn"]
# Candidates differ in cost, so the selection is also a budget choice: the estimator's defaults (the LSTM-FCN
# recipe at 100 epochs of batch 8) and the same net at batch 32 (4x fewer optimizer steps).
ARCHKIT_CANDIDATES: dict[str, dict[str, Any]] = {
    "lstm-fcn-b8": dict(epochs=100, batch_size=8),
    "lstm-fcn-b32": dict(epochs=100, batch_size=32),
}
CHEAPEST_FIRST = ["lstm-fcn-b32", "lstm-fcn-b8"]
AEON_FCN_EPOCHS = 100
QUICK = dict(
    sets=["BasicMotions", "ItalyPowerDemand"],
    seeds=1,
    candidates={"lstm-fcn-b8": dict(epochs=2, batch_size=8), "lstm-fcn-b32": dict(epochs=2, batch_size=32)},
    fcn_epochs=2,
)


def _series(x: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    return [x[i, : lengths[i]] for i in range(len(x))]


def _stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    return train_test_split(idx, test_size=fraction, random_state=seed, stratify=stratify)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def select_recipe(data, candidates: dict[str, dict], log: Callable[[str], None]) -> dict[str, Any]:
    """Validation accuracy of every candidate on a 25% stratified split of the TRAIN data; the winner."""
    from archkit.estimators import LSTMClassifier

    tr, va = _stratified_split(data.y_train, 0.25, seed=0)
    series = _series(data.x_train, data.lengths_train)
    scores = {}
    for name, params in candidates.items():
        clf = LSTMClassifier(random_state=0, **params)
        _, wall, cpu = _timed(lambda: clf.fit([series[i] for i in tr], data.y_train[tr]))
        scores[name] = {
            "val_accuracy": 100 * clf.score([series[i] for i in va], data.y_train[va]),
            "fit_s": wall,
            "fit_cpu_s": cpu,
        }
        log(f"  select {data.name} {name}: val {scores[name]['val_accuracy']:.1f}% ({wall:.0f}s)")
    order = [n for n in CHEAPEST_FIRST if n in scores] + [n for n in scores if n not in CHEAPEST_FIRST]
    best = max(order, key=lambda n: (scores[n]["val_accuracy"], -order.index(n)))
    return {"chosen": best, "params": candidates[best], "validation": scores, "n_fit": len(tr), "n_val": len(va)}


def fit_one(method: str, data, seed: int, params: dict[str, Any], fcn_epochs: int) -> dict[str, Any]:
    """Fit one method on the whole train split and score it on the test split."""
    if method == "archkit":
        from archkit.estimators import LSTMClassifier

        clf = LSTMClassifier(random_state=seed, **params)
        xtr, xte = _series(data.x_train, data.lengths_train), _series(data.x_test, data.lengths_test)
    else:
        xtr, xte = _padded_pair(data.x_train, data.x_test)
        if method == "minirocket":
            from aeon.classification.convolution_based import MiniRocketClassifier

            clf = MiniRocketClassifier(random_state=seed, n_jobs=1)
        elif method == "aeon-fcn":
            from aeon.classification.deep_learning import FCNClassifier

            clf = FCNClassifier(
                n_epochs=fcn_epochs, random_state=seed, verbose=False, file_path=tempfile.gettempdir() + "/"
            )
        else:
            raise ValueError(f"method: unknown {method!r}; expected one of {METHODS}")
    _, wall, cpu = _timed(lambda: clf.fit(xtr, data.y_train))
    acc = 100 * float(np.mean(clf.predict(xte) == data.y_test))
    return {"accuracy": acc, "fit_s": wall, "fit_cpu_s": cpu}


def _padded_pair(xtr: np.ndarray, xte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """aeon's (n, channels, T) arrays, zero-padded to one length (JapaneseVowels' splits have different maxima)."""
    steps = max(xtr.shape[1], xte.shape[1])
    pad = lambda x: np.pad(x, ((0, 0), (0, steps - x.shape[1]), (0, 0))).transpose(0, 2, 1)  # noqa: E731
    return pad(xtr), pad(xte)


def _limit_tensorflow_threads() -> None:
    try:
        import tensorflow as tf
    except ImportError:
        return
    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def deep_available() -> str | None:
    """None when aeon's FCNClassifier can run here, else why not."""
    try:
        import tensorflow  # noqa: F401
    except ImportError as e:
        return f"tensorflow does not import ({e}); aeon's deep classifiers need it"
    return None


def run(
    out: Path,
    methods: list[str],
    sets: list[str],
    seeds: int,
    candidates: dict[str, dict],
    fcn_epochs: int,
    quick: bool,
) -> dict[str, Any]:
    from archkit.data import load_real_dataset
    from archkit.train import atomic_write_json

    res: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    if res.get("quick", quick) != quick:
        raise ValueError(f"--out: {str(out)!r} holds a {'quick' if res['quick'] else 'full'} run; choose another --out")
    res.update(
        {
            "quick": quick,
            "sets": sets,
            "seeds": seeds,
            "aeon_fcn_epochs": fcn_epochs,
            "candidates": candidates,
            "threads": os.environ.get("OMP_NUM_THREADS"),
            "note": __doc__.split("\n\n")[1],
        }
    )
    res.setdefault("runs", {})
    res.setdefault("selection", {})
    log = lambda s: print(s, flush=True)  # noqa: E731
    if "aeon-fcn" in methods:
        why = deep_available()
        if why:
            log(f"aeon-fcn left out: {why}")
            res["aeon_fcn_unavailable"] = why
            methods = [m for m in methods if m != "aeon-fcn"]
        else:
            _limit_tensorflow_threads()
    for name in sets:
        data = load_real_dataset(name)
        for method in methods:
            params: dict[str, Any] = {}
            if method == "archkit":
                if name not in res["selection"]:
                    res["selection"][name] = select_recipe(data, candidates, log)
                    atomic_write_json(out, res)
                params = res["selection"][name]["params"]
            for seed in range(seeds):
                key = f"{method}/{name}/{seed}"
                if key in res["runs"]:
                    continue
                r = fit_one(method, data, seed, params, fcn_epochs)
                res["runs"][key] = r
                log(f"  {key}: {r['accuracy']:.1f}% fit {r['fit_s']:.0f}s")
                atomic_write_json(out, res)
    return res


def summarize(files: list[Path]) -> dict[str, Any]:
    """Merge run files (e.g. one per process) into per-(method, set) means and the gap to MiniRocket."""
    merged: dict[str, Any] = {"runs": {}, "selection": {}, "sources": [str(f) for f in files]}
    for f in files:
        r = json.loads(f.read_text())
        merged["runs"].update(r.get("runs", {}))
        merged["selection"].update(r.get("selection", {}))
        for k in ("quick", "seeds", "aeon_fcn_epochs", "candidates", "threads", "note", "aeon_fcn_unavailable"):
            if k in r:
                merged.setdefault(k, r[k])
    table: dict[str, dict[str, Any]] = {}
    for key, r in merged["runs"].items():
        method, name, _ = key.split("/")
        cell = table.setdefault(name, {}).setdefault(method, {"runs": [], "fit_s": [], "fit_cpu_s": []})
        cell["runs"].append(r["accuracy"])
        cell["fit_s"].append(r["fit_s"])
        cell["fit_cpu_s"].append(r["fit_cpu_s"])
    for cells in table.values():
        for cell in cells.values():
            cell.update(
                accuracy_mean=float(np.mean(cell["runs"])),
                accuracy_std=float(np.std(cell["runs"])),
                fit_s_mean=float(np.mean(cell["fit_s"])),
                fit_cpu_s_mean=float(np.mean(cell["fit_cpu_s"])),
            )
        if "archkit" in cells and "minirocket" in cells:
            cells["archkit_minus_minirocket"] = cells["archkit"]["accuracy_mean"] - cells["minirocket"]["accuracy_mean"]
    merged["per_set"] = table
    both = [n for n, c in table.items() if "archkit_minus_minirocket" in c]
    if both:
        a = float(np.mean([table[n]["archkit"]["accuracy_mean"] for n in both]))
        m = float(np.mean([table[n]["minirocket"]["accuracy_mean"] for n in both]))
        merged["mean_over_sets"] = {
            "sets": both,
            "archkit": a,
            "minirocket": m,
            "gap_points": a - m,
            "within_2_points": m - a <= 2.0,
            "archkit_loses_on": [n for n in both if table[n]["archkit_minus_minirocket"] < 0],
        }
    return merged


def print_summary(s: dict[str, Any]) -> None:
    from archkit.surgery import format_table

    methods = [m for m in METHODS if any(m in c for c in s["per_set"].values())]
    rows = []
    for name in [n for n in SETS if n in s["per_set"]]:
        c = s["per_set"][name]
        row = [name]
        for m in methods:
            row += (
                [
                    f"{c[m]['accuracy_mean']:.1f} +- {c[m]['accuracy_std']:.1f} (n={len(c[m]['runs'])})",
                    c[m]["fit_cpu_s_mean"],
                ]
                if m in c
                else ["-", "-"]
            )
        row.append(s["selection"].get(name, {}).get("chosen", "-"))
        rows.append(row)
    header = ["dataset"] + [h for m in methods for h in (f"{m} acc %", f"{m} fit CPU s")] + ["archkit recipe"]
    print(format_table(header, rows))
    if "mean_over_sets" in s:
        m = s["mean_over_sets"]
        print(
            f"mean over {len(m['sets'])} sets: archkit {m['archkit']:.2f}%, MiniRocket {m['minirocket']:.2f}% "
            f"(gap {m['gap_points']:+.2f} points; within 2: {m['within_2_points']}); archkit loses on {m['archkit_loses_on']}"
        )
