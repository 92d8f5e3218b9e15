"""Input feature maps (priors) for function approximation: sin/cos, powers, random Fourier features.

Each map is an nn.Module that reads chosen input columns of a (N, D) tensor and returns (N, F)
features, with `out_features(in_dim)` telling F up front. `FeatureStack` concatenates several maps
and (by default) the raw inputs, so a prior adds knowledge without hiding the original variables.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

Columns = Sequence[int] | None


def _check_columns(columns: Columns, name: str) -> list[int] | None:
    if columns is None:
        return None
    cols = [int(c) for c in columns]
    if not cols or any(c < 0 for c in cols):
        raise ValueError(f"{name}: columns must be a non-empty list of input indices >= 0, got {list(columns)}")
    return cols


class _ColumnMap(nn.Module):
    """Shared column selection: `columns=None` means every input."""

    def __init__(self, columns: Columns = None) -> None:
        super().__init__()
        self.columns = _check_columns(columns, type(self).__name__)

    def select(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"{type(self).__name__}: expected inputs of shape (N, D), got {tuple(x.shape)}")
        if self.columns is None:
            return x
        if max(self.columns) >= x.shape[1]:
            raise ValueError(f"{type(self).__name__}: columns {self.columns} out of range for {x.shape[1]} inputs")
        return x[:, self.columns]

    def num_columns(self, in_dim: int) -> int:
        if self.columns is not None and max(self.columns) >= in_dim:
            raise ValueError(f"{type(self).__name__}: columns {self.columns} out of range for {in_dim} inputs")
        return in_dim if self.columns is None else len(self.columns)

    def extra_repr(self) -> str:
        return f"columns={self.columns}"


class Identity(_ColumnMap):
    """The chosen raw inputs, unchanged (exported as IdentityFeatures too; not nn.Identity)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.select(x)

    def out_features(self, in_dim: int) -> int:
        return self.num_columns(in_dim)


IdentityFeatures = Identity


class Sinusoidal(_ColumnMap):
    """sin(f*x) and cos(f*x) of the chosen inputs for each frequency f (fixed or learned)."""

    def __init__(self, frequencies: Sequence[float] = (1.0,), learnable: bool = False, columns: Columns = None) -> None:
        super().__init__(columns)
        freqs = torch.as_tensor([float(f) for f in frequencies], dtype=torch.float32)
        if freqs.numel() == 0:
            raise ValueError("Sinusoidal: frequencies must not be empty")
        if learnable:
            self.frequencies = nn.Parameter(freqs)
        else:
            self.register_buffer("frequencies", freqs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.select(x).unsqueeze(-1) * self.frequencies.to(x.dtype)  # (N, C, K)
        return torch.cat([torch.sin(z), torch.cos(z)], dim=-1).flatten(1)

    def out_features(self, in_dim: int) -> int:
        return 2 * self.frequencies.numel() * self.num_columns(in_dim)

    def extra_repr(self) -> str:
        return f"frequencies={self.frequencies.tolist()}, learnable={isinstance(self.frequencies, nn.Parameter)}, {super().extra_repr()}"


class Polynomial(_ColumnMap):
    """Powers x, x^2, ..., x^degree of each chosen input (no cross terms: the MLP adds those)."""

    def __init__(self, degree: int, columns: Columns = None) -> None:
        super().__init__(columns)
        if int(degree) < 1:
            raise ValueError(f"Polynomial: degree must be >= 1, got {degree}")
        self.degree = int(degree)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.select(x)
        return torch.cat([z**p for p in range(1, self.degree + 1)], dim=1)

    def out_features(self, in_dim: int) -> int:
        return self.degree * self.num_columns(in_dim)

    def extra_repr(self) -> str:
        return f"degree={self.degree}, {super().extra_repr()}"


class RandomFourier(_ColumnMap):
    """Gaussian random Fourier features sin/cos(2*pi*B*x), B ~ N(0, scale^2) (Tancik et al. 2020).

    Inputs are first standardized with `shift`/`spread` buffers (set by `adapt(x)` from training
    data), so `scale` is in cycles per standard deviation whatever the units of the data.
    """

    B: torch.Tensor
    shift: torch.Tensor
    spread: torch.Tensor

    def __init__(
        self, num_features: int, scale: float = 1.0, columns: Columns = None, seed: int = 0, in_dim: int | None = None
    ) -> None:
        super().__init__(columns)
        if int(num_features) < 1 or float(scale) <= 0:
            raise ValueError(f"RandomFourier: need num_features >= 1 and scale > 0, got {num_features}, {scale}")
        self.num_features, self.scale, self.seed = int(num_features), float(scale), int(seed)
        self.register_buffer("B", torch.empty(0))  # (num_features, C), drawn once the input width is known
        self.register_buffer("shift", torch.zeros(0))
        self.register_buffer("spread", torch.ones(0))
        if in_dim is not None:  # size now so state_dict shapes are known before the first forward
            self._ensure(self.num_columns(in_dim))

    def _ensure(self, c: int) -> None:
        if self.B.shape != (self.num_features, c):
            gen = torch.Generator().manual_seed(self.seed)
            self.B = torch.randn(self.num_features, c, generator=gen) * self.scale
            self.shift, self.spread = torch.zeros(c), torch.ones(c)

    @torch.no_grad()
    def adapt(self, x: torch.Tensor) -> None:
        """Standardize the chosen columns with statistics of training inputs `x`."""
        z = self.select(x).float()
        self._ensure(z.shape[1])
        self.shift = z.mean(0)
        self.spread = z.std(0).clamp_min(1e-12) if len(z) > 1 else torch.ones(z.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.select(x)
        self._ensure(z.shape[1])
        z = (z - self.shift.to(z)) / self.spread.to(z)
        proj = 2 * math.pi * z @ self.B.to(z).T
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=1)

    def out_features(self, in_dim: int) -> int:
        self.num_columns(in_dim)
        return 2 * self.num_features

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # B/shift/spread are sized lazily; take the checkpoint's shapes before the default copy.
        for name in ("B", "shift", "spread"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, scale={self.scale}, seed={self.seed}, {super().extra_repr()}"


class FeatureStack(nn.Module):
    """Concatenation of several feature maps, optionally after the raw inputs (`keep_input=True`)."""

    def __init__(self, maps: Sequence[nn.Module] = (), keep_input: bool = True) -> None:
        super().__init__()
        if not keep_input and not maps:
            raise ValueError("FeatureStack: with keep_input=False at least one feature map is needed")
        self.keep_input = keep_input
        self.maps = nn.ModuleList(maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"FeatureStack: expected inputs of shape (N, D), got {tuple(x.shape)}")
        parts = ([x] if self.keep_input else []) + [m(x) for m in self.maps]
        return torch.cat(parts, dim=1)

    def out_features(self, in_dim: int) -> int:
        total = in_dim if self.keep_input else 0
        for m in self.maps:
            width = getattr(m, "out_features", None)
            if not callable(width):
                raise TypeError(f"maps: {type(m).__name__} has no out_features(in_dim) method")
            total += int(width(in_dim))
        return total

    @torch.no_grad()
    def adapt(self, x: torch.Tensor) -> None:
        """Let data-dependent maps (RandomFourier) see the training inputs once."""
        for m in self.maps:
            adapt = getattr(m, "adapt", None)
            if callable(adapt):
                adapt(x)


Concat = FeatureStack

FEATURE_CHOICES = (
    "identity",
    "sin",
    "sin@F1,F2,...",
    "learnsin<K>",
    "poly<D>",
    "fourier<N>",
    "fourier<N>@SCALE",
    "(any of these)+':COLS' e.g. 'sin:x' or 'poly3:0,2'",
)
# Largest sizes a spec string may ask for: past them the least-squares readout alone needs gigabytes.
MAX_FOURIER = 2048  # random Fourier features (each gives a sin and a cos)
MAX_DEGREE = 16  # polynomial degree
MAX_HARMONICS = 64  # learnsin<K> harmonics, and frequencies listed in sin@F1,F2,...
MAX_FREQUENCY = 1e6  # |frequency| and Fourier scale


def _check_number(value: float, what: str, positive: bool = False) -> float:
    if not math.isfinite(value) or abs(value) > MAX_FREQUENCY or (positive and value <= 0):
        bound = f"in (0, {MAX_FREQUENCY:g}]" if positive else f"finite with |value| <= {MAX_FREQUENCY:g}"
        raise ValueError(f"{what}: expected a number {bound}, got {value}")
    return value


def _check_count(value: int, what: str, limit: int) -> int:
    if not 1 <= value <= limit:
        raise ValueError(f"{what}: expected 1 to {limit}, got {value}")
    return value


_SPEC = re.compile(r"^(?P<name>[a-z]+)(?P<num>\d+)?(?:@(?P<arg>[^:]+))?(?::(?P<cols>.+))?$")


def _parse_columns(text: str | None, names: Sequence[str] | None, spec: str) -> list[int] | None:
    if text is None:
        return None
    cols = []
    for tok in (t.strip() for t in text.split(",")):
        if tok.isdigit():
            cols.append(int(tok))
        elif names is not None and tok in names:
            cols.append(list(names).index(tok))
        else:
            known = list(names) if names is not None else "indices 0..D-1"
            raise ValueError(f"features: column {tok!r} in {spec!r} is not an input; expected one of {known}")
    return cols


def create_feature(
    spec: str, input_names: Sequence[str] | None = None, seed: int = 0, in_dim: int | None = None
) -> nn.Module:
    """Build one feature map from a string such as "sin", "sin@1,2:x", "learnsin4", "poly3", "fourier64@0.5"."""
    if not isinstance(spec, str):
        raise TypeError(f"features: expected a spec string, got {type(spec).__name__}")
    m = _SPEC.match(spec.strip().lower())
    if m is None:
        raise ValueError(f"features: cannot parse {spec!r}; expected one of {list(FEATURE_CHOICES)}")
    name, num, arg = m["name"], m["num"], m["arg"]
    cols = _parse_columns(m["cols"], input_names, spec)
    try:
        if name == "identity" and num is None and arg is None:
            return Identity(cols)
        if name == "sin" and num is None:
            freqs = [_check_number(float(f), "frequency") for f in arg.split(",")] if arg else [1.0]
            _check_count(len(freqs), "frequencies", MAX_HARMONICS)
            return Sinusoidal(freqs, learnable=False, columns=cols)
        if name == "learnsin" and arg is None:
            k = _check_count(int(num or 1), "harmonics", MAX_HARMONICS)
            return Sinusoidal([float(i) for i in range(1, k + 1)], learnable=True, columns=cols)
        if name == "poly" and num is not None and arg is None:
            return Polynomial(_check_count(int(num), "degree", MAX_DEGREE), columns=cols)
        if name == "fourier" and num is not None:
            n = _check_count(int(num), "random Fourier features", MAX_FOURIER)
            scale = _check_number(float(arg), "scale", positive=True) if arg else 1.0
            return RandomFourier(n, scale, columns=cols, seed=seed, in_dim=in_dim)
    except ValueError as e:
        raise ValueError(f"features: bad spec {spec!r}: {e}") from None
    raise ValueError(f"features: unknown spec {spec!r}; expected one of {list(FEATURE_CHOICES)}")


def create_features(
    spec: str | Sequence[str] | None,
    input_names: Sequence[str] | None = None,
    keep_input: bool = True,
    seed: int = 0,
    in_dim: int | None = None,
) -> FeatureStack:
    """Build a FeatureStack from spec strings ("sin", "poly3", "fourier64", comma-free list or '+'-joined)."""
    if spec is None:
        specs: list[str] = []
    elif isinstance(spec, str):
        specs = [s for s in spec.split("+") if s.strip()]
    else:
        specs = [str(s) for s in spec]
    maps = [create_feature(s, input_names, seed + i, in_dim) for i, s in enumerate(specs)]
    if keep_input:  # a plain "identity" would only duplicate the raw inputs already kept
        maps = [m for m in maps if not (isinstance(m, Identity) and m.columns is None)]
    return FeatureStack(maps, keep_input=keep_input)
