"""Sequence sections of gpu_check.py: LSTM training throughput at (B, T=8192, 8), raw steps and conv front end.

Each section runs in gpu_check's child process with its time limit; `timed` is gpu_check's timing loop.
The CPU row is the same training step on the CPU in fp32 with torch limited to 2 threads (the 2-core machine).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# LSTM as in bench_sequences.py (hidden 128, 2 layers, max-pooled); the conv front end shortens T by 64.
LSTM = dict(hidden=128, layers=2, pool="max")
CONV = dict(frontend="conv", conv_channels=64, conv_kernel=7, conv_stride=4, conv_blocks=3)


def lstm_sizes(tiny: bool) -> dict[str, int]:
    """Batch and length of the LSTM section (tiny: only exercises the code path)."""
    return dict(batch=2, steps=256, max_steps=3) if tiny else dict(batch=32, steps=8192, max_steps=50)


def section_lstm_train(
    device: str,
    budget_s: float,
    tiny: bool,
    timed: Callable[..., dict[str, float]],
    precisions: tuple[str, ...] = ("32", "bf16"),
    threads: int | None = None,
    cpu_reference: Path | None = None,
) -> dict[str, Any]:
    """Training sequences/s of SequenceClassifier on random (B, T, 8) data: raw LSTM and conv front end, per precision."""
    import torch

    from archkit.models import SequenceClassifier, SequenceClassifierConfig
    from archkit.train import sequence_loss
    from archkit.train.accelerate import create_accelerator

    if threads:
        torch.set_num_threads(threads)
    sz = lstm_sizes(tiny)
    if device == "cpu":  # oneDNN has no bf16 LSTM kernel: autocast fails on the CPU backend
        precisions = tuple(p for p in precisions if p == "32")
    out: dict[str, Any] = {"batch": sz["batch"], "steps": sz["steps"], "features": 8, "lstm": LSTM, "conv": CONV}
    # the raw LSTM gets a fifth of the budget per precision: one step at 8192 steps is seconds even on a GPU
    shares = {"none": 0.1, "conv": 0.4}
    for frontend, share in shares.items():
        for precision in precisions:
            accel = create_accelerator(device, precision)
            torch.manual_seed(0)
            cfg = SequenceClassifierConfig(
                in_features=8, num_classes=4, **LSTM, **(CONV if frontend == "conv" else {"frontend": "none"})
            )
            model = accel.prepare(SequenceClassifier(cfg)).train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            x, y = accel.to_device((torch.randn(sz["batch"], sz["steps"], 8), torch.randint(0, 4, (sz["batch"],))))

            def step() -> None:
                with accel.autocast():
                    logits = model(x)
                loss = sequence_loss(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                accel.backward(loss)
                accel.step(opt, 1.0, model.parameters())

            r = timed(step, accel.device, budget_s * share / len(precisions), sz["max_steps"], warmup=1)
            out[f"{frontend}_{precision}_sequences_per_s"] = r["steps"] * sz["batch"] / r["seconds"]
            out[f"{frontend}_{precision}_timed_steps"] = r["steps"]
            out["device"] = accel.describe()["device"]
    if cpu_reference is not None and cpu_reference.is_file() and not tiny:  # the same step on the 2-core CPU, measured
        t = json.loads(cpu_reference.read_text()).get("throughput", {})
        for frontend in shares:
            cpu = t.get(f"train_{frontend}", {}).get("sequences_per_s")
            if cpu:
                out[f"{frontend}_cpu_sequences_per_s"] = cpu
                out[f"{frontend}_fp32_over_cpu"] = out[f"{frontend}_32_sequences_per_s"] / cpu
        out["cpu_reference"] = f"{cpu_reference.name} throughput (bench_sequences.py, 2-core CPU, fp32)"
    return out


def stream_sizes(tiny: bool) -> dict[str, int]:
    """Cases, length and features of the streamed-fit section (tiny: only exercises the code path)."""
    return dict(n=16, steps=256, features=168) if tiny else dict(n=128, steps=8192, features=10_000)


def section_rocket_stream(device: str, tiny: bool, threads: int = 2) -> dict[str, Any]:
    """`RocketClassifier.fit_shards` (streamed transform + ridge head from one pass of statistics) cases/s.

    The same N random (T, 8) series, 4 classes, fitted once on `device` and once on the CPU with `threads`
    threads; fit seconds split into transform and head as the fit reports them (`fit_info_`).
    """
    import time

    import numpy as np
    import torch

    from archkit.data.sequences import from_arrays
    from archkit.estimators import RocketClassifier

    sz = stream_sizes(tiny)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((sz["n"], sz["steps"], 8)).astype(np.float32)
    data = from_arrays(x, np.arange(sz["n"]) % 4)
    out: dict[str, Any] = {"device": device, "cases": sz["n"], "steps": sz["steps"], "channels": 8}
    out["num_features"] = sz["features"]
    for name, dev in (("device", device), ("cpu", "cpu")):
        if name == "cpu":
            torch.set_num_threads(1 if tiny else threads)
        clf = RocketClassifier(num_features=sz["features"], device=dev, random_state=0)
        t0 = time.perf_counter()
        clf.fit_shards(data)
        seconds = time.perf_counter() - t0
        info = clf.fit_info_
        out[f"{name}_cases_per_s"] = sz["n"] / seconds
        out[f"{name}_transform_s"] = info.get("transform_s")
        out[f"{name}_head_s"] = info.get("head_s")
    out["device_over_cpu"] = out["device_cases_per_s"] / out["cpu_cases_per_s"]
    return out
