"""The LSTM of bench_sequences.py (raw steps or a conv front end) and its peak memory per training step / batch.

`peak_memory` runs each (front end, mode) in a fresh process (`python _seq_memory.py FRONTEND MODE BATCH STEPS`)
so one measurement's allocations cannot hide another's.
"""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from archkit.models import SequenceClassifier, SequenceClassifierConfig
from archkit.surgery import peak_rss_growth_mib
from archkit.train import sequence_loss

MODEL = dict(hidden=128, layers=2, pool="max")  # same LSTM for both frontends
CONV = dict(conv_channels=64, conv_kernel=7, conv_stride=4, conv_blocks=3)  # T / 64 before the LSTM


def model_for(frontend: str, features: int = 8) -> SequenceClassifier:
    extra = CONV if frontend == "conv" else {}
    return SequenceClassifier(
        SequenceClassifierConfig(in_features=features, num_classes=4, frontend=frontend, **MODEL, **extra)
    )


def memory_probe(frontend: str, mode: str, batch: int, steps: int) -> None:
    """(subprocess) one training step or inference batch; prints the peak-RSS growth in MiB."""
    model = model_for(frontend)
    opt = torch.optim.AdamW(model.parameters())

    def step(x, y):
        if mode == "train":
            sequence_loss(model(x), y).backward()
            opt.step()
        else:
            with torch.no_grad():
                model.eval()(x)

    step(torch.randn(1, 64, 8), torch.zeros(1, dtype=torch.long))  # one-off library/allocator start-up
    x, y = torch.randn(batch, steps, 8), torch.randint(0, 4, (batch,))
    # peak_rss_growth_mib resets the peak mark first: ru_maxrss could not be reset, and made every
    # probe report the same start-up peak.
    print(json.dumps({"peak_rss_growth_mib": peak_rss_growth_mib(lambda: step(x, y))}))


def peak_memory(batch: int, steps: int) -> dict:
    out = {}
    for frontend in ("none", "conv"):
        for mode in ("train", "infer"):
            res = subprocess.run(
                [sys.executable, __file__, frontend, mode, str(batch), str(steps)],
                capture_output=True,
                text=True,
                check=True,
            )
            out[f"{mode}_{frontend}"] = json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_growth_mib"]
    return out


if __name__ == "__main__":
    frontend, mode, batch, steps = sys.argv[1:5]
    memory_probe(frontend, mode, int(batch), int(steps))
