"""bench_prior.py --at-256: `archkit sample`'s cached sampler vs the naive one on a paper-256 run (random weights)."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from _common import write_json

from archkit.models import GatedPixelCNN, GatedPixelCNNConfig
from archkit.surgery import format_table


def _naive_positions(
    model: GatedPixelCNN,
    codes: torch.Tensor,
    u: torch.Tensor,
    cond,
    start: int,
    budget_s: float,
    temperature: float = 1.0,
) -> tuple[int, float]:
    """Naive sampling (one full forward per code) from raster position `start` until budget_s; (done, seconds)."""
    from archkit.models.sampling import draw

    _, h, w = codes.shape
    t0, p = time.perf_counter(), start
    while p < h * w and (p == start or time.perf_counter() - t0 < budget_s):
        i, j = divmod(p, w)
        codes[:, i, j] = draw(model(codes, None, cond)[:, :, i, j], u[:, i, j], temperature)
        p += 1
    return p - start, time.perf_counter() - t0


def at_256(images: int, naive_budget: float, out: str) -> dict:
    """Cached vs naive sampling on a paper-256 run with random weights (see bench_prior.py's docstring)."""
    import tempfile

    from archkit.models.vqvae import VQVAE2, VQVAE2Config
    from archkit.train import save_checkpoint
    from archkit.train.generate import sample_images

    torch.manual_seed(0)
    vq_cfg = VQVAE2Config.preset("paper-256")
    vqvae = VQVAE2(vq_cfg).eval()
    top_cfg = GatedPixelCNNConfig(
        num_codes=512, channels=64, layers=8, kernel_size=5, dropout=0.0, attention_every=4, attention_heads=4
    )
    bottom_cfg = GatedPixelCNNConfig(
        num_codes=512, channels=64, layers=8, kernel_size=5, dropout=0.0, cond_num_codes=512, cond_scale=2
    )
    priors = [GatedPixelCNN(top_cfg).eval(), GatedPixelCNN(bottom_cfg).eval()]
    shapes = [(32, 32), (64, 64)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "paper-256"
        save_checkpoint(run / "vqvae", vqvae, vq_cfg, kind="VQVAE2Config", step=0, data="natural", image_size=256)
        for level, (model, hw) in enumerate(zip(priors, shapes)):
            save_checkpoint(run / f"prior-{level}", model, model.config, step=0, level=level, shape=list(hw))
        t0 = time.perf_counter()
        imgs, codes = sample_images(run, images, None, seed=0, method="fast")
        end_to_end = time.perf_counter() - t0
    # the uniforms sample_images drew, level by level, from its generator
    gen = torch.Generator().manual_seed(0)
    uniforms = [torch.rand((images, *hw), generator=gen, dtype=torch.float64) for hw in shapes]
    for level, (model, hw) in enumerate(zip(priors, shapes)):
        cond = codes[level - 1] if level > 0 else None
        positions = hw[0] * hw[1]
        naive = torch.zeros((images, *hw), dtype=torch.long)
        done1, s1 = _naive_positions(model, naive, uniforms[level], cond, 0, naive_budget / 2)
        t0 = time.perf_counter()
        fast_codes = model.sample((images, *hw), None, cond, generator=torch.Generator().manual_seed(0), method="fast")
        fast_s = time.perf_counter() - t0
        done2, s2 = _naive_positions(model, naive, uniforms[level], cond, done1, naive_budget / 2)
        done = done1 + done2
        per_pos = (s1 + s2) / done
        # the naive codes so far must be the cached sampler's (same uniforms, same model)
        identical = torch.equal(naive.flatten(1)[:, :done], codes[level].flatten(1)[:, :done])
        rows.append(
            {
                "level": "top (attention)" if level == 0 else "bottom",
                "map": f"{hw[0]}x{hw[1]}",
                "images": images,
                "cached_s": fast_s,
                "naive_positions_done": done,
                "naive_rows_done": done // hw[1],
                "naive_s_measured": s1 + s2,
                "naive_s_extrapolated": per_pos * positions,
                "speedup": per_pos * positions / fast_s,
                "naive_prefix_identical": identical,
                "cached_equals_end_to_end": torch.equal(fast_codes, codes[level]) if level == 0 else None,
            }
        )
    record = {
        "images": images,
        "threads": torch.get_num_threads(),
        "end_to_end_cached_s": end_to_end,
        "image_shape": list(imgs.shape[1:]),
        "levels": rows,
        "naive_budget_s": naive_budget,
        "device": "cpu (no accelerator lent to this task)",
        "note": "random weights: sampling cost does not depend on training; naive extrapolated linearly "
        "from the positions it finished (one full forward each)",
    }
    print(f"paper-256: `archkit sample` path, {images} images {tuple(imgs.shape[1:])}, cached: {end_to_end:.1f} s")
    print(
        format_table(
            [
                "level",
                "code map",
                "images",
                "cached s",
                "naive positions done",
                "naive s (extrapolated)",
                "cached speedup",
                "naive prefix == cached",
            ],
            [
                [
                    r["level"],
                    r["map"],
                    r["images"],
                    f"{r['cached_s']:.1f}",
                    r["naive_positions_done"],
                    f"{r['naive_s_extrapolated']:.0f}",
                    f"{r['speedup']:.0f}x",
                    r["naive_prefix_identical"],
                ]
                for r in rows
            ],
        )
    )
    write_json(out, record)
    return record
