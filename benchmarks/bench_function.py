"""Benchmark function approximation: archkit MLP (plain / matching prior / random Fourier) vs scikit-learn MLPRegressor.

For each test function: the same noiseless training samples for every method, RMSE on fresh points
inside the training domain and on an extrapolation band (25% of each range beyond both ends).
MLPRegressor runs (a) with the same samples and its own stopping rule (adam + early stopping, and
lbfgs) and (b) with a matched time budget (adam epochs until it has used as long as archkit's
slowest model on that function). Everything runs in one process, one thread.

    python benchmarks/bench_function.py            # 2,000 samples per function, up to 6,000 L-BFGS iterations
    python benchmarks/bench_function.py --quick    # smoke run: 300 samples, 150 steps

Writes benchmarks/results/bench_function.json (bench_function_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from pathlib import Path

import torch

from archkit.data import parse_domain, parse_expression, rmse, sample_band, sample_box
from archkit.models import FunctionApproximator, FunctionApproximatorConfig
from archkit.surgery import format_table
from archkit.train import FunctionFitConfig, atomic_write_json, fit_function

RESULTS = Path(__file__).resolve().parent / "results"
MARGIN = 0.25

# name -> (expression, domains, matching prior feature)
FUNCTIONS = {
    "sin(x)+y": ("sin(x) + y", ["x=-pi:pi", "y=-1:1"], "sin"),
    "x*sin(5y)": ("x * sin(5*y)", ["x=-1:1", "y=-1:1"], "sin@5:y"),
    "friedman6": (
        "sin(pi*a*b) + 2*(c - 0.5)**2 + d + 0.5*g",
        ["a=0:1", "b=0:1", "c=0:1", "d=0:1", "g=0:1", "h=0:1"],
        "poly2",
    ),  # h is a distractor input
}


def archkit_fit(X, y, names, features, max_steps, seed):
    config = FunctionApproximatorConfig(
        in_dim=X.shape[1], hidden=64, layers=3, activation="tanh", features=features, input_names=names, seed=seed
    )
    model = FunctionApproximator(config)
    t0 = time.perf_counter()
    result = fit_function(model, X, y, FunctionFitConfig(max_steps=max_steps, seed=seed))
    return model.predict, time.perf_counter() - t0, f"{result.steps} steps, {result.stopped}"


def sklearn_fit(X, y, solver, max_iter, seed, time_budget=None):
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = MLPRegressor(
        hidden_layer_sizes=(64, 64, 64),
        activation="tanh",
        solver=solver,
        max_iter=max_iter,
        early_stopping=solver == "adam" and time_budget is None,
        random_state=seed,
        tol=1e-7,
        n_iter_no_change=20,
    )
    model = TransformedTargetRegressor(make_pipeline(StandardScaler(), mlp), transformer=StandardScaler())
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if time_budget is None:
            fit_function(model, X, y)
            info = f"{model.regressor_[-1].n_iter_} iterations"
        else:
            # Same scaling as above, then adam epochs (partial_fit) until the time budget is used.
            sx, sy = StandardScaler().fit(X), StandardScaler().fit(y[:, None])
            Xs, ys = sx.transform(X), sy.transform(y[:, None])[:, 0]
            epochs = 0
            while time.perf_counter() - t0 < time_budget:
                mlp.partial_fit(Xs, ys)
                epochs += 1
            info = f"{epochs} epochs in the time budget"
            seconds = time.perf_counter() - t0
            return (lambda Z: sy.inverse_transform(mlp.predict(sx.transform(Z))[:, None])[:, 0]), seconds, info
    return model.predict, time.perf_counter() - t0, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few samples and steps")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    samples = args.samples or (300 if args.quick else 2000)
    max_steps, sk_iter = (150, 200) if args.quick else (6000, 6000)
    results: dict = {
        "samples": samples,
        "max_steps": max_steps,
        "margin": MARGIN,
        "quick": args.quick,
        "machine": f"{platform.machine()} {platform.processor()}, torch {torch.__version__}, 1 thread",
        "note": "wall times on a shared, contended 2-core machine",
        "functions": {},
    }
    rows = []
    for fname, (text, domains, prior) in FUNCTIONS.items():
        bounds = parse_domain(domains)
        names = [b[0] for b in bounds]
        expr = parse_expression(text, allowed_variables=names)
        truth = lambda Z: expr({n: Z[:, i] for i, n in enumerate(names)})  # noqa: E731
        X = sample_box(bounds, samples, args.seed)
        y = truth(X)
        x_in, x_out = sample_box(bounds, 5000, args.seed + 1), sample_band(bounds, MARGIN, 5000, args.seed + 2)
        runs: dict = {}

        def record(method, predict, seconds, info):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the band lies outside the domain on purpose
                r_in, r_out = rmse(predict(x_in), truth(x_in)), rmse(predict(x_out), truth(x_out))
            runs[method] = {"rmse_in": r_in, "rmse_band": r_out, "seconds": seconds, "info": info}
            rows.append([fname, method, f"{r_in:.2e}", f"{r_out:.3g}", f"{seconds:.1f}", info])
            print(f"{fname:10s} {method:28s} in {r_in:.2e}  band {r_out:.3g}  {seconds:.1f}s  {info}", flush=True)

        record("archkit MLP", *archkit_fit(X, y, names, [], max_steps, args.seed))
        record(f"archkit MLP + {prior}", *archkit_fit(X, y, names, [prior], max_steps, args.seed))
        record("archkit MLP + fourier128@0.5", *archkit_fit(X, y, names, ["fourier128@0.5"], max_steps, args.seed))
        budget = max(r["seconds"] for r in runs.values())
        record("sklearn adam (same samples)", *sklearn_fit(X, y, "adam", sk_iter, args.seed))
        record("sklearn lbfgs (same samples)", *sklearn_fit(X, y, "lbfgs", sk_iter, args.seed))
        record(
            f"sklearn adam ({budget:.0f}s budget)", *sklearn_fit(X, y, "adam", sk_iter, args.seed, time_budget=budget)
        )
        best_ak = min(v["rmse_in"] for k, v in runs.items() if k.startswith("archkit"))
        best_sk_same = min(v["rmse_in"] for k, v in runs.items() if "same samples" in k)
        runs_summary = {
            "best_archkit_rmse_in": best_ak,
            "best_sklearn_same_samples_rmse_in": best_sk_same,
            "ratio_archkit_over_sklearn": best_ak / best_sk_same,
            "prior_band_over_plain_band": runs[f"archkit MLP + {prior}"]["rmse_band"]
            / runs["archkit MLP"]["rmse_band"],
        }
        results["functions"][fname] = {
            "expression": text,
            "domain": domains,
            "prior": prior,
            "methods": runs,
            **runs_summary,
        }

    sin = results["functions"]["sin(x)+y"]
    results["targets"] = {
        "sin_in_domain_rmse<=0.01": min(v["rmse_in"] for k, v in sin["methods"].items() if k.startswith("archkit"))
        <= 0.01,
        "sin_prior_band_rmse<=0.05": sin["methods"]["archkit MLP + sin"]["rmse_band"] <= 0.05,
        "sin_plain_band_rmse": sin["methods"]["archkit MLP"]["rmse_band"],
        "archkit_best<=0.5x_sklearn_same_samples": {
            k: v["ratio_archkit_over_sklearn"] <= 0.5 for k, v in results["functions"].items()
        },
    }
    print()
    print(format_table(["function", "method", "RMSE in-domain", "RMSE band", "fit s", "notes"], rows))
    print()
    for k, v in results["functions"].items():
        print(
            f"{k}: best archkit / best sklearn (same samples) in-domain RMSE = {v['ratio_archkit_over_sklearn']:.3f}; "
            f"prior / plain band RMSE = {v['prior_band_over_plain_band']:.3g}"
        )
    print("targets:", results["targets"])
    out = RESULTS / ("bench_function_quick.json" if args.quick else "bench_function.json")
    atomic_write_json(out, results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
