"""Benchmark fuse_bn: ResNet-50-shaped net on CPU, unfused vs archkit fuse_bn vs torch.fx's fuse, plus pattern coverage.

    python benchmarks/bench_fuse.py            # batch 8 at 224x224, 10 interleaved repeats
    python benchmarks/bench_fuse.py --quick    # smoke run: batch 2 at 64x64, 3 repeats
    python benchmarks/bench_fuse.py --onnx-only  # only the onnxruntime row: fused net in onnxruntime vs eager

Writes benchmarks/results/bench_fuse.json (or bench_fuse_quick.json with --quick; --onnx-only:
bench_fuse_onnx[_quick].json). The onnxruntime row needs the `export` extra.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import platform
import time
from pathlib import Path

import torch
from torch import nn
from torch.fx.experimental.optimization import fuse as fx_fuse

from archkit.models import create_model
from archkit.surgery import format_table, fuse_bn, interleaved_latency, is_batchnorm, output_error, randomize_bn_stats
from archkit.train import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results"


def torch_fx_fuse(model: nn.Module) -> tuple[nn.Module, str]:
    """torch.fx fuse on the whole model, or (when the top-level forward cannot be traced) on each child."""
    try:
        return fx_fuse(model), "whole model traced"
    except Exception as e:
        reason = f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"
    model = copy.deepcopy(model)
    for name, child in list(model.named_children()):
        with contextlib.suppress(Exception):  # a child torch.fx cannot trace stays unfused, as torch.fx leaves it
            setattr(model, name, fx_fuse(child))
    return model, f"top-level forward not traceable ({reason}); applied to each child by hand"


def count_bn(model: nn.Module) -> int:
    return sum(is_batchnorm(m) for m in model.modules())


# --- pattern coverage on tiny modules ------------------------------------------------------------
class _Graph(nn.Module):
    def __init__(self, fn, **modules):
        super().__init__()
        self.fn = fn
        for k, v in modules.items():
            self.add_module(k, v)

    def forward(self, x):
        return self.fn(self, x)


class _ShapeChecked(nn.Module):
    """Validates its input shape before running a Sequential body, as ResNet.forward does: not fx-traceable."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError("expected 4-D input")
        return self.body(x)


class _SharedOutput(nn.Module):
    """conv -> bn, whose output feeds both a conv and a residual add."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.conv2 = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.bn(self.conv(x))
        return self.conv2(y) + y


def _patterns() -> list[tuple[str, str, nn.Module, torch.Tensor]]:
    """(pattern, expected behaviour, module, input)."""
    x2 = torch.randn(2, 4, 8, 8)
    return [
        ("conv-bn", "fold", nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6)), x2),
        ("conv-bn-relu", "fold", nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU()), x2),
        ("conv1d-bn1d", "fold", nn.Sequential(nn.Conv1d(4, 6, 3), nn.BatchNorm1d(6)), torch.randn(2, 4, 9)),
        ("conv3d-bn3d", "fold", nn.Sequential(nn.Conv3d(4, 6, 3), nn.BatchNorm3d(6)), torch.randn(2, 4, 5, 5, 5)),
        ("linear-bn", "fold", nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7)), torch.randn(4, 5)),
        ("convtranspose-bn", "fold", nn.Sequential(nn.ConvTranspose2d(4, 6, 2, stride=2), nn.BatchNorm2d(6)), x2),
        ("bn-conv (no padding)", "fold", nn.Sequential(nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 6, 1)), x2),
        ("bn-linear", "fold", nn.Sequential(nn.ReLU(), nn.BatchNorm1d(5), nn.Linear(5, 3)), torch.randn(4, 5)),
        (
            "bn-conv (zero padding)",
            "keep",
            nn.Sequential(nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 6, 3, padding=1)),
            x2,
        ),
        ("shared BN output", "fold", _SharedOutput(), x2),
        (
            "shared BN module",
            "fold each call",
            _Graph(
                lambda m, x: m.bn(m.c1(x)) + m.bn(m.c2(x)),
                c1=nn.Conv2d(4, 4, 1),
                c2=nn.Conv2d(4, 4, 1),
                bn=nn.BatchNorm2d(4),
            ),
            x2,
        ),
        (
            "conv output reused",
            "keep",
            _Graph(lambda m, x: (lambda y: m.bn(y) + y)(m.conv(x)), conv=nn.Conv2d(4, 4, 1), bn=nn.BatchNorm2d(4)),
            x2,
        ),
        (
            "conv module called twice",
            "keep",
            _Graph(lambda m, x: m.bn(m.conv(x)) + m.conv(x), conv=nn.Conv2d(4, 4, 1), bn=nn.BatchNorm2d(4)),
            x2,
        ),
        ("untraceable top-level forward", "fold", _ShapeChecked(), x2),
    ]


def coverage() -> list[dict]:
    rows = []
    for pattern, expected, module, x in _patterns():
        module = randomize_bn_stats(module, seed=7).eval()
        with torch.no_grad():
            ref = module(x)
        row = {"pattern": pattern, "expected": expected}
        for tool, fn in (("archkit", lambda m: fuse_bn(m, example_inputs=x)[0]), ("torch.fx", fx_fuse)):
            try:
                out_model = fn(module)
                with torch.no_grad():
                    _, rel = output_error(ref, out_model(x))
                folded = count_bn(out_model) < count_bn(module)
                row[tool] = f"{'folded' if folded else 'kept'}, {'exact' if rel <= 1e-5 else f'WRONG (rel {rel:.1e})'}"
            except Exception as e:
                row[tool] = f"fails ({type(e).__name__})"
        rows.append(row)
    return rows


def bn_time_share(model: nn.Module, x: torch.Tensor, repeats: int = 2) -> float:
    """Fraction of the unfused forward's CPU time spent inside batch-norm kernels (torch.profiler).

    Folding removes exactly that work, so 1 - share is the best fused/unfused ratio folding can reach here.
    """
    with torch.no_grad():
        model(x)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                model(x)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    bn = sum(e.self_cpu_time_total for e in events if "batch_norm" in e.key)
    return bn / total if total else 0.0


def onnx_row(model: nn.Module, fused: nn.Module, x: torch.Tensor, repeats: int) -> dict:
    """onnxruntime (CPU, as many intra-op threads as torch) running the fused net vs PyTorch eager, interleaved."""
    import tempfile

    import onnxruntime as ort

    from archkit import export

    with tempfile.TemporaryDirectory(prefix="bench_fuse_onnx_") as tmp:
        t0 = time.perf_counter()
        result = export(fused, x, Path(tmp) / "resnet50_fused.onnx")
        export_s = time.perf_counter() - t0
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(result.path, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    lat = interleaved_latency(
        {
            "eager unfused": lambda: model(x),
            "eager fused": lambda: fused(x),
            "onnxruntime fused": lambda: session.run(None, feed),
        },
        repeats=repeats,
        warmup=2,
    )
    return {
        "latency_ms": {k: v * 1e3 for k, v in lat.items()},
        "ratios": {
            "onnxruntime/eager fused": lat["onnxruntime fused"] / lat["eager fused"],
            "onnxruntime/eager unfused": lat["onnxruntime fused"] / lat["eager unfused"],
        },
        "export_s": export_s,
        "export_rel_error": result.rel_error,
        "onnxruntime": ort.__version__,
        "intra_op_threads": options.intra_op_num_threads,
    }


def print_onnx_row(row: dict) -> None:
    print(format_table(["variant", "median ms"], [[k, v] for k, v in row["latency_ms"].items()]))
    print(format_table(["ratio", "value"], [[k, v] for k, v in row["ratios"].items()]))
    print(f"exported in {row['export_s']:.1f}s, onnxruntime vs PyTorch relative error {row['export_rel_error']:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 2 at 64x64, 3 repeats")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument(
        "--onnx-only", action="store_true", help="only the onnxruntime row (fused net, onnxruntime vs eager)"
    )
    parser.add_argument("--no-onnx", action="store_true", help="leave the onnxruntime row out")
    args = parser.parse_args()
    if args.quick:
        args.batch_size, args.image_size, args.repeats = 2, 64, 3
    if args.threads:
        torch.set_num_threads(args.threads)

    model = randomize_bn_stats(create_model("resnet50"), seed=0).eval()
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    ours, report = fuse_bn(model)
    t_ours = time.perf_counter() - t0
    config = {
        **vars(args),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "model": "resnet50 (archkit, randomized BN statistics)",
    }
    if args.onnx_only:
        print(
            f"ResNet-50 shape, batch {args.batch_size} at {args.image_size}x{args.image_size}, "
            f"{torch.get_num_threads()} threads, {args.repeats} interleaved repeats"
        )
        row = onnx_row(model, ours, x, args.repeats)
        print_onnx_row(row)
        path = RESULTS / ("bench_fuse_onnx_quick.json" if args.quick else "bench_fuse_onnx.json")
        atomic_write_json(path, {"config": config, "onnxruntime": row})
        print(f"wrote {path}")
        return
    t0 = time.perf_counter()
    theirs, fx_note = torch_fx_fuse(model)
    t_theirs = time.perf_counter() - t0
    with torch.no_grad():
        ref = model(x)
        err_ours = output_error(ref, ours(x))
        err_theirs = output_error(ref, theirs(x))
    print(
        f"ResNet-50 shape, batch {args.batch_size} at {args.image_size}x{args.image_size}, "
        f"{torch.get_num_threads()} threads, {args.repeats} interleaved repeats"
    )
    print(
        f"archkit fuse_bn: {len(report.by_action('folded'))}/{count_bn(model)} BN folded in {t_ours:.2f}s, "
        f"rel err {err_ours[1]:.2e}"
    )
    print(
        f"torch.fx fuse: {count_bn(model) - count_bn(theirs)}/{count_bn(model)} BN folded in {t_theirs:.2f}s, "
        f"rel err {err_theirs[1]:.2e} ({fx_note})"
    )

    lat = interleaved_latency(
        {"unfused": lambda: model(x), "archkit": lambda: ours(x), "torch.fx": lambda: theirs(x)},
        repeats=args.repeats,
        warmup=2,
    )
    ratios = {
        "archkit/unfused": lat["archkit"] / lat["unfused"],
        "torch.fx/unfused": lat["torch.fx"] / lat["unfused"],
        "archkit/torch.fx": lat["archkit"] / lat["torch.fx"],
    }
    print(format_table(["variant", "median ms"], [[k, v * 1e3] for k, v in lat.items()]))
    print(
        format_table(
            ["ratio", "value", "target", "met"],
            [
                ["archkit/unfused", ratios["archkit/unfused"], "<= 0.9", ratios["archkit/unfused"] <= 0.9],
                ["torch.fx/unfused", ratios["torch.fx/unfused"], "", ""],
                ["archkit/torch.fx", ratios["archkit/torch.fx"], "<= 1.02", ratios["archkit/torch.fx"] <= 1.02],
            ],
        )
    )

    share = bn_time_share(model, x)
    print(
        f"batch norm = {share:.1%} of the unfused forward's CPU time (torch.profiler): "
        f"folding alone cannot beat a ratio of {1 - share:.3f} on this machine"
    )

    cov = coverage()
    print(
        format_table(
            ["pattern", "expected", "archkit", "torch.fx"],
            [[r["pattern"], r["expected"], r["archkit"], r["torch.fx"]] for r in cov],
        )
    )

    onnx = None if args.no_onnx else onnx_row(model, ours, x, args.repeats)
    if onnx:
        print_onnx_row(onnx)

    result = {
        "config": config,
        "onnxruntime": onnx,
        "latency_ms": {k: v * 1e3 for k, v in lat.items()},
        "ratios": ratios,
        "bn_cpu_time_share": share,
        "best_ratio_from_folding": 1 - share,
        "targets_met": {
            "archkit/unfused<=0.9": ratios["archkit/unfused"] <= 0.9,
            "archkit/torch.fx<=1.02": ratios["archkit/torch.fx"] <= 1.02,
        },
        "rel_error": {"archkit": err_ours[1], "torch.fx": err_theirs[1]},
        "bn_total": count_bn(model),
        "bn_folded": {"archkit": len(report.by_action("folded")), "torch.fx": count_bn(model) - count_bn(theirs)},
        "torch_fx_note": fx_note,
        "coverage": cov,
    }
    path = RESULTS / ("bench_fuse_quick.json" if args.quick else "bench_fuse.json")
    atomic_write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
