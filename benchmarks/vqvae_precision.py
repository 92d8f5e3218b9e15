"""fp32 vs bf16 VQ-VAE-2 training on the CPU (`bench_vqvae.py --precision`): images/s and share of the matmul rate.

Variants (eager, channels_last, and with --compile torch.compile of each) train identical copies of the
natural-64 preset model on the same batches, interleaved in chunks of steps so machine load hits all of
them alike. In the same rounds a square matmul is timed in fp32 and bf16, so "share of the matmul rate"
= achieved training FLOP/s (FLOPs of one step from torch.utils.flop_counter) / the same-dtype matmul
FLOP/s measured minutes apart at most. After the timed rounds every variant's model is evaluated on the
held-out crops (PSNR), so a long run also answers whether bf16 costs reconstruction quality.

Diagnosis of the bf16 step (what holds it back): the profiler's share of time in dtype conversions
(aten::to / _to_copy / copy_), layout conversions (contiguous / clone under channels_last) and the
quantizer, and which FLOP-heavy ops (conv, matmul) still ran in fp32 under autocast.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from archkit.data import load_image_dataset
from archkit.io import atomic_write_json
from archkit.models import VQVAE2, VQVAE2Config
from archkit.train import evaluate_vqvae
from archkit.train.accelerate import create_accelerator, native_bf16
from archkit.train.vqvae import train_step
from archkit.utils import format_table

MIN_PSNR_STEPS = 100  # below this many timed steps per variant, no held-out PSNR is computed
HEAVY = ("convolution", "mm", "addmm", "bmm", "matmul", "linear")
CONVERSIONS = ("aten::to", "aten::_to_copy", "aten::copy_")
LAYOUT = ("aten::contiguous", "aten::clone")


def variants(compile: bool) -> dict[str, dict[str, Any]]:
    """name -> (precision, channels_last, compile)."""
    out = {
        "fp32": dict(precision="32", cl=False, compile=False),
        "fp32 channels_last": dict(precision="32", cl=True, compile=False),
        "bf16": dict(precision="bf16", cl=False, compile=False),
        "bf16 channels_last": dict(precision="bf16", cl=True, compile=False),
    }
    if compile:
        out["fp32 compiled"] = dict(precision="32", cl=False, compile=True)
        out["bf16 compiled"] = dict(precision="bf16", cl=False, compile=True)
    return out


def step_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one training step (forward + backward), counted by torch.utils.flop_counter."""
    m = copy.deepcopy(model)
    opt = torch.optim.SGD(m.parameters(), lr=0.0)
    with FlopCounterMode(display=False) as counter:
        train_step(m, opt, x, create_accelerator("cpu"))
    return int(counter.get_total_flops())


def matmul_rate(dtype: torch.dtype, n: int = 512, seconds: float = 0.5) -> float:
    """FLOP/s of an n x n matmul in `dtype`, timed for about `seconds`."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0)


class _DtypeCensus(TorchDispatchMode):
    """Counts FLOP-heavy aten ops by the dtype of their first tensor input."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = func.__name__.split(".")[0]
        if any(h == name or name.startswith(h + "_") for h in HEAVY):
            t = next((a for a in args if isinstance(a, torch.Tensor)), None)
            if t is not None:
                self.counts[f"{name} {str(t.dtype).replace('torch.', '')}"] += 1
        return func(*args, **(kwargs or {}))


def _label_quantizers(model: nn.Module) -> list[Any]:
    """Wrap each quantizer's forward in a profiler range named "quantizer" (aten op names do not say whose they are)."""
    handles = []
    for mod in model.modules():
        if type(mod).__name__ in ("VectorQuantizer", "FSQ"):
            ranges: list[Any] = []

            def enter(_m: nn.Module, _args: Any, ranges: list[Any] = ranges) -> None:
                ranges.append(torch.autograd.profiler.record_function("quantizer").__enter__())

            def leave(_m: nn.Module, _args: Any, _out: Any, ranges: list[Any] = ranges) -> None:
                ranges.pop().__exit__(None, None, None)

            handles += [mod.register_forward_pre_hook(enter), mod.register_forward_hook(leave)]
    return handles


def diagnose_bf16(model: nn.Module, x: torch.Tensor, channels_last: bool) -> dict[str, Any]:
    """Where a bf16 autocast training step spends its time, and which heavy ops stayed fp32."""
    from torch.profiler import ProfilerActivity, profile

    m = copy.deepcopy(model)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(m.parameters(), lr=0.0)
    accel = create_accelerator("cpu", "bf16")
    train_step(m, opt, x, accel)  # warm-up
    handles = _label_quantizers(m)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_step(m, opt, x, accel)
    for h in handles:
        h.remove()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    share = lambda names: sum(e.self_cpu_time_total for e in events if e.key in names) / total  # noqa: E731
    quant = sum(e.cpu_time_total for e in events if e.key == "quantizer") / total
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]
    census = _DtypeCensus()
    with census:
        train_step(m, opt, x, accel)
    return {
        "dtype_conversion_share": share(CONVERSIONS),
        "layout_conversion_share": share(LAYOUT),
        "quantizer_share": quant,
        "top_ops": [(e.key, e.self_cpu_time_total / total) for e in top],
        "heavy_ops_by_dtype": dict(census.counts),
    }


def run(
    batch: int = 32,
    rounds: int = 3,
    chunk: int = 2,
    compile: bool = False,
    out: Path | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Interleave every variant for `rounds` x `chunk` steps; print the table and write JSON."""
    if threads:
        torch.set_num_threads(threads)
    train = load_image_dataset("natural", "train", image_size=64).images
    test = load_image_dataset("natural", "test", image_size=64).images
    torch.manual_seed(0)
    base = VQVAE2(VQVAE2Config.preset("natural-64"))
    flops = step_flops(base, train[:batch])
    runs: dict[str, dict[str, Any]] = {}
    for name, v in variants(compile).items():
        m = copy.deepcopy(base)
        if v["cl"]:
            m = m.to(memory_format=torch.channels_last)
        accel = create_accelerator("cpu", v["precision"], v["compile"])
        runs[name] = {
            **v,
            "model": m,
            "fwd": accel.compile_model(m),
            "opt": torch.optim.Adam(m.parameters(), lr=1e-3),
            "accel": accel,
            "time": 0.0,
            "cpu": 0.0,
            "steps": 0,
        }
    rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
    step = 0
    for r in range(rounds + 1):  # round 0 warms up (and compiles); it is not timed
        for dtype, key in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            rate = matmul_rate(dtype)
            if r:
                rates[key].append(rate)
        for v in runs.values():
            for k in range(chunk):
                x = train[((step + k) * batch) % (len(train) - batch) :][:batch]
                if v["cl"]:
                    x = x.contiguous(memory_format=torch.channels_last)
                t0, c0 = time.perf_counter(), time.process_time()
                train_step(v["fwd"], v["opt"], x, v["accel"])
                if r:
                    v["time"] += time.perf_counter() - t0
                    v["cpu"] += time.process_time() - c0  # CPU time: what other jobs on the box do not inflate
                    v["steps"] += 1
        step += chunk
    fp32_ips = runs["fp32"]["steps"] * batch / runs["fp32"]["time"]
    fp32_ipc = runs["fp32"]["steps"] * batch / runs["fp32"]["cpu"]
    rows, record_rows = [], []
    for name, v in runs.items():
        ips = v["steps"] * batch / v["time"]
        ipc = v["steps"] * batch / v["cpu"]
        achieved = flops * v["steps"] / v["time"]
        rate = max(rates["bf16" if v["precision"] == "bf16" else "fp32"])
        # a held-out PSNR after a handful of steps says nothing (and costs minutes in emulated bf16)
        psnr = evaluate_vqvae(v["model"], test, accel=v["accel"])["psnr"] if rounds * chunk >= MIN_PSNR_STEPS else None
        record_rows.append(
            {
                "variant": name,
                "images_per_s": ips,
                "vs_fp32": ips / fp32_ips,
                "images_per_cpu_s": ipc,
                "vs_fp32_cpu_time": ipc / fp32_ipc,
                "gflop_per_s": achieved / 1e9,
                "matmul_gflop_per_s": rate / 1e9,
                "matmul_share": achieved / rate,
                "psnr": psnr,
                "timed_steps": v["steps"],
            }
        )
        rows.append(
            [
                name,
                f"{ips:.1f}",
                f"{ips / fp32_ips:.2f}x",
                f"{ipc / fp32_ipc:.2f}x",
                f"{achieved / 1e9:.1f}",
                f"{rate / 1e9:.1f}",
                f"{achieved / rate:.2f}",
                "-" if psnr is None else f"{psnr:.2f}",
            ]
        )
    print(
        format_table(
            [
                "variant",
                "images/s",
                "vs fp32",
                "vs fp32 (CPU time)",
                "GFLOP/s",
                "matmul GFLOP/s (same dtype)",
                "share of matmul",
                f"held-out PSNR after {rounds * chunk + chunk} steps",
            ],
            rows,
        )
    )
    diag = diagnose_bf16(base, train[:batch], channels_last=True)
    print(
        f"bf16 channels_last step: {diag['dtype_conversion_share']:.1%} of op time in dtype conversions, "
        f"{diag['layout_conversion_share']:.1%} in layout conversions, {diag['quantizer_share']:.1%} in the quantizer; "
        f"heavy ops by dtype: {diag['heavy_ops_by_dtype']}"
    )
    record = {
        "batch": batch,
        "rounds": rounds,
        "chunk": chunk,
        "threads": torch.get_num_threads(),
        "native_bf16_cpu": native_bf16(torch.device("cpu")),
        "step_gflop": flops / 1e9,
        "matmul_rates_gflop_per_s": {k: [x / 1e9 for x in v] for k, v in rates.items()},
        "rows": record_rows,
        "bf16_diagnosis": diag,
        "target_bf16_over_fp32": 2.0,
    }
    if out is not None:
        atomic_write_json(out, record)
        print(f"wrote {out}")
    return record
