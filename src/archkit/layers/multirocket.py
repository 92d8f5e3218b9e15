"""MultiRocket (Tan, Dempster, Bergmeir & Webb, DMKD 2022, arXiv:2102.00457) as a torch module.

MiniRocket's 84 kernels over two representations of each case, the series and its first difference
(x[t + 1] - x[t]), each with its own dilations and biases (fitted as MiniRocket's, to the series
and to the difference); four pooled values per convolution output minus one bias instead of one:
- PPV, the proportion of positive values;
- LSPV, the longest stretch of positive values, as aeon counts it: the longest gap between
  consecutive steps where the output is below the bias, the first step and the last counting as such;
- MPV, the mean of the positive values, as aeon sums them: of output + bias (0 when none is positive);
- MIPV, the mean of the indices of the positive values (-1 when none is positive).
The numbers are aeon's (`aeon...convolution_based.MultiRocket`, adapted from the authors' code):
`MultiRocket.from_aeon(fitted)` gives aeon's features, in aeon's order: for the series then the
difference, the PPVs of all (dilation, kernel, bias), then the LSPVs, the MPVs, the MIPVs. As in
aeon, the difference is computed with the series' channel combinations (its biases were fitted with
combinations of its own), its kernels' four taps before the centre read one step later than
MiniRocket's (aeon places them by the series' length, one step longer than the difference; its
biases were fitted with MiniRocket's kernels), and the number of features is a multiple of 8 x 84.

Each representation is a `MiniRocket` module (its fitted buffers, its `method`): "conv" (per-case
matrix products, `rocket_ops.conv_features`) or "exact" (aeon's sums in aeon's order,
`rocket_ops.outputs`); only the pooling differs. Unequal lengths as MiniRocket's: cases come in
blocks of equally long cases cut to their length, so a padded case gives its unpadded features and a
case's features don't depend on its batch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .rocket import MiniRocket, _as_series
from .rocket_ops import (
    MAX_FEATURES,
    NUM_KERNELS,
    by_blocks,
    check_int,
    conv_features,
    fit_dilations,
    outputs,
    refuse_trace,
    valid_steps,
)
from .rocket_ops import quantiles as bias_quantiles

__all__ = ["POOLS", "MultiRocket", "pool_outputs"]

POOLS = ("ppv", "lspv", "mpv", "mipv")  # the pooled values per (kernel, dilation, bias), in aeon's order
PER_KERNEL = 2 * len(POOLS)  # features per kernel and bias: two representations, four pooled values


def pool_outputs(out: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
    """MultiRocket's pooled values of outputs (N, K, L) minus biases (K, nf) -> (N, K * nf * 4), POOLS last.

    One pass per bias column over buffers reused across columns. The count of positive values and
    the sum of their indices come from sums of 1, step // base and step % base where positive:
    integers small enough to be exact in float32 in any order (float64 past 2^24). LSPV: with Q(j) the
    last step <= j below the bias (0 when none), the longest stretch is max over j >= 1 of
    j - Q(j - 1) (0 for a single step), aeon's count exactly. MPV sums the values output + bias, each
    rounded in the outputs' precision, in float64, as aeon sums them.
    """
    n, k, length = out.shape
    nf = biases.shape[1]
    flat = out.reshape(n * k, length)
    base = math.isqrt(max(length - 1, 0)) + 1
    exact = length * base < 1 << 24 and length * ((length - 1) // base + 1) < 1 << 24
    dtype = out.dtype if exact else torch.float64
    steps = torch.arange(length, device=out.device, dtype=out.dtype)
    index = torch.arange(length, device=out.device)
    weights = torch.stack([torch.ones(length), index // base, index % base]).to(out.device, dtype)
    each = biases.repeat(n, 1)  # (N * K, nf)
    above, below, spare = torch.empty_like(flat), torch.empty_like(flat), torch.empty_like(flat)
    sums = flat.new_empty(n * k, nf, 3, dtype=dtype)
    lspv = flat.new_zeros(n * k, nf)
    total = flat.new_empty(n * k, nf, dtype=torch.float64)
    for f in range(nf):  # a column at a time: 3x faster than all columns in one broadcast (cache)
        b = each[:, f, None]
        torch.gt(flat, b, out=above)  # 0. / 1. (vectorizes, as count_above's comparisons)
        if exact:  # 4x faster than one matrix product (L, 3): a skinny product is slow
            sums[:, f, 0] = above.sum(-1)
            for r in (1, 2):
                sums[:, f, r] = torch.mul(above, weights[r], out=spare).sum(-1)
        else:
            torch.mm(above.to(dtype), weights.T, out=sums[:, f])
        if length > 1:
            last = torch.lt(flat, b, out=below).mul_(steps).cummax(-1).values
            torch.amax(torch.sub(steps[1:], last[:, :-1], out=spare[:, :-1]), -1, out=lspv[:, f])
        total[:, f] = torch.add(flat, b, out=spare).mul_(above).sum(-1, dtype=torch.float64)
    count = sums[..., 0].to(torch.float64)
    per = count.clamp(min=1)
    res = torch.empty(n * k, nf, len(POOLS), dtype=torch.float32, device=out.device)
    res[..., 0] = count / length
    res[..., 1] = lspv.clamp(min=0)
    res[..., 2] = torch.where(count > 0, total / per, 0.0)
    indices = sums[..., 1].to(torch.float64) * base + sums[..., 2].to(torch.float64)
    res[..., 3] = torch.where(count > 0, indices / per, -1.0)
    return res.view(n, -1)


def _exact_pooled(rocket: MiniRocket, x: torch.Tensor, left_shift: int) -> torch.Tensor:
    """Pooled values of a block of equally long cases x (B, C, L) through `outputs` (method "exact"), computed order."""
    t, half = x.shape[2], NUM_KERNELS // 2
    pad = 4 * max(d for d, _ in rocket._plan)
    xp = F.pad(x, (pad, pad))
    feats, offset = [], 0
    for j, (d, nf) in enumerate(rocket._plan):
        b = rocket._grouped_biases[offset : offset + NUM_KERNELS * nf].view(NUM_KERNELS, nf)
        offset += NUM_KERNELS * nf
        plan = [rocket._sums[at : at + math.prod(shape)].view(shape) for at, shape in rocket._sum_parts[j]]
        out = outputs(xp[..., pad - 4 * d : pad + t + 4 * d], d, plan, rocket._sum_bounds[j], left_shift)
        inner = out[:, half:, 4 * d : t - 4 * d] if t > 8 * d else out[:, half:]  # too short: the padded output
        feats += [pool_outputs(out[:, :half], b[:half]), pool_outputs(inner, b[half:])]
    return torch.cat(feats, 1)


def _pooled(rocket: MiniRocket, x: torch.Tensor, left_shift: int = 0) -> torch.Tensor:
    """MultiRocket's features (B, 4 * F) of one representation x (B, C, L) (equally long cases), aeon's order."""
    if rocket.method == "conv":
        raw = conv_features(x, rocket._plan, rocket._weights, rocket._grouped_biases, pool_outputs, left_shift)
    else:
        raw = _exact_pooled(rocket, x, left_shift)
    per_bias = raw.view(len(x), -1, len(POOLS))[:, rocket._perm]  # (B, F, 4): aeon's (dilation, kernel, bias)
    return per_bias.transpose(1, 2).reshape(len(x), -1)


def _difference(x: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """First differences (N, C, T - 1), zero past each case's (length - 1) steps."""
    dx = x.diff(dim=-1)
    if lengths is None:
        return dx, None
    valid = lengths - 1
    return dx * (torch.arange(dx.shape[2])[None, :] < valid[:, None]).to(dx.dtype)[:, None, :], valid


def _with_series_combinations(series: MiniRocket, difference: MiniRocket) -> MiniRocket:
    """`difference` computed with `series`' channel combinations, as aeon's transform takes them (its own when too few)."""
    needed = NUM_KERNELS * len(difference.dilations)
    source = difference if len(series.channel_counts) < needed else series
    counts = source.channel_counts[:needed].numpy()
    indices = source.channel_indices[: int(counts.sum())].numpy()
    return MiniRocket(
        series.in_channels,
        difference.dilations.numpy(),
        difference.num_features_per_dilation.numpy(),
        counts,
        indices,
        difference.biases,
        method=difference.method,
    )


class MultiRocket(nn.Module):
    """MultiRocket features of series (N, C, T) -> (N, num_features); fit with `MultiRocket.fit` or `from_aeon`.

    `series` and `difference` are the two representations' MiniRocket modules (their fitted buffers
    in the state dict, under those names); the difference's channel combinations are the series'.
    """

    def __init__(self, series: MiniRocket, difference: MiniRocket) -> None:
        super().__init__()
        for name, part in (("series", series), ("difference", difference)):
            if not isinstance(part, MiniRocket):
                raise ValueError(f"{name}: expected a MiniRocket module, got {type(part).__name__}")
        if series.in_channels != difference.in_channels or series.method != difference.method:
            raise ValueError(
                f"difference: expected the series' in_channels {series.in_channels} and method {series.method!r}, "
                f"got {difference.in_channels} and {difference.method!r}"
            )
        self.series = series
        self.difference = difference

    @property
    def in_channels(self) -> int:
        """Number of input channels."""
        return self.series.in_channels

    @property
    def method(self) -> str:
        """How the convolution outputs are computed ("conv" or "exact")."""
        return self.series.method

    @property
    def num_features(self) -> int:
        """Number of output features (4 pooled values x the two representations' biases)."""
        return len(POOLS) * (self.series.num_features + self.difference.num_features)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Load fitted parameters (same shapes as this module's); the derived kernels follow the new biases."""
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.series._derive()
        self.difference._derive()
        return result

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Features (N, num_features) of series x (N, C, T); `lengths` (N,) = valid steps per case (None: all T)."""
        refuse_trace("MultiRocket")
        valid = valid_steps(x, lengths, self.in_channels, min_steps=2, why=" (a first difference)")
        x = x.to(self.series.biases.dtype)

        def block(xb: torch.Tensor) -> torch.Tensor:
            return torch.cat([_pooled(self.series, xb), _pooled(self.difference, xb.diff(dim=-1), 1)], 1)

        return by_blocks(x, valid, self.num_features, block)

    # ------------------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        x: Any,
        lengths: Any = None,
        num_features: int = 50_000,
        max_dilations_per_kernel: int = 32,
        seed: int | None = 0,
        method: str = "conv",
    ) -> MultiRocket:
        """Fit both representations' dilations, channel combinations and biases on series x (N, C, T), as aeon does.

        `num_features` is rounded down to a multiple of 8 x 84 (at least 672; aeon's default n_kernels
        6,250 is num_features 50,000); with `lengths`, the dilations are fitted to the longest case
        and each bias to the valid steps of its random case. `method` as MiniRocket's.
        """
        x, lengths = _as_series(x, lengths)
        num_features = check_int(num_features, "num_features", 1, PER_KERNEL * MAX_FEATURES)
        per_kernel = max(num_features // (PER_KERNEL * NUM_KERNELS), 1)
        max_dil = check_int(max_dilations_per_kernel, "max_dilations_per_kernel", 1, 1024)
        n, c, t = x.shape
        reference = t if lengths is None else int(lengths.max())
        if reference < 10:
            raise ValueError(
                f"x: MultiRocket needs series of at least 10 steps (kernels 9 long over the first difference), "
                f"the longest case has {reference}"
            )
        x = x.to(torch.float32)  # aeon fits on float32 series (and their float32 differences)
        if lengths is not None:  # zero past each case's end, as the kernels' padding
            x = x * (torch.arange(t)[None, :] < lengths[:, None]).to(x.dtype)[:, None, :]
        rng = np.random.RandomState(seed)
        parts = []
        for series, valid, steps in ((x, lengths, reference), (*_difference(x, lengths), reference - 1)):
            dilations, nfd = fit_dilations(steps, NUM_KERNELS * per_kernel, max_dil)
            n_comb = NUM_KERNELS * len(dilations)
            if c > 1:  # aeon draws no combinations for univariate series
                counts = (2 ** rng.uniform(0, np.log2(min(c, 9) + 1), n_comb)).astype(np.int64)
                indices = np.concatenate([rng.choice(c, k, replace=False) for k in counts])
            else:
                counts, indices = np.ones(n_comb, np.int64), np.zeros(n_comb, np.int64)
            zeros = np.zeros(NUM_KERNELS * int(nfd.sum()), np.float32)
            part = MiniRocket(c, dilations, nfd, counts, indices, zeros, method=method)
            # aeon draws each kernel's case from a generator seeded afresh, for either representation
            cases = (np.random.RandomState(seed) if seed is not None else rng).randint(n, size=n_comb)
            part.biases.copy_(part._fit_biases(series, valid, cases, bias_quantiles(part.num_features)))
            parts.append(part)
        parts[0]._derive()
        return cls(parts[0], _with_series_combinations(*parts))

    @classmethod
    def from_aeon(cls, fitted: Any, method: str = "exact") -> MultiRocket:
        """The module of a fitted `aeon` MultiRocket transformer (`parameter`, `parameter1`), giving its features.

        `method` "exact" (the default): the outputs in aeon's float32 sums; "conv": faster, equal except
        at outputs that tie a bias to within float32 rounding.
        """
        params: list[Any] = [getattr(fitted, "parameter", None), getattr(fitted, "parameter1", None)]
        if not all(isinstance(p, tuple) and len(p) in (3, 5) for p in params):
            raise ValueError(
                f"fitted: expected a fitted aeon MultiRocket (with .parameter, .parameter1), got {type(fitted).__name__}"
            )
        if getattr(fitted, "normalise", False) or getattr(fitted, "n_features_per_kernel", 4) != len(POOLS):
            raise ValueError(
                f"fitted: expected aeon's MultiRocket with normalise=False and n_features_per_kernel=4, got "
                f"normalise={fitted.normalise!r}, n_features_per_kernel={fitted.n_features_per_kernel!r}"
            )
        parts = []
        for p in params:
            if len(p) == 3:  # univariate: every combination is channel 0
                dilations, nfd, biases = p
                counts, indices, c = np.ones(NUM_KERNELS * len(dilations)), np.zeros(NUM_KERNELS * len(dilations)), 1
            else:
                counts, indices, dilations, nfd, biases = p
                meta = getattr(fitted, "metadata_", {}) or {}
                c = int(meta.get("n_channels", int(np.max(indices)) + 1))
            parts.append(MiniRocket(c, dilations, nfd, counts, indices, np.asarray(biases, np.float32), method=method))
        return cls(parts[0], _with_series_combinations(*parts))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_features={self.num_features}, method={self.method!r}"
