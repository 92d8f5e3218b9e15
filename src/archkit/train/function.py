"""Fit a FunctionApproximator to (X, y) samples: statistics, least-squares readout, then full-batch training.

Order of work: record the training domain, let data-dependent features adapt, store feature and
target standardization, solve the linear readout by (ridge) least squares, then train everything
with full-batch L-BFGS (or Adam) on a train split and keep the weights with the best validation
error (early stopping). Small regression problems fit in memory, so full batch is both simplest
and fastest to a precise fit.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..models.function import FunctionApproximator
from .accelerate import Accelerator, model_device

OPTIMIZERS = ("lbfgs", "adam")
FLOAT32_SAFE = 1e30  # largest |value| accepted for X and y: float32 overflows at 3.4e38, statistics square them


@dataclass
class FunctionFitConfig:
    """How `fit_function` trains a FunctionApproximator."""

    optimizer: str = "lbfgs"  # "lbfgs" | "adam"
    max_steps: int = 3000  # optimizer iterations (L-BFGS iterations or Adam steps)
    eval_every: int = 20  # iterations between validation checks
    patience: int = 15  # validation checks without improvement before stopping
    val_fraction: float = 0.2
    lr: float | None = None  # default: 1.0 for L-BFGS, 3e-3 for Adam
    weight_decay: float = 0.0  # L2 penalty on the MLP weights (not on the linear readout)
    ridge: float = 1e-8  # regularization of the least-squares readout
    time_limit: float | None = None  # seconds; stop early when exceeded
    seed: int = 0
    progress: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N (float64 training: not on mps)
    precision: str = "32"  # only "32": the fit runs in float64 for precision, which autocast never touches
    compile: bool = False  # torch.compile the forward pass


@dataclass
class FunctionFitResult:
    """What happened: validation RMSE history (raw target units), best step, why it stopped, time."""

    val_rmse: list[float] = field(default_factory=list)
    train_rmse: list[float] = field(default_factory=list)
    best_val_rmse: float = float("inf")
    best_step: int = 0
    steps: int = 0
    stopped: str = ""
    seconds: float = 0.0
    n_train: int = 0
    n_val: int = 0


def _as_2d(a: Any, name: str, width: int | None) -> torch.Tensor:
    arr = np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or (width is not None and arr.shape[1] != width):
        raise ValueError(f"fit: {name} must have shape (N, {width if width else 'D'}), got {arr.shape}")
    if not np.isfinite(arr).all():
        r, c = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"fit: {name} row {r}, column {c} is {arr[r, c]}; expected finite numbers")
    if arr.size and np.abs(arr).max() > FLOAT32_SAFE:
        raise ValueError(
            f"fit: {name} holds values up to {np.abs(arr).max():.3g}, beyond what the network's float32 can hold "
            f"(~{FLOAT32_SAFE:g}); rescale them (FunctionRegressor standardizes inputs and targets for you)"
        )
    return torch.from_numpy(arr)


def fit_function(
    model: FunctionApproximator, X: Any, y: Any, cfg: FunctionFitConfig | None = None
) -> FunctionFitResult:
    """Train `model` (a FunctionApproximator) in place on samples X (N, in_dim), y (N,) or (N, out_dim)."""
    cfg = cfg or FunctionFitConfig()
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: unknown name {cfg.optimizer!r}; expected one of {list(OPTIMIZERS)}")
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a float in [0, 1), got {cfg.val_fraction}")
    accel = _function_accelerator(cfg)
    mc = model.config
    x64, y64 = _as_2d(X, "X", mc.in_dim), _as_2d(y, "y", mc.out_dim)
    if len(x64) != len(y64):
        raise ValueError(f"fit: X has {len(x64)} rows but y has {len(y64)}")
    n = len(x64)
    n_val = round(n * cfg.val_fraction) if n >= 10 else 0
    if n - n_val < 2:
        raise ValueError(f"fit: need at least 2 training samples, got {n} (val_fraction={cfg.val_fraction})")
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(n, generator=gen)
    tr, va = perm[n_val:], perm[:n_val]
    dtype = model.feature_mean.dtype
    xt, yt = x64[tr].to(dtype), y64[tr].to(dtype)
    xv, yv = x64[va].to(dtype), y64[va].to(dtype)

    with torch.no_grad():
        model.domain_min.copy_(x64.min(0).values)
        model.domain_max.copy_(x64.max(0).values)
        model.features.adapt(xt)
        feats = model.features(xt)
        model.feature_mean.copy_(feats.mean(0))
        # A constant feature (e.g. cos of a constant input) gets std 1 instead of a division by ~0.
        std = feats.std(0) if len(feats) > 1 else torch.ones_like(model.feature_std)
        model.feature_std.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))
        model.target_mean.copy_(yt.mean(0))
        ystd = yt.std(0) if len(yt) > 1 else torch.ones_like(model.target_std)
        model.target_std.copy_(torch.where(ystd > 1e-12, ystd, torch.ones_like(ystd)))
        ytn = (yt - model.target_mean) / model.target_std
        if model.skip is not None:
            _least_squares_readout(model, model.skip, xt, ytn, cfg.ridge)

    result = FunctionFitResult(n_train=len(tr), n_val=len(va))
    # statistics and the readout above are one-off CPU work; the iterations below run on the device
    home = model_device(model)
    accel.prepare(model)
    xt, ytn, xv, yv, yt = accel.to_device((xt, ytn, xv, yv, yt))
    forward_normalized = torch.compile(model.forward_normalized) if accel.compile else model.forward_normalized
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for name, p in model.named_parameters() if name.startswith("mlp.") and name.endswith("weight")]
    if not params or cfg.max_steps == 0:
        result.stopped = "nothing to train"
        model.to(home).eval()
        result.seconds = time.perf_counter() - start
        return result

    def loss_fn() -> torch.Tensor:
        loss = torch.mean((forward_normalized(xt) - ytn) ** 2)
        if cfg.weight_decay and decay:
            loss = loss + cfg.weight_decay * sum((p**2).sum() for p in decay)
        return loss

    opt: torch.optim.Optimizer
    if cfg.optimizer == "lbfgs":
        opt = torch.optim.LBFGS(
            params,
            lr=cfg.lr or 1.0,
            max_iter=cfg.eval_every,
            history_size=50,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-12,
            tolerance_change=1e-15,
        )
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr or 3e-3)

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        return loss

    @torch.no_grad()
    def rmse(x: torch.Tensor, yy: torch.Tensor) -> float:
        return float(torch.sqrt(torch.mean((model(x) - yy) ** 2)))

    model.train()
    best_state = copy.deepcopy(model.state_dict())
    best_val = rmse(xv, yv) if n_val else rmse(xt, yt)
    result.best_val_rmse, bad = best_val, 0
    bar = tqdm(total=cfg.max_steps, desc="fit", disable=not cfg.progress, leave=False)
    step = stalled = 0
    while step < cfg.max_steps:
        if isinstance(opt, torch.optim.LBFGS):  # cfg.optimizer == "lbfgs"
            opt.step(closure)
            done = opt.state[opt._params[0]].get("n_iter", step + cfg.eval_every)
            stalled = stalled + 1 if done - step < cfg.eval_every else 0
            step = max(done, step + 1)
            if stalled >= 3:  # L-BFGS keeps stopping short of its budget: at a minimum (to float precision)
                result.stopped = "converged"
        else:
            for _ in range(min(cfg.eval_every, cfg.max_steps - step)):
                opt.step(closure)
                step += 1
        bar.update(min(step, cfg.max_steps) - bar.n)
        train_err = rmse(xt, yt)
        val_err = rmse(xv, yv) if n_val else train_err
        result.train_rmse.append(train_err)
        result.val_rmse.append(val_err)
        if not np.isfinite(val_err):
            result.stopped = "diverged (non-finite loss); kept the best weights"
            break
        if val_err < best_val:
            best_val, bad, result.best_step = val_err, 0, step
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
        bar.set_postfix(val_rmse=f"{val_err:.3g}")
        if result.stopped == "converged":
            break
        if bad >= cfg.patience:
            result.stopped = "early stopping (validation error stopped improving)"
            break
        if cfg.time_limit is not None and time.perf_counter() - start > cfg.time_limit:
            result.stopped = "time limit"
            break
    else:
        result.stopped = "max_steps"
    bar.close()
    model.load_state_dict(best_state)
    model.to(home).eval()  # predict() feeds CPU tensors
    if not np.isfinite(best_val):  # not even the least-squares start is finite: nothing usable was found
        result.stopped = "diverged (no finite model)"
    result.best_val_rmse, result.steps = best_val, step
    result.seconds = time.perf_counter() - start
    return result


def _function_accelerator(cfg: FunctionFitConfig) -> Accelerator:
    from .accelerate import create_accelerator

    if str(cfg.precision) not in ("32", "32-true"):
        raise ValueError(
            f"--precision: the function fit trains in float64 (for a precise fit), which autocast "
            f"does not lower; only 32 applies here, got {cfg.precision!r}"
        )
    accel = create_accelerator(cfg.device, "32", cfg.compile)
    if accel.device.type == "mps":
        raise ValueError(
            "--device: the function fit trains in float64, which Apple MPS does not support; use cpu or cuda"
        )
    return accel


@torch.no_grad()
def _least_squares_readout(
    model: FunctionApproximator, skip: nn.Linear, x: torch.Tensor, y_norm: torch.Tensor, ridge: float
) -> None:
    """Set the linear skip path to the ridge least-squares fit of the standardized targets."""
    z = model.normalized_features(x).double()
    a = torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], dim=1)
    gram = a.T @ a + ridge * len(a) * torch.eye(a.shape[1], dtype=z.dtype)
    coef = torch.linalg.solve(gram, a.T @ y_norm.double())  # (F + 1, out_dim)
    skip.weight.copy_(coef[:-1].T.to(skip.weight.dtype))
    skip.bias.copy_(coef[-1].to(skip.bias.dtype))
