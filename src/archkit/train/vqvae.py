"""Train a VQVAE2 (stage 1 of VQ-VAE-2) and turn a dataset into code maps for the priors (stage 2).

Run folder layout:
    RUN_DIR/vqvae/            checkpoint: model.safetensors + config.json + trainer.pt (optimizer, step)
    RUN_DIR/train_config.json the VQVAETrainConfig of the run
    RUN_DIR/metrics.jsonl     one line per log step ("train") and per evaluation ("eval")
    RUN_DIR/recon.png         held-out originals (top row) above their reconstructions
    RUN_DIR/codes/            written by `encode_dataset` (memory-mapped .npy per split and level, see codes.py)
An image folder (--data PATH) is streamed: decoded per item through a DataLoader (--workers N),
in exactly the batch order the in-memory built-in sets use, so memory does not grow with the folder.
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
from typing import Any, ClassVar, Collection

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data.augment import AUGMENTATIONS, augment_batch
from ..data.images import ImageData, open_image_dataset
from ..data.loader import DEFAULT_WORKERS, EpochBatchSampler, make_loader
from ..models.vqvae import VQVAE2, VQVAE2Config, format_layout_table, layout_table, load_vqvae, preset_fields
from .accelerate import Accelerator, accelerator_for, create_accelerator, model_device, restore_choice, unwrap_model
from .checkpoint import atomic_write_json, checkpoint_exists, config_from_dict, load_trainer_state, load_weights, read_config, save_checkpoint
from .distributed import DistInfo, any_rank, barrier, cleanup_distributed, init_distributed, replica_divergence
from .run import GracefulInterrupt, append_jsonl
from .sequence import LR_SCHEDULES, lr_at

MODEL_FIELDS = ("levels", "hidden_channels", "res_blocks", "res_channels", "code_dim", "num_codes", "norm",
                "beta", "ema_decay", "codebook_init", "restart_after", "code_dropout", "layout",
                "bottom_stride")


@dataclass
class VQVAETrainConfig:
    """One VQ-VAE training run: data, budget, optimizer, and the VQVAE2Config fields (in_channels from data)."""
    ADDED_FIELDS: ClassVar[dict] = {"bottom_stride": 4, "augment": "none"}  # added after run folders existed
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
    workers: int = DEFAULT_WORKERS  # DataLoader processes decoding an image folder (0: the main process)
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
    device: str = "auto"            # auto | cpu | cuda | cuda:N | mps (see archkit.train.accelerate)
    precision: str = "32"           # 32 | bf16 | 16-mixed
    compile: bool = False           # torch.compile the model
    layout: str = "archkit"
    bottom_stride: int = 4          # image side / bottom code map side (4 or 2)
    augment: str = "none"           # training batches only: "none" | "flip-permute" (archkit.data.augment)
    preset: str | None = None       # the preset the fields started from (a record; the fields decide)

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment: expected one of {list(AUGMENTATIONS)}, got {self.augment!r}")

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


def image_batches(data: Any, batch_size: int = 128, workers: int = 0, pin_memory: bool = False):
    """(images, labels or None) batches in order: of a tensor or in-memory ImageData by slicing, of any other
    dataset through a DataLoader with `workers` processes, or of a DataLoader as it comes."""
    if isinstance(data, ImageData):
        for i in range(0, len(data), batch_size):
            yield data.images[i:i + batch_size], None if data.labels is None else data.labels[i:i + batch_size]
        return
    if isinstance(data, torch.Tensor):
        for i in range(0, len(data), batch_size):
            yield data[i:i + batch_size], None
        return
    loader = data if isinstance(data, torch.utils.data.DataLoader) else make_loader(
        data, batch_size, shuffle=False, workers=workers, pin_memory=pin_memory)
    for x, y in loader:
        yield x, y


@torch.no_grad()
def evaluate_vqvae(model: nn.Module, images: Any, batch_size: int = 128,
                   accel: Accelerator | None = None) -> dict[str, Any]:
    """Held-out PSNR, per-level code usage/perplexity over the whole set, and the top-swap effect.

    `images`: a tensor, an ImageData, a dataset or a DataLoader (see `image_batches`): streamed in batches.

    top_swap: every image is decoded with its top-level codes replaced by another image's; the
    mean squared change of the reconstruction (and its PSNR against the original reconstruction)
    says how much information the top level carries (0 change = a useless top level).
    """
    model = unwrap_model(model)
    accel = accel or create_accelerator(model_device(model))
    was = model.training
    model.eval()
    sq_err, swap_change, n_pix = 0.0, 0.0, 0
    counts: list[torch.Tensor] | None = None
    num_codes = [q.num_codes for q in model.quantizers]
    for x, _ in image_batches(images, batch_size):
        x = accel.to_device(x)
        with accel.autocast():
            codes = model.encode(x)
            recon = model.decode_codes(codes).float().clamp(0, 1)
            swapped = model.decode_codes([codes[0].roll(1, 0), *codes[1:]]).float().clamp(0, 1) if len(x) > 1 else None
        sq_err += (recon - x).pow(2).sum().item()
        n_pix += x.numel()
        if swapped is not None:
            swap_change += (swapped - recon).pow(2).sum().item()
        batch_counts = [torch.bincount(c.flatten(), minlength=k).double().cpu() for c, k in zip(codes, num_codes)]
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


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
               accel: Accelerator | None = None) -> dict[str, Any]:
    """One optimizer step on MSE + VQ loss; returns loss, batch PSNR and per-level perplexity."""
    accel = accel or create_accelerator(model_device(model))
    model.train()
    x = accel.to_device(x)
    with accel.autocast():
        out = model(x)
    # the loss is taken in fp32 whatever the forward ran in
    rec = F.mse_loss(out.recon.float(), x)
    loss = rec + out.vq_loss.float()
    opt.zero_grad(set_to_none=True)
    accel.backward(loss)
    accel.step(opt)
    return {"loss": loss.item(), "recon_mse": rec.item(), "psnr": psnr(rec.item()),
            "perplexity": [float(s["perplexity"]) for s in out.levels], "usage": [float(s["usage"]) for s in out.levels]}


def _write_recon(model: VQVAE2, data: Any, path: Path, accel: Accelerator, n: int = 16) -> None:
    from ..data.images import save_image_grid

    x = torch.stack([data[i][0] for i in range(min(n, len(data)))])
    model = unwrap_model(model)
    was = model.training
    model.eval()
    with torch.no_grad(), accel.autocast():
        recon = model.decode_codes(model.encode(accel.to_device(x))).float().cpu()
    model.train(was)
    save_image_grid([x, recon], path)


def _load_data(cfg: VQVAETrainConfig, split: str, channels: int | None = None):
    """A built-in set in memory, an image folder as a per-item (streamed) dataset."""
    return open_image_dataset(cfg.data, split, cfg.image_size, channels=channels)


class TrainBatches:
    """The images of each training step, in the order of `EpochBatchSampler` (a function of seed and epoch).

    In-memory data is indexed directly; a streamed dataset goes through `make_loader` (workers, pinned
    memory on CUDA). Both yield the same batches, and `batch(step)` may start anywhere (resume).
    """

    def __init__(self, data: Any, batch_size: int, seed: int, info: DistInfo, workers: int = 0,
                 device: Any = None) -> None:
        self.data, self.in_memory = data, isinstance(data, ImageData)
        if self.in_memory:
            self.sampler = EpochBatchSampler(len(data), batch_size, seed, rank=info.rank, world_size=info.world_size)
            self.loader = None
        else:
            self.loader = make_loader(data, batch_size, seed=seed, workers=workers, device=device,
                                      rank=info.rank, world_size=info.world_size)
            self.sampler = self.loader.batch_sampler
        self.steps_per_epoch = self.sampler.batches_per_epoch
        self._it, self._next_step = None, -1

    def batch(self, step: int) -> torch.Tensor:
        """This rank's images of global step `step` (0-based)."""
        epoch, k = divmod(step, self.steps_per_epoch)
        if self._it is None or step != self._next_step or k == 0:
            self.sampler.set_epoch(epoch, k)
            self._it = iter(self.sampler if self.in_memory else self.loader)
        self._next_step = step + 1
        item = next(self._it)
        return self.data.images[item] if self.in_memory else item[0]


def train_vqvae(cfg: VQVAETrainConfig, progress: bool = True, explicit: Collection[str] = ()) -> dict[str, Any]:
    """Train (or resume) a VQVAE2 run in cfg.out; returns the final held-out metrics (rank 0's view).

    On resume the run's saved device/precision/compile are kept unless named in `explicit` (the
    CLI passes the flags given) or set to a non-default value.
    """
    saved, restored = Path(cfg.out) / "train_config.json", []
    if cfg.resume and saved.is_file():
        restored = restore_choice(cfg, json.loads(saved.read_text(encoding="utf-8")), explicit)
    accel = accelerator_for(cfg, restored)
    info = init_distributed(accel.device)
    try:
        return _train(cfg, info, progress, accel)
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
    if not isinstance(cfg.workers, int) or cfg.workers < 0:
        raise ValueError(f"workers: expected an int >= 0 (0 = decode in the main process), got {cfg.workers!r}")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule: expected one of {list(LR_SCHEDULES)}, got {cfg.lr_schedule!r}")


def _train(cfg: VQVAETrainConfig, info: DistInfo, progress: bool, accel: Accelerator) -> dict[str, Any]:
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
    model.check_input(train[0][0][None])
    batches = TrainBatches(train, cfg.batch_size, cfg.seed, info, workers=cfg.workers, device=accel.device)
    test_batches = None  # rank 0's held-out DataLoader, made on first use (its workers then persist)
    if info.is_main:
        tqdm.write(format_layout_table(layout_table(model, cfg.image_size)))
    step = 0
    state = None
    if checkpoint_exists(ckpt):
        if not cfg.resume:
            raise ValueError(f"out: {str(run)!r} already holds a trained VQ-VAE (step {read_config(ckpt).get('step')}); "
                             f"pass --resume to continue it or choose another --out")
        load_weights(ckpt, model)
        state = load_trainer_state(ckpt, required=True)
    accel.prepare(model)  # before the optimizer, so its state lives on the device too
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if state is not None:
        opt.load_state_dict(state["optimizer"])  # moves the saved (CPU) state to the parameters' device
        accel.load_state_dict(state.get("scaler"))
        step = int(state["step"])
    if info.is_main:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run / "train_config.json", dataclasses.asdict(cfg))
    # The codebooks (buffers) need no per-step broadcast: VectorQuantizer all-reduces their statistics.
    # BatchNorm running statistics are the exception: rank 0's are broadcast, as plain DDP does.
    device_ids = [accel.device.index] if accel.device.type == "cuda" else None
    ddp = (nn.parallel.DistributedDataParallel(model, device_ids=device_ids, forward_sync_buffers=cfg.norm == "batch")
           if info.enabled else model)
    ddp = accel.compile_model(ddp)
    writer = _tensorboard(cfg, run) if info.is_main else None
    main_bar = info.is_main and progress
    bar = tqdm(total=total, initial=step, desc="vqvae", disable=not main_bar, dynamic_ncols=True)
    train_time, trained_images, interrupted = 0.0, 0, False
    last: dict[str, Any] = {}

    def checkpoint_and_eval() -> dict[str, Any]:
        nonlocal test_batches
        result: dict[str, Any] = {}
        if info.is_main:
            if test_batches is None:  # held-out batches as large as the training ones: memory follows the batch
                test_batches = test if isinstance(test, ImageData) else make_loader(
                    test, cfg.batch_size, shuffle=False, workers=cfg.workers, device=accel.device)
            result = evaluate_vqvae(model, test_batches, batch_size=cfg.batch_size, accel=accel)
            _write_recon(model, test, run / "recon.png", accel)
            save_checkpoint(ckpt, model, model_cfg, kind="VQVAE2Config",
                            trainer_state={"optimizer": opt.state_dict(), "step": step, "scaler": accel.state_dict()},
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
            t0 = time.perf_counter()  # the batch order depends only on (seed, epoch): resume replays it exactly
            x = batches.batch(step)
            if cfg.augment != "none":  # drawn for the global batch from the step: resume and DDP stay exact
                x = augment_batch(x, cfg.augment, torch.Generator().manual_seed(cfg.seed * 1_000_003 + step),
                                  offset=info.rank * len(x), total=len(x) * info.world_size)
            for group in opt.param_groups:  # a pure function of the step: resume continues the schedule exactly
                group["lr"] = lr_at(cfg, step, total)
            last = train_step(ddp, opt, x, accel)
            train_time += time.perf_counter() - t0
            trained_images += len(x) * info.world_size
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
        result["accelerator"] = accel.describe()
        if not isinstance(train, ImageData):  # files that passed the folder scan but failed to decode later
            result["unreadable_at_load"] = train.warn_load_failures() + test.warn_load_failures()
        atomic_write_json(run / "result.json", result)
        if writer is not None:
            writer.close()
    return result


def _final_result(run: Path, step: int, train_time: float, images: int, interrupted: bool, divergence: float) -> dict:
    from .run import read_jsonl

    evals = [r for r in read_jsonl(run / "metrics.jsonl") if r.get("split") == "eval" and r.get("step") == step]
    metrics = evals[-1] if evals else evaluate_vqvae(load_vqvae(run), _load_data(read_train_config(run), "test"),
                                                     accel=create_accelerator("cpu"))
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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{str(path)!r} is not valid JSON: {e}") from None
    return config_from_dict(VQVAETrainConfig, data, repr(str(path)))


@torch.no_grad()
def encode_dataset(run_dir: str | Path, data: str | None = None, out: str | Path | None = None,
                   batch_size: int = 256, image_size: int | None = None, device: str | Accelerator = "auto",
                   precision: str = "32", compile: bool = False, workers: int = DEFAULT_WORKERS) -> Path:
    """Encode the train and test splits of a dataset (default: the run's own) into the folder RUN_DIR/codes.

    Batch by batch into memory-mapped `{split}_codes_{l}.npy` (l = 0 top .. L-1) and `{split}_labels.npy`,
    plus meta.json (num_codes, num_classes, shapes); the folder appears whole or not at all (codes.py).
    An image folder is streamed through a DataLoader with `workers` processes: it is never held in memory.
    """
    from .codes import CODES_DIR, CodesWriter

    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers: expected an int >= 0 (0 = decode in the main process), got {workers!r}")
    accel = create_accelerator(device, precision, compile)
    model = accel.prepare(load_vqvae(run_dir))
    encode = torch.compile(model.encode) if accel.compile else model.encode
    cfg = read_train_config(run_dir)
    name = data if data is not None else cfg.data
    size = image_size or cfg.image_size
    num_classes = 0
    target = Path(out) if out is not None else Path(run_dir) / CODES_DIR
    with CodesWriter(target, model.config.codes_per_level(), data=str(name), image_size=size) as writer:
        for split in ("train", "test"):
            ds = open_image_dataset(name, split, size, channels=model.config.in_channels)
            start = 0
            for x, _ in tqdm(image_batches(ds, batch_size, workers, pin_memory=accel.pin_memory), total=-(-len(ds) // batch_size),
                             desc=f"encode {split}", leave=False):
                labels = None if ds.labels is None else ds.labels[start:start + len(x)]
                with accel.autocast():
                    codes = [c.cpu() for c in encode(accel.to_device(x))]
                writer.write(split, len(ds), start, codes, labels)
                start += len(x)
            if ds.labels is not None:
                num_classes = ds.num_classes
            if not isinstance(ds, ImageData):
                ds.warn_load_failures()
        return writer.commit(num_classes)
