"""VectorQuantizer: an EMA codebook that is seeded from data and restarts dead codes, so it never collapses.

A VQ-VAE with a randomly initialized EMA codebook typically ends up using a handful of its codes
(the rest never win a nearest-neighbour lookup, so EMA never moves them). Two fixes, both standard:
  * the codebook is initialized on the first training batch from the encoder outputs (k-means++),
  * a code that has not been picked for `restart_after` steps is re-seeded from a current encoder output.
EMA statistics and restarts are computed over the *global* batch when torch.distributed is
initialized (all_reduce / all_gather), so every DDP replica keeps the same codebook.

Guards: a batch holding NaN/inf (on any rank) never touches the codebook or the EMA statistics;
the update is skipped with a warning and counted in `skipped_updates` (`strict=True` raises instead).
Distances, EMA and restarts run in fp32 with autocast disabled, whatever the input dtype (fp16,
bf16, or under torch.autocast); the codebook buffers stay fp32 even when the model is cast to half
precision, and the quantized output has the input's dtype.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .rotation import rotate_to

INITS = ("kmeans++", "data", "random")
GRADS = ("ste", "rotation")  # straight-through, or the rotation trick (Fifty et al. 2024, layers/rotation.py)


class QuantizerOutput(NamedTuple):
    """What a VectorQuantizer returns: straight-through codes, indices, commitment loss and statistics."""

    quantized: torch.Tensor  # (B, C, ...) codes with a straight-through gradient to the input
    indices: torch.Tensor  # (B, ...) int64 code index per position
    loss: torch.Tensor  # scalar commitment loss, beta * ||x - sg(q)||^2
    perplexity: torch.Tensor  # scalar exp(entropy of code usage in this batch); num_codes at best
    usage: torch.Tensor  # scalar fraction of codes picked at least once in this batch


def _dist_ready() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if _dist_ready():
        torch.distributed.all_reduce(t)
    return t


def _all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor across ranks in rank order (equal shapes on all ranks)."""
    if not _dist_ready():
        return t
    parts = [torch.empty_like(t) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """A context with autocast off for this device type (a no-op where autocast does not exist)."""
    try:
        return torch.autocast(device_type=device_type, enabled=False)
    except (RuntimeError, ValueError):
        return contextlib.nullcontext()


_HALF = (torch.float16, torch.bfloat16)


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Pick k rows of x (N, D) with k-means++ seeding (spread out, proportional to squared distance)."""
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=generator).item())
    centers = [x[first]]
    d2 = (x - x[first]).pow(2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:  # fewer distinct points than codes: repeat random points (restarts separate them)
            idx = int(torch.randint(n, (1,), generator=generator).item())
        else:
            idx = int(torch.multinomial(d2 / total, 1, generator=generator).item())
        centers.append(x[idx])
        d2 = torch.minimum(d2, (x - x[idx]).pow(2).sum(1))
    return torch.stack(centers)


class VectorQuantizer(nn.Module):
    """Nearest-code lookup with straight-through gradients, commitment loss and an EMA codebook.

    Input is channels-first with any spatial rank: (B, dim, ...). The codebook only changes in
    training mode (EMA update, first-batch initialization, dead-code restart); eval mode is a
    pure lookup. `grad` is how the decoder's gradient reaches the encoder: "ste" (straight-through, the
    paper's) or "rotation" (the rotation trick, layers/rotation.py). `init` is "kmeans++" (default), "data" (random encoder outputs) or "random"
    (Gaussian, the classic setup that tends to collapse); `restart_after=0` disables restarts.
    A training batch with non-finite values is skipped for the codebook update (warning, counted in
    `skipped_updates`), or raises ValueError when `strict=True`.
    """

    codebook: torch.Tensor
    ema_count: torch.Tensor
    ema_sum: torch.Tensor
    unused_steps: torch.Tensor
    initialized: torch.Tensor
    steps: torch.Tensor

    def __init__(
        self,
        num_codes: int,
        dim: int,
        beta: float = 0.25,
        ema_decay: float = 0.99,
        init: str = "kmeans++",
        restart_after: int = 50,
        seed: int = 0,
        strict: bool = False,
        grad: str = "ste",
    ) -> None:
        super().__init__()
        for name, value in (("num_codes", num_codes), ("dim", dim)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay: expected a value in [0, 1), got {ema_decay!r}")
        if init not in INITS:
            raise ValueError(f"init: unknown value {init!r}; expected one of {list(INITS)}")
        if grad not in GRADS:
            raise ValueError(f"grad: unknown value {grad!r}; expected one of {list(GRADS)}")
        if restart_after < 0:
            raise ValueError(f"restart_after: expected >= 0 (0 disables restarts), got {restart_after!r}")
        self.num_codes, self.dim, self.beta, self.ema_decay = num_codes, dim, beta, ema_decay
        self.init, self.restart_after, self.seed, self.strict = init, restart_after, seed, strict
        self.grad = grad
        codebook = torch.randn(num_codes, dim, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("codebook", codebook)
        # EMA of per-code counts and sums; codebook = ema_sum / ema_count. Starting at count 1 keeps
        # a never-used code where it is instead of decaying it towards zero.
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("ema_sum", codebook.clone())
        self.register_buffer("unused_steps", torch.zeros(num_codes, dtype=torch.long))
        self.register_buffer("initialized", torch.tensor(init == "random"))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.restarts = 0  # codes re-seeded since construction (a statistic, not state)
        self.skipped_updates = 0  # training batches whose codebook update was skipped: non-finite values

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> VectorQuantizer:
        super()._apply(fn, recurse)
        # model.half() / .to(bfloat16) would turn the EMA statistics into half precision, where
        # small EMA steps vanish: the codebook state stays fp32 (the output follows the input dtype).
        for name in ("codebook", "ema_count", "ema_sum"):
            buf = getattr(self, name)
            if buf.dtype in _HALF:
                setattr(self, name, buf.float())
        return self

    def extra_repr(self) -> str:
        return (
            f"num_codes={self.num_codes}, dim={self.dim}, beta={self.beta}, ema_decay={self.ema_decay}, "
            f"init={self.init!r}, restart_after={self.restart_after}, grad={self.grad!r}"
        )

    def _flatten(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.dim:
            raise ValueError(f"VectorQuantizer: expected input (B, {self.dim}, ...), got shape {tuple(x.shape)}")
        return x.movedim(1, -1).reshape(-1, self.dim)

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean) for each row of flat (N, dim), computed in fp32."""
        with _no_autocast(flat.device.type):
            cb = self.codebook
            cb = cb.float() if cb.dtype in _HALF else cb
            f = flat.to(cb.dtype)
            # |f|^2 is the same for every code, so argmin needs only |e|^2 - 2 f.e: one fused matmul, no
            # extra passes over the (N, codes) matrix (they cost a tenth of a natural-64 training step)
            d = torch.addmm(cb.pow(2).sum(1)[None], f, cb.t(), alpha=-2)
        return d.argmin(1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes for an index map (B, ...) as a channels-first tensor (B, dim, ...)."""
        if indices.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"indices: expected an integer tensor, got dtype {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_codes):
            raise ValueError(
                f"indices: expected values in [0, {self.num_codes}), got [{int(indices.min())}, {int(indices.max())}]"
            )
        return F.embedding(indices.long(), self.codebook).movedim(-1, 1)

    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        flat = self._flatten(x)
        update = self.training and self._batch_is_finite(flat)
        if update:
            with torch.no_grad(), _no_autocast(flat.device.type):
                if not bool(self.initialized):
                    self._initialize(flat.detach().float())
        indices = self.nearest(flat.detach())
        counts = torch.bincount(indices, minlength=self.num_codes).float()
        if update:
            with torch.no_grad(), _no_autocast(flat.device.type):
                counts = self._ema_update(flat.detach().float(), indices, counts)
        quant_flat = F.embedding(indices, self.codebook).to(x.dtype)
        quantized = quant_flat.view(*x.movedim(1, -1).shape).movedim(-1, 1)
        loss = self.beta * F.mse_loss(x, quantized.detach())
        if self.grad == "rotation":  # the decoder's gradient at q, rotated and rescaled onto x
            quantized = rotate_to(x.movedim(1, -1), quantized.movedim(1, -1)).movedim(-1, 1)
        else:
            quantized = x + (quantized - x).detach()  # straight-through: identity gradient to the encoder
        probs = counts / counts.sum().clamp_min(1)
        perplexity = torch.exp(-(probs * torch.log(probs.clamp_min(1e-10))).sum())
        usage = (counts > 0).float().mean()
        return QuantizerOutput(quantized, indices.view(x.shape[0], *x.shape[2:]), loss, perplexity, usage)

    def _batch_is_finite(self, flat: torch.Tensor) -> bool:
        """Whether this training batch may update the codebook: finite on every rank (all ranks agree)."""
        bad = (~torch.isfinite(flat.detach())).any().float().reshape(1)
        if _dist_ready():
            torch.distributed.all_reduce(bad)
        if not bool(bad.item()):
            return True
        if self.strict:
            raise ValueError(
                "VectorQuantizer: the training batch holds NaN or inf values (strict=True); "
                "the codebook was not updated"
            )
        self.skipped_updates += 1
        warnings.warn(
            f"VectorQuantizer: a training batch holds NaN or inf values; codebook/EMA update skipped "
            f"({self.skipped_updates} batch(es) so far)",
            RuntimeWarning,
            stacklevel=3,
        )
        return False

    def _generator(self) -> torch.Generator:
        # Seeded by the step counter: identical on every DDP rank and after a resume.
        return torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.steps))

    def _initialize(self, flat: torch.Tensor) -> None:
        pool = _all_gather_cat(flat).cpu()
        gen = self._generator()
        if self.init == "kmeans++":
            if pool.shape[0] > 20_000:  # k-means++ seeding is O(N k): a random subset is plenty
                pool = pool[torch.randperm(pool.shape[0], generator=gen)[:20_000]]
            codes = kmeans_plus_plus(pool, self.num_codes, gen)
        else:
            codes = pool[torch.randint(pool.shape[0], (self.num_codes,), generator=gen)]
        codes = codes.to(self.codebook)
        self.codebook.copy_(codes)
        self.ema_sum.copy_(codes)
        self.ema_count.fill_(1.0)
        self.initialized.fill_(True)

    def _ema_update(self, flat: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, flat.to(self.ema_sum.dtype))
        counts = _all_reduce_sum(counts.clone())
        sums = _all_reduce_sum(sums)
        d = self.ema_decay
        self.ema_count.mul_(d).add_(counts, alpha=1 - d)
        self.ema_sum.mul_(d).add_(sums, alpha=1 - d)
        self.codebook.copy_(self.ema_sum / self.ema_count.clamp_min(1e-12)[:, None])
        self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
        if self.restart_after > 0:
            dead = (self.unused_steps >= self.restart_after).nonzero().flatten()
            if dead.numel():
                self._restart(dead, flat)
        self.steps.add_(1)
        return counts

    def _restart(self, dead: torch.Tensor, flat: torch.Tensor) -> None:
        pool = _all_gather_cat(flat)
        gen = self._generator()
        pick = torch.randint(pool.shape[0], (dead.numel(),), generator=gen).to(pool.device)
        # A little noise so codes re-seeded from the same position do not coincide. Its scale is the
        # pool's spread, or its magnitude when there is no spread (std of a single value is NaN).
        spread = pool.std(correction=0) if pool.numel() > 1 else pool.new_zeros(())
        scale = torch.where(spread > 0, spread, pool.abs().mean().clamp_min(1e-6))
        noise = torch.randn(dead.numel(), self.dim, generator=gen).to(pool) * 1e-3 * scale
        fresh = pool[pick] + noise
        if not bool(torch.isfinite(fresh).all()):  # cannot happen after the batch check; never write NaN codes
            return
        self.codebook[dead] = fresh
        self.ema_sum[dead] = fresh
        self.ema_count[dead] = 1.0
        self.unused_steps[dead] = 0
        self.restarts += dead.numel()
