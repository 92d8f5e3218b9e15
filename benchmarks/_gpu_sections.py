"""The VQ-VAE, prior, sampling, DDP and MiniRocket sections of gpu_check.py (each runs in its child process).

Each section takes the device, its time budget and the problem sizes (`gpu_check.sizes`) and returns the
record gpu_check.json keeps for it; `timed` (benchmarks/_common.py) is the timing loop they share.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, sync, timed


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
    r = timed(
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


def prior_config(sz: dict) -> Any:
    """The class-conditional gated PixelCNN the prior and sampling sections time (sizes from `sz["prior"]`)."""
    from archkit.models import GatedPixelCNNConfig

    p = sz["prior"]
    return GatedPixelCNNConfig(
        num_codes=p["num_codes"], channels=p["channels"], layers=p["layers"], kernel_size=5, num_classes=10, dropout=0.0
    )


def section_prior(device: str, budget_s: float, sz: dict) -> dict[str, Any]:
    """Gated PixelCNN training steps/s on a code map (fp32 and bf16, fp32 cross-entropy as in train_prior)."""
    import torch
    import torch.nn.functional as F

    from archkit.models import GatedPixelCNN
    from archkit.train.accelerate import create_accelerator

    out: dict[str, Any] = {"code_map": f"{sz['code_map']}x{sz['code_map']}", "batch": sz["prior_batch"], **sz["prior"]}
    for precision in ("32", "bf16"):
        accel = create_accelerator(device, precision)
        torch.manual_seed(0)
        cfg = prior_config(sz)
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

        r = timed(step, accel.device, budget_s / 2, sz["max_steps"])
        out[f"steps_per_s_{precision}"] = r["steps"] / r["seconds"]
        out["device"] = accel.describe()["device"]
    return out


def section_sampling(device: str, budget_s: float, sz: dict) -> dict[str, Any]:
    """Cached (fast) sampler on a whole code map vs the naive one timed on its first rows and extrapolated."""
    import torch

    from archkit.models import GatedPixelCNN
    from archkit.models.sampling import draw
    from archkit.train.accelerate import create_accelerator

    accel = create_accelerator(device)
    torch.manual_seed(0)
    cfg = prior_config(sz)
    model = accel.prepare(GatedPixelCNN(cfg)).eval()
    b, hw, rows = sz["sample_batch"], sz["code_map"], sz["naive_rows"]
    labels = accel.to_device(torch.arange(b) % 10)
    model.sample((b, 2, 2), labels, generator=torch.Generator().manual_seed(1))  # warm-up (kernels, allocator)
    sync(accel.device)
    t0 = time.perf_counter()
    fast = model.sample((b, hw, hw), labels, generator=torch.Generator().manual_seed(0), method="fast")
    sync(accel.device)
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
            sync(accel.device)
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
    import bench_rocket  # beside this file, on sys.path through gpu_check.py

    r = sz["rocket"]
    threads = 1 if tiny else 2
    result = bench_rocket.throughput(r["n"], r["length"], 8, r["features"], threads, 2, device, r["aeon_n"])
    return {"device": device, **result}
