"""Study `compress`: a trained CNN converted post hoc with `decompose` and `lowrank`, with/without a short fine-tune.

A digits ResNet (bottleneck blocks: 1x1 reduce, 3x3, 1x1 expand, linear head) is trained per seed, then
converted at several ranks (decompose: 3x3 convs -> 3x1 + 1x3; lowrank: 1x1 convs and the head -> thin
pairs) and at several energies (both operations). Each conversion is evaluated as is and after a one-epoch
fine-tune with `archkit.train.fit_classifier`. Reported: accuracy vs interleaved CPU latency (one plot)
and the smallest rank that keeps accuracy within 1 point of the trained model.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import load_digits
from ..models import ResNet, ResNetConfig
from ..surgery import count_macs, count_params, decompose, interleaved_latency, lowrank
from ..train import accuracy, fit_classifier, seed_everything
from .decomposeme import ANNEAL_EPOCHS, train_annealed
from .report import Budget, markdown_table, mean_std, new_figure, save_figure, write_report

WITHIN = 0.01  # "keeps accuracy": at most 1 point below the trained model (mean over seeds)


def _conversions(quick: bool) -> list[tuple[str, str, Any]]:
    """(family, label, setting): rank sweeps per operation plus an energy sweep of both together."""
    ranks = {"decompose": [2, 8] if quick else [1, 2, 4, 8, 16], "lowrank": [2] if quick else [1, 2, 4, 8, 16]}
    energies = [0.9] if quick else [0.5, 0.8, 0.9, 0.95]
    out = [(op, f"{op} rank {r}", r) for op, rs in ranks.items() for r in rs]
    return out + [("both", f"both energy {e}", e) for e in energies]


def _convert(model: nn.Module, family: str, setting: Any, x: torch.Tensor) -> tuple[nn.Module, dict[str, int]]:
    """Converted copy and its per-layer ranks."""
    if family == "both":
        new, r1 = decompose(model, energy=setting, example_inputs=x)
        new, r2 = lowrank(new, energy=setting, example_inputs=x, inplace=True)
        changed = r1.changed + r2.changed
    else:
        new, rep = (decompose if family == "decompose" else lowrank)(model, rank=setting, example_inputs=x)
        changed = rep.changed
    return new.eval(), {c.name: c.metrics["rank"] for c in changed}


def run(out_dir: Path, seeds: int = 3, quick: bool = False) -> dict[str, Any]:
    """Train, convert, fine-tune, time; write report.md, compress.png, results.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    budget: Budget = {"epochs": 2 if quick else 10, "batch_size": 64, "lr": 3e-3}
    finetune: Budget = {"epochs": 1, "batch_size": 64, "lr": 3e-4}
    x, y = load_digits("train")
    x_test, y_test = load_digits("test")
    if quick:
        x, y = x[:384], y[:384]
    probe = x_test[:8]
    conversions = _conversions(quick)
    results: dict[str, Any] = {
        "budget": budget,
        "finetune": finetune,
        "seeds": seeds,
        "quick": quick,
        "config": ResNetConfig().__dict__,
        "base": {"accuracy": []},
        "conversions": {},
    }
    timed: dict[str, nn.Module] = {}
    for seed in tqdm(range(seeds), desc="compress", leave=False):
        seed_everything(seed)
        base = ResNet(ResNetConfig())
        results["base"]["accuracy"].append(train_annealed(base, x, y, x_test, y_test, seed, **budget).test_accuracy)
        base.eval()
        if seed == 0:
            timed["trained model"] = base
        for family, label, setting in conversions:
            new, ranks = _convert(base, family, setting, probe)
            r = results["conversions"].setdefault(
                label, {"family": family, "setting": setting, "accuracy": [], "finetuned_accuracy": [], "ranks": ranks}
            )
            r["accuracy"].append(accuracy(new, x_test, y_test))
            tuned = copy.deepcopy(new)
            r["finetuned_accuracy"].append(
                fit_classifier(tuned, x, y, x_test=x_test, y_test=y_test, seed=seed, **finetune).test_accuracy
            )
            if seed == 0:
                timed[label] = new

    batch = x_test[: 64 if quick else 256]
    repeats = 3 if quick else 20
    latency = interleaved_latency({k: functools.partial(m, batch) for k, m in timed.items()}, repeats=repeats, warmup=2)
    b = results["base"]
    b["accuracy_mean"], b["accuracy_std"] = mean_std(b["accuracy"])
    b["latency_ms"], b["params"], b["macs"] = (
        1e3 * latency["trained model"],
        count_params(timed["trained model"]),
        count_macs(timed["trained model"], probe[:1]),
    )
    for label, r in results["conversions"].items():
        r["accuracy_mean"], r["accuracy_std"] = mean_std(r["accuracy"])
        r["finetuned_mean"], r["finetuned_std"] = mean_std(r["finetuned_accuracy"])
        r["latency_ms"] = 1e3 * latency[label]
        r["params"], r["macs"] = count_params(timed[label]), count_macs(timed[label], probe[:1])
    results["within_1_point"] = _within(results)
    results["latency"] = {"batch": len(batch), "threads": torch.get_num_threads(), "repeats": repeats}
    _plot(results, out_dir / "compress.png")
    write_report(
        out_dir, "Study: post-hoc low-rank compression (decompose / lowrank) of a trained CNN", _body(results), results
    )
    return results


def _within(results: dict[str, Any]) -> dict[str, Any]:
    """Per family and fine-tune setting: the cheapest setting whose mean accuracy is within 1 point."""
    floor = results["base"]["accuracy_mean"] - WITHIN
    out: dict[str, Any] = {}
    for family in ("decompose", "lowrank", "both"):
        rows = [r for r in results["conversions"].values() if r["family"] == family]
        for key, tag in (("accuracy_mean", "as converted"), ("finetuned_mean", "fine-tuned")):
            ok = sorted(r["setting"] for r in rows if r[key] >= floor and r["ranks"])
            out[f"{family} ({tag})"] = ok[0] if ok else None
    return out


def _plot(results: dict[str, Any], path: Path) -> Path:
    """Accuracy vs measured latency (the question) next to accuracy vs MACs (what the SVD controls)."""
    fig, axes = new_figure(1, 2, figsize=(13, 5), sharey=True)
    colors = {"decompose": "tab:blue", "lowrank": "tab:orange", "both": "tab:green"}
    b = results["base"]
    for ax, key, xlabel in (
        (axes[0], "latency_ms", f"CPU latency, batch {results['latency']['batch']} (ms, median, interleaved)"),
        (axes[1], "macs", "MACs per image"),
    ):
        for family, color in colors.items():
            # connected in rank/energy order, so a family reads as one path even when latency is noisy
            rows = sorted(
                (r for r in results["conversions"].values() if r["family"] == family), key=lambda r: r["setting"]
            )
            if not rows:
                continue
            xs = [r[key] for r in rows]
            ax.plot(
                xs,
                [100 * r["accuracy_mean"] for r in rows],
                "o--",
                color=color,
                alpha=0.5,
                label=f"{family}, as converted",
            )
            ax.plot(
                xs,
                [100 * r["finetuned_mean"] for r in rows],
                "s-",
                color=color,
                label=f"{family}, + {results['finetune']['epochs']}-epoch fine-tune",
            )
            for r in rows:
                ax.annotate(
                    str(r["setting"]),
                    (r[key], 100 * r["finetuned_mean"]),
                    fontsize=7,
                    textcoords="offset points",
                    xytext=(3, 3),
                )
        ax.plot([b[key]], [100 * b["accuracy_mean"]], "k*", ms=14, label="trained model")
        ax.axhline(100 * (b["accuracy_mean"] - WITHIN), color="k", lw=0.8, ls=":", label="trained − 1 point")
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("test accuracy (%), mean over seeds")
    axes[0].set_title("accuracy vs CPU latency (labels: rank or energy)")
    axes[1].set_title("accuracy vs MACs")
    axes[1].legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)


def _body(results: dict[str, Any]) -> str:
    b, lat = results["base"], results["latency"]
    rows = [
        [
            "trained model",
            "-",
            f"{100 * b['accuracy_mean']:.2f} ± {100 * b['accuracy_std']:.2f}",
            "-",
            b["params"],
            b["macs"],
            b["latency_ms"],
            "1.00",
        ]
    ]
    for label, r in results["conversions"].items():
        ranks = sorted(set(r["ranks"].values()))
        rows.append(
            [
                label,
                f"{len(r['ranks'])} layers, ranks {ranks}" if ranks else "nothing cheaper: unchanged",
                f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f}",
                f"{100 * r['finetuned_mean']:.2f} ± {100 * r['finetuned_std']:.2f}",
                r["params"],
                r["macs"],
                r["latency_ms"],
                f"{r['latency_ms'] / b['latency_ms']:.2f}",
            ]
        )
    table = markdown_table(
        [
            "conversion",
            "layers replaced (seed 0)",
            "acc % as converted",
            "acc % + fine-tune",
            "params",
            "MACs",
            "latency ms",
            "latency ×",
        ],
        rows,
    )
    within = "\n".join(
        f"- {k}: **{v if v is not None else 'none of the tried settings'}**"
        for k, v in results["within_1_point"].items()
    )
    bud, ft = results["budget"], results["finetune"]
    cheap = min(results["conversions"].items(), key=lambda kv: kv[1]["macs"])
    return f"""
Question: can a trained network be converted to low-rank layers (the "fast R-CNN SVD
trick") or to DecomposeMe-style 1-D conv pairs, and what does it cost in accuracy and buy in speed?

**Setup.** `archkit.models.ResNet` (default digits config: stem 3x3, three bottleneck stages, widths
{results["config"]["widths"]}), trained on scikit-learn digits 8×8 per seed (seeds 0..{results["seeds"] - 1},
Adam lr {bud["lr"]}, {bud["epochs"]} epochs, the last {min(bud["epochs"], ANNEAL_EPOCHS)} at lr/10) {"— QUICK run on a data subset, not a result" if results["quick"] else ""}.
Then, post hoc:
- `archkit.surgery.decompose(model, rank=r)`: every 3x3 conv → linear 3x1 → 1x3 pair (exact at full
  rank; layers where rank r would not save MACs are left alone and reported as skipped);
- `archkit.surgery.lowrank(model, rank=r)`: every 1x1 conv and the linear head → a thin pair through r channels;
- "both": `decompose` then `lowrank`, each choosing per-layer ranks from the retained energy of the squared
  singular values.
Each conversion is evaluated as converted and after a {ft["epochs"]}-epoch fine-tune (Adam lr {ft["lr"]},
`archkit.train.fit_classifier`). Accuracy: mean ± std over seeds on the fixed held-out split.
Latency: seed-0 models, median of {lat["repeats"]} interleaved runs, batch {lat["batch"]}, {lat["threads"]}
torch thread(s), on a shared, contended CPU.

## Results

{table}

![accuracy vs latency](compress.png)

## The smallest rank (or energy) within 1 point of the trained model

Trained model: {100 * b["accuracy_mean"]:.2f}% → threshold {100 * (b["accuracy_mean"] - WITHIN):.2f}%.

{within}

## Reading

- Rank r is an upper bound per layer; MACs and latency of each row show what was actually replaced.
- MACs vs time: the cheapest conversion here ({cheap[0]}) has {cheap[1]["macs"] / b["macs"]:.2f}× the MACs of the
  trained model and {cheap[1]["latency_ms"] / b["latency_ms"]:.2f}× its latency. A digits-sized network is small, so
  per-layer overhead dominates and one conv replaced by two thinner ones saves arithmetic, not necessarily time. `benchmarks/bench_lowrank.py` measures the same trade on layers large enough for
  the MAC saving to matter.
"""
