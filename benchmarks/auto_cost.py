"""What auto's choice costs and gives up: AutoSequenceClassifier against a plain RocketClassifier and its own candidates.

For each (data, seed), one after the other in one process (so a loaded machine weighs on every row alike):
1. `RocketClassifier(random_state=seed)` (MiniRocket, the defaults): fit seconds and test accuracy;
2. `AutoSequenceClassifier(lstm_epochs=..., cv=3, random_state=seed)` as the benchmark rows build it
   (vs_aeon_long.py): fit seconds, its choice, its CV table and test accuracy;
3. every candidate auto cross-validated, refitted on the whole train split as auto would refit it (seeded
   with `candidate_seed(seed)`): test accuracy and fit seconds. "best candidate" is the one of them that
   scored highest on the test split: what auto's choice gives up against it is measured, not assumed.

    OMP_NUM_THREADS=1 nice python benchmarks/auto_cost.py --data needle,GunPoint,ArrowHead --out FILE.json

Long tasks (needle, order) are built at --length steps with --n-train / --n-test cases (default the sizes a
user measured: 160 and 80 at 8192 steps); bundled sets use their official splits. Results are written after
every row, and a rerun skips rows already in --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from vs_aeon_long import LONG, LSTM_EPOCHS, load

MAX_CASES = 100_000


def long_task(data: str, seed: int, n_train: int, n_test: int, length: int) -> tuple[Any, np.ndarray, Any, np.ndarray]:
    from archkit.data.real_tasks import make_real_task

    xtr, ytr = make_real_task(data, n_train, seed=seed, split="train", length=length)
    xte, yte = make_real_task(data, n_test, seed=seed, split="test", length=length)
    return xtr, ytr, xte, yte


def timed_fit(est: Any, xtr: Any, ytr: np.ndarray, xte: Any, yte: np.ndarray) -> tuple[float, float]:
    """(fit seconds, test accuracy %)."""
    t0 = time.perf_counter()
    est.fit(xtr, ytr)
    fit_s = time.perf_counter() - t0
    return fit_s, 100 * float(np.mean(np.asarray(est.predict(xte)) == yte))


def one(data: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from archkit.estimators import AutoSequenceClassifier, RocketClassifier
    from archkit.estimators.auto import candidate_seed, make_candidate

    if data in LONG:
        xtr, ytr, xte, yte = long_task(data, seed, args.n_train, args.n_test, args.length)
        steps, epochs = args.length, args.lstm_epochs or LSTM_EPOCHS["long-conv"]
    else:
        xtr, ytr, xte, yte, steps = load(data, seed, False)
        epochs = args.lstm_epochs or LSTM_EPOCHS["sets"]
    out: dict[str, Any] = {"n_train": len(ytr), "n_test": len(yte), "steps": steps, "lstm_epochs": epochs}
    out["rocket_fit_s"], out["rocket_accuracy"] = timed_fit(RocketClassifier(random_state=seed), xtr, ytr, xte, yte)
    print(f"  {data}/{seed} rocket: {out['rocket_accuracy']:.1f}% fit {out['rocket_fit_s']:.1f}s", flush=True)
    auto = AutoSequenceClassifier(lstm_epochs=epochs, cv=3, random_state=seed, verbose=args.verbose)
    out["auto_fit_s"], out["auto_accuracy"] = timed_fit(auto, xtr, ytr, xte, yte)
    out.update(chosen=auto.best_name_, tied_with=auto.tied_with_, cv=auto.cv_results_, cv_cases=auto.cv_cases_)
    out["skipped"] = auto.skipped_
    out["auto_cost_x_rocket"] = out["auto_fit_s"] / out["rocket_fit_s"]
    print(
        f"  {data}/{seed} auto: {out['auto_accuracy']:.1f}% fit {out['auto_fit_s']:.1f}s "
        f"({out['auto_cost_x_rocket']:.1f}x rocket) chose {auto.best_name_}",
        flush=True,
    )
    refits: dict[str, Any] = {}
    for name in [*auto.cv_results_, *auto.skipped_]:
        est = make_candidate(name, steps, epochs, 10_000, "auto", "32", candidate_seed(seed))
        fit_s, acc = timed_fit(est, xtr, ytr, xte, yte)
        refits[name] = {"accuracy": acc, "fit_s": fit_s}
        print(f"  {data}/{seed} candidate {name}: {acc:.1f}% fit {fit_s:.1f}s", flush=True)
    best = max(refits, key=lambda n: refits[n]["accuracy"])
    out.update(
        candidates=refits,
        best_candidate=best,
        auto_minus_best_candidate=out["auto_accuracy"] - refits[best]["accuracy"],
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="needle,GunPoint,ArrowHead")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--n-train", type=int, default=160)
    p.add_argument("--n-test", type=int, default=80)
    p.add_argument("--length", type=int, default=8192)
    p.add_argument("--lstm-epochs", type=int, default=0, help="0: the benchmark's (vs_aeon_long.LSTM_EPOCHS)")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    for name in ("seeds", "n_train", "n_test"):
        if not 1 <= getattr(args, name) <= MAX_CASES:
            p.error(f"--{name.replace('_', '-')}: expected an int in [1, {MAX_CASES}], got {getattr(args, name)}")
    if not 0 <= args.lstm_epochs <= 1000:
        p.error(f"--lstm-epochs: expected an int in [0, 1000], got {args.lstm_epochs}")
    if not 256 <= args.length <= 65_536:
        p.error(f"--length: expected an int in [256, 65536], got {args.length}")
    from archkit.io import atomic_write_json

    res: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": {}}
    res.update(threads=os.environ.get("OMP_NUM_THREADS"), note=__doc__.split("\n\n")[1])
    res.setdefault("sizes", {"n_train": args.n_train, "n_test": args.n_test, "length": args.length})
    for seed in range(args.seeds):
        for data in args.data.split(","):
            key = f"{data}/{seed}"
            if key in res["runs"]:
                continue
            res["runs"][key] = one(data, seed, args)
            atomic_write_json(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
