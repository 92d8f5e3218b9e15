"""Study `reduction`: 1x1 channel reduction (2C -> C) as conv-norm-act, norm-act-conv or a plain conv.

The same small CascadeCNN is trained on scikit-learn digits with its reductions in each order
(same seeds, same budget). We report test accuracy (mean +- std over seeds), parameters, MACs and
CPU latency before/after `fuse_bn` (timed interleaved), and the module sequence left after
folding: in a conv-bn-relu cascade the first two orders collapse to the same conv-relu pairs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import load_digits
from ..models import CascadeCNN, CascadeCNNConfig
from ..surgery import count_macs, count_params, fuse_bn, interleaved_latency, output_error
from ..train import accuracy, fit_classifier, seed_everything
from .report import Budget, markdown_table, mean_std, new_figure, save_figure, write_report

# name -> config. The last one is the honest counter-example: pre-activation reductions dropped
# into a post-activation net give conv-bn-relu-bn-relu-conv, whose middle BN has no conv neighbour.
VARIANTS: dict[str, CascadeCNNConfig] = {
    "conv-norm-act": CascadeCNNConfig(reduction_order="conv-norm-act"),
    "norm-act-conv": CascadeCNNConfig(reduction_order="norm-act-conv"),
    "conv": CascadeCNNConfig(reduction_order="conv"),
    "norm-act-conv (reductions only)": CascadeCNNConfig(reduction_order="norm-act-conv", block_order="conv-norm-act"),
}

_SHORT = {
    nn.Conv2d: "conv",
    nn.Linear: "linear",
    nn.ReLU: "relu",
    nn.Flatten: "flatten",
    nn.AdaptiveAvgPool2d: "pool",
    nn.Identity: "identity",
}


def _short_name(module: nn.Module) -> str:
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "bn"
    return _SHORT.get(type(module), type(module).__name__.lower())


def op_sequence(model: nn.Module) -> list[str]:
    """The ops a forward pass runs, in order (traced with torch.fx; leaf modules if tracing fails)."""
    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(model)
    except Exception:  # untraceable model: registration order of leaf modules is the next best thing
        return [_short_name(m) for m in model.modules() if not list(m.children())]
    mods = dict(graph.named_modules())
    ops = []
    for node in graph.graph.nodes:
        if node.op == "call_module":
            ops.append(_short_name(mods[node.target]))
        elif node.op in ("call_function", "call_method"):
            ops.append(getattr(node.target, "__name__", str(node.target)))
    return [op for op in ops if op != "identity"]


def is_conv_relu_chain(ops: list[str]) -> bool:
    """True when the body (before pool/flatten/linear) is exactly conv, relu, conv, relu, ..."""
    body = ops[: ops.index("pool")] if "pool" in ops else ops
    return len(body) >= 2 and body == ["conv", "relu"] * (len(body) // 2)


def _count_bn(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def cpu_latency(fns: dict[str, Callable[[], Any]], rounds: int, warmup: int, seed: int = 0) -> dict[str, float]:
    """Median CPU seconds per call (calling thread, torch on 1 thread), interleaved in a random order per round.

    On a shared, oversubscribed CPU, wall-clock time mostly measures how long the scheduler kept us
    waiting (we saw the same model flip between 1.7 and 18 ms); the thread's CPU time measures the work.
    """
    import random
    import statistics
    import time

    rng, names = random.Random(seed), list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for _ in range(warmup):
                for fn in fns.values():
                    fn()
            for _ in range(rounds):
                rng.shuffle(names)
                for k in names:
                    t0 = time.thread_time()
                    fns[k]()
                    times[k].append(time.thread_time() - t0)
    finally:
        torch.set_num_threads(threads)
    return {k: statistics.median(v) for k, v in times.items()}


def run(out_dir: Path, seeds: int = 3, quick: bool = False) -> dict[str, Any]:
    """Train every variant for `seeds` seeds, fold BN, time it; write report.md, reduction.png, results.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    budget: Budget = {"epochs": 2 if quick else 15, "batch_size": 64, "lr": 3e-3}
    x, y = load_digits("train")
    x_test, y_test = load_digits("test")
    if quick:
        x, y = x[:512], y[:512]
    results: dict[str, Any] = {"budget": budget, "seeds": seeds, "quick": quick, "variants": {}}
    trained: dict[str, tuple[nn.Module, nn.Module]] = {}
    jobs = [(name, seed) for name in VARIANTS for seed in range(seeds)]
    for name, seed in tqdm(jobs, desc="reduction", leave=False):
        cfg = VARIANTS[name]
        seed_everything(seed)
        model = CascadeCNN(cfg)
        fit = fit_classifier(model, x, y, x_test=x_test, y_test=y_test, seed=seed, **budget)
        fused, report = fuse_bn(model.eval())
        fused.eval()
        with torch.no_grad():
            _, rel = output_error(model(x_test), fused(x_test))
        r = results["variants"].setdefault(
            name,
            {
                "config": asdict(cfg),
                "accuracy": [],
                "fused_accuracy": [],
                "max_rel_error": 0.0,
                "folded": len(report.by_action("folded")),
                "skipped": [f"{c.name}: {c.reason}" for c in report.skipped],
            },
        )
        r["accuracy"].append(fit.test_accuracy)
        r["fused_accuracy"].append(accuracy(fused, x_test, y_test))
        r["max_rel_error"] = max(r["max_rel_error"], rel)
        if seed == 0:
            trained[name] = (model, fused)

    batch = x_test[: 64 if quick else 256]
    fns: dict[str, Callable[[], Any]] = {}
    for name, (net, fused) in trained.items():
        fns[f"{name}|unfused"] = functools.partial(net, batch)
        fns[f"{name}|fused"] = functools.partial(fused, batch)
    rounds = 5 if quick else 100
    latency = cpu_latency(fns, rounds=rounds, warmup=2 if quick else 5)
    wall = interleaved_latency(fns, repeats=rounds, warmup=1)  # for reference: contended wall-clock
    for name, (net, fused) in trained.items():
        r = results["variants"][name]
        r["accuracy_mean"], r["accuracy_std"] = mean_std(r["accuracy"])
        r["fused_accuracy_mean"], _ = mean_std(r["fused_accuracy"])
        r["params"], r["params_fused"] = count_params(net), count_params(fused)
        r["macs"], r["macs_fused"] = count_macs(net, batch[:1]), count_macs(fused, batch[:1])
        r["latency_ms"] = 1e3 * latency[f"{name}|unfused"]
        r["latency_fused_ms"] = 1e3 * latency[f"{name}|fused"]
        r["fused_over_unfused"] = latency[f"{name}|fused"] / latency[f"{name}|unfused"]
        r["wall_ms"], r["wall_fused_ms"] = 1e3 * wall[f"{name}|unfused"], 1e3 * wall[f"{name}|fused"]
        r["bn_before"], r["bn_after"] = _count_bn(net), _count_bn(fused)
        r["ops_before"], r["ops_after"] = op_sequence(net), op_sequence(fused)
        r["conv_relu_chain_after"] = is_conv_relu_chain(r["ops_after"])
    results["latency"] = {"batch": len(batch), "clock": "thread CPU time, 1 torch thread", "rounds": rounds}
    _plot(results, out_dir / "reduction.png")
    write_report(out_dir, "Study: 1x1 feature reduction order", _body(results), results)
    return results


def _plot(results: dict[str, Any], path: Path) -> Path:
    v = _ordered(results["variants"])
    names = list(v)
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(11, 4.2))
    pos = range(len(names))
    labels = [n.replace(" (", "\n(") for n in names]
    ax1.bar(
        pos,
        [100 * v[n]["accuracy_mean"] for n in names],
        yerr=[100 * v[n]["accuracy_std"] for n in names],
        capsize=4,
        color="tab:blue",
    )
    lo = min(100 * (v[n]["accuracy_mean"] - v[n]["accuracy_std"]) for n in names)
    ax1.set_ylim(max(0.0, lo - 2), 100)
    ax1.set_xticks(list(pos), labels, fontsize=8)
    ax1.set_ylabel("test accuracy (%)")
    ax1.set_title(f"digits test accuracy, mean ± std over {results['seeds']} seed(s)")
    w = 0.38
    ax2.bar([p - w / 2 for p in pos], [v[n]["latency_ms"] for n in names], w, label="as trained", color="tab:gray")
    ax2.bar(
        [p + w / 2 for p in pos], [v[n]["latency_fused_ms"] for n in names], w, label="after fuse_bn", color="tab:green"
    )
    ax2.set_xticks(list(pos), labels, fontsize=8)
    ax2.set_ylabel(f"CPU time per forward, batch {results['latency']['batch']} (ms)")
    ax2.set_title("CPU latency before / after fuse_bn (median, interleaved)")
    top = max(max(v[n]["latency_ms"], v[n]["latency_fused_ms"]) for n in names)
    ax2.set_ylim(0, 1.3 * top)  # headroom so the legend never covers a bar
    ax2.legend(loc="upper center", ncol=2, fontsize=8)
    return save_figure(fig, path)


def _compare(v: dict[str, Any], a: str, b: str) -> str:
    """One sentence: is the accuracy gap between variants a and b larger than their seed spread?"""
    gap = 100 * (v[b]["accuracy_mean"] - v[a]["accuracy_mean"])
    spread = 100 * (v[a]["accuracy_std"] + v[b]["accuracy_std"])
    verdict = "within" if abs(gap) <= spread else "outside"
    return f"Accuracy of {b} minus {a}: {gap:+.2f} points, {verdict} the summed seed std ({spread:.2f})."


def _ordered(variants: dict[str, Any]) -> dict[str, Any]:
    """Variants in VARIANTS order (results.json stores keys sorted)."""
    return {n: variants[n] for n in [*VARIANTS, *sorted(variants)] if n in variants}


def _body(results: dict[str, Any]) -> str:
    v = _ordered(results["variants"])
    b = results["budget"]
    rows = [
        [
            n,
            f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f}",
            f"{100 * r['fused_accuracy_mean']:.2f}",
            f"{r['max_rel_error']:.1e}",
            r["params"],
            r["params_fused"],
            r["macs"],
            r["macs_fused"],
            r["latency_ms"],
            r["latency_fused_ms"],
            f"{r['fused_over_unfused']:.2f}",
            f"{r['bn_before']} → {r['bn_after']}",
            r["wall_ms"],
            r["wall_fused_ms"],
        ]
        for n, r in v.items()
    ]
    table = markdown_table(
        [
            "variant",
            "test acc % (mean ± std)",
            "acc % after fold",
            "max rel. output err",
            "params",
            "params fused",
            "MACs",
            "MACs fused",
            "CPU ms",
            "CPU ms fused",
            "fused/unfused",
            "BN modules",
            "wall ms",
            "wall ms fused",
        ],
        rows,
    )
    seqs = "\n".join(
        f"- **{n}**\n  - trained: `{' '.join(r['ops_before'])}`\n  - after `fuse_bn`: `{' '.join(r['ops_after'])}`"
        f"  → conv-relu pairs only: **{'yes' if r['conv_relu_chain_after'] else 'no'}**"
        + (f"\n  - not folded: {'; '.join(r['skipped'])}" if r["skipped"] else "")
        for n, r in v.items()
    )
    same = v["conv-norm-act"]["ops_after"] == v["norm-act-conv"]["ops_after"]
    mixed = v["norm-act-conv (reductions only)"]
    lo, hi = (100 * f(r["accuracy_mean"] for r in v.values()) for f in (min, max))
    lat = results["latency"]
    return f"""
Question: reduce B×2C×H×W to B×C×H×W with a 1x1 conv as conv→BN→ReLU (ResNet),
BN→ReLU→conv (DenseNet) or a plain conv — which, and why?

**Setup.** `CascadeCNN` (archkit.models): stem, then 3 stages of [1x1 reduction 2C→C, 3x3 conv C→2C],
global pool, linear head; scikit-learn digits 8×8, fixed held-out split ({len(load_digits("test")[1])} test images).
Each variant: seeds 0..{results["seeds"] - 1}, Adam lr {b["lr"]}, {b["epochs"]} epochs, batch {b["batch_size"]}.
- `conv-norm-act`: post-activation everywhere → conv-bn-relu | conv-bn-relu | …
- `norm-act-conv`: pre-activation everywhere (DenseNet style) → conv | bn-relu-conv | bn-relu-conv | … | bn-relu.
  This is the *same cascade cut into different triplets*: only the two ends differ.
- `conv`: linear reductions (no BN, no ReLU), post-activation 3x3 convs.
- `norm-act-conv (reductions only)`: pre-activation reductions inside a post-activation net,
  i.e. conv-bn-relu-**bn-relu-conv** (a counter-example, to show when folding is *not* possible).

Latency: CPU time of one forward pass (batch {lat["batch"]}, 1 torch thread, `time.thread_time`), median of
{lat["rounds"]} interleaved rounds in random order, seed-0 models. The machine is a shared, oversubscribed 2-core
box, so wall-clock times (last two columns, `interleaved_latency`) mostly measure scheduler waits; CPU time
measures the work.

## Results

{table}

"acc % after fold" uses the folded model (same seeds); the max relative output error is over all
seeds on the whole test set, so folding is exact up to float32 rounding.

## What is left after `fuse_bn`

{seqs}

Orders 1 and 2 give {"the identical" if same else "different"} op sequences after folding.

## Reading

- **conv-norm-act vs norm-act-conv**: inside a cascade they are the same network up to the ends
  (order 2 has a bare stem conv and an extra final BN-ReLU). Each BN in order 2 sits right after the
  previous block's conv, so `fuse_bn` folds it into that *preceding* conv — not into the 1x1 conv
  that follows it: a ReLU stands between BN and that conv, and BN cannot be moved through a ReLU.
  After folding both are {"the same conv→relu chain" if same else "NOT the same chain (unexpected)"}. {_compare(v, "conv-norm-act", "norm-act-conv")}
- **Where the cascade argument does not apply**: the last variant puts BN after a ReLU (conv-bn-relu-bn-relu-conv).
  Such a BN has no adjacent conv, so it cannot be folded exactly: {mixed["bn_after"]} BN layer(s) stay in the
  deployed model (fused/unfused latency {mixed["fused_over_unfused"]:.2f} vs {v["conv-norm-act"]["fused_over_unfused"]:.2f}
  for conv-norm-act). {_compare(v, "conv-norm-act", "norm-act-conv (reductions only)")}
- **Plain conv reductions** (no BN/ReLU) are a linear low-rank map, as the question suggests; after folding they
  read conv-conv-relu (the linear 1x1 feeds the 3x3 conv directly), hence "no" above. {_compare(v, "conv-norm-act", "conv")}
  After folding, every variant has the same conv MACs (the flop counter counts convs/linears only), so
  latency differences come from the remaining elementwise ops (BN, ReLU).
- Digits are easy ({lo:.1f}–{hi:.1f} % mean test accuracy across variants): this study shows the equivalence
  and what folding does, not which order is more accurate on hard data.

Reproduce: `archkit study reduction --out runs/study-reduction` (add `--seeds N` for more seeds).
"""
