"""Gated PixelCNN prior: naive vs fast exact sampling, training throughput, held-out bits per code.

Sampling is timed interleaved (archkit.surgery.interleaved_latency) for the demo's top (4x4) and
bottom (8x8) code maps with the demo's prior configs (10 maps at once, one per class), and for a
32x32 map (1 map: the naive sampler needs 1,024 full passes); each row also checks that both
samplers return identical codes. Held-out bits/code come from a trained run (the demo's).

    .venv/bin/python benchmarks/bench_prior.py            # full run
    .venv/bin/python benchmarks/bench_prior.py --quick    # smoke run (small maps, 1 repeat)
    .venv/bin/python benchmarks/bench_prior.py --at-256   # `archkit sample` on a paper-256 run (below)
    .venv/bin/python benchmarks/bench_prior.py --attention-study RUN/vqvae --budget 600 --train-batch 16

--attention-study: held-out bits/code of the gated top prior with vs without self-attention on the natural
64x64 crops' top codes under a trained VQ-VAE, each model trained for the same CPU seconds (per seed).

--at-256: a run folder with a random-weight paper-256 VQ-VAE (32x32 top, 64x64 bottom code maps), a
top prior with self-attention and a bottom prior conditioned on the top codes. Times the cached
sampler end to end (`sample_images`, what `archkit sample` runs: both levels + decoding) for 16
images, then each level's cached sampler alone, and the naive sampler per level for a fixed time
budget (it needs H*W full passes; its time is extrapolated linearly from the positions it finished,
each position costing one full forward). The naive positions are split around the cached run so
both see the same machine load, and the naive codes are checked against the cached ones.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))  # the modules beside this script
from _common import write_json
from _prior_at256 import at_256

from archkit.cli.demo import DemoConfig
from archkit.models import GatedPixelCNN, GatedPixelCNNConfig
from archkit.surgery import format_table, interleaved_latency
from archkit.train import read_jsonl

OUT = Path(__file__).parent / "results" / "bench_prior.json"


def prior(level: int, demo: DemoConfig, num_codes: int = 64) -> GatedPixelCNN:
    """The demo's prior for a level (random weights: sampling cost does not depend on training)."""
    torch.manual_seed(level)
    return GatedPixelCNN(
        GatedPixelCNNConfig(
            num_codes=num_codes,
            channels=demo.prior_channels[level],
            layers=demo.prior_layers,
            kernel_size=demo.prior_kernel[level],
            num_classes=10,
            dropout=0.0,
            cond_num_codes=num_codes if level > 0 else None,
            cond_scale=2 if level > 0 else 1,
        )
    ).eval()


def sampling_row(name: str, model: GatedPixelCNN, hw: int, batch: int, repeats: int) -> dict:
    labels = torch.arange(batch) % 10
    cond = torch.randint(0, 64, (batch, hw // 2, hw // 2)) if model.config.cond_num_codes else None
    shape = (batch, hw, hw)
    run = {
        m: (lambda m=m: model.sample(shape, labels, cond, generator=torch.Generator().manual_seed(0), method=m))
        for m in ("naive", "fast")
    }
    same = torch.equal(run["naive"](), run["fast"]())
    t = interleaved_latency(run, repeats=repeats, warmup=0)
    return {
        "map": name,
        "size": f"{hw}x{hw}",
        "batch": batch,
        "naive_s": t["naive"],
        "fast_s": t["fast"],
        "speedup": t["naive"] / t["fast"],
        "identical_codes": same,
    }


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


# ---- top prior with vs without self-attention, at equal CPU training time ---------------------------
def top_codes(vqvae_folder: str, image_size: int = 64) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(train, held-out) top-level code maps of the natural crops under a trained VQ-VAE checkpoint folder."""
    from archkit.data import load_image_dataset
    from archkit.models import VQVAE2, VQVAE2Config
    from archkit.train import load_weights, read_model_config

    cfg, _ = read_model_config(vqvae_folder, VQVAE2Config)
    vq = load_weights(vqvae_folder, VQVAE2(cfg)).eval()
    maps = []
    with torch.no_grad():
        for split in ("train", "test"):
            images = load_image_dataset("natural", split, image_size).images
            maps.append(torch.cat([vq.encode(images[i : i + 128])[0] for i in range(0, len(images), 128)]))
    return maps[0], maps[1], cfg.codes_per_level()[0]


def time_lr(lr: float, spent: float, budget: float) -> float:
    """Warm-up over the first 5 % of the time budget, then cosine to 10 %: the prior trainer's shape, in seconds."""
    t = spent / budget
    if t < 0.05:
        return lr * max(t, 1e-3) / 0.05
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min((t - 0.05) / 0.95, 1.0))))


def attention_study(
    vqvae_folder: str,
    seeds: list[int],
    budget_s: float,
    attention_every: int,
    out: str,
    batch: int = 16,
    lr: float = 1e-3,
    chunk_s: float = 5.0,
    sample_maps: int = 16,
) -> dict:
    """Held-out bits/code of the gated top prior with and without attention, each trained for `budget_s` CPU seconds.

    The two models of a seed start from the same seed and see the same batch order; they are trained in
    alternating chunks of about `chunk_s` seconds so machine load hits both alike. The learning rate
    follows each model's own clock (`time_lr`), so both finish their schedule at the budget.
    """
    from tqdm.auto import tqdm

    from archkit.train.prior import code_metrics

    train, test, num_codes = top_codes(vqvae_folder)
    variants = {"no attention": 0, f"attention every {attention_every}": attention_every}
    rows, per_seed = [], []
    bar = tqdm(total=len(seeds) * len(variants) * budget_s, desc="attention study", unit="s")
    done_s = 0.0
    for seed in seeds:
        models, opts, spent, steps = {}, {}, {}, {}
        for name, every in variants.items():
            torch.manual_seed(seed)
            models[name] = GatedPixelCNN(GatedPixelCNNConfig(num_codes=num_codes, attention_every=every))
            opts[name] = torch.optim.Adam(models[name].parameters(), lr=lr)
            spent[name], steps[name] = 0.0, 0
        gens = {name: torch.Generator().manual_seed(seed) for name in variants}
        while any(spent[n] < budget_s for n in variants):
            for name, model in models.items():
                if spent[name] >= budget_s:
                    continue
                model.train()
                start = t0 = time.perf_counter()
                while time.perf_counter() - start < chunk_s and spent[name] + time.perf_counter() - start < budget_s:
                    xb = train[torch.randint(0, len(train), (batch,), generator=gens[name])]
                    for group in opts[name].param_groups:
                        group["lr"] = time_lr(lr, spent[name] + time.perf_counter() - start, budget_s)
                    loss = F.cross_entropy(model(xb), xb)
                    opts[name].zero_grad(set_to_none=True)
                    loss.backward()
                    opts[name].step()
                    steps[name] += 1
                spent[name] += time.perf_counter() - t0
                bar.n = done_s + sum(min(v, budget_s) for v in spent.values())
                bar.refresh()
        seed_rec = {"seed": seed}
        for name, model in models.items():
            held = code_metrics(model, test, None, None)
            fit = code_metrics(model, train[: len(test)], None, None)
            model.eval()
            sample_s = interleaved_latency(
                {
                    name: lambda m=model: m.sample(
                        (sample_maps, *test.shape[1:]),
                        None,
                        None,
                        generator=torch.Generator().manual_seed(0),
                        method="fast",
                    )
                },
                repeats=3,
                warmup=1,
            )[name]
            rec = {
                "variant": name,
                "seed": seed,
                "train_s": spent[name],
                "steps": steps[name],
                "params": sum(p.numel() for p in model.parameters()),
                "held_out_bits_per_code": held["bits_per_code"],
                "train_bits_per_code": fit["bits_per_code"],
                "held_out_accuracy": held["accuracy"],
                "sample_s": sample_s,
            }
            rows.append(rec)
            seed_rec[name] = rec["held_out_bits_per_code"]
            bar.write(
                f"seed {seed} {name}: {rec['held_out_bits_per_code']:.3f} bits/code held out, "
                f"{steps[name]} steps, sampling {sample_maps} maps {sample_s:.2f} s"
            )
        per_seed.append(seed_rec)
        done_s += len(variants) * budget_s
    bar.close()
    names = list(variants)
    summary = {}
    for name in names:
        r = [x for x in rows if x["variant"] == name]
        summary[name] = {
            k: statistics.mean(x[k] for x in r)
            for k in ("held_out_bits_per_code", "train_bits_per_code", "steps", "sample_s", "params")
        }
    ratios = [s[names[1]] / s[names[0]] for s in per_seed]
    record = {
        "vqvae": vqvae_folder,
        "top_map": list(test.shape[1:]),
        "num_codes": num_codes,
        "train_maps": len(train),
        "held_out_maps": len(test),
        "budget_s_per_model": budget_s,
        "batch_size": batch,
        "lr": lr,
        "threads": torch.get_num_threads(),
        "seeds": seeds,
        "runs": rows,
        "summary": summary,
        "nll_ratio_attention_over_none_per_seed": ratios,
        "nll_ratio_attention_over_none_mean": statistics.mean(ratios),
        "prior": "GatedPixelCNNConfig defaults (64 channels, 8 gated layers, kernel 5, dropout 0.1), unconditional",
    }
    print(
        format_table(
            [
                "variant",
                "params",
                "steps in budget",
                "held-out bits/code",
                "train bits/code",
                f"sample {sample_maps} maps s",
            ],
            [
                [
                    n,
                    int(summary[n]["params"]),
                    f"{summary[n]['steps']:.0f}",
                    f"{summary[n]['held_out_bits_per_code']:.3f}",
                    f"{summary[n]['train_bits_per_code']:.3f}",
                    f"{summary[n]['sample_s']:.2f}",
                ]
                for n in names
            ],
        )
    )
    print(
        f"held-out NLL ratio attention / none: per seed {[round(r, 4) for r in ratios]}, "
        f"mean {record['nll_ratio_attention_over_none_mean']:.4f} (target <= 0.97)"
    )
    write_json(out, record)
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small maps and one repeat (smoke run)")
    ap.add_argument("--run", default="runs/demo", help="trained run to read held-out bits/code from")
    ap.add_argument("--batch", type=int, default=10, help="maps sampled at once (one per digit class)")
    ap.add_argument("--big-batch", type=int, default=1, help="maps sampled at once for the 32x32 row")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--at-256", action="store_true", help="only the paper-256 sampling section")
    ap.add_argument("--images", type=int, default=16, help="--at-256: images sampled")
    ap.add_argument("--naive-budget", type=float, default=120.0, help="--at-256: seconds of naive sampling per level")
    ap.add_argument(
        "--attention-study",
        metavar="VQVAE_FOLDER",
        help="top prior with vs without attention on the natural-64 top codes of this VQ-VAE checkpoint",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="--attention-study: seeds")
    ap.add_argument("--budget", type=float, default=120.0, help="--attention-study: CPU seconds of training per model")
    ap.add_argument(
        "--attention-every", type=int, default=4, help="--attention-study: attention after every K-th layer"
    )
    ap.add_argument("--train-batch", type=int, default=16, help="--attention-study: code maps per training step")
    args = ap.parse_args()
    if args.attention_study:
        out = args.out if args.out != str(OUT) else str(OUT.with_name("bench_prior_attention.json"))
        attention_study(
            args.attention_study, args.seeds, args.budget, args.attention_every, out, batch=args.train_batch
        )
        return
    if args.at_256:
        out = args.out if args.out != str(OUT) else str(OUT.with_name("bench_prior_256.json"))
        torch.set_grad_enabled(False)
        at_256(args.images, args.naive_budget, out)
        return
    demo = DemoConfig()
    repeats = 1 if args.quick else 3
    big = 8 if args.quick else 32
    torch.set_grad_enabled(False)
    rows = [
        sampling_row("demo top", prior(0, demo), 4, args.batch, repeats),
        sampling_row("demo bottom", prior(1, demo), 8, args.batch, repeats),
        # the naive sampler runs H*W full passes: at 32x32 and batch 10 that is ~20 min, so batch 1 here
        sampling_row(f"{big}x{big} (bottom config)", prior(1, demo), big, args.big_batch, 1),
    ]
    torch.set_grad_enabled(True)
    train = [
        training_row("demo top", prior(0, demo), 4, demo.prior_batch_size, 3 if args.quick else 20),
        training_row("demo bottom", prior(1, demo), 8, demo.prior_batch_size, 3 if args.quick else 20),
    ]
    bits = []
    for level in (0, 1):
        recs = read_jsonl(Path(args.run) / f"prior-{level}" / "metrics.jsonl")
        if recs:
            r = recs[-1]
            bits.append(
                {
                    "level": level,
                    "step": r["step"],
                    "test_bits_per_code": r["test_bits_per_code"],
                    "train_bits_per_code": r["train_bits_per_code"],
                    "test_accuracy": r["test_accuracy"],
                    "train_accuracy": r["train_accuracy"],
                }
            )
    print(
        format_table(
            ["code map", "size", "batch", "naive s", "fast s", "speedup", "identical"],
            [
                [r["map"], r["size"], r["batch"], r["naive_s"], r["fast_s"], r["speedup"], r["identical_codes"]]
                for r in rows
            ],
        )
    )
    print(
        format_table(
            ["prior", "size", "batch", "s/step", "codes/s"],
            [[r["map"], r["size"], r["batch"], r["step_s"], r["codes_per_s"]] for r in train],
        )
    )
    if bits:
        print(
            format_table(
                ["level", "step", "held-out bits/code", "train bits/code", "held-out acc", "train acc"],
                [list(b.values())[:6] for b in bits],
            )
        )
    else:
        print(f"no trained priors in {args.run!r}: run `archkit demo` first for held-out bits/code")
    record = {"sampling": rows, "training": train, "held_out": bits, "run": args.run}
    write_json(args.out, {"quick": args.quick, "threads": torch.get_num_threads(), **record})


if __name__ == "__main__":
    main()
