"""`archkit fit`: learn y = f(inputs) from a formula (sampled) or a CSV; report RMSE inside and outside the data."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from .options import accel_options
from .types import Real

if TYPE_CHECKING:
    from ..data.regression import Bounds
    from ..models.function import FunctionApproximator


@click.command()
@click.option("--expr", help='Ground truth to sample, e.g. "sin(x) + y" (whitelisted math only, never eval\'d).')
@click.option("--domain", "domains", multiple=True, help="Input range NAME=LOW:HIGH (repeat per input), e.g. x=-pi:pi.")
@click.option(
    "--samples", type=click.IntRange(10, 1_000_000), default=2000, show_default=True, help="Samples drawn for --expr."
)
@click.option(
    "--noise",
    type=Real(min=0),
    default=0.0,
    show_default=True,
    help="Gaussian noise std added to --expr samples.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Table with a header row (instead of --expr).",
)
@click.option("--target", help="--csv column to predict.")
@click.option("--inputs", help="--csv input columns, comma-separated (default: every other column).")
@click.option(
    "--features",
    "features",
    multiple=True,
    help='Prior feature maps: "sin", "sin@1,2:x", "learnsin4", "poly3", "fourier64@0.5" (repeat or join with +).',
)
@click.option("--hidden", type=click.IntRange(1, 4096), default=64, show_default=True)
@click.option(
    "--layers",
    type=click.IntRange(0, 32),
    default=3,
    show_default=True,
    help="Hidden layers (0: linear readout of features).",
)
@click.option(
    "--activation", type=click.Choice(["tanh", "relu", "selu", "gelu", "silu"]), default="tanh", show_default=True
)
@click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]), default="lbfgs", show_default=True)
@click.option("--max-steps", type=click.IntRange(0, 1_000_000), default=3000, show_default=True)
@click.option(
    "--margin",
    type=Real(0, 100, min_open=True),
    default=0.25,
    show_default=True,
    help="Extrapolation band: this fraction of each input's range beyond both ends.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/fit"), show_default=True
)
@accel_options
def fit(
    expr: str | None,
    domains: tuple[str, ...],
    samples: int,
    noise: float,
    csv_path: Path | None,
    target: str | None,
    inputs: str | None,
    features: tuple[str, ...],
    hidden: int,
    layers: int,
    activation: str,
    optimizer: str,
    max_steps: int,
    margin: float,
    seed: int,
    out_dir: Path,
    device: str,
    precision: str,
    compile: bool,
) -> None:
    """Fit an MLP (+ prior features) to samples; writes checkpoint/, fit.png and summary.json into --out.

    A fit that diverges saves nothing when no finite model is left, else saves the best weights before
    the divergence and exits with status 1 after saying so.
    """
    from ..data import parse_domain, parse_expression, read_csv_table, rmse, sample_band, sample_box
    from ..io import atomic_write_json, save_checkpoint
    from ..io.outdir import check_out_folder, mark_out_folder
    from ..models import FunctionApproximator, FunctionApproximatorConfig
    from ..train.function import FunctionFitConfig, fit_function

    if (expr is None) == (csv_path is None):
        raise ValueError("give exactly one of --expr (with --domain) or --csv (with --target)")
    check_out_folder(out_dir, "fit folder")
    truth: Callable[[np.ndarray], np.ndarray] | None = None
    if expr is not None:
        if csv_path or target or inputs:
            raise ValueError("--target/--inputs belong to --csv, not --expr")
        bounds = parse_domain(domains)
        names = [b[0] for b in bounds]
        parsed = parse_expression(expr)
        missing = [v for v in parsed.variables if v not in names]
        if missing:
            raise ValueError(
                f"--expr uses {missing} but no --domain was given for them; add e.g. --domain {missing[0]}=-1:1"
            )

        def sampled(X: np.ndarray) -> np.ndarray:  # a constant expression ("2") gives one value: one per row
            values = np.asarray(parsed({n: X[:, i] for i, n in enumerate(names)}), dtype=np.float64)
            return np.broadcast_to(values, (len(X),)).copy()

        truth = sampled
        X = sample_box(bounds, samples, seed)
        y = truth(X) + noise * np.random.default_rng(seed + 1).standard_normal(len(X))
        target_name = "f"
    else:
        assert csv_path is not None  # exactly one of --expr / --csv, checked above
        if not target:
            raise ValueError("--csv needs --target COLUMN (the column to predict)")
        if domains:
            raise ValueError("--domain belongs to --expr; with --csv the domain is the range of the data")
        wanted = [c.strip() for c in inputs.split(",")] if inputs else None
        X, Y, names, _ = read_csv_table(csv_path, target, wanted)
        y, target_name = Y[:, 0], target
        bounds = [(n, float(X[:, i].min()), float(X[:, i].max())) for i, n in enumerate(names)]
        bounds = [(n, lo, hi if hi > lo else lo + 1.0) for n, lo, hi in bounds]

    specs = [s for f in features for s in f.split("+") if s.strip()]
    config = FunctionApproximatorConfig(
        in_dim=len(names),
        out_dim=1,
        hidden=hidden,
        layers=layers,
        activation=activation,
        features=specs,
        input_names=names,
        output_names=[target_name],
        seed=seed,
    )
    model = FunctionApproximator(config)
    result = fit_function(
        model,
        X,
        y,
        FunctionFitConfig(
            optimizer=optimizer,
            max_steps=max_steps,
            seed=seed,
            progress=True,
            device=device,
            precision=precision,
            compile=compile,
        ),
    )

    summary: dict = {
        "inputs": names,
        "target": target_name,
        "samples": len(X),
        "features": specs,
        "fit_seconds": result.seconds,
        "steps": result.steps,
        "stopped": result.stopped,
        "val_rmse": result.best_val_rmse,
        "domain": {n: [lo, hi] for n, lo, hi in bounds},
        "margin": margin,
        "device": device,
        "precision": precision,
        "compile": compile,
    }
    if truth is not None:
        x_in, x_out = sample_box(bounds, 4000, seed + 2), sample_band(bounds, margin, 4000, seed + 3)
        with warnings.catch_warnings():  # the band is outside the domain on purpose
            warnings.simplefilter("ignore")
            summary["rmse_in_domain"] = rmse(model.predict(x_in), truth(x_in))
            summary["rmse_out_of_domain"] = rmse(model.predict(x_out), truth(x_out))
        click.echo(f"in-domain RMSE      {summary['rmse_in_domain']:.4g}   (fresh noiseless samples inside the domain)")
        click.echo(
            f"out-of-domain RMSE  {summary['rmse_out_of_domain']:.4g}   (band {margin:g} x range beyond each bound)"
        )
    else:
        summary["rmse_in_domain"], summary["rmse_out_of_domain"] = result.best_val_rmse, None
        click.echo(f"in-domain RMSE      {result.best_val_rmse:.4g}   (held-out {result.n_val} rows of the CSV)")
        click.echo("out-of-domain RMSE  n/a       (a CSV has no ground truth outside its data; see the plot)")
    diverged = result.stopped.startswith("diverged")
    if not all(math.isfinite(v) for v in (result.best_val_rmse, summary["rmse_in_domain"])):
        raise ValueError(
            f"fit: the fit diverged ({result.stopped}) and no finite model is left; nothing was saved. Try "
            f"--optimizer adam, fewer or lower-frequency --features, or inputs and targets of a smaller range"
        )
    mark_out_folder(out_dir, "fit folder")
    save_checkpoint(out_dir / "checkpoint", model, config, fit=summary)
    _plot(model, truth, bounds, margin, out_dir / "fit.png", X, y)
    atomic_write_json(out_dir / "summary.json", summary)
    click.echo(
        f"fit in {result.seconds:.1f}s ({result.steps} steps, {result.stopped}); wrote {out_dir}/checkpoint, "
        f"{out_dir}/fit.png, {out_dir}/summary.json"
    )
    if diverged:
        click.echo(
            f"warning: the fit diverged after step {result.best_step}; the saved model is the best one before it "
            f"(validation RMSE {result.best_val_rmse:.4g})",
            err=True,
        )
        raise click.exceptions.Exit(1)


def _plot(
    model: FunctionApproximator,
    truth: Callable[[np.ndarray], np.ndarray] | None,
    bounds: Bounds,
    margin: float,
    path: Path,
    X: np.ndarray,
    y: np.ndarray,
) -> None:
    """Truth | fit | error over the domain widened by `margin`; the training domain is outlined."""
    from ..data import expand_bounds
    from ..utils import new_figure, save_figure

    wide = expand_bounds(bounds, margin)
    names = [b[0] for b in bounds]
    center = np.array([(lo + hi) / 2 for _, lo, hi in bounds])

    def predict(points: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.predict(points)

    if len(bounds) == 1:
        (_, lo, hi), (_, wlo, whi) = bounds[0], wide[0]
        g = np.linspace(wlo, whi, 500)[:, None]
        fig, (ax, ax_err) = new_figure(1, 2, figsize=(11, 4))
        fit_y = predict(g)
        if truth is not None:
            ax.plot(g[:, 0], truth(g), "k-", lw=1.5, label="truth")
            ax_err.semilogy(g[:, 0], np.abs(fit_y - truth(g)) + 1e-12, "r-")
            ax_err.set_title("|fit - truth|")
        else:
            ax.scatter(X[:, 0], y, s=4, c="0.5", label="data")
            ax_err.scatter(X[:, 0], predict(X) - y, s=4, c="r")
            ax_err.set_title("fit - data (training rows)")
        ax.plot(g[:, 0], fit_y, "b--", lw=1.5, label="fit")
        for a in (ax, ax_err):
            a.axvspan(wlo, lo, color="orange", alpha=0.2)
            a.axvspan(hi, whi, color="orange", alpha=0.2, label="extrapolation band")
            a.set_xlabel(names[0])
        ax.legend()
        ax.set_title("truth and fit (shaded: outside the training domain)")
        save_figure(fig, path)
        return

    i, j = 0, 1
    gi, gj = np.linspace(wide[i][1], wide[i][2], 120), np.linspace(wide[j][1], wide[j][2], 120)
    GI, GJ = np.meshgrid(gi, gj)
    pts = np.tile(center, (GI.size, 1))
    pts[:, i], pts[:, j] = GI.ravel(), GJ.ravel()
    fit_z = predict(pts).reshape(GI.shape)
    fig, axes = new_figure(1, 3, figsize=(15, 4.5))
    extent = (gi[0], gi[-1], gj[0], gj[-1])
    if truth is not None:
        true_z = truth(pts).reshape(GI.shape)
        vmin, vmax = float(min(true_z.min(), fit_z.min())), float(max(true_z.max(), fit_z.max()))
        panels = [
            (true_z, "truth", "viridis", vmin, vmax),
            (fit_z, "fit", "viridis", vmin, vmax),
            (np.abs(fit_z - true_z), "|fit - truth|", "magma", None, None),
        ]
        for ax, (z, title, cmap, zmin, zmax) in zip(axes, panels):
            im = ax.imshow(z, origin="lower", extent=extent, aspect="auto", cmap=cmap, vmin=zmin, vmax=zmax)
            fig.colorbar(im, ax=ax)
            ax.set_title(title)
    else:
        im = axes[0].scatter(X[:, i], X[:, j], c=y, s=6, cmap="viridis")
        fig.colorbar(im, ax=axes[0])
        axes[0].set_title("data (training rows)")
        im = axes[1].imshow(fit_z, origin="lower", extent=extent, aspect="auto", cmap="viridis")
        fig.colorbar(im, ax=axes[1])
        axes[1].set_title("fit")
        im = axes[2].scatter(X[:, i], X[:, j], c=np.abs(predict(X) - y), s=6, cmap="magma")
        fig.colorbar(im, ax=axes[2])
        axes[2].set_title("|fit - data| (training rows)")
    for ax in axes:
        lo_i, hi_i, lo_j, hi_j = bounds[i][1], bounds[i][2], bounds[j][1], bounds[j][2]
        ax.plot([lo_i, hi_i, hi_i, lo_i, lo_i], [lo_j, lo_j, hi_j, hi_j, lo_j], "w--", lw=1.5)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xlabel(names[i])
        ax.set_ylabel(names[j])
    note = (
        "" if len(bounds) == 2 else " — slice with " + ", ".join(f"{n}={c:.3g}" for n, c in zip(names[2:], center[2:]))
    )
    fig.suptitle(f"dashed box: training domain; outside it is the extrapolation band{note}")
    save_figure(fig, path)
