"""MiniRocket (Dempster, Schmidt & Webb, KDD 2021, arXiv:2012.08791) as a torch module.

84 fixed kernels of length 9 (weights -1, with 2 at three of the nine taps), each at a set of
dilations, each over a random combination of channels; a feature is the proportion of positive
values (PPV) of one convolution output minus one bias, the biases being quantiles of the outputs
on random training cases. The numbers are aeon's (`aeon...convolution_based.MiniRocket`, itself
adapted from the authors' code): `MiniRocket.from_aeon(fitted)` takes aeon's fitted parameters and
gives aeon's features.

How it runs (`method`): per dilation, the 84 kernels' outputs, either
- "exact": MiniRocket's own algorithm, -x summed over the nine dilated taps, plus 3x at each kernel's
  three taps, summed over its channels (elementwise adds in aeon's order, `rocket_ops.outputs`): in
  float32 aeon's features bit for bit; slower than "conv" on long multichannel series (1.6x on
  8 channels of 8192 steps, docs/rocket.md);
- "conv": per case, one matrix product of the case's nine shifted copies with the 42 kernels that
  use zero padding and one with the other 42 (`rocket_ops.conv_features`): the same sums in another
  order, so an output that ties a bias to within float32 rounding can fall on the other side of it
  (a feature then differs by 1/positions from aeon's); equally long short cases come in blocks, and
  on the CPU blocks run side by side on torch's threads, each on one (`archkit.threads.map_cases`);
then one comparison pass per bias over the outputs, the 42 kernels that use zero padding pooling
all of them, the other 42 only those where the kernel fits inside the series (aeon alternates
padding between kernels and dilations). On whatever device the module sits; the features come out
in aeon's order (dilation, kernel, bias), and a case's features don't depend on the cases it came with.

Unequal lengths: `lengths` (N,) gives each case's valid steps. Steps past a case's length are set to
zero, padded kernels pool over the case's own steps, unpadded kernels over the steps where the
kernel fits inside the case; a case too short for that (length <= 8 * dilation) pools its padded
output instead, so every feature is defined. A padded case gives the features of the same case
unpadded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .rocket_ops import (
    KERNEL_TAPS,
    MAX_FEATURES,
    NUM_KERNELS,
    by_blocks,
    check_int,
    check_method,
    conv_features,
    conv_weights,
    fit_dilations,
    outputs,
    ppv,
    quantiles,
    sum_plan,
    valid_steps,
)

__all__ = ["KERNEL_TAPS", "MAX_FEATURES", "NUM_KERNELS", "MiniRocket", "fit_dilations"]


def _as_series(x: Any, lengths: Any, what: str = "x") -> tuple[torch.Tensor, torch.Tensor | None]:
    """x as a float tensor (N, C, T) and lengths as an int64 tensor (N,) in [1, T], or None."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32) if not isinstance(x, torch.Tensor) else x)
    if x.ndim != 3 or min(x.shape) < 1:
        raise ValueError(
            f"{what}: expected series shaped (n_cases, n_channels, n_timepoints), got shape {tuple(x.shape)}"
        )
    if lengths is None:
        return x, None
    lengths = torch.as_tensor(np.asarray(lengths) if not isinstance(lengths, torch.Tensor) else lengths)
    if lengths.shape != (x.shape[0],) or lengths.is_floating_point():
        raise ValueError(
            f"lengths: expected {x.shape[0]} integer lengths (one per case), got shape {tuple(lengths.shape)}"
            f" of {lengths.dtype}"
        )
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > x.shape[2]):
        raise ValueError(
            f"lengths: expected values in [1, {x.shape[2]}] (the series are {x.shape[2]} steps long), "
            f"got values in [{int(lengths.min())}, {int(lengths.max())}]"
        )
    return x, lengths.to(torch.int64)


class MiniRocket(nn.Module):
    """MiniRocket features of series (N, C, T) -> (N, num_features); fit with `MiniRocket.fit` or `from_aeon`.

    The fitted parameters are buffers (saved in the state dict), named as in aeon: `dilations`,
    `num_features_per_dilation`, `channel_counts` (channels per dilation-kernel combination),
    `channel_indices` (those channels, concatenated) and `biases` (aeon's feature order). `method`
    ("exact" or "conv", see the module docstring) is a setting, like `in_channels`: kept when pickled,
    not in the state dict.
    """

    dilations: torch.Tensor
    num_features_per_dilation: torch.Tensor
    channel_counts: torch.Tensor
    channel_indices: torch.Tensor
    biases: torch.Tensor
    _kernel_order: torch.Tensor
    _sums: torch.Tensor
    _weights: torch.Tensor
    _perm: torch.Tensor
    _grouped_biases: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        dilations: Sequence[int] | np.ndarray,
        num_features_per_dilation: Sequence[int] | np.ndarray,
        channel_counts: Sequence[int] | np.ndarray,
        channel_indices: Sequence[int] | np.ndarray,
        biases: Any,
        method: str = "conv",
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", 1, 1_000_000)
        self.method = check_method(method)
        dil = torch.as_tensor(np.asarray(dilations, dtype=np.int64))
        nfd = torch.as_tensor(np.asarray(num_features_per_dilation, dtype=np.int64))
        counts = torch.as_tensor(np.asarray(channel_counts, dtype=np.int64))
        idx = torch.as_tensor(np.asarray(channel_indices, dtype=np.int64))
        b = torch.as_tensor(np.asarray(biases, dtype=np.float32) if not isinstance(biases, torch.Tensor) else biases)
        if dil.ndim != 1 or nfd.shape != dil.shape or len(dil) == 0 or int(dil.min()) < 1 or int(nfd.min()) < 1:
            raise ValueError(
                f"dilations / num_features_per_dilation: expected two equally long lists of positive ints, "
                f"got shapes {tuple(dil.shape)} and {tuple(nfd.shape)}"
            )
        if counts.shape != (NUM_KERNELS * len(dil),) or int(counts.min()) < 1 or int(counts.sum()) != len(idx):
            raise ValueError(
                f"channel_counts: expected {NUM_KERNELS * len(dil)} positive counts summing to "
                f"len(channel_indices) = {len(idx)}, got shape {tuple(counts.shape)}"
            )
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= self.in_channels):
            raise ValueError(
                f"channel_indices: expected channels in [0, {self.in_channels - 1}], "
                f"got [{int(idx.min())}, {int(idx.max())}]"
            )
        if b.shape != (NUM_KERNELS * int(nfd.sum()),):
            raise ValueError(f"biases: expected {NUM_KERNELS * int(nfd.sum())} values, got shape {tuple(b.shape)}")
        self.register_buffer("dilations", dil)
        self.register_buffer("num_features_per_dilation", nfd)
        self.register_buffer("channel_counts", counts)
        self.register_buffer("channel_indices", idx)
        self.register_buffer("biases", b.clone())
        self._derive()

    def _derive(self) -> None:
        """Build the buffers forward uses from the fitted ones (again after load_state_dict)."""
        self._plan = [
            (int(d), int(n)) for d, n in zip(self.dilations.tolist(), self.num_features_per_dilation.tolist())
        ]
        order, sums, perm = self._layout()
        dev = self.biases.device
        self.register_buffer("_kernel_order", order.to(dev), persistent=False)  # (D, 84): padded kernels, unpadded
        if self.method == "exact":  # each dilation's sum_plan, flat (_sum_parts)
            self.register_buffer("_sums", sums.to(dev), persistent=False)
        else:  # (D, 84, C, 9), _kernel_order
            self.register_buffer("_weights", sums.to(dev, self.biases.dtype), persistent=False)
        self.register_buffer("_perm", perm.to(dev), persistent=False)  # computed feature order -> aeon's order
        self.register_buffer("_grouped_biases", self._group_biases(), persistent=False)

    @property
    def num_features(self) -> int:
        """Number of output features (84 x sum of features per dilation)."""
        return int(self.biases.numel())

    def _layout(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        starts = np.concatenate([[0], np.cumsum(self.channel_counts.cpu().numpy())])
        idx = self.channel_indices.cpu().numpy()
        self._sum_parts: list[list[tuple[int, tuple[int, ...]]]] = []  # (offset, shape) of each plan tensor
        self._sum_bounds: list[list[int]] = []
        orders, perm_parts, sums, offset, at = [], [], [], 0, 0
        for j, (_, nf) in enumerate(self._plan):
            # aeon: kernel k at dilation j pools the padded output when (j + k) is even, else the unpadded one
            order = [k for k in range(NUM_KERNELS) if (j + k) % 2 == 0] + [k for k in range(NUM_KERNELS) if (j + k) % 2]
            combs = [idx[starts[j * NUM_KERNELS + k] : starts[j * NUM_KERNELS + k + 1]] for k in order]
            orders.append(torch.tensor(order))
            # computed position of (kernel order[r], bias f) is offset + r * nf + f; aeon's is offset + k * nf + f
            aeon_pos = (torch.tensor(order)[:, None] * nf + torch.arange(nf)[None, :]).reshape(-1) + offset
            perm_parts.append(aeon_pos)
            offset += NUM_KERNELS * nf
            if self.method == "conv":
                sums.append(conv_weights(self.in_channels, [KERNEL_TAPS[k] for k in order], combs))
                continue
            plan, bounds = sum_plan([KERNEL_TAPS[k] for k in order], combs)
            self._sum_bounds.append(bounds)
            self._sum_parts.append([])
            for part in plan:
                self._sum_parts[-1].append((at, tuple(part.shape)))
                sums.append(part.reshape(-1))
                at += part.numel()
        computed_at = torch.empty(offset, dtype=torch.int64)
        computed_at[torch.cat(perm_parts)] = torch.arange(offset)
        return torch.stack(orders), torch.stack(sums) if self.method == "conv" else torch.cat(sums), computed_at

    def _group_biases(self) -> torch.Tensor:
        parts, offset = [], 0
        for j, (_, nf) in enumerate(self._plan):
            block = self.biases[offset : offset + NUM_KERNELS * nf].view(NUM_KERNELS, nf)
            parts.append(block[self._kernel_order[j].to(block.device)].reshape(-1))
            offset += NUM_KERNELS * nf
        return torch.cat(parts)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Load fitted parameters (same shapes as this module's); the derived kernels follow the new biases."""
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._derive()
        return result

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "method" not in state:  # pickled before `method` existed: the arithmetic its buffers are for
            state["method"] = "exact" if "_sums" in state.get("_buffers", {}) else "conv"
        super().__setstate__(state)

    # ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Features (N, num_features) of series x (N, C, T); `lengths` (N,) = valid steps per case (None: all T)."""
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x: expected series shaped (n_cases, {self.in_channels}, n_timepoints), got shape {tuple(x.shape)}"
            )
        x = x.to(self.biases.dtype)
        if torch.compiler.is_compiling():  # traced (export): the whole batch at once, masked by `lengths`
            return self._batch(x, lengths)[:, self._perm]
        valid = valid_steps(x, lengths, self.in_channels)

        def block(xb: torch.Tensor) -> torch.Tensor:
            if self.method == "conv":
                return conv_features(xb, self._plan, self._weights, self._grouped_biases)
            return self._batch(xb, None)

        return by_blocks(x, valid, self.num_features, block)[:, self._perm]

    def _batch(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Features of a batch in the computed order, the batch at once (past each case's length: masked)."""
        t = x.shape[2]
        steps = torch.arange(t, device=x.device)
        if lengths is not None:
            lengths = lengths.to(device=x.device, dtype=torch.int64)
            x = x * (steps[None, :] < lengths[:, None]).to(x.dtype)[:, None, :]
        pad = 4 * max(d for d, _ in self._plan)  # zero padding for the widest kernel
        xp = F.pad(x, (pad, pad))
        feats, offset = [], 0
        half = NUM_KERNELS // 2
        for j, (d, nf) in enumerate(self._plan):
            b = self._grouped_biases[offset : offset + NUM_KERNELS * nf].view(NUM_KERNELS, nf)
            offset += NUM_KERNELS * nf
            cropped = lengths is None and t > 8 * d  # pool the unpadded outputs at positions 4d .. t-4d only
            if self.method == "conv":  # only traced: one conv1d per half for the whole batch, a small graph
                w = self._weights[j]
                padded = F.conv1d(x, w[:half], dilation=d, padding=4 * d)
                inner = F.conv1d(x, w[half:], dilation=d, padding=0 if cropped else 4 * d)
            else:
                plan = [self._sums[at : at + math.prod(shape)].view(shape) for at, shape in self._sum_parts[j]]
                out = outputs(xp[..., pad - 4 * d : pad + t + 4 * d], d, plan, self._sum_bounds[j])
                padded, inner = out[:, :half], out[:, half:]
                inner = inner[..., 4 * d : t - 4 * d] if cropped else inner
            if lengths is None:
                feats.append(ppv(padded, b[:half], None, None, t))
            else:
                feats.append(ppv(padded, b[:half], steps, (torch.zeros_like(lengths), lengths), t))
            if cropped:
                feats.append(ppv(inner, b[half:], None, None, t - 8 * d))
            elif lengths is None:  # a series too short for any unpadded position: pool the padded output
                feats.append(ppv(inner, b[half:], None, None, t))
            else:
                fits = lengths > 8 * d
                start = torch.where(fits, torch.full_like(lengths, 4 * d), torch.zeros_like(lengths))
                stop = torch.where(fits, lengths - 4 * d, lengths)
                feats.append(ppv(inner, b[half:], steps, (start, stop), t))
        return torch.cat(feats, 1)

    # ------------------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        x: Any,
        lengths: Any = None,
        num_features: int = 10_000,
        max_dilations_per_kernel: int = 32,
        seed: int | None = 0,
        method: str = "conv",
    ) -> MiniRocket:
        """Fit dilations, channel combinations and biases on series x (N, C, T) (aeon's layout), as aeon does.

        `num_features` is rounded down to a multiple of 84 (at least 84); with `lengths`, the dilations
        are fitted to the longest case and each bias to the valid steps of its random case. `method`:
        how the module computes its outputs ("conv", fast; "exact", aeon's sums).
        """
        x, lengths = _as_series(x, lengths)
        num_features = max(check_int(num_features, "num_features", 1, MAX_FEATURES), NUM_KERNELS)
        max_dil = check_int(max_dilations_per_kernel, "max_dilations_per_kernel", 1, 1024)
        n, c, t = x.shape
        reference = t if lengths is None else int(lengths.max())
        if reference < 9:
            raise ValueError(
                f"x: MiniRocket needs series of at least 9 steps (its kernels are 9 long), "
                f"the longest case has {reference}"
            )
        dilations, nfd = fit_dilations(reference, num_features, max_dil)
        rng = np.random.RandomState(seed)
        n_comb = NUM_KERNELS * len(dilations)
        counts = (2 ** rng.uniform(0, np.log2(min(c, 9) + 1), n_comb)).astype(np.int64)
        indices = np.concatenate([rng.choice(c, k, replace=False) for k in counts])
        zeros = np.zeros(NUM_KERNELS * int(nfd.sum()), np.float32)
        module = cls(c, dilations, nfd, counts, indices, zeros, method=check_method(method))
        # aeon draws each kernel's case from a generator seeded afresh: same seed, same biases as aeon
        cases = (np.random.RandomState(seed) if seed is not None else rng).randint(n, size=n_comb)
        module.biases.copy_(module._fit_biases(x, lengths, cases, quantiles(module.num_features)))
        module._derive()
        return module

    @torch.no_grad()
    def _fit_biases(
        self, x: torch.Tensor, lengths: torch.Tensor | None, cases: np.ndarray, quantiles: np.ndarray
    ) -> torch.Tensor:
        """Quantiles of each kernel's padded output on its random case (valid steps only), aeon's feature order."""
        x = x.to(torch.float64)
        t = x.shape[2]
        valid = np.full(len(x), t) if lengths is None else lengths.numpy()
        out, offset = [], 0
        taps = torch.full((NUM_KERNELS, 1, 9), -1.0, dtype=torch.float64)
        for k, chosen in enumerate(KERNEL_TAPS):
            taps[k, 0, list(chosen)] = 2.0
        starts = np.concatenate([[0], np.cumsum(self.channel_counts.numpy())])
        idx = self.channel_indices.numpy()
        for j, (d, nf) in enumerate(self._plan):
            combs = range(j * NUM_KERNELS, (j + 1) * NUM_KERNELS)
            summed = torch.stack([x[cases[m], idx[starts[m] : starts[m + 1]]].sum(0) for m in combs])  # (84, T)
            conv = F.conv1d(summed[None], taps, dilation=d, padding=4 * d, groups=NUM_KERNELS)[0]  # (84, T)
            steps = torch.as_tensor(valid[cases[list(combs)]], dtype=torch.int64)  # valid steps of each kernel's case
            conv = conv.masked_fill(torch.arange(t)[None, :] >= steps[:, None], float("inf"))
            ordered = conv.sort(dim=1).values
            q = torch.as_tensor(quantiles[offset : offset + NUM_KERNELS * nf], dtype=torch.float64).view(
                NUM_KERNELS, nf
            )
            pos = q * (steps[:, None] - 1).to(torch.float64)
            lo = pos.floor().to(torch.int64)
            hi = torch.minimum(lo + 1, steps[:, None] - 1)
            frac = pos - lo
            a, b = ordered.gather(1, lo), ordered.gather(1, hi)
            out.append((a + frac * (b - a)).reshape(-1))
            offset += NUM_KERNELS * nf
        return torch.cat(out).to(self.biases.dtype)

    @classmethod
    def from_aeon(cls, fitted: Any, method: str = "exact") -> MiniRocket:
        """The module of a fitted `aeon` MiniRocket transformer (its `parameters`), giving the same features.

        `method` "exact" (the default): the same in float32 bit for bit; "conv": faster, equal except at
        outputs that tie a bias to within float32 rounding.
        """
        params = getattr(fitted, "parameters", None)
        if not isinstance(params, tuple) or len(params) != 5:
            raise ValueError(
                f"fitted: expected a fitted aeon MiniRocket (with .parameters), got {type(fitted).__name__}"
            )
        counts, indices, dilations, nfd, biases = params
        meta = getattr(fitted, "metadata_", {}) or {}
        channels = int(meta.get("n_channels", int(np.max(indices)) + 1))
        return cls(channels, dilations, nfd, counts, indices, np.asarray(biases, dtype=np.float32), method=method)

    @classmethod
    def from_state_dict(cls, state: Any, in_channels: int, method: str = "conv") -> MiniRocket:
        """The module whose fitted buffers are `state` (the `state_dict()` of a MiniRocket over `in_channels`).

        The state dict holds the fitted parameters only: pass the `method` to compute with (as `in_channels`).
        """
        names = ("dilations", "num_features_per_dilation", "channel_counts", "channel_indices", "biases")
        missing = [k for k in names if k not in state]
        if missing:
            raise ValueError(f"state: not a MiniRocket state dict, missing {missing}")
        dil, nfd, counts, idx, biases = (state[k].cpu().numpy() for k in names)
        return cls(in_channels, dil, nfd, counts, idx, biases, method=method)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_features={self.num_features}, dilations={len(self._plan)}, method={self.method!r}"
