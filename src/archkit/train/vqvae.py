"""Train a VQVAE2 (stage 1 of VQ-VAE-2) and turn a dataset into code maps for the priors (stage 2).

Run folder layout:
    RUN_DIR/vqvae/            checkpoint: model.safetensors + config.json + trainer.pt (optimizer, step)
    RUN_DIR/train_config.json the VQVAETrainConfig of the run
    RUN_DIR/metrics.jsonl     one line per log step ("train") and per evaluation ("eval")
    RUN_DIR/recon.png         held-out originals (top row) above their reconstructions
    RUN_DIR/codes.npz         written by `encode_dataset`
Works unchanged under `torchrun --nproc_per_node K`: the global batch is split across ranks, the
codebook statistics are all-reduced inside VectorQuantizer, and only rank 0 writes files.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..models.vqvae import VQVAE2, VQVAE2Config, format_layout_table, layout_table, load_vqvae, preset_fields
from .checkpoint import atomic_write, atomic_write_json, config_from_dict, load_trainer_state, load_weights, read_config, save_checkpoint
from .distributed import DistInfo, any_rank, barrier, cleanup_distributed, init_distributed, replica_divergence, shard
from .run import GracefulInterrupt, append_jsonl
from .sequence import LR_SCHEDULES, lr_at

MODEL_FIELDS = ("levels", "hidden_channels", "res_blocks", "res_channels", "code_dim", "num_codes", "norm",
                "beta", "ema_decay", "codebook_init", "restart_after", "code_dropout", "layout")


@dataclass
class VQVAETrainConfig:
    """One VQ-VAE training run: data, budget, optimizer, and the VQVAE2Config fields (in_channels from data)."""
    data: str = "digits"            # "digits", "natural" or an image folder
    image_size: int = 32
    out: str = "runs/vqvae"
    steps: int = 2000
    epochs: float | None = None     # when set, replaces steps: epochs * (train images // batch_size)
    batch_size: int = 32            # global batch, split across DDP processes
    lr: float = 3e-4
    lr_schedule: str = "constant"   # or "cosine": decay to 0 over the run's steps
    eval_every: int = 250
    log_every: int = 10
    seed: int = 0
    resume: bool = False
    tensorboard: bool = False
    levels: int = 2
    hidden_channels: int = 128
    res_blocks: int = 2
    res_channels: int = 32
    code_dim: int = 64
    num_codes: int | list[int] = 512
    norm: str | None = None
    beta: float = 0.25
    ema_decay: float = 0.99
    codebook_init: str = "kmeans++"
    restart_after: int = 50
    code_dropout: float = 0.1
    layout: str = "archkit"
    preset: str | None = None       # the preset the fields started from (a record; the fields decide)

    def model_config(self, in_channels: int) -> VQVAE2Config:
        """The VQVAE2Config this run trains."""
        return VQVAE2Config(in_channels=in_channels, **{k: getattr(self, k) for k in MODEL_FIELDS})

    @classmethod
    def from_preset(cls, preset: str | None, **fields) -> "VQVAETrainConfig":
        """The preset's data, size and model fields (none: the defaults), then `fields` on top of them."""
        base: dict[str, Any] = {}
        if preset is not None:
            model, train = preset_fields(preset)
            base = {**{k: v for k, v in model.items() if k in MODEL_FIELDS}, **train}
        return cls(**{**base, **fields}, preset=preset)


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def _forward_batches(model: nn.Module, images: torch.Tensor, batch_size: int):
    for i in range(0, len(images), batch_size):
        yield images[i:i + batch_size]


@torch.no_grad()
def evaluate_vqvae(model: nn.Module, images: torch.Tensor, batch_size: int = 128) -> dict[str, Any]:
    """Held-out PSNR, per-level code usage/perplexity over the whole set, and the top-swap effect.

    top_swap: every image is decoded with its top-level codes replaced by another image's; the
    mean squared change of the reconstruction (and its PSNR against the original reconstruction)
    says how much information the top level carries (0 change = a useless top level).
    """
    was = model.training
    model.eval()
    sq_err, swap_change, n_pix = 0.0, 0.0, 0
    counts: list[torch.Tensor] | None = None
    num_codes = [q.num_codes for q in model.quantizers]
    for x in _forward_batches(model, images, batch_size):
        codes = model.encode(x)
        recon = model.decode_codes(codes).clamp(0, 1)
        sq_err += (recon - x).pow(2).sum().item()
        n_pix += x.numel()
        if len(x) > 1:
            swapped = model.decode_codes([codes[0].roll(1, 0), *codes[1:]]).clamp(0, 1)
            swap_change += (swapped - recon).pow(2).sum().item()
        batch_counts = [torch.bincount(c.flatten(), minlength=k).double() for c, k in zip(codes, num_codes)]
        counts = batch_counts if counts is None else [a + b for a, b in zip(counts, batch_counts)]
    model.train(was)
    levels = []
    for c, k in zip(counts or [], num_codes):
        p = c / c.sum().clamp_min(1)
        levels.append({"codes": k, "codes_used": int((c > 0).sum()), "usage": float((c > 0).double().mean()),
                       "perplexity": float(torch.exp(-(p * p.clamp_min(1e-12).log()).sum()))})
    mse = sq_err / max(n_pix, 1)
    swap = swap_change / max(n_pix, 1)
    return {"mse": mse, "psnr": psnr(mse), "top_swap_mse": swap, "top_swap_psnr": psnr(swap), "levels": levels}


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> dict[str, Any]:
    """One optimizer step on MSE + VQ loss; returns loss, batch PSNR and per-level perplexity."""
    model.train()
    out = model(x)
    rec = F.mse_loss(out.recon, x)
    loss = rec + out.vq_loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item(), "recon_mse": rec.item(), "psnr": psnr(rec.item()),
            "perplexity": [float(s["perplexity"]) for s in out.levels], "usage": [float(s["usage"]) for s in out.levels]}


def _write_recon(model: VQVAE2, images: torch.Tensor, path: Path, n: int = 16) -> None:
    from ..data.images import save_image_grid

    x = images[:n]
    with torch.no_grad():
        recon = model.decode_codes(model.encode(x))
    save_image_grid([x, recon], path)


def _load_data(cfg: VQVAETrainConfig, split: str, channels: int | None = None):
    from ..data.images import load_image_dataset

    return load_image_dataset(cfg.data, split, cfg.image_size, channels=channels)


def train_vqvae(cfg: VQVAETrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a VQVAE2 run in cfg.out; returns the final held-out metrics (rank 0's view)."""
    info = init_distributed()
    try:
        return _train(cfg, info, progress)
    finally:
        cleanup_distributed(info)


def _validate(cfg: VQVAETrainConfig) -> None:
    for name in ("image_size", "batch_size", "eval_every", "log_every"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if cfg.epochs is None and (not isinstance(cfg.steps, int) or cfg.steps < 1):
        raise ValueError(f"steps: expected a positive int, got {cfg.steps!r}")
    if cfg.epochs is not None and cfg.epochs <= 0:
        raise ValueError(f"epochs: expected a positive number, got {cfg.epochs!r}")
    if cfg.lr <= 0:
        raise ValueError(f"lr: expected a positive learning rate, got {cfg.lr!r}")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule: expected one of {list(LR_SCHEDULES)}, got {cfg.lr_schedule!r}")


def _train(cfg: VQVAETrainConfig, info: DistInfo, progress: bool) -> dict[str, Any]:
    _validate(cfg)
    run = Path(cfg.out)
    ckpt = run / "vqvae"
    train = _load_data(cfg, "train")
    test = _load_data(cfg, "test", channels=train.channels)
    steps_per_epoch = len(train) // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size: {cfg.batch_size} is larger than the training set ({len(train)} images)")
    total = cfg.steps if cfg.epochs is None else max(1, round(cfg.epochs * steps_per_epoch))
    torch.manual_seed(cfg.seed)
    model_cfg = cfg.model_config(train.channels)
    model = VQVAE2(model_cfg)
    model.check_input(train.images[:1])
    if info.is_main:
        tqdm.write(format_layout_table(layout_table(model, cfg.image_size)))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step = 0
    if (ckpt / "config.json").is_file():
        if not cfg.resume:
            raise ValueError(f"out: {str(run)!r} already holds a trained VQ-VAE (step {read_config(ckpt).get('step')}); "
                             f"pass --resume to continue it or choose another --out")
        load_weights(ckpt, model)
        state = load_trainer_state(ckpt)
        if state is not None:
            opt.load_state_dict(state["optimizer"])
            step = int(state["step"])
    if info.is_main:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run / "train_config.json", dataclasses.asdict(cfg))
    # The codebooks (buffers) need no per-step broadcast: VectorQuantizer all-reduces their statistics.
    # BatchNorm running statistics are the exception: rank 0's are broadcast, as plain DDP does.
    ddp = (nn.parallel.DistributedDataParallel(model, forward_sync_buffers=cfg.norm == "batch")
           if info.enabled else model)
    writer = _tensorboard(cfg, run) if info.is_main else None
    main_bar = info.is_main and progress
    bar = tqdm(total=total, initial=step, desc="vqvae", disable=not main_bar, dynamic_ncols=True)
    perm, perm_epoch = None, -1
    train_time, trained_images, interrupted = 0.0, 0, False
    last: dict[str, Any] = {}

    def checkpoint_and_eval() -> dict[str, Any]:
        result: dict[str, Any] = {}
        if info.is_main:
            result = evaluate_vqvae(model, test.images)
            _write_recon(model, test.images, run / "recon.png")
            save_checkpoint(ckpt, model, model_cfg, kind="VQVAE2Config",
                            trainer_state={"optimizer": opt.state_dict(), "step": step},
                            step=step, data=cfg.data, image_size=cfg.image_size)
            append_jsonl(run / "metrics.jsonl", {"split": "eval", "step": step, **result})
            if writer is not None:
                writer.add_scalar("eval/psnr", result["psnr"], step)
                for l, lv in enumerate(result["levels"]):
                    writer.add_scalar(f"eval/usage_level{l}", lv["usage"], step)
        barrier(info)
        return result

    with GracefulInterrupt() as stop:
        while step < total:
            epoch, k = divmod(step, steps_per_epoch)
            if epoch != perm_epoch:  # batch order depends only on (seed, epoch): resume replays it exactly
                perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
                perm_epoch = epoch
            idx = shard(perm[k * cfg.batch_size:(k + 1) * cfg.batch_size], info)
            t0 = time.perf_counter()
            for group in opt.param_groups:  # a pure function of the step: resume continues the schedule exactly
                group["lr"] = lr_at(cfg, step, total)
            last = train_step(ddp, opt, train.images[idx])
            train_time += time.perf_counter() - t0
            trained_images += len(idx) * info.world_size
            step += 1
            bar.update(1)
            if main_bar:
                bar.set_postfix(loss=f"{last['loss']:.4f}", psnr=f"{last['psnr']:.1f}",
                                ppl="/".join(f"{p:.0f}" for p in last["perplexity"]))
            if info.is_main and step % cfg.log_every == 0:
                append_jsonl(run / "metrics.jsonl", {"split": "train", "step": step, **last})
                if writer is not None:
                    writer.add_scalar("train/loss", last["loss"], step)
                    writer.add_scalar("train/psnr", last["psnr"], step)
            interrupted = any_rank(stop.requested, info)
            if interrupted or step % cfg.eval_every == 0 or step == total:
                checkpoint_and_eval()
            if interrupted:
                break
    bar.close()
    divergence = replica_divergence(model, info)
    result = _final_result(run, step, train_time, trained_images, interrupted, divergence) if info.is_main else {}
    if info.is_main:
        atomic_write_json(run / "result.json", result)
        if writer is not None:
            writer.close()
    return result


def _final_result(run: Path, step: int, train_time: float, images: int, interrupted: bool, divergence: float) -> dict:
    from .run import read_jsonl

    evals = [r for r in read_jsonl(run / "metrics.jsonl") if r.get("split") == "eval" and r.get("step") == step]
    metrics = evals[-1] if evals else evaluate_vqvae(load_vqvae(run), _load_data(read_train_config(run), "test").images)
    metrics = {k: v for k, v in metrics.items() if k != "split"}
    return {**metrics, "step": step, "interrupted": interrupted, "run_dir": str(run),
            "train_images_per_s": images / train_time if train_time > 0 else None,
            "replica_divergence": divergence}


def _tensorboard(cfg: VQVAETrainConfig, run: Path):
    if not cfg.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn("tensorboard is not installed; training without TensorBoard logging", stacklevel=3)
        return None
    return SummaryWriter(str(run / "tensorboard"))


def read_train_config(run_dir: str | Path) -> VQVAETrainConfig:
    """The VQVAETrainConfig saved in a run folder (train_config.json)."""
    path = Path(run_dir) / "train_config.json"
    if not path.is_file():
        load_vqvae(run_dir)  # raises the "no trained VQ-VAE" error when that is the problem
        raise FileNotFoundError(f"{str(path)!r} is missing: not a run folder written by `archkit vqvae train`")
    return config_from_dict(VQVAETrainConfig, json.loads(path.read_text(encoding="utf-8")))


@torch.no_grad()
def encode_dataset(run_dir: str | Path, data: str | None = None, out: str | Path | None = None,
                   batch_size: int = 256, image_size: int | None = None) -> Path:
    """Encode the train and test splits of a dataset (default: the run's own) into RUN_DIR/codes.npz.

    Keys: `{split}_codes_{l}` (N, H_l, W_l) int64 for l = 0 (top) .. L-1, `{split}_labels` (N,) when
    labelled, `num_codes` (L,) and `num_classes` (0 when unlabelled).
    """
    from ..data.images import load_image_dataset

    model = load_vqvae(run_dir)
    cfg = read_train_config(run_dir)
    name = data if data is not None else cfg.data
    size = image_size or cfg.image_size
    arrays: dict[str, np.ndarray] = {"num_codes": np.array(model.config.codes_per_level(), dtype=np.int64)}
    num_classes = 0
    for split in ("train", "test"):
        ds = load_image_dataset(name, split, size, channels=model.config.in_channels)
        codes: list[list[torch.Tensor]] = [[] for _ in range(model.config.levels)]
        for x in tqdm(list(_forward_batches(model, ds.images, batch_size)), desc=f"encode {split}", leave=False):
            for l, c in enumerate(model.encode(x)):
                codes[l].append(c)
        for l, parts in enumerate(codes):
            arrays[f"{split}_codes_{l}"] = torch.cat(parts).numpy().astype(np.int64)
        if ds.labels is not None:
            arrays[f"{split}_labels"] = ds.labels.numpy().astype(np.int64)
            num_classes = ds.num_classes
    arrays["num_classes"] = np.array(num_classes, dtype=np.int64)
    out = Path(out) if out is not None else Path(run_dir) / "codes.npz"
    def write(tmp: str) -> None:  # through a handle: np.savez would append ".npz" to other names
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    return atomic_write(out, write)
