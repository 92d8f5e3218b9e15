"""Which test cases of a long task the MultiRocket rows get wrong, and what those cases hold.

Refits, on the split of each seed that `bench_sequences.py --vs aeon --long` uses: aeon's MultiRocket,
archkit's MultiRocket row, and "archkit-auto-refit", the estimator `AutoSequenceClassifier` refits when
its cross-validation chooses MultiRocket (the same candidate, seeded with auto's own
`candidate_seed(random_state)`; the long-task benchmark's auto chose MultiRocket in all six of its fits).
For every test case a row gets wrong it records the true and predicted class and where the case's
labelled recording sits (`make_real_task(..., info=...)`: for needle the hidden recording's width in
steps, start and source; for order the utterances' starts). Written after every fit; a rerun skips what
is there.

    OMP_NUM_THREADS=1 python benchmarks/long_errors.py --task needle --seeds 3
    OMP_NUM_THREADS=1 python benchmarks/long_errors.py --task needle --seeds 3 --n-test 240   # 5x the test cases
    python benchmarks/long_errors.py --tiny           # smoke run on short series, numbers not meaningful
Writes benchmarks/results/long_errors_<task>.json (--n-test N: long_errors_<task>_testN.json; --tiny: ..._tiny).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from vs_aeon_long import LONG, LONG_SIZES, QUICK, _aeon_array, make

RESULTS = Path(__file__).parent / "results"
METHODS = ("aeon-multirocket", "archkit-multirocket", "archkit-auto-refit")


def fit_one(method: str, task: str, seed: int, tiny: bool, n_test: int | None = None) -> dict[str, Any]:
    """One row fitted on the train split of `seed`: accuracy and the test cases it gets wrong (`n_test`: the
    test split's size, default the benchmark's; another size draws other test cases from the same sources)."""
    from archkit.data.real_tasks import INFO, make_real_task
    from archkit.estimators.auto import candidate_seed

    s = QUICK if tiny else LONG_SIZES
    info: list[dict[str, Any]] = []
    xtr, ytr = make_real_task(task, s["n_train"], seed=seed, split="train", length=s["length"])
    xte, yte = make_real_task(task, n_test or s["n_test"], seed=seed, split="test", length=s["length"], info=info)
    if method == "archkit-auto-refit":  # archkit's MultiRocket row, seeded as auto seeds its candidates
        clf = make("archkit-multirocket", task, candidate_seed(seed), s["length"], tiny)
    else:
        clf = make(method, task, seed, s["length"], tiny)
    if method.startswith("aeon-"):
        xtr, xte = _aeon_array(xtr, s["length"]), _aeon_array(xte, s["length"])
    t0 = time.perf_counter()
    pred = np.asarray(clf.fit(xtr, ytr).predict(xte))
    classes = INFO[task].classes
    wrong = [
        {"case": int(i), "true": classes[yte[i]], "predicted": classes[int(pred[i])], **info[i]}
        for i in np.flatnonzero(pred != yte)
    ]
    return {
        "accuracy": 100 * float(np.mean(pred == yte)),
        "n_test": len(yte),
        "seconds": time.perf_counter() - t0,
        "wrong": wrong,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=LONG, default="needle")
    p.add_argument("--seeds", type=int, default=3, help="random seeds 0 .. N-1 (1-10)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from {list(METHODS)}")
    p.add_argument("--n-test", type=int, default=None, help="test cases per seed (1-10000; default the benchmark's 48)")
    p.add_argument("--tiny", action="store_true", help="smoke run: short series, few cases")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    if not 1 <= a.seeds <= 10:
        p.error(f"--seeds: expected an int in [1, 10], got {a.seeds}")
    if a.n_test is not None and not 1 <= a.n_test <= 10_000:
        p.error(f"--n-test: expected an int in [1, 10000], got {a.n_test}")
    methods = [m for m in a.methods.split(",") if m]
    if not methods or any(m not in METHODS for m in methods):
        p.error(f"--methods: expected names from {list(METHODS)}, got {a.methods!r}")
    from archkit.io import atomic_write_json

    size = f"_test{a.n_test}" if a.n_test else ""
    out = a.out or RESULTS / f"long_errors_{a.task}{size}{'_tiny' if a.tiny else ''}.json"
    res: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    sizes = dict(QUICK if a.tiny else LONG_SIZES, **({"n_test": a.n_test} if a.n_test else {}))
    if res.get("sizes", sizes) != sizes:
        p.error(f"--out: {out} holds runs of other sizes ({res['sizes']}); name another file")
    res.update(task=a.task, sizes=sizes, note=__doc__.split("\n\n")[0])
    runs = res.setdefault("runs", {})
    for seed in range(a.seeds):
        for method in methods:
            key = f"{method}/{seed}"
            if key not in runs:
                runs[key] = fit_one(method, a.task, seed, a.tiny, a.n_test)
                atomic_write_json(out, res)
            r = runs[key]
            cases = ", ".join(f"{w['case']} ({w['true']}->{w['predicted']})" for w in r["wrong"]) or "-"
            print(f"{key:24s} {r['accuracy']:5.1f}%  wrong: {cases}", flush=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
