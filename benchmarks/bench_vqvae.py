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
import torch.nn.functional as F
from torch import nn

from archkit.data import augment_batch, load_image_dataset
from archkit.models import VQVAE2, VQVAE2Config
from archkit.models.vqvae import VQVAEOutput
from archkit.surgery import format_table, peak_rss_growth_mib
from archkit.train import atomic_write_json, evaluate_vqvae
from archkit.train.schedule import lr_at
from archkit.train.vqvae import train_step

RESULTS = Path(__file__).parent / "results" / "bench_vqvae.json"
DATASETS = {"digits": 32, "natural": 64}


# ---- the plain reference: the author's architecture as the best-known public port builds it ----------
class PlainQuantize(nn.Module):
    """EMA vector quantizer with a Gaussian-initialized codebook and no dead-code handling."""

    def __init__(self, dim: int, num_codes: int, decay: float = 0.99, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_codes, self.decay, self.eps = num_codes, decay, eps
        embed = torch.randn(dim, num_codes)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(num_codes))
        self.register_buffer("embed_avg", embed.clone())

    def forward(self, x: torch.Tensor):  # x: (B, H, W, dim)
        flat = x.reshape(-1, x.shape[-1])
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed + self.embed.pow(2).sum(0, keepdim=True)
        ind = dist.argmin(1)
        onehot = F.one_hot(ind, self.num_codes).type(flat.dtype)
        quant = F.embedding(ind.view(*x.shape[:-1]), self.embed.t())
        if self.training:
            with torch.no_grad():
                self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
                self.embed_avg.mul_(self.decay).add_(flat.t() @ onehot, alpha=1 - self.decay)
                n = self.cluster_size.sum()
                size = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
                self.embed.copy_(self.embed_avg / size.unsqueeze(0))
        diff = (quant.detach() - x).pow(2).mean()
        quant = x + (quant - x).detach()
        counts = onehot.sum(0)
        p = counts / counts.sum()
        ppl = torch.exp(-(p * (p + 1e-10).log()).sum())
        return quant, diff, ind.view(*x.shape[:-1]), ppl, (counts > 0).float().mean()


class PlainResBlock(nn.Module):
    def __init__(self, ch: int, res_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, res_ch, 3, padding=1), nn.ReLU(), nn.Conv2d(res_ch, ch, 1))

    def forward(self, x):
        return x + self.conv(x)


def _plain_encoder(cin: int, ch: int, res_blocks: int, res_ch: int, stride: int) -> nn.Sequential:
    if stride == 4:
        layers = [
            nn.Conv2d(cin, ch // 2, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(ch // 2, ch, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1),
        ]
    else:
        layers = [nn.Conv2d(cin, ch // 2, 4, 2, 1), nn.ReLU(), nn.Conv2d(ch // 2, ch, 3, padding=1)]
    return nn.Sequential(*layers, *[PlainResBlock(ch, res_ch) for _ in range(res_blocks)], nn.ReLU())


def _plain_decoder(cin: int, cout: int, ch: int, res_blocks: int, res_ch: int, stride: int) -> nn.Sequential:
    layers = [nn.Conv2d(cin, ch, 3, padding=1), *[PlainResBlock(ch, res_ch) for _ in range(res_blocks)], nn.ReLU()]
    if stride == 4:
        layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(ch // 2, cout, 4, 2, 1)]
    else:
        layers += [nn.ConvTranspose2d(ch, cout, 4, 2, 1)]
    return nn.Sequential(*layers)


class PlainVQVAE2(nn.Module):
    """Two-level VQ-VAE-2 exactly as in the author's answer, nothing added (same channels as VQVAE2Config)."""

    def __init__(self, cfg: VQVAE2Config) -> None:
        super().__init__()
        c, ch, rb, rc, d = cfg.in_channels, cfg.hidden_channels, cfg.res_blocks, cfg.res_channels, cfg.code_dim
        n_top, n_bottom = cfg.codes_per_level()
        self.enc_b = _plain_encoder(c, ch, rb, rc, 4)
        self.enc_t = _plain_encoder(ch, ch, rb, rc, 2)
        self.quantize_conv_t = nn.Conv2d(ch, d, 1)
        self.quantize_t = PlainQuantize(d, n_top)
        self.dec_t = _plain_decoder(d, d, ch, rb, rc, 2)
        self.quantize_conv_b = nn.Conv2d(d + ch, d, 1)
        self.quantize_b = PlainQuantize(d, n_bottom)
        self.upsample_t = nn.ConvTranspose2d(d, d, 4, 2, 1)
        self.dec = _plain_decoder(2 * d, c, ch, rb, rc, 4)
        self.quantizers = [self.quantize_t, self.quantize_b]  # plain list: only for evaluate_vqvae's num_codes
        self.beta = cfg.beta

    def _encode(self, x):
        enc_b = self.enc_b(x * 2 - 1)
        enc_t = self.enc_t(enc_b)
        qt, dt, it, pt, ut = self.quantize_t(self.quantize_conv_t(enc_t).permute(0, 2, 3, 1))
        qt = qt.permute(0, 3, 1, 2)
        dec_t = self.dec_t(qt)
        qb, db, ib, pb, ub = self.quantize_b(self.quantize_conv_b(torch.cat([dec_t, enc_b], 1)).permute(0, 2, 3, 1))
        return qt, qb.permute(0, 3, 1, 2), dt + db, [it, ib], [(pt, ut), (pb, ub)]

    def _decode(self, qt, qb):
        return (self.dec(torch.cat([self.upsample_t(qt), qb], 1)) + 1) / 2

    def forward(self, x):
        qt, qb, diff, codes, stats = self._encode(x)
        levels = [{"loss": self.beta * diff, "perplexity": p, "usage": u} for p, u in stats]
        return VQVAEOutput(self._decode(qt, qb), self.beta * diff, levels, codes)

    @torch.no_grad()
    def encode(self, x):
        return self._encode(x)[3]

    def decode_codes(self, codes):
        qt = F.embedding(codes[0], self.quantize_t.embed.t()).permute(0, 3, 1, 2)
        qb = F.embedding(codes[1], self.quantize_b.embed.t()).permute(0, 3, 1, 2)
        return self._decode(qt, qb)


# ---- benchmark ------------------------------------------------------------------------------------
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
    gen = torch.Generator().manual_seed(0)
    order = torch.cat([torch.randperm(len(train), generator=gen) for _ in range(steps * batch // len(train) + 1)])
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


# ---- screening: what limits natural-image PSNR at a fixed step budget -----------------------------
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
    gen = torch.Generator().manual_seed(0)
    order = torch.cat([torch.randperm(len(train), generator=gen) for _ in range(steps * batch // len(train) + 1)])
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
            atomic_write_json(out, record)  # an interrupted screen keeps its latest numbers
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

        for name in ("steps", "batch_size", "threads"):
            if not 1 <= getattr(args, name) <= 100_000:
                raise SystemExit(f"--{name.replace('_', '-')}: expected 1..100000, got {getattr(args, name)}")
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
        atomic_write_json(args.out, record)
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
        atomic_write_json(args.out, current)

    for name in args.datasets:
        record.pop(name, None)
        run_dataset(name, args.steps, args.batch_size, args.chunk, args.eval_every, record, save)
    print_table(record)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
