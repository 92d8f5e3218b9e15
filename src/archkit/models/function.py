"""FunctionApproximator: an MLP for y = f(x) from samples, with input priors and a known trust region.

    x (raw units) -> feature maps (raw inputs + priors such as sin/cos, powers, Fourier features)
      -> standardize features -> MLP  +  linear skip  -> de-standardize -> y (raw units)

The linear skip path lets a prior that explains f exactly (sin(x) + y from [x, y, sin x, cos x])
be read out linearly, so it also holds outside the data; the MLP learns what is left. All
statistics (feature/target mean and std, per-input training bounds) are buffers, so they are
saved in model.safetensors with the weights. `predict` warns (or raises with strict=True) when
asked about inputs outside the training bounds: no network extrapolates reliably.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn

from ..layers import create_act
from ..layers.features import create_features
from ..utils.modules import param_dtype_device

ACTIVATIONS = ("tanh", "relu", "selu", "gelu", "silu")
FIT_MOVED = (
    "FunctionApproximator.fit moved: use archkit.train.fit_function(model, X, y, FunctionFitConfig(...)) "
    "or the scikit-learn estimator archkit.FunctionRegressor"
)


class DomainWarning(UserWarning):
    """Inputs lie outside the region the model was trained on."""


class DomainError(ValueError):
    """Inputs lie outside the training region and strict=True was asked for."""


@dataclass
class FunctionApproximatorConfig:
    """Architecture of a FunctionApproximator; saved as config.json beside the weights."""

    in_dim: int
    out_dim: int = 1
    hidden: int = 64
    layers: int = 3  # hidden layers of the MLP (0: features + linear readout only)
    activation: str = "tanh"
    features: list[str] = field(default_factory=list)  # spec strings, e.g. ["sin"], ["poly3"], ["fourier64@0.5"]
    keep_input: bool = True  # the raw inputs always sit next to the prior features
    linear_skip: bool = True  # features -> output linear path (what lets a matching prior extrapolate)
    input_names: list[str] | None = None
    output_names: list[str] | None = None
    seed: int = 0


def _check_config(cfg: FunctionApproximatorConfig) -> None:
    for name in ("in_dim", "out_dim", "hidden"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if not isinstance(cfg.layers, int) or cfg.layers < 0:
        raise ValueError(f"layers: expected an int >= 0, got {cfg.layers!r}")
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"activation: unknown name {cfg.activation!r}; expected one of {list(ACTIVATIONS)}")
    for name, dim in (("input_names", cfg.in_dim), ("output_names", cfg.out_dim)):
        names = getattr(cfg, name)
        if names is not None and len(names) != dim:
            raise ValueError(f"{name}: expected {dim} names, got {list(names)}")
    if cfg.layers == 0 and not cfg.linear_skip:
        raise ValueError("layers=0 with linear_skip=False leaves no path from features to the output")


class FunctionApproximator(nn.Module):
    """MLP regressor on raw-unit inputs with prior features, stored standardization and a training domain."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    target_mean: torch.Tensor
    target_std: torch.Tensor
    domain_min: torch.Tensor
    domain_max: torch.Tensor

    def __init__(self, config: FunctionApproximatorConfig) -> None:
        super().__init__()
        _check_config(config)
        self.config = config
        torch.manual_seed(config.seed)
        self.features = create_features(
            config.features, config.input_names, config.keep_input, seed=config.seed, in_dim=config.in_dim
        )
        n_feat = self.features.out_features(config.in_dim)
        self.num_features = n_feat
        body: list[nn.Module] = []
        width = n_feat
        for _ in range(config.layers):
            body += [nn.Linear(width, config.hidden), create_act(config.activation)]
            width = config.hidden
        if config.layers:
            head = nn.Linear(width, config.out_dim)
            # Start the MLP at exactly 0 so the fitted linear readout is the starting model.
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
            body.append(head)
        self.mlp = nn.Sequential(*body) if body else None
        self.skip = nn.Linear(n_feat, config.out_dim) if config.linear_skip else None
        self.register_buffer("feature_mean", torch.zeros(n_feat))
        self.register_buffer("feature_std", torch.ones(n_feat))
        self.register_buffer("target_mean", torch.zeros(config.out_dim))
        self.register_buffer("target_std", torch.ones(config.out_dim))
        # float64 so a point exactly on a training bound compares as inside, not 1 ulp outside.
        self.register_buffer("domain_min", torch.full((config.in_dim,), -torch.inf, dtype=torch.float64))
        self.register_buffer("domain_max", torch.full((config.in_dim,), torch.inf, dtype=torch.float64))

    @property
    def input_names(self) -> list[str]:
        return list(self.config.input_names or [f"x{i}" for i in range(self.config.in_dim)])

    def normalized_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features of raw inputs, standardized with the stored training statistics."""
        return (self.features(x) - self.feature_mean) / self.feature_std

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Output in standardized target units (what training minimizes)."""
        z = self.normalized_features(x)
        outs = [m(z) for m in (self.mlp, self.skip) if m is not None]  # _check_config keeps at least one
        return outs[0] + outs[1] if len(outs) == 2 else outs[0]

    def example_inputs(self, batch_size: int = 2, seed: int = 0, input_shape: Sequence[int] | None = None) -> tuple:
        """Random raw inputs (B, in_dim)."""
        dtype, device = param_dtype_device(self)
        gen = torch.Generator().manual_seed(seed)
        return (torch.randn((batch_size, self.config.in_dim), generator=gen).to(device, dtype),)

    def fit(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Moved: training lives in archkit.train.fit_function (a model holds no training code below its floor)."""
        raise AttributeError(FIT_MOVED, name="fit", obj=self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) raw inputs -> (N, out_dim) raw outputs; no domain check (see predict)."""
        if x.dim() != 2 or x.shape[1] != self.config.in_dim:
            raise ValueError(
                f"FunctionApproximator: expected inputs of shape (N, {self.config.in_dim}), got {tuple(x.shape)}"
            )
        return self.forward_normalized(x) * self.target_std + self.target_mean

    @property
    def is_fitted(self) -> bool:
        return bool(torch.isfinite(self.domain_min).all())

    def domain_report(self, X: Any) -> list[str]:
        """One line per input that has values outside the training bounds (empty list: all inside)."""
        x = torch.as_tensor(np.asarray(X, dtype=np.float64) if not isinstance(X, torch.Tensor) else X).to(torch.float64)
        x = x.reshape(-1, 1) if x.dim() == 1 and self.config.in_dim == 1 else x
        lo, hi = self.domain_min.to(torch.float64), self.domain_max.to(torch.float64)
        below, above = (lo - x).clamp_min(0), (x - hi).clamp_min(0)
        lines = []
        for i, name in enumerate(self.input_names):
            outside = (below[:, i] > 0) | (above[:, i] > 0)
            if outside.any():
                dist = torch.maximum(below[:, i], above[:, i]).max().item()
                span = (hi[i] - lo[i]).item()
                rel = f" ({100 * dist / span:.2g}% of its range)" if span > 0 else ""
                lines.append(
                    f"{name}: {int(outside.sum())} of {len(x)} values outside the training domain "
                    f"[{lo[i].item():.6g}, {hi[i].item():.6g}], up to {dist:.4g} beyond it{rel}"
                )
        return lines

    def predict(self, X: Any, strict: bool = False) -> np.ndarray:
        """Predict for (N, in_dim) inputs (numpy or torch): (N,) when out_dim == 1, else (N, out_dim).

        Inputs outside the training domain give a DomainWarning naming them, or a DomainError with strict=True.
        """
        if not self.is_fitted:
            raise ValueError("predict: this FunctionApproximator has not been fitted (no training domain recorded)")
        x = np.asarray(X.detach().cpu() if isinstance(X, torch.Tensor) else X, dtype=np.float64)
        if x.ndim == 1 and self.config.in_dim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.config.in_dim:
            raise ValueError(f"predict: expected X of shape (N, {self.config.in_dim}), got {x.shape}")
        if not np.isfinite(x).all():
            r, c = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(
                f"predict: X row {r}, input {self.input_names[c]!r} is {x[r, c]} (expected finite numbers)"
            )
        problems = self.domain_report(x)
        if problems:
            msg = "predict: extrapolating outside the training domain; do not trust these outputs:\n  " + "\n  ".join(
                problems
            )
            if strict:
                raise DomainError(msg)
            warnings.warn(msg, DomainWarning, stacklevel=2)
        was_training = self.training
        self.eval()
        dtype = self.feature_mean.dtype
        with torch.no_grad():
            out = self(torch.from_numpy(x).to(dtype)).double().numpy()
        self.train(was_training)
        return out[:, 0] if self.config.out_dim == 1 else out
