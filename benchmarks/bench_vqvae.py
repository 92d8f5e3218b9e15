"""Benchmark: archkit's VQVAE2 vs a plain reference architecture (random-init EMA codebook, no restarts).

Both models have the same channels and are trained in the same process on the same batches, in
interleaved chunks (so machine load hits both equally): a fixed number of steps at a fixed batch
size on `digits` (32x32) and `natural` (64x64). Reported per model: train images/s (and the
archkit / plain ratio), peak memory of a training step (separate short subprocess per model),
held-out PSNR, codes in use per level on the held-out set, and the top-swap change (decode every
image with another image's top codes: a top level that carries no information changes nothing).
Results are written after every evaluation, so an interrupted run still leaves its latest numbers.

    python benchmarks/bench_vqvae.py                 # 2,000 steps, batch 32, both datasets
    python benchmarks/bench_vqvae.py --quick         # smoke run
    python benchmarks/bench_vqvae.py --datasets natural --steps 1000
    python benchmarks/bench_vqvae.py --screen cosine-1e-3-codes-2048 --eval-every 250 --save-dir runs/screen
    python benchmarks/bench_vqvae.py --recon-grid runs/screen/cosine-1e-3-codes-2048 docs/img/natural64-recon.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))  # the modules beside this script
from _common import batch_order, check_ints, write_json
from _vqvae_plain import PlainVQVAE2
from _vqvae_screen import SCREEN_VARIANTS, run_screen

from archkit.data import load_image_dataset
from archkit.models import VQVAE2, VQVAE2Config
from archkit.surgery import format_table, peak_rss_growth_mib
from archkit.train import evaluate_vqvae
from archkit.train.vqvae import train_step

RESULTS = Path(__file__).parent / "results" / "bench_vqvae.json"
DATASETS = {"digits": 32, "natural": 64}


def build(kind: str, channels: int) -> nn.Module:
    cfg = VQVAE2Config(in_channels=channels)
    return VQVAE2(cfg) if kind == "archkit" else PlainVQVAE2(cfg)


def memprobe(dataset: str, kind: str, batch: int, steps: int = 3) -> float:
    """Peak RSS growth (MiB) over a few training steps, in this (fresh) process."""
    data = load_image_dataset(dataset, "train", DATASETS[dataset])
    torch.manual_seed(0)
    model = build(kind, data.channels)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)

    def run() -> None:
        for i in range(steps):
            train_step(model, opt, data.images[i * batch : (i + 1) * batch])

    return peak_rss_growth_mib(run)


def peak_memory(dataset: str, kind: str, batch: int) -> float | None:
    cmd = [sys.executable, __file__, "--memprobe", dataset, kind, "--batch-size", str(batch)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
        return float(out.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def run_dataset(name: str, steps: int, batch: int, chunk: int, eval_every: int, record: dict, save) -> None:
    size = DATASETS[name]
    train, test = load_image_dataset(name, "train", size), load_image_dataset(name, "test", size)
    models, opts, seconds = {}, {}, {}
    for kind in ("archkit", "plain"):
        torch.manual_seed(0)
        models[kind] = build(kind, train.channels)
        opts[kind] = torch.optim.Adam(models[kind].parameters(), lr=3e-4)
        seconds[kind] = 0.0
    order = batch_order(len(train), steps, batch)
    entry = record.setdefault(name, {})
    entry.update(
        {
            "image_size": size,
            "batch_size": batch,
            "steps_planned": steps,
            "train_images": len(train),
            "test_images": len(test),
        }
    )
    for kind in models:
        entry.setdefault(kind, {})["peak_memory_mib"] = peak_memory(name, kind, batch)
    step = 0
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, desc=name)
    while step < steps:
        n = min(chunk, steps - step)
        for kind in models:  # interleaved: both models see the same machine load
            t0 = time.perf_counter()
            for s in range(step, step + n):
                last = train_step(models[kind], opts[kind], train.images[order[s * batch : (s + 1) * batch]])
            seconds[kind] += time.perf_counter() - t0
            entry[kind]["last_train_psnr"] = last["psnr"]
        step += n
        bar.update(n)
        if step % eval_every == 0 or step == steps:
            for kind, model in models.items():
                ev = evaluate_vqvae(model, test.images)
                entry[kind].update(ev)
                entry[kind]["train_images_per_s"] = step * batch / seconds[kind]
            entry["steps_done"] = step
            entry["throughput_ratio_archkit_over_plain"] = (
                entry["archkit"]["train_images_per_s"] / entry["plain"]["train_images_per_s"]
            )
            entry["psnr_gain_db_archkit_minus_plain"] = entry["archkit"]["psnr"] - entry["plain"]["psnr"]
            save()
            bar.write(
                f"{name} step {step}: "
                + "; ".join(
                    f"{k} {entry[k]['psnr']:.2f} dB, codes {[lv['codes_used'] for lv in entry[k]['levels']]}, "
                    f"swap {entry[k]['top_swap_mse']:.2e}"
                    for k in models
                )
            )
    bar.close()


def recon_grid(folder: Path, out: Path, n: int = 12) -> dict:
    """Held-out natural 64x64 crops (spread over both test photographs) above their reconstructions by a saved
    model; returns its PSNR on the held-out set and on as many training crops (the generalization gap)."""
    from archkit.data import save_image_grid
    from archkit.train import load_weights, read_model_config

    cfg, _ = read_model_config(folder, VQVAE2Config)
    model = load_weights(folder, VQVAE2(cfg)).eval()
    train, test = load_image_dataset("natural", "train", 64).images, load_image_dataset("natural", "test", 64).images
    x = test[torch.linspace(0, len(test) - 1, n).long()]
    with torch.no_grad():
        recon = model.decode_codes(model.encode(x)).clamp(0, 1)
    save_image_grid([x, recon], out)
    held, fit = evaluate_vqvae(model, test), evaluate_vqvae(model, train[: len(test)])
    return {
        "held_out_psnr": held["psnr"],
        "train_psnr": fit["psnr"],
        "codes_used": [lv["codes_used"] for lv in held["levels"]],
        "grid": str(out),
    }


def print_table(record: dict) -> None:
    rows = []
    for name in DATASETS:
        if name not in record or "steps_done" not in record[name]:
            continue
        e = record[name]
        for kind in ("archkit", "plain"):
            m = e[kind]
            mem = m.get("peak_memory_mib")
            rows.append(
                [
                    f"{name} {e['image_size']}px",
                    kind,
                    f"{e['steps_done']}",
                    f"{m['train_images_per_s']:.1f}",
                    "-" if mem is None else f"{mem:.0f}",
                    f"{m['psnr']:.2f}",
                    " / ".join(f"{lv['codes_used']}/{lv['codes']}" for lv in m["levels"]),
                    f"{m['top_swap_mse']:.2e}",
                ]
            )
        rows.append(
            [
                f"{name} {e['image_size']}px",
                "ratio archkit/plain",
                "",
                f"{e['throughput_ratio_archkit_over_plain']:.2f}",
                "",
                f"{e['psnr_gain_db_archkit_minus_plain']:+.2f}",
                "",
                "",
            ]
        )
    print(
        format_table(
            [
                "data",
                "model",
                "steps",
                "train img/s",
                "peak MiB",
                "test PSNR",
                "codes used (top / bottom)",
                "top-swap MSE",
            ],
            rows,
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--chunk", type=int, default=25, help="steps per model before switching (interleaving)")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--quick", action="store_true", help="smoke run: 20 steps (numbers not meaningful)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--memory-only",
        action="store_true",
        help="re-measure only the peak memory of each model and update it in the existing JSON",
    )
    ap.add_argument(
        "--screen",
        nargs="*",
        metavar="VARIANT",
        choices=list(SCREEN_VARIANTS),
        help=f"natural 64x64 screening of {list(SCREEN_VARIANTS)} (all when none given) for --steps",
    )
    ap.add_argument("--save-dir", type=Path, help="--screen: keep each trained variant as a checkpoint folder here")
    ap.add_argument(
        "--recon-grid",
        nargs=2,
        type=Path,
        metavar=("CHECKPOINT", "PNG"),
        help="write held-out natural crops above their reconstructions by a saved --screen model",
    )
    ap.add_argument("--memprobe", nargs=2, metavar=("DATASET", "KIND"), help=argparse.SUPPRESS)
    ap.add_argument(
        "--precision",
        action="store_true",
        help="fp32 vs bf16 (eager, channels_last; --compile adds compiled variants) on natural-64, interleaved: "
        "images/s and share of the same-dtype matmul rate (benchmarks/vqvae_precision.py); --steps = timed rounds",
    )
    ap.add_argument("--compile", action="store_true", help="--precision: also time torch.compile'd variants")
    ap.add_argument("--threads", type=int, default=2, help="--precision: torch threads")
    args = ap.parse_args()
    if args.precision:
        from vqvae_precision import run as run_precision

        check_ints(args, ("steps", "batch_size", "threads"), 1, 100_000)
        out = args.out if args.out != RESULTS else RESULTS.with_name("bench_vqvae_precision.json")
        run_precision(
            batch=args.batch_size, rounds=args.steps, chunk=1, compile=args.compile, out=out, threads=args.threads
        )
        return
    if args.memprobe:
        print(memprobe(*args.memprobe, batch=args.batch_size))
        return
    if args.recon_grid:
        r = recon_grid(*args.recon_grid)
        print(
            f"wrote {r['grid']}: held-out PSNR {r['held_out_psnr']:.2f} dB, as many train crops "
            f"{r['train_psnr']:.2f} dB, held-out codes in use {r['codes_used']}"
        )
        return
    if args.screen is not None:
        out = args.out if args.out != RESULTS else RESULTS.with_name("bench_vqvae_screen.json")
        run_screen(
            args.screen or list(SCREEN_VARIANTS),
            args.steps,
            args.batch_size,
            args.chunk,
            out,
            eval_every=args.eval_every,
            save_dir=args.save_dir,
        )
        print(f"wrote {out}")
        return
    if args.quick:
        args.steps, args.eval_every, args.chunk = 20, 20, 10
        if args.out == RESULTS:
            args.out = RESULTS.with_name("bench_vqvae_quick.json")
    record = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if args.memory_only:
        for name in args.datasets:
            for kind in ("archkit", "plain"):
                record.setdefault(name, {}).setdefault(kind, {})["peak_memory_mib"] = peak_memory(
                    name, kind, args.batch_size
                )
        record.setdefault("config", {})["peak_memory_note"] = (
            "peak RSS growth over the first 3 training steps in a fresh process, measured with "
            "archkit.surgery.peak_rss_growth_mib (peak mark reset first); re-measured with --memory-only"
        )
        write_json(args.out, record, say=False)
        print_table(record)
        return
    record["config"] = {
        "default VQVAE2Config": "hidden 128, res_blocks 2, res_channels 32, code_dim 64, 512 codes/level",
        "torch_threads": torch.get_num_threads(),
        "note": "2-core CPU shared with other jobs",
    }

    def save() -> None:
        # Merge: `--datasets digits` and `--datasets natural` may run as two processes at once.
        current = json.loads(args.out.read_text()) if args.out.is_file() else {}
        current.update({k: record[k] for k in ["config", *args.datasets] if k in record})
        record.update({k: v for k, v in current.items() if k not in args.datasets})
        write_json(args.out, current, say=False)

    for name in args.datasets:
        record.pop(name, None)
        run_dataset(name, args.steps, args.batch_size, args.chunk, args.eval_every, record, save)
    print_table(record)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
