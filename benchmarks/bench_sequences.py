"""Long-sequence LSTM classification: plain LSTM vs strided-conv frontend, and real UCR/UEA accuracy.

Measures, in one run:
1. training and inference sequences/s at (B=32, T=8192, F=8) for frontend="none" vs "conv",
   timed interleaved (round-robin) so machine noise hits both alike; ratio conv / none;
2. peak resident memory of one training step and of one inference batch for each (a fresh
   subprocess per measurement, `archkit.surgery.peak_rss_growth_mib`);
3. held-out accuracy on the generated long task (T=8192, 8 channels, 4 classes; label needs an
   event in the first and one in the last quarter): the conv model for a few epochs, the plain
   LSTM for as long as `--lstm-budget-s` allows;
4. held-out (official test split) accuracy on bundled aeon UCR/UEA sets next to published
   FCN/ResNet accuracies.

    python benchmarks/bench_sequences.py            # the real run (~30-40 min on 2 busy cores)
    python benchmarks/bench_sequences.py --quick    # smoke run, numbers not meaningful
    python benchmarks/bench_sequences.py --vs aeon  # LSTMClassifier vs aeon's MiniRocket and FCN (see vs_aeon.py)
    python benchmarks/bench_sequences.py --vs aeon --long  # long tasks from real series, ROCKET family, auto (vs_aeon_long.py)
Writes benchmarks/results/bench_sequences.json (--vs aeon: bench_sequences_vs_aeon.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from archkit.data import LONG_TASK

sys.path.insert(0, str(Path(__file__).parent))
import vs_aeon
from _seq_memory import CONV, MODEL, model_for, peak_memory

from archkit.surgery import format_table, interleaved_latency
from archkit.train import SeqTrainConfig, atomic_write_json, sequence_loss, train_sequence

RESULTS = Path(__file__).parent / "results" / "bench_sequences.json"

# Published mean test accuracies (%) over 10 runs on the official splits, from the companion repository
# of Ismail Fawaz et al., "Deep learning for time series classification: a review" (DMKD 2019):
# hfawaz/dl-4-tsc results/results-uea-avg-std.csv (UCR 2015) and results-mts-avg-std.csv (MTS archive).
# BasicMotions (UEA 2018) is not in that paper: no reference is quoted for it.
PUBLISHED_SOURCE = "Ismail Fawaz et al. 2019, hfawaz/dl-4-tsc results/*-avg-std.csv"
PUBLISHED = {
    "GunPoint": {"FCN": 100.0, "ResNet": 99.1},
    "ItalyPowerDemand": {"FCN": 96.1, "ResNet": 96.3},
    "ArrowHead": {"FCN": 84.3, "ResNet": 84.5},
    "JapaneseVowels": {"FCN": 99.3, "ResNet": 99.2},
}
# One fixed recipe for every real set (no per-dataset tuning), LSTM-FCN style (Karim et al. 2018): a
# stride-1 conv frontend (local shape features) feeding a bidirectional LSTM, mean-pooled, next to an
# FCN branch (3 x Conv1d + BatchNorm + ReLU, 128/256/128 channels, global average pool) on the raw
# series; BatchNorm statistics count valid steps only, so padded (variable-length) batches stay exact.
# Cosine learning-rate decay over 200 epochs of batch 8 (the earlier LSTM-only recipe used 100 epochs of
# batch 16 at a constant rate and missed GunPoint/ArrowHead; see docs/sequences.md).
REAL_RECIPE = dict(
    frontend="conv",
    conv_channels=64,
    conv_kernel=7,
    conv_stride=1,
    conv_blocks=2,
    hidden=64,
    layers=1,
    bidirectional=True,
    pool="mean",
    dropout=0.2,
    fcn_channels=128,
    lr=3e-3,
    lr_schedule="cosine",
    batch_size=8,
)
REAL_EPOCHS = 200


def throughput(batch: int, steps: int, repeats: int, warmup: int) -> dict:
    """Seconds per training step / inference batch, interleaved across the two frontends."""
    torch.manual_seed(0)
    x = torch.randn(batch, steps, 8)
    y = torch.randint(0, 4, (batch,))
    models = {f: model_for(f) for f in ("none", "conv")}
    opts = {f: torch.optim.AdamW(m.parameters(), lr=1e-3) for f, m in models.items()}

    def train_step(f):
        def run():
            with torch.enable_grad():  # interleaved_latency times under no_grad
                loss = sequence_loss(models[f](x), y)
                opts[f].zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(models[f].parameters(), 1.0)
                opts[f].step()

        return run

    def infer(f):
        def run():
            with torch.no_grad():
                models[f].eval()(x)
            models[f].train()

        return run

    fns = {f"train_{f}": train_step(f) for f in models} | {f"infer_{f}": infer(f) for f in models}
    full = x, y
    x, y = x[:1, :64], y[:1]  # one tiny pass first: library start-up must not count (a full warm-up is minutes)
    for fn in fns.values():
        fn()
    x, y = full
    sec = interleaved_latency(fns, repeats=repeats, warmup=warmup)
    out = {k: {"seconds_per_batch": v, "sequences_per_s": batch / v} for k, v in sec.items()}
    out["train_speedup_conv_vs_none"] = sec["train_none"] / sec["train_conv"]
    out["infer_speedup_conv_vs_none"] = sec["infer_none"] / sec["infer_conv"]
    return out


def long_task(work: Path, n_train: int, n_test: int, steps: int, conv_epochs: int, lstm_budget_s: float) -> dict:
    common = dict(
        dataset=LONG_TASK,
        long_task_train=n_train,
        long_task_test=n_test,
        long_task_length=steps,
        batch_size=32,
        lr=3e-3,
        progress=False,
        checkpoint_every=0,
        **MODEL,
    )
    res = {}
    conv = train_sequence(SeqTrainConfig(out=str(work / "conv"), frontend="conv", epochs=conv_epochs, **CONV, **common))
    res["conv"] = _brief(conv)
    # The plain LSTM reuses the same generated files (same seed, same sizes) via a symlinked data folder.
    (work / "none").mkdir(parents=True, exist_ok=True)
    (work / "none" / "data").symlink_to((work / "conv" / "data").resolve())
    plain = train_sequence(
        SeqTrainConfig(
            out=str(work / "none"), frontend="none", epochs=conv_epochs, time_limit_s=lstm_budget_s, **common
        )
    )
    res["none"] = _brief(plain)
    return res


def _brief(summary: dict) -> dict:
    keep = (
        "held_out_accuracy",
        "step",
        "epoch",
        "train_time_s",
        "train_sequences_per_s",
        "stopped",
        "num_train",
        "num_held_out",
    )
    return {k: summary[k] for k in keep}


def real_sets(work: Path, names: list[str], epochs: int, seeds: int, recipe: dict | None = None) -> dict:
    recipe = REAL_RECIPE if recipe is None else recipe
    out = {}
    for name in names:
        accs, times = [], []
        for seed in range(seeds):
            t0 = time.perf_counter()
            s = train_sequence(
                SeqTrainConfig(
                    out=str(work / f"{name}-{seed}"),
                    dataset=name,
                    epochs=epochs,
                    seed=seed,
                    progress=False,
                    checkpoint_every=0,
                    **recipe,
                )
            )
            accs.append(s["held_out_accuracy"])
            times.append(time.perf_counter() - t0)
            print(f"  {name} seed {seed}: {100 * accs[-1]:.1f}% in {times[-1]:.0f}s", flush=True)
        pub = PUBLISHED.get(name)
        resnet = pub["ResNet"] if pub else None
        mean = 100 * float(np.mean(accs))
        out[name] = {
            "accuracy_mean": mean,
            "accuracy_std": 100 * float(np.std(accs)),
            "runs": [100 * a for a in accs],
            "seconds_per_run": float(np.mean(times)),
            "published": {**pub, "source": PUBLISHED_SOURCE} if pub else None,
            "published_resnet": resnet,
            "gap_to_resnet_points": None if resnet is None else resnet - mean,
            "within_3_points": None if resnet is None else resnet - mean <= 3.0,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, numbers not meaningful")
    ap.add_argument(
        "--lstm-budget-s", type=float, default=300.0, help="training-time budget of the plain LSTM on the long task"
    )
    ap.add_argument("--conv-epochs", type=int, default=3)
    ap.add_argument("--real-epochs", type=int, default=REAL_EPOCHS)
    ap.add_argument("--seeds", type=int, default=None, help="seeds per set (default 1; --vs aeon: 3)")
    ap.add_argument(
        "--real-lr-schedule",
        choices=["constant", "cosine"],
        default=None,
        help="ablation: override the real-set recipe's learning-rate schedule (cosine)",
    )
    ap.add_argument(
        "--recipe-override",
        type=json.loads,
        default={},
        help="ablations: JSON merged into REAL_RECIPE, e.g. '{\"fcn_channels\": 0}'",
    )
    ap.add_argument("--repeats", type=int, default=1, help="timed rounds (a plain-LSTM training step is minutes)")
    ap.add_argument("--warmup", type=int, default=0, help="untimed full-size rounds before timing")
    ap.add_argument("--sets", default=None, help="comma list of bundled sets (default: five; --vs aeon: all six)")
    ap.add_argument("--vs", choices=["aeon"], default=None, help="only the side-by-side with aeon's classifiers")
    ap.add_argument("--methods", default=",".join(vs_aeon.METHODS), help="--vs aeon: comma list of methods to fit")
    ap.add_argument(
        "--summarize",
        nargs="+",
        type=Path,
        default=None,
        help="--vs aeon: merge these run files (e.g. one per process) into --out and print the table",
    )
    ap.add_argument("--skip", default="", help="comma list of sections to skip: throughput,memory,long,real")
    ap.add_argument("--out", type=Path, default=RESULTS)
    if "--long" in sys.argv:  # --vs aeon --long: long tasks + ROCKET family (benchmarks/vs_aeon_long.py, its own flags)
        import vs_aeon_long

        return vs_aeon_long.main([a for a in sys.argv[1:] if a not in ("--vs", "aeon", "--long")])
    args = ap.parse_args()
    if args.vs:
        return vs_main(args)
    args.seeds = args.seeds or 1
    args.sets = args.sets or "BasicMotions,JapaneseVowels,GunPoint,ItalyPowerDemand,ArrowHead"

    if args.quick:
        batch, steps, repeats, n_train, n_test, conv_epochs, budget, real_epochs = 4, 512, 2, 64, 32, 1, 5.0, 2
        sets = args.sets.split(",")[:2]
    else:
        batch, steps, repeats, n_train, n_test = 32, 8192, args.repeats, 512, 128
        conv_epochs, budget, real_epochs, sets = (
            args.conv_epochs,
            args.lstm_budget_s,
            args.real_epochs,
            args.sets.split(","),
        )
    skip = set(filter(None, args.skip.split(",")))
    recipe = {
        **REAL_RECIPE,
        **({"lr_schedule": args.real_lr_schedule} if args.real_lr_schedule else {}),
        **args.recipe_override,
    }
    results = {
        "quick": args.quick,
        "shape": [batch, steps, 8],
        "model": MODEL,
        "conv": CONV,
        "real_recipe": recipe,
        "real_epochs": real_epochs,
        "torch_threads": torch.get_num_threads(),
        "note": "2-core CPU machine; sections can come from separate invocations (--skip): top-level torch_threads and wall_s describe the last one, see real_run_note and docs/sequences.md",
    }
    if args.out.is_file():  # keep sections measured by an earlier run that this one skips
        results = {**json.loads(args.out.read_text()), **results}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_seq_") as tmp:
        work = Path(tmp)
        if "throughput" not in skip:
            print(f"[throughput] B={batch} T={steps} F=8, interleaved, {repeats} timed round(s)", flush=True)
            results["throughput"] = throughput(batch, steps, repeats, 0 if args.quick else args.warmup)
        if "memory" not in skip:
            print("[memory] one step per subprocess", flush=True)
            results["peak_rss_mib"] = peak_memory(batch, steps)
        if "long" not in skip:
            print(
                f"[long task] {n_train} train / {n_test} test at T={steps}; plain LSTM budget {budget:.0f}s", flush=True
            )
            results["long_task"] = long_task(work / "long", n_train, n_test, steps, conv_epochs, budget)
        if "real" not in skip:
            print(f"[real] {sets}, {real_epochs} epochs x {args.seeds} seed(s)", flush=True)
            results["real"] = real_sets(work / "real", sets, real_epochs, args.seeds, recipe)
    results["wall_s"] = time.perf_counter() - t_start
    atomic_write_json(args.out, results)
    print_tables(results)
    print(f"wrote {args.out}")


def vs_main(args: argparse.Namespace) -> None:
    """--vs aeon: fit, write run results after every fit, then merge and print (see benchmarks/vs_aeon.py)."""
    default = RESULTS.with_name("bench_sequences_vs_aeon" + ("_quick" if args.quick else "") + ".json")
    out = default if args.out == RESULTS else args.out
    if args.summarize:
        summary = vs_aeon.summarize(args.summarize)
    else:
        q = vs_aeon.QUICK if args.quick else {}
        sets = args.sets.split(",") if args.sets else q.get("sets", vs_aeon.SETS)
        runs_file = out.with_name(out.stem + ".runs.json")
        vs_aeon.run(
            runs_file,
            args.methods.split(","),
            sets,
            args.seeds or q.get("seeds", 3),
            q.get("candidates", vs_aeon.ARCHKIT_CANDIDATES),
            q.get("fcn_epochs", vs_aeon.AEON_FCN_EPOCHS),
            args.quick,
        )
        summary = vs_aeon.summarize([runs_file])
    atomic_write_json(out, summary)
    vs_aeon.print_summary(summary)
    print(f"wrote {out}")


def print_tables(r: dict) -> None:
    if "throughput" in r:
        t = r["throughput"]
        rows = [
            [
                f,
                t[f"train_{f}"]["sequences_per_s"],
                t[f"infer_{f}"]["sequences_per_s"],
                r.get("peak_rss_mib", {}).get(f"train_{f}", float("nan")),
                r.get("peak_rss_mib", {}).get(f"infer_{f}", float("nan")),
            ]
            for f in ("none", "conv")
        ]
        print(format_table(["frontend", "train seq/s", "infer seq/s", "train peak MiB", "infer peak MiB"], rows))
        print(
            f"conv vs none: train {t['train_speedup_conv_vs_none']:.1f}x, inference {t['infer_speedup_conv_vs_none']:.1f}x"
        )
    if "long_task" in r:
        lt = r["long_task"]
        print(
            format_table(
                ["frontend", "held-out acc", "steps", "train s", "stopped"],
                [
                    [f, lt[f]["held_out_accuracy"], lt[f]["step"], lt[f]["train_time_s"], lt[f]["stopped"]]
                    for f in ("none", "conv")
                ],
            )
        )
    if "real" in r:
        dash = lambda v: "-" if v is None else v  # noqa: E731
        rows = [
            [
                n,
                v["accuracy_mean"],
                v["accuracy_std"],
                dash(v.get("published_resnet")),
                dash(v.get("gap_to_resnet_points")),
                dash(v.get("within_3_points")),
            ]
            for n, v in r["real"].items()
        ]
        print(format_table(["dataset", "ours %", "std", "published ResNet %", "gap (points)", "within 3"], rows))


if __name__ == "__main__":
    main()
