"""Memory that does not grow with the data: VQ-VAE-2 trained on image folders streamed from disk.

Measures, in one run:
1. peak resident memory growth (`archkit.surgery.peak_rss_growth_mib`, peak mark reset after imports)
   and training images/s of the same VQ-VAE-2, the same number of steps, on generated folders of
   1,000 and 8,000 64x64 PNGs (random crops of the photographs bundled with scikit-image/-learn),
   each run in a fresh subprocess; also the same 8,000 folder loaded whole in memory (the old path),
   for contrast. The DataLoader workers are separate processes: their peak RSS is reported apart
   (`worker_peak_rss_mib`, the largest worker's absolute peak, shared copy-on-write pages included).
2. images/s on the digits (32x32): the built-in in-memory set vs the same digits written to a PNG
   folder and streamed with 2 workers, runs alternated (memory, streamed, streamed, memory, ...) in
   fresh subprocesses so machine load hits both alike; ratio = median streamed / median in-memory of
   the steady-state speed (steps 2..N; step 1 carries the workers' start-up), the speed including
   start-up (archkit's own train_images_per_s) reported beside it.
Targets: peak RSS growth at 8,000 <= 1.2x that at 1,000; streamed >= 0.85x in-memory images/s.

    OMP_NUM_THREADS=1 nice python benchmarks/bench_scale.py          # ~5 min on 2 busy cores
    OMP_NUM_THREADS=1 python benchmarks/bench_scale.py --quick       # smoke run, numbers not meaningful
Image folders are generated once into --cache (default /tmp/archkit-bench-scale, never committed).
Writes benchmarks/results/bench_scale.json (bench_scale_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
MODEL = dict(
    hidden_channels=64,
    res_blocks=1,
    res_channels=32,
    code_dim=32,
    num_codes=128,
    batch_size=32,
    log_every=1000,
    restart_after=0,
)
SIZES = (1000, 8000)


def _child(args: argparse.Namespace) -> None:
    """(fresh subprocess) train once; print peak RSS growth, images/s and the workers' peak RSS as JSON."""
    import torch

    from archkit.data import load_image_dataset
    from archkit.surgery import peak_rss_growth_mib
    from archkit.train import VQVAETrainConfig, train_vqvae
    from archkit.train import vqvae as vqvae_module

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    ends: list[float] = []  # end of every optimizer step: steady-state speed leaves out worker start-up
    step_fn = vqvae_module.train_step

    def timed_step(*a, **k):
        out = step_fn(*a, **k)
        ends.append(time.perf_counter())
        return out

    vqvae_module.train_step = timed_step
    if args.in_memory and args.data not in ("digits", "natural"):  # the pre-streaming path: whole folder as a tensor
        vqvae_module._load_data = lambda c, split, channels=None: load_image_dataset(
            c.data, split, c.image_size, channels
        )
    with tempfile.TemporaryDirectory() as out:
        cfg = VQVAETrainConfig(
            data=args.data,
            image_size=args.image_size,
            out=out,
            steps=args.steps,
            eval_every=args.steps,
            workers=args.workers,
            **MODEL,
        )
        result: dict = {}
        growth = peak_rss_growth_mib(lambda: result.update(train_vqvae(cfg, progress=False)))
    workers_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # workers were joined at the end
    steady = (len(ends) - 1) * MODEL["batch_size"] / (ends[-1] - ends[0]) if len(ends) > 1 else None
    print(
        json.dumps(
            {
                "peak_rss_growth_mib": growth,
                "images_per_s": result["train_images_per_s"],
                "steady_images_per_s": steady,
                "worker_peak_rss_mib": workers_kib / 1024 if args.workers else None,
                "psnr": result["psnr"],
                "step": result["step"],
            }
        )
    )


def _run_child(data: str, image_size: int, steps: int, workers: int, in_memory: bool = False) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--data",
        data,
        "--image-size",
        str(image_size),
        "--steps",
        str(steps),
        "--workers",
        str(workers),
    ] + (["--in-memory"] if in_memory else [])
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({' '.join(cmd)}):\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t0
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        dst.write_bytes(src.read_bytes())


def make_folders(cache: Path) -> dict[int, Path]:
    """Folders of 1,000 and 8,000 64x64 PNG crops (the 1,000 are the first 1,000 of the 8,000); reused when complete."""
    from archkit.data import write_image_folder
    from archkit.data.images import _natural

    folders = {n: cache / f"natural64_{n}" for n in SIZES}
    big = folders[max(SIZES)]
    if len(list(big.glob("*.png"))) != max(SIZES):
        written, seed = 0, 0
        while written < max(SIZES):  # 4,096 crops per seed: a few calls, each freed before the next
            crops = _natural("train", 64, seed=seed).images[: max(SIZES) - written]
            write_image_folder(crops, big, start=written)
            written, seed = written + len(crops), seed + 1
    for n, folder in folders.items():
        if folder != big and len(list(folder.glob("*.png"))) != n:
            for i in range(n):
                _link_or_copy(big / f"{i:06d}.png", folder / f"{i:06d}.png")
    return folders


def make_digit_folder(cache: Path) -> Path:
    """All 1,797 digits at 32x32 as PNGs, one sub-folder per class."""
    import torch

    from archkit.data import load_digits, write_image_folder

    folder = cache / "digits32"
    if len(list(folder.rglob("*.png"))) != 1797:
        (xa, ya), (xb, yb) = load_digits("train", 32), load_digits("test", 32)
        write_image_folder(torch.cat([xa, xb]), folder, labels=torch.cat([ya, yb]))
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: few steps, one round, numbers not meaningful")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "archkit-bench-scale")
    p.add_argument("--steps", type=int, default=None, help="training steps per folder run (default 40; quick 4)")
    p.add_argument("--rounds", type=int, default=None, help="alternated rounds of the digits comparison (default 3)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--image-size", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--in-memory", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return _child(args)

    from archkit.surgery import format_table
    from archkit.train import atomic_write_json

    steps = args.steps or (4 if args.quick else 40)
    rounds = args.rounds or (1 if args.quick else 3)
    t0 = time.perf_counter()
    print(f"[data] generating/reusing image folders in {args.cache}", flush=True)
    folders = make_folders(args.cache)
    digits = make_digit_folder(args.cache)

    scale = {}
    for n in SIZES:
        print(f"[scale] {n} images streamed, {steps} steps, 2 workers (fresh subprocess)", flush=True)
        scale[f"streamed_{n}"] = {"images": n, "mode": "streamed", **_run_child(str(folders[n]), 64, steps, 2)}
    if not args.quick:
        print(f"[scale] {max(SIZES)} images loaded whole in memory (the pre-streaming path)", flush=True)
        scale[f"in_memory_{max(SIZES)}"] = {
            "images": max(SIZES),
            "mode": "in-memory",
            **_run_child(str(folders[max(SIZES)]), 64, steps, 0, in_memory=True),
        }
    small, large = scale[f"streamed_{min(SIZES)}"], scale[f"streamed_{max(SIZES)}"]
    rss_ratio = large["peak_rss_growth_mib"] / small["peak_rss_growth_mib"]

    speed: dict[str, list[dict]] = {"in_memory": [], "streamed": []}
    digit_steps = steps * 2
    for r in range(rounds):  # alternated, each in a fresh process: load hits both alike
        for mode in ("in_memory", "streamed") if r % 2 == 0 else ("streamed", "in_memory"):
            print(f"[speed] round {r + 1}/{rounds}: digits {mode}, {digit_steps} steps", flush=True)
            data, workers = ("digits", 0) if mode == "in_memory" else (str(digits), 2)
            speed[mode].append(_run_child(data, 32, digit_steps, workers))
    med = {m: statistics.median(r["steady_images_per_s"] for r in runs) for m, runs in speed.items()}
    med_all = {m: statistics.median(r["images_per_s"] for r in runs) for m, runs in speed.items()}
    speed_ratio = med["streamed"] / med["in_memory"]
    paired = [
        s["steady_images_per_s"] / m["steady_images_per_s"] for s, m in zip(speed["streamed"], speed["in_memory"])
    ]

    targets = {
        "rss_8000_over_1000": rss_ratio,
        "rss_target": 1.2,
        "rss_met": rss_ratio <= 1.2,
        "streamed_over_in_memory": speed_ratio,
        "speed_target": 0.85,
        "speed_met": speed_ratio >= 0.85,
        "streamed_over_in_memory_incl_startup": med_all["streamed"] / med_all["in_memory"],
        "streamed_over_in_memory_per_round": paired,
    }
    print(
        format_table(
            ["run", "images", "peak RSS growth MiB", "worker peak RSS MiB", "images/s", "steady images/s", "PSNR dB"],
            [
                [
                    k,
                    v["images"],
                    v["peak_rss_growth_mib"],
                    v["worker_peak_rss_mib"] or "-",
                    v["images_per_s"],
                    v["steady_images_per_s"],
                    v["psnr"],
                ]
                for k, v in scale.items()
            ],
        )
    )
    print(
        f"peak RSS growth {max(SIZES)} / {min(SIZES)} images: {rss_ratio:.3f} (target <= 1.2: "
        f"{'met' if targets['rss_met'] else 'MISSED'})"
    )
    print(
        format_table(
            ["digits 32x32", "steady images/s per round", "median steady", "median incl. start-up"],
            [
                [m, " ".join(f"{r['steady_images_per_s']:.1f}" for r in runs), med[m], med_all[m]]
                for m, runs in speed.items()
            ],
        )
    )
    print(
        f"streamed (2 workers) / in-memory steady images/s: {speed_ratio:.3f} (target >= 0.85: "
        f"{'met' if targets['speed_met'] else 'MISSED'}); including worker start-up: "
        f"{targets['streamed_over_in_memory_incl_startup']:.3f}; per round: {' '.join(f'{r:.2f}' for r in paired)}"
    )
    import torch

    result = {
        "quick": args.quick,
        "steps": steps,
        "digit_steps": digit_steps,
        "rounds": rounds,
        "model": MODEL,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "scale": scale,
        "digits_speed": speed,
        "digits_median_images_per_s": med,
        "digits_median_images_per_s_incl_startup": med_all,
        "targets": targets,
        "wall_s": time.perf_counter() - t0,
        "probe": "archkit.surgery.peak_rss_growth_mib of the training process (peak mark reset after imports); "
        "worker_peak_rss_mib = RUSAGE_CHILDREN ru_maxrss (largest DataLoader worker, absolute)",
    }
    path = RESULTS / ("bench_scale_quick.json" if args.quick else "bench_scale.json")
    atomic_write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
