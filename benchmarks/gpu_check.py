"""GPU check: VQ-VAE-2 images/s (fp32, bf16, bf16 + compile; FSQ and rotation-trick quantizers in fp32), what
`--precision auto` picks, prior steps/s, sampling, DDP, MiniRocket vs aeon, LSTM training
sequences/s at (32, 8192, 8) (raw steps and conv front end; benchmarks/gpu_seq.py).

Finishes in under 7 minutes on one GPU: every section runs in its own process with a hard time
limit (a section that hangs or compiles too long is killed and reported as such, the rest still
run), and inside a section the timed loop stops at its share of that limit. Writes
benchmarks/results/gpu_check.json after every section, so a cut-short run keeps what it measured.

    python benchmarks/gpu_check.py                        # on a machine with a CUDA GPU
    python benchmarks/gpu_check.py --cpu-baseline-json F  # take the CPU images/s from F instead of measuring
    python benchmarks/gpu_check.py --force-cpu --tiny     # exercise every code path on the CPU (tiny sizes)

Without a GPU (and without --force-cpu) it prints that it skipped and exits 0. The CPU baseline is
the same VQ-VAE-2 step at 128x128 in fp32 with torch limited to 2 threads (the 2-core machine).
Data are random images/codes: throughput does not depend on their content.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
sys.path.insert(0, str(Path(__file__).parent))  # gpu_seq.py, next to this file
OUT = RESULTS / "gpu_check.json"
REPO = Path(__file__).resolve().parents[1]

# Hard limit per section in seconds (sum 370 s: under 7 minutes with start-up). The timed loop of a
# section uses at most MEASURE_SHARE of it; the rest covers imports, model building and warm-up.
BUDGETS = {
    "vqvae_fp32": 30,
    "vqvae_bf16": 30,
    "vqvae_bf16_compile": 65,
    "vqvae_fsq": 18,
    "vqvae_rotation": 17,
    "prior": 30,
    "sampling": 30,
    "ddp": 50,
    "cpu_baseline": 35,
    "rocket": 25,
    "lstm_train": 40,
}
MEASURE_SHARE = 0.5
TARGETS = {"bf16_over_fp32": 1.5, "gpu_over_cpu": 20.0}


def sizes(tiny: bool) -> dict[str, Any]:
    """Problem sizes: the real check, or tiny ones that only exercise the code paths."""
    if tiny:
        return dict(
            image=16,
            batch=4,
            cpu_batch=2,
            vq=dict(hidden_channels=16, res_blocks=1, res_channels=8, code_dim=8, num_codes=16),
            prior=dict(channels=16, layers=2, num_codes=16),
            code_map=8,
            prior_batch=4,
            sample_batch=2,
            naive_rows=2,
            max_steps=4,
            ddp_image=16,
            ddp_steps=4,
            rocket=dict(n=4, aeon_n=2, length=256, features=168),
        )
    return dict(
        image=128,
        batch=32,
        cpu_batch=8,
        vq=dict(hidden_channels=128, res_blocks=2, res_channels=32, code_dim=64, num_codes=512),
        prior=dict(channels=128, layers=12, num_codes=512),
        code_map=32,
        prior_batch=32,
        sample_batch=8,
        naive_rows=2,
        max_steps=200,
        ddp_image=64,
        ddp_steps=30,
        rocket=dict(n=64, aeon_n=4, length=8192, features=10_000),  # aeon times 4 cases on the CPU, per case
    )


# -- sections (each runs in a child process) ---------------------------------------------------------


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, budget_s: float, max_steps: int, warmup: int = 2) -> dict[str, float]:
    """Run fn() `warmup` times, then time it until max_steps or budget_s: steps and seconds."""
    t_first = time.perf_counter()
    for _ in range(warmup):
        fn()
    _sync(device)
    warm_s = time.perf_counter() - t_first
    steps, t0 = 0, time.perf_counter()
    while steps < max_steps and (steps < 2 or time.perf_counter() - t0 < budget_s):
        fn()
        steps += 1
        if steps % 5 == 0:
            _sync(device)
    _sync(device)
    return {"steps": steps, "seconds": time.perf_counter() - t0, "warmup_s": warm_s}


def section_vqvae(
    device: str,
    precision: str,
    compile: bool,
    budget_s: float,
    sz: dict,
    threads: int | None = None,
    batch: int | None = None,
    warmup: int = 2,
    quantizer: str = "ema",
) -> dict[str, Any]:
    """VQ-VAE-2 training images/s through archkit's own train_step (random images, pinned host batches)."""
    import torch

    from archkit.models.vqvae import VQVAE2, VQVAE2Config
    from archkit.train.accelerate import create_accelerator
    from archkit.train.vqvae import train_step

    if threads:
        torch.set_num_threads(threads)
    accel = create_accelerator(device, precision, compile)
    torch.manual_seed(0)
    model = accel.prepare(VQVAE2(VQVAE2Config(in_channels=3, levels=2, quantizer=quantizer, **sz["vq"])))
    net = accel.compile_model(model)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    b = batch or sz["batch"]
    x = torch.rand(b, 3, sz["image"], sz["image"])
    if accel.device.type == "cuda":
        x = x.pin_memory()
    r = _timed(
        lambda: train_step(net, opt, x, accel),
        accel.device,
        budget_s,
        sz["max_steps"],
        warmup=max(warmup, 3) if compile else warmup,
    )
    return {
        **accel.describe(),
        "quantizer": quantizer,
        "image_size": sz["image"],
        "batch": b,
        "threads": torch.get_num_threads(),
        "images_per_s": r["steps"] * b / r["seconds"],
        "timed_steps": r["steps"],
        "timed_s": r["seconds"],
        "warmup_s": r["warmup_s"],
    }


def section_prior(device: str, budget_s: float, sz: dict) -> dict[str, Any]:
    """Gated PixelCNN training steps/s on a code map (fp32 and bf16, fp32 cross-entropy as in train_prior)."""
    import torch
    import torch.nn.functional as F

    from archkit.models import GatedPixelCNN, GatedPixelCNNConfig
    from archkit.train.accelerate import create_accelerator

    out: dict[str, Any] = {"code_map": f"{sz['code_map']}x{sz['code_map']}", "batch": sz["prior_batch"], **sz["prior"]}
    for precision in ("32", "bf16"):
        accel = create_accelerator(device, precision)
        torch.manual_seed(0)
        cfg = GatedPixelCNNConfig(
            num_codes=sz["prior"]["num_codes"],
            channels=sz["prior"]["channels"],
            layers=sz["prior"]["layers"],
            kernel_size=5,
            num_classes=10,
            dropout=0.0,
        )
        model = accel.prepare(GatedPixelCNN(cfg)).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        hw = sz["code_map"]
        codes, labels = accel.to_device(
            (torch.randint(0, cfg.num_codes, (sz["prior_batch"], hw, hw)), torch.arange(sz["prior_batch"]) % 10)
        )

        def step() -> None:
            with accel.autocast():
                logits = model(codes, labels)
            loss = F.cross_entropy(logits.float(), codes)
            opt.zero_grad(set_to_none=True)
            accel.backward(loss)
            accel.step(opt)

        r = _timed(step, accel.device, budget_s / 2, sz["max_steps"])
        out[f"steps_per_s_{precision}"] = r["steps"] / r["seconds"]
        out["device"] = accel.describe()["device"]
    return out


def section_sampling(device: str, budget_s: float, sz: dict) -> dict[str, Any]:
    """Cached (fast) sampler on a whole code map vs the naive one timed on its first rows and extrapolated."""
    import torch

    from archkit.models import GatedPixelCNN, GatedPixelCNNConfig
    from archkit.models.sampling import draw
    from archkit.train.accelerate import create_accelerator

    accel = create_accelerator(device)
    torch.manual_seed(0)
    cfg = GatedPixelCNNConfig(
        num_codes=sz["prior"]["num_codes"],
        channels=sz["prior"]["channels"],
        layers=sz["prior"]["layers"],
        kernel_size=5,
        num_classes=10,
        dropout=0.0,
    )
    model = accel.prepare(GatedPixelCNN(cfg)).eval()
    b, hw, rows = sz["sample_batch"], sz["code_map"], sz["naive_rows"]
    labels = accel.to_device(torch.arange(b) % 10)
    model.sample((b, 2, 2), labels, generator=torch.Generator().manual_seed(1))  # warm-up (kernels, allocator)
    _sync(accel.device)
    t0 = time.perf_counter()
    fast = model.sample((b, hw, hw), labels, generator=torch.Generator().manual_seed(0), method="fast")
    _sync(accel.device)
    fast_s = time.perf_counter() - t0

    # the naive sampler's work per code is one full forward pass of the whole map: time `rows` rows
    u = torch.rand((b, hw, hw), generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(accel.device)
    codes = torch.zeros((b, hw, hw), dtype=torch.long, device=accel.device)
    t0, done = time.perf_counter(), 0
    with torch.no_grad():
        for i in range(rows):
            for j in range(hw):
                codes[:, i, j] = draw(model(codes, labels)[:, :, i, j], u[:, i, j], 1.0)
                done += 1
            _sync(accel.device)
            if time.perf_counter() - t0 > budget_s:
                break
    naive_part_s = time.perf_counter() - t0
    timed_rows = -(-done // hw)
    naive_s = naive_part_s * (hw * hw) / done
    return {
        "device": accel.describe()["device"],
        "code_map": f"{hw}x{hw}",
        "batch": b,
        **sz["prior"],
        "fast_s": fast_s,
        "naive_s_extrapolated": naive_s,
        "naive_timed_positions": done,
        "naive_timed_rows": timed_rows,
        "naive_timed_s": naive_part_s,
        "naive_note": f"naive timed on the first {done} of {hw * hw} positions and scaled linearly "
        "(each position costs one full forward pass of the map)",
        "speedup": naive_s / fast_s,
        "naive_matches_fast_on_timed_positions": bool(
            torch.equal(codes.flatten(1)[:, :done], fast.flatten(1)[:, :done])
        ),
    }


def section_ddp(device: str, budget_s: float, sz: dict, nproc: int) -> dict[str, Any]:
    """torchrun --nproc_per_node N archkit vqvae train: finishes, replicas identical, images/s."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp"
        batch = 8 * nproc
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(nproc),
            "-m",
            "archkit",
            "vqvae",
            "train",
            "--out",
            str(out),
            "--quiet",
            "--data",
            "digits",
            "--image-size",
            str(sz["ddp_image"]),
            "--steps",
            str(sz["ddp_steps"]),
            "--batch-size",
            str(batch),
            "--eval-every",
            str(sz["ddp_steps"]),
            "--device",
            device,
        ]
        for k, v in sz["vq"].items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=budget_s, cwd=REPO)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            return {"ok": False, "nproc": nproc, "returncode": proc.returncode, "stderr_tail": proc.stderr[-1500:]}
        result = json.loads((out / "result.json").read_text())
    return {
        "ok": True,
        "nproc": nproc,
        "device": device,
        "wall_s": wall,
        "step": result["step"],
        "replica_divergence": result["replica_divergence"],
        "train_images_per_s": result["train_images_per_s"],
        "accelerator": result.get("accelerator"),
        "image_size": sz["ddp_image"],
        "global_batch": batch,
    }


def section_rocket(device: str, sz: dict, tiny: bool) -> dict[str, Any]:
    """MiniRocket transform cases/s on (N, 8, T): archkit's torch module on `device` vs aeon (numba) on the CPU.

    Both from the same fitted parameters, timed round-robin (benchmarks/bench_rocket.py); aeon and torch's
    CPU side use 2 threads (1 in tiny mode).
    """
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_rocket

    r = sz["rocket"]
    threads = 1 if tiny else 2
    result = bench_rocket.throughput(r["n"], r["length"], 8, r["features"], threads, 2, device, r["aeon_n"])
    return {"device": device, **result}


def run_section(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Dispatch one section (in this process)."""
    sz = sizes(args.tiny)
    dev = "cpu" if args.force_cpu else "cuda"
    budget = BUDGETS[name] * MEASURE_SHARE * args.budget_scale
    if name == "vqvae_fp32":
        return section_vqvae(dev, "32", False, budget, sz)
    if name == "vqvae_bf16":
        return section_vqvae(dev, "bf16", False, budget, sz)
    if name == "vqvae_bf16_compile":
        return section_vqvae(dev, "bf16", True, budget, sz)
    if name in ("vqvae_fsq", "vqvae_rotation"):  # the other quantizers, in fp32 like vqvae_fp32
        return section_vqvae(dev, "32", False, budget, sz, quantizer=name.removeprefix("vqvae_"))
    if name == "prior":
        return section_prior(dev, budget, sz)
    if name == "sampling":
        return section_sampling(dev, budget, sz)
    if name == "cpu_baseline":
        return section_vqvae(
            "cpu",
            "32",
            False,
            budget,
            {**sz, "max_steps": 3 if not args.tiny else 2},
            threads=1 if args.tiny else 2,
            batch=sz["cpu_batch"],
            warmup=1,
        )
    if name == "rocket":
        return section_rocket(dev, sz, args.tiny)
    if name == "ddp":
        return section_ddp(dev, BUDGETS[name] * args.budget_scale - 5, sz, args.nproc)
    if name == "lstm_train":
        import gpu_seq

        return gpu_seq.section_lstm_train(
            dev, budget, args.tiny, _timed, cpu_reference=RESULTS / "bench_sequences.json"
        )
    raise ValueError(f"--section: unknown section {name!r}; expected one of {sorted(BUDGETS)}")


# -- orchestration -------------------------------------------------------------------------------


def _child(name: str, args: argparse.Namespace, limit_s: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--section",
        name,
        "--nproc",
        str(args.nproc),
        "--budget-scale",
        str(args.budget_scale),
    ]
    cmd += ["--force-cpu"] * args.force_cpu + ["--tiny"] * args.tiny
    t0 = time.perf_counter()
    try:
        # rocket: aeon's idle OpenMP threads spin and starve torch in the same process (bench_rocket.py)
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"} if name == "rocket" else None
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s, cwd=REPO, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"killed after its {limit_s:.0f} s limit", "wall_s": time.perf_counter() - t0}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {
            "ok": False,
            "error": f"exit code {proc.returncode}",
            "stderr_tail": proc.stderr[-1500:],
            "wall_s": time.perf_counter() - t0,
        }
    return {"ok": True, **json.loads(lines[-1][len("RESULT ") :]), "wall_s": time.perf_counter() - t0}


def summarize(sections: dict[str, dict[str, Any]], cpu_baseline: float | None) -> dict[str, Any]:
    """Ratios against the targets, from whatever sections succeeded."""

    def ips(name: str) -> float | None:
        s = sections.get(name, {})
        return s.get("images_per_s") if s.get("ok") else None

    fp32, bf16, comp = ips("vqvae_fp32"), ips("vqvae_bf16"), ips("vqvae_bf16_compile")
    best = max([v for v in (fp32, bf16, comp) if v], default=None)
    out: dict[str, Any] = {"cpu_baseline_images_per_s": cpu_baseline}
    if fp32 and bf16:
        out["bf16_over_fp32"] = bf16 / fp32
        out["bf16_over_fp32_target_met"] = bf16 / fp32 >= TARGETS["bf16_over_fp32"]
    if fp32 and comp:
        out["bf16_compile_over_fp32"] = comp / fp32
    for q in ("fsq", "rotation"):
        if fp32 and ips(f"vqvae_{q}"):
            out[f"{q}_over_ema_fp32"] = ips(f"vqvae_{q}") / fp32
    if best and cpu_baseline:
        out["gpu_best_over_cpu"] = best / cpu_baseline
        out["gpu_fp32_over_cpu"] = fp32 / cpu_baseline if fp32 else None
        out["gpu_over_cpu_target_met"] = best / cpu_baseline >= TARGETS["gpu_over_cpu"]
    rocket = sections.get("rocket", {})
    if rocket.get("ok"):
        out["rocket_cases_per_s"] = rocket["cases_per_s"]
        out["rocket_device_over_aeon_cpu"] = rocket["ratio_over_aeon"]  # per method
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the check (or one --section of it); returns the exit code."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON path (default benchmarks/results/gpu_check.json; gpu_check_forced_cpu.json with --force-cpu).",
    )
    p.add_argument("--force-cpu", action="store_true", help="Run every section on the CPU (code-path check).")
    p.add_argument("--tiny", action="store_true", help="Tiny sizes (numbers not meaningful).")
    p.add_argument(
        "--cpu-baseline-json",
        type=Path,
        default=None,
        help="JSON with an 'images_per_s' (or cpu_baseline.images_per_s) for the 2-core CPU at 128x128.",
    )
    p.add_argument("--nproc", type=int, default=None, help="DDP ranks (default: number of GPUs; 2 with --force-cpu).")
    p.add_argument("--budget-scale", type=float, default=1.0, help="Scale every section's time limit.")
    p.add_argument("--only", default=None, help="Comma-separated sections to run (default: all).")
    p.add_argument("--section", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    import torch

    if args.section:
        print("RESULT " + json.dumps(run_section(args.section, args)), flush=True)
        return 0
    if not args.force_cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU on this machine; skipped (use --force-cpu --tiny to exercise the code paths)")
        return 0
    ngpu = torch.cuda.device_count() if not args.force_cpu else 0
    args.nproc = args.nproc or (ngpu if ngpu else 2)
    out_path = args.out or (RESULTS / "gpu_check_forced_cpu.json" if args.force_cpu else OUT)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if ngpu else "cpu (--force-cpu)",
        "gpus": ngpu,
        "torch": torch.__version__,
        "tiny": args.tiny,
        "force_cpu": args.force_cpu,
        "sizes": sizes(args.tiny),
        "section_limits_s": {k: v * args.budget_scale for k, v in BUDGETS.items()},
        "sections": {},
    }
    order = [
        "vqvae_fp32",
        "vqvae_bf16",
        "vqvae_bf16_compile",
        "vqvae_fsq",
        "vqvae_rotation",
        "prior",
        "sampling",
        "rocket",
        "ddp",
        "lstm_train",
    ]
    from archkit.train.accelerate import describe_precision

    # what `--precision auto` picks on this machine's GPU (or CPU with --force-cpu), and why
    report["precision_auto"] = describe_precision("auto", torch.device("cpu" if args.force_cpu else "cuda"))
    baseline = None
    if args.cpu_baseline_json is not None:
        data = json.loads(args.cpu_baseline_json.read_text())
        baseline = data.get("images_per_s") or (data.get("cpu_baseline") or {}).get("images_per_s")
        if baseline is None:
            raise SystemExit(f"--cpu-baseline-json: {str(args.cpu_baseline_json)!r} has no 'images_per_s'")
        report["cpu_baseline_source"] = str(args.cpu_baseline_json)
    else:
        order.append("cpu_baseline")
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(BUDGETS))
        if unknown:
            raise SystemExit(f"--only: unknown sections {unknown}; expected some of {sorted(BUDGETS)}")
        order = [name for name in order if name in wanted]
    t_start = time.perf_counter()
    for name in order:
        limit = BUDGETS[name] * args.budget_scale
        print(f"[{time.perf_counter() - t_start:5.0f} s] {name} (limit {limit:.0f} s) ...", flush=True)
        report["sections"][name] = res = _child(name, args, limit)
        print(f"        {json.dumps({k: v for k, v in res.items() if k != 'stderr_tail'})}", flush=True)
        if name == "cpu_baseline" and res.get("ok"):
            baseline = res["images_per_s"]
        report["summary"] = summarize(report["sections"], baseline)
        report["total_s"] = time.perf_counter() - t_start
        _write(out_path, report)
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {out_path} in {report['total_s']:.0f} s")
    return 0


def _write(path: Path, report: dict[str, Any]) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from archkit.train import atomic_write_json

    atomic_write_json(path, report)


if __name__ == "__main__":
    sys.exit(main())
