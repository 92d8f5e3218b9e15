"""Gated PixelCNN prior: naive vs fast exact sampling, training throughput, held-out bits per code.

Sampling is timed interleaved (archkit.surgery.interleaved_latency) for the demo's top (4x4) and
bottom (8x8) code maps with the demo's prior configs (10 maps at once, one per class), and for a
32x32 map (1 map: the naive sampler needs 1,024 full passes); each row also checks that both
samplers return identical codes. Held-out bits/code come from a trained run (the demo's).

    .venv/bin/python benchmarks/bench_prior.py            # full run
    .venv/bin/python benchmarks/bench_prior.py --quick    # smoke run (small maps, 1 repeat)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from archkit.cli.demo import DemoConfig
from archkit.models import GatedPixelCNN, GatedPixelCNNConfig
from archkit.surgery import format_table, interleaved_latency
from archkit.train import atomic_write_json, read_jsonl

OUT = Path(__file__).parent / "results" / "bench_prior.json"


def prior(level: int, demo: DemoConfig, num_codes: int = 64) -> GatedPixelCNN:
    """The demo's prior for a level (random weights: sampling cost does not depend on training)."""
    torch.manual_seed(level)
    return GatedPixelCNN(GatedPixelCNNConfig(
        num_codes=num_codes, channels=demo.prior_channels[level], layers=demo.prior_layers,
        kernel_size=demo.prior_kernel[level], num_classes=10, dropout=0.0,
        cond_num_codes=num_codes if level > 0 else None, cond_scale=2 if level > 0 else 1)).eval()


def sampling_row(name: str, model: GatedPixelCNN, hw: int, batch: int, repeats: int) -> dict:
    labels = torch.arange(batch) % 10
    cond = torch.randint(0, 64, (batch, hw // 2, hw // 2)) if model.config.cond_num_codes else None
    shape = (batch, hw, hw)
    run = {m: (lambda m=m: model.sample(shape, labels, cond, generator=torch.Generator().manual_seed(0), method=m))
           for m in ("naive", "fast")}
    same = torch.equal(run["naive"](), run["fast"]())
    t = interleaved_latency(run, repeats=repeats, warmup=0)
    return {"map": name, "size": f"{hw}x{hw}", "batch": batch, "naive_s": t["naive"], "fast_s": t["fast"],
            "speedup": t["naive"] / t["fast"], "identical_codes": same}


def training_row(name: str, model: GatedPixelCNN, hw: int, batch: int, steps: int) -> dict:
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    codes = torch.randint(0, 64, (batch, hw, hw))
    labels = torch.arange(batch) % 10
    cond = torch.randint(0, 64, (batch, hw // 2, hw // 2)) if model.config.cond_num_codes else None

    def step() -> None:
        loss = F.cross_entropy(model(codes, labels, cond), codes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t0) / steps
    return {"map": name, "size": f"{hw}x{hw}", "batch": batch, "step_s": dt, "codes_per_s": batch * hw * hw / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small maps and one repeat (smoke run)")
    ap.add_argument("--run", default="runs/demo", help="trained run to read held-out bits/code from")
    ap.add_argument("--batch", type=int, default=10, help="maps sampled at once (one per digit class)")
    ap.add_argument("--big-batch", type=int, default=1, help="maps sampled at once for the 32x32 row")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    demo = DemoConfig()
    repeats = 1 if args.quick else 3
    big = 8 if args.quick else 32
    torch.set_grad_enabled(False)
    rows = [sampling_row("demo top", prior(0, demo), 4, args.batch, repeats),
            sampling_row("demo bottom", prior(1, demo), 8, args.batch, repeats),
            # the naive sampler runs H*W full passes: at 32x32 and batch 10 that is ~20 min, so batch 1 here
            sampling_row(f"{big}x{big} (bottom config)", prior(1, demo), big, args.big_batch, 1)]
    torch.set_grad_enabled(True)
    train = [training_row("demo top", prior(0, demo), 4, demo.prior_batch_size, 3 if args.quick else 20),
             training_row("demo bottom", prior(1, demo), 8, demo.prior_batch_size, 3 if args.quick else 20)]
    bits = []
    for level in (0, 1):
        recs = read_jsonl(Path(args.run) / f"prior-{level}" / "metrics.jsonl")
        if recs:
            r = recs[-1]
            bits.append({"level": level, "step": r["step"], "test_bits_per_code": r["test_bits_per_code"],
                         "train_bits_per_code": r["train_bits_per_code"], "test_accuracy": r["test_accuracy"],
                         "train_accuracy": r["train_accuracy"]})
    print(format_table(["code map", "size", "batch", "naive s", "fast s", "speedup", "identical"],
                       [[r["map"], r["size"], r["batch"], r["naive_s"], r["fast_s"], r["speedup"], r["identical_codes"]]
                        for r in rows]))
    print(format_table(["prior", "size", "batch", "s/step", "codes/s"],
                       [[r["map"], r["size"], r["batch"], r["step_s"], r["codes_per_s"]] for r in train]))
    if bits:
        print(format_table(["level", "step", "held-out bits/code", "train bits/code", "held-out acc", "train acc"],
                           [list(b.values())[:6] for b in bits]))
    else:
        print(f"no trained priors in {args.run!r}: run `archkit demo` first for held-out bits/code")
    atomic_write_json(args.out, {"quick": args.quick, "threads": torch.get_num_threads(), "sampling": rows,
                                 "training": train, "held_out": bits, "run": args.run})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
