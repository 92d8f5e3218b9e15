"""bench_vqvae.py --screen: what limits natural-image PSNR at a fixed step budget, one factor at a time."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from _common import batch_order, write_json

from archkit.data import augment_batch, load_image_dataset
from archkit.models import VQVAE2, VQVAE2Config
from archkit.surgery import format_table
from archkit.train import evaluate_vqvae
from archkit.train.schedule import lr_at
from archkit.train.vqvae import train_step

# name -> (VQVAE2Config overrides, lr schedule, peak lr). One factor at a time against the default.
SCREEN_VARIANTS = {
    "base": ({}, "constant", 3e-4),
    "cosine-lr": ({}, "cosine", 1e-3),
    "no-code-dropout": ({"code_dropout": 0.0}, "constant", 3e-4),
    "wide-res": ({"res_channels": 64, "res_blocks": 4}, "constant", 3e-4),
    "code-dim-128": ({"code_dim": 128}, "constant", 3e-4),
    "lr-1e-3": ({}, "constant", 1e-3),
    "cosine-6e-4": ({}, "cosine", 6e-4),
    "cosine-1e-3-no-dropout": ({"code_dropout": 0.0}, "cosine", 1e-3),
    "cosine-6e-4-no-dropout-wide": ({"code_dropout": 0.0, "res_channels": 64, "res_blocks": 4}, "cosine", 6e-4),
    # bits at the bottom: 16x16 codes of log2(K) bits each are all a 64x64 image gets
    "cosine-1e-3-codes-2048": ({"num_codes": [512, 2048]}, "cosine", 1e-3),
    "cosine-1e-3-codes-4096": ({"num_codes": [1024, 4096]}, "cosine", 1e-3),
    # 4x the codes per image: 32x32 bottom and 16x16 top maps; narrower so a step costs ~2x, not 4x
    "stride-2-hidden-64": ({"bottom_stride": 2, "hidden_channels": 64}, "cosine", 1e-3),
    "stride-2-hidden-64-lr-3e-4": ({"bottom_stride": 2, "hidden_channels": 64}, "constant", 3e-4),
    # the held-out photos hold hues the 9 training photos lack: random flips + RGB orders ("augment" is no model field)
    "augment": ({"augment": "flip-permute"}, "constant", 3e-4),
    "codes-2048-augment": ({"num_codes": [512, 2048], "augment": "flip-permute"}, "cosine", 1e-3),
    "stride-2-hidden-64-augment": (
        {"bottom_stride": 2, "hidden_channels": 64, "augment": "flip-permute"},
        "cosine",
        1e-3,
    ),
}


def run_screen(
    variants: list[str],
    steps: int,
    batch: int,
    chunk: int,
    out: Path,
    eval_every: int = 0,
    save_dir: Path | None = None,
) -> dict:
    """Train every variant on the same natural 64x64 batches (interleaved chunks), held-out PSNR at the end.

    eval_every > 0 also records held-out PSNR along the way (the curve says whether a variant is still
    climbing); save_dir keeps each trained model as a checkpoint folder (safetensors + config.json).
    """
    from tqdm.auto import tqdm

    train, test = load_image_dataset("natural", "train", 64), load_image_dataset("natural", "test", 64)
    models, opts, seconds = {}, {}, {}
    for name in variants:
        overrides, schedule, lr = SCREEN_VARIANTS[name]
        torch.manual_seed(0)
        models[name] = VQVAE2(
            VQVAE2Config(in_channels=train.channels, **{k: v for k, v in overrides.items() if k != "augment"})
        )
        opts[name] = torch.optim.Adam(models[name].parameters(), lr=lr)
        seconds[name] = 0.0
    order = batch_order(len(train), steps, batch)
    record = {"steps": steps, "batch_size": batch, "threads": torch.get_num_threads(), "variants": {}}
    bar = tqdm(total=steps * len(variants), desc="screen")
    step = 0
    while step < steps:
        n = min(chunk, steps - step)
        for name, model in models.items():
            _, schedule, lr = SCREEN_VARIANTS[name]
            t0 = time.perf_counter()
            for s in range(step, step + n):
                for group in opts[name].param_groups:
                    group["lr"] = lr_at(lr, schedule, s, steps)
                xb = train.images[order[s * batch : (s + 1) * batch]]
                aug = SCREEN_VARIANTS[name][0].get("augment", "none")
                train_step(model, opts[name], augment_batch(xb, aug, torch.Generator().manual_seed(s)))
            seconds[name] += time.perf_counter() - t0
            bar.update(n)
        step += n
        if step == steps or (eval_every and step % eval_every == 0):
            for name, model in models.items():
                ev = evaluate_vqvae(model, test.images)
                overrides, schedule, lr = SCREEN_VARIANTS[name]
                entry = record["variants"].setdefault(
                    name, {"overrides": overrides, "lr_schedule": schedule, "lr": lr, "curve": []}
                )
                entry.update(
                    {
                        "psnr": ev["psnr"],
                        "codes_used": [lv["codes_used"] for lv in ev["levels"]],
                        "codes": [lv["codes"] for lv in ev["levels"]],
                        "params": sum(p.numel() for p in model.parameters()),
                        "train_s": seconds[name],
                        "steps_done": step,
                    }
                )
                entry["curve"].append([step, ev["psnr"]])
                bar.write(f"{name} step {step}: {ev['psnr']:.2f} dB, codes {entry['codes_used']}")
            write_json(out, record, say=False)  # an interrupted screen keeps its latest numbers
    bar.close()
    if save_dir is not None:
        from archkit.train import save_checkpoint

        for name, model in models.items():
            save_checkpoint(
                Path(save_dir) / name, model, model.config, kind="VQVAE2Config", screen=record["variants"][name]
            )
    print(
        format_table(
            ["variant", "changes", "lr", "held-out PSNR", "codes used", "params", "train s"],
            [
                [
                    k,
                    str(v["overrides"] or "-"),
                    f"{v['lr_schedule']} {v['lr']:g}",
                    f"{v['psnr']:.2f}",
                    " / ".join(map(str, v["codes_used"])),
                    v["params"],
                    f"{v['train_s']:.0f}",
                ]
                for k, v in record["variants"].items()
            ],
        )
    )
    return record
