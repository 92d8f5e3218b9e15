"""Hydra (Dempster, Schmidt & Webb, DMKD 2023, arXiv:2203.13652) as a torch module, with its sparse scaler.

Random kernels of length 9 (weights drawn from N(0, 1), then made zero-mean and scaled to unit absolute
sum) in `num_groups` groups of `num_kernels`, at dilations 2^0 .. 2^floor(log2((T - 1) / 8)), half
of the groups on the series and half on its first difference. A multivariate series enters each
group as the sum of a random subset of its channels (clip(C // 2, 2, max_channels) channels drawn with
replacement, per dilation and group, as aeon draws them); a univariate series enters every group as
it is. At every time step the kernels of a group compete: the one with the largest output adds that
output to its "max" feature, the one with the smallest adds 1 to its "min" count. The features come
in aeon's order (dilation, series/difference, max/min, group, kernel): `Hydra.from_aeon(fitted)` takes
a fitted aeon `HydraTransformer`'s kernels and channel subsets and gives its features.

How it runs: one case at a time over its own steps (a padded case is the same case cut to its
length, and a case's features do not depend on its batch), per dilation one batched matrix product
of each group's kernels with the nine shifted copies of its input, with zero padding of 4 * dilation
on both sides (the output is as long as the input: T for the series, T - 1 for its difference).
On the CPU the cases run side by side on torch's threads (`rocket_ops.by_blocks`).

`SparseScaler` is aeon's scaling of Hydra features for its ridge head: sqrt of the features clipped
at 0, minus the mean, times a mask of the nonzero features, over the standard deviation plus
(fraction of zeros)^4 + 1e-8.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .rocket import _as_series
from .rocket_ops import by_blocks, check_int, refuse_trace, valid_steps

__all__ = ["Hydra", "SparseScaler", "hydra_dilations"]

KERNEL_LENGTH = 9
MAX_KERNELS = 4096  # per group, and groups: far beyond the paper's 8 x 64


def hydra_dilations(length: int) -> np.ndarray:
    """Hydra's dilations 2^0 .. 2^floor(log2((length - 1) / 8)) for series of `length` steps (at least 1)."""
    length = check_int(length, "length", 1, 1 << 40)
    top = int(np.floor(np.log2((length - 1) / (KERNEL_LENGTH - 1)))) if length > KERNEL_LENGTH else 0
    return 2 ** np.arange(top + 1, dtype=np.int64)


class Hydra(nn.Module):
    """Hydra features of series (N, C, T) -> (N, num_features); fit with `Hydra.fit` or `Hydra.from_aeon`.

    Fitted parameters are buffers (state dict): `dilations` (D,), `weights` (D, S, H * K, 9) (S = 2
    with the first difference, 1 without; H groups per input, K kernels per group, kernel j of group
    h at row h * K + j) and `channel_indices` (D, S, H, channels per group). `num_kernels` (K) and
    `in_channels` are settings, like MiniRocket's.
    """

    dilations: torch.Tensor
    weights: torch.Tensor
    channel_indices: torch.Tensor
    _picks: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        dilations: Any,
        weights: Any,
        channel_indices: Any,
        num_kernels: int = 8,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", 1, 1_000_000)
        self.num_kernels = k = check_int(num_kernels, "num_kernels", 1, MAX_KERNELS)
        dil = torch.as_tensor(np.asarray(dilations, dtype=np.int64))
        w = torch.as_tensor(weights if isinstance(weights, torch.Tensor) else np.asarray(weights, np.float32))
        idx = torch.as_tensor(np.asarray(channel_indices, dtype=np.int64))
        if dil.ndim != 1 or len(dil) == 0 or int(dil.min()) < 1:
            raise ValueError(f"dilations: expected a non-empty list of positive ints, got shape {tuple(dil.shape)}")
        d = len(dil)
        if w.ndim != 4 or w.shape[0] != d or w.shape[1] not in (1, 2) or w.shape[2] % k or w.shape[3] != 9:
            raise ValueError(
                f"weights: expected shape ({d}, 1 or 2, groups * {k}, {KERNEL_LENGTH}), got {tuple(w.shape)}"
            )
        groups = w.shape[2] // k
        if idx.ndim != 4 or tuple(idx.shape[:3]) != (d, w.shape[1], groups) or idx.shape[3] < 1:
            raise ValueError(
                f"channel_indices: expected shape ({d}, {w.shape[1]}, {groups}, channels per group), "
                f"got {tuple(idx.shape)}"
            )
        if int(idx.min()) < 0 or int(idx.max()) >= self.in_channels:
            raise ValueError(
                f"channel_indices: expected channels in [0, {self.in_channels - 1}], "
                f"got [{int(idx.min())}, {int(idx.max())}]"
            )
        self.register_buffer("dilations", dil)
        self.register_buffer("weights", w.float().clone())
        self.register_buffer("channel_indices", idx)
        self._derive()

    def _derive(self) -> None:
        """(D, S, H, C) channel counts per group (a group's input = counts @ series), from channel_indices."""
        idx = self.channel_indices
        picks = torch.zeros(*idx.shape[:3], self.in_channels, device=idx.device)
        picks.scatter_add_(3, idx, torch.ones(idx.shape, device=idx.device))
        self.register_buffer("_picks", picks, persistent=False)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Load fitted parameters (same shapes as this module's); the channel counts follow the new subsets."""
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._derive()
        return result

    @property
    def num_features(self) -> int:
        """Number of output features: dilations x inputs (series, difference) x 2 (max, min) x groups x kernels."""
        d, s, hk, _ = self.weights.shape
        return int(d * s * 2 * hk)

    # ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Features (N, num_features) of series x (N, C, T); `lengths` (N,) = valid steps per case (None: all T)."""
        refuse_trace("Hydra")
        valid = valid_steps(x, lengths, self.in_channels)
        x = x.to(self.weights.dtype)
        plan = [int(d) for d in self.dilations.tolist()]
        return by_blocks(x, valid, self.num_features, lambda xb: torch.stack([self._case(c, plan) for c in xb]))

    def _case(self, x: torch.Tensor, plan: list[int]) -> torch.Tensor:
        """Features of one case x (C, L): per dilation, per input (series, difference), max sums then min counts."""
        k, groups = self.num_kernels, self.weights.shape[2] // self.num_kernels
        inputs = [x, x[:, 1:] - x[:, :-1]][: self.weights.shape[1]]
        if self.in_channels > 1:  # each group's input: the sum of its channels, as a product with the counts
            picks = self._picks.to(x.dtype)
        feats = []
        for s, series in enumerate(inputs):
            length = series.shape[1]
            if length == 0:  # a one-step case has no difference: no kernel wins anywhere
                feats += [series.new_zeros(len(plan), 2 * groups * k)]
                continue
            # buffers reused for every dilation (fresh ones cost page faults on long series)
            shifted = series.new_empty(groups, KERNEL_LENGTH, length)
            out = series.new_empty(groups, k, length)
            count_dtype = torch.float32 if length <= 1 << 24 else torch.float64  # counts stay exact
            hits = series.new_empty(groups, k, length, dtype=count_dtype)
            per_dilation = []
            for j, d in enumerate(plan):
                z = picks[j, s] @ series if self.in_channels > 1 else series.expand(groups, length)  # (H, L)
                shifted.copy_(F.pad(z, (4 * d, 4 * d)).unfold(1, length, d))  # copy p: shifted by (p - 4) * d
                torch.bmm(self.weights[j, s].view(groups, k, KERNEL_LENGTH), shifted, out=out)  # (H, K, L)
                per_dilation.append(torch.cat([_compete(out, hits, True), _compete(out, hits, False)]))
            feats.append(torch.stack(per_dilation))
        # aeon's order: dilation, input, (max, min), group, kernel
        return torch.stack(feats, 1).reshape(-1)

    # ------------------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        x: Any,
        lengths: Any = None,
        num_kernels: int = 8,
        num_groups: int = 64,
        max_channels: int = 8,
        seed: int | None = 0,
    ) -> Hydra:
        """Draw Hydra's kernels and channel subsets for series x (N, C, T) (aeon's layout), as aeon does.

        Only the shape of x is used: the dilations follow its length (the longest case's, with
        `lengths`), the channel subsets its channel count. `num_groups` is split between the series
        and its first difference (one group: the series only).
        """
        x, lengths_t = _as_series(x, lengths)
        k = check_int(num_kernels, "num_kernels", 1, MAX_KERNELS)
        g = check_int(num_groups, "num_groups", 1, MAX_KERNELS)
        per = int(np.clip(x.shape[1] // 2, 2, check_int(max_channels, "max_channels", 1, 1_000_000)))
        steps = x.shape[2] if lengths_t is None else int(lengths_t.max())
        dilations = hydra_dilations(steps)
        inputs = min(2, g)
        groups = g // inputs
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        w = torch.randn(len(dilations), inputs, groups * k, KERNEL_LENGTH, generator=gen)
        w = w - w.mean(-1, keepdim=True)
        w = w / w.abs().sum(-1, keepdim=True)
        idx = torch.randint(0, x.shape[1], (len(dilations), inputs, groups, per), generator=gen)
        return cls(x.shape[1], dilations, w, idx, num_kernels=k)

    @classmethod
    def from_aeon(cls, fitted: Any) -> Hydra:
        """The module of a fitted aeon `HydraTransformer` (its kernels and channel subsets), giving its features."""
        inner = getattr(fitted, "_hydra", None)
        if inner is None or not hasattr(inner, "W"):
            raise ValueError(f"fitted: expected a fitted aeon HydraTransformer, got {type(fitted).__name__}")
        meta = getattr(fitted, "metadata_", {}) or {}
        channels = int(meta.get("n_channels", int(max(int(i.max()) for i in inner.idx)) + 1))
        w = inner.W.detach().float()  # (D, S, H * K, 1, 9)
        idx = torch.stack([torch.as_tensor(i) for i in inner.idx])  # (D, S, H, channels per group)
        if channels == 1:
            idx = torch.zeros_like(idx)
        return cls(channels, inner.dilations.numpy(), w[:, :, :, 0], idx, num_kernels=int(inner.k))

    def extra_repr(self) -> str:
        d, s, hk, _ = self.weights.shape
        return (
            f"in_channels={self.in_channels}, num_kernels={self.num_kernels}, groups={s * hk // self.num_kernels}, "
            f"dilations={d}, num_features={self.num_features}"
        )


def _compete(out: torch.Tensor, hits: torch.Tensor, largest: bool) -> torch.Tensor:
    """Per group and step of out (H, K, L), the winning kernel: (H * K,) sums of its output (largest) or counts.

    The winner is the kernel whose output equals the group's max (min) at that step, found by one
    comparison pass written as floats (`hits`, a buffer shaped as out): on a (32, 8, 8192) block, one
    CPU thread, max with indices took 7.5 ms and argmin 34 ms, this pass with its sums about 3.5 ms. Where kernels tie, the first of them wins (as torch's max/argmin, aeon's code):
    counted exactly on the rare blocks with a tie.
    """
    best = out.amax(1) if largest else out.amin(1)  # (H, L)
    torch.eq(out, best.unsqueeze(1), out=hits)
    counts = hits.sum(-1)  # (H, K): exact in float32 up to 2^24 steps
    groups, k, length = out.shape
    if float(counts.sum(dtype=torch.float64)) != groups * length:  # a tie somewhere: first kernel of the tie
        at = out.argmax(1) if largest else out.argmin(1)
        values = best if largest else torch.ones_like(best)
        return out.new_zeros(groups, k).scatter_add_(1, at, values).reshape(-1)
    if not largest:
        return counts.reshape(-1)
    return torch.bmm(hits, best.unsqueeze(2).to(hits.dtype)).reshape(-1).to(out.dtype)


class SparseScaler(nn.Module):
    """aeon's scaling of Hydra features: sqrt(clip(f, 0)), centred and scaled, zero where sqrt(f) is 0.

    Buffers `mean` and `scale` (the standard deviation plus (fraction of zeros)^4 + 1e-8, per feature),
    fitted with `SparseScaler.fit(features)`.
    """

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, mean: Any, scale: Any) -> None:
        super().__init__()
        m = torch.as_tensor(np.asarray(mean, np.float32) if not isinstance(mean, torch.Tensor) else mean)
        s = torch.as_tensor(np.asarray(scale, np.float32) if not isinstance(scale, torch.Tensor) else scale)
        if m.ndim != 1 or s.shape != m.shape:
            raise ValueError(
                f"mean / scale: expected two equally long vectors, got {tuple(m.shape)} and {tuple(s.shape)}"
            )
        self.register_buffer("mean", m.float().clone())
        self.register_buffer("scale", s.float().clone())

    @classmethod
    def fit(cls, features: Any, exponent: int = 4) -> SparseScaler:
        """Mean and scale of sqrt(clip(features, 0)) over the cases (rows) of `features` (N, F), N >= 1."""
        f = torch.as_tensor(np.asarray(features, np.float32) if not isinstance(features, torch.Tensor) else features)
        if f.ndim != 2 or f.shape[0] < 1:
            raise ValueError(
                f"features: expected a (n_cases, n_features) array with n_cases >= 1, got {tuple(f.shape)}"
            )
        r = f.float().clamp(min=0).sqrt()
        eps = (r == 0).float().mean(0) ** exponent + 1e-8
        std = r.std(0) if r.shape[0] > 1 else torch.zeros_like(r[0])  # aeon's: the sample std (n - 1)
        return cls(r.mean(0), std + eps)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Scaled features (N, F) of Hydra features (N, F)."""
        if features.ndim != 2 or features.shape[1] != self.mean.numel():
            raise ValueError(f"features: expected shape (n_cases, {self.mean.numel()}), got {tuple(features.shape)}")
        r = features.clamp(min=0).sqrt()
        return (r - self.mean) * (r != 0) / self.scale
