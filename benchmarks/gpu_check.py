"""GPU check: VQ-VAE-2 images/s (fp32, bf16, bf16 + compile; FSQ and rotation-trick quantizers in fp32), what
`--precision auto` picks, prior steps/s, sampling, DDP, MiniRocket vs aeon, LSTM training
sequences/s at (32, 8192, 8) (raw steps and conv front end; benchmarks/gpu_seq.py).

Finishes in under 7 minutes on one GPU: every section runs in its own process with a hard time
limit (a section that hangs or compiles too long is killed and reported as such, the rest still
run), and inside a section the timed loop stops at its share of that limit. Writes
benchmarks/results/gpu_check.json after every section, so a cut-short run keeps what it measured.

    python benchmarks/gpu_check.py                        # on a machine with a CUDA GPU
    python benchmarks/gpu_check.py --cpu-baseline-json F  # take the CPU images/s from F instead of measuring
    python benchmarks/gpu_check.py --force-cpu --tiny     # exercise every code path on the CPU (tiny sizes)

Without a GPU (and without --force-cpu) it prints that it skipped and exits 0. The CPU baseline is
the same VQ-VAE-2 step at 128x128 in fp32 with torch limited to 2 threads (the 2-core machine).
Data are random images/codes: throughput does not depend on their content.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # gpu_seq.py and the modules below, next to this file
from _common import REPO, RESULTS, timed, write_json
from _gpu_sections import section_ddp, section_prior, section_rocket, section_sampling, section_vqvae

OUT = RESULTS / "gpu_check.json"

# Hard limit per section in seconds (sum 370 s: under 7 minutes with start-up). The timed loop of a
# section uses at most MEASURE_SHARE of it; the rest covers imports, model building and warm-up.
BUDGETS = {
    "vqvae_fp32": 30,
    "vqvae_bf16": 30,
    "vqvae_bf16_compile": 65,
    "vqvae_fsq": 18,
    "vqvae_rotation": 17,
    "prior": 30,
    "sampling": 30,
    "ddp": 50,
    "cpu_baseline": 35,
    "rocket": 25,
    "lstm_train": 40,
    "rocket_stream": 20,
}
MEASURE_SHARE = 0.5
TARGETS = {"bf16_over_fp32": 1.5, "gpu_over_cpu": 20.0}


def sizes(tiny: bool) -> dict[str, Any]:
    """Problem sizes: the real check, or tiny ones that only exercise the code paths."""
    if tiny:
        return dict(
            image=16,
            batch=4,
            cpu_batch=2,
            vq=dict(hidden_channels=16, res_blocks=1, res_channels=8, code_dim=8, num_codes=16),
            prior=dict(channels=16, layers=2, num_codes=16),
            code_map=8,
            prior_batch=4,
            sample_batch=2,
            naive_rows=2,
            max_steps=4,
            ddp_image=16,
            ddp_steps=4,
            rocket=dict(n=4, aeon_n=2, length=256, features=168),
        )
    return dict(
        image=128,
        batch=32,
        cpu_batch=8,
        vq=dict(hidden_channels=128, res_blocks=2, res_channels=32, code_dim=64, num_codes=512),
        prior=dict(channels=128, layers=12, num_codes=512),
        code_map=32,
        prior_batch=32,
        sample_batch=8,
        naive_rows=2,
        max_steps=200,
        ddp_image=64,
        ddp_steps=30,
        rocket=dict(n=64, aeon_n=4, length=8192, features=10_000),  # aeon times 4 cases on the CPU, per case
    )


def run_section(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Dispatch one section (in this process)."""
    sz = sizes(args.tiny)
    dev = "cpu" if args.force_cpu else "cuda"
    budget = BUDGETS[name] * MEASURE_SHARE * args.budget_scale
    if name == "vqvae_fp32":
        return section_vqvae(dev, "32", False, budget, sz)
    if name == "vqvae_bf16":
        return section_vqvae(dev, "bf16", False, budget, sz)
    if name == "vqvae_bf16_compile":
        return section_vqvae(dev, "bf16", True, budget, sz)
    if name in ("vqvae_fsq", "vqvae_rotation"):  # the other quantizers, in fp32 like vqvae_fp32
        return section_vqvae(dev, "32", False, budget, sz, quantizer=name.removeprefix("vqvae_"))
    if name == "prior":
        return section_prior(dev, budget, sz)
    if name == "sampling":
        return section_sampling(dev, budget, sz)
    if name == "cpu_baseline":
        return section_vqvae(
            "cpu",
            "32",
            False,
            budget,
            {**sz, "max_steps": 3 if not args.tiny else 2},
            threads=1 if args.tiny else 2,
            batch=sz["cpu_batch"],
            warmup=1,
        )
    if name == "rocket":
        return section_rocket(dev, sz, args.tiny)
    if name == "ddp":
        return section_ddp(dev, BUDGETS[name] * args.budget_scale - 5, sz, args.nproc)
    if name == "rocket_stream":
        import gpu_seq

        return gpu_seq.section_rocket_stream(dev, args.tiny)
    if name == "lstm_train":
        import gpu_seq

        return gpu_seq.section_lstm_train(dev, budget, args.tiny, timed, cpu_reference=RESULTS / "bench_sequences.json")
    raise ValueError(f"--section: unknown section {name!r}; expected one of {sorted(BUDGETS)}")


# -- orchestration -------------------------------------------------------------------------------


def _child(name: str, args: argparse.Namespace, limit_s: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--section",
        name,
        "--nproc",
        str(args.nproc),
        "--budget-scale",
        str(args.budget_scale),
    ]
    cmd += ["--force-cpu"] * args.force_cpu + ["--tiny"] * args.tiny
    t0 = time.perf_counter()
    try:
        # rocket: aeon's idle OpenMP threads spin and starve torch in the same process (bench_rocket.py)
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"} if name == "rocket" else None
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s, cwd=REPO, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"killed after its {limit_s:.0f} s limit", "wall_s": time.perf_counter() - t0}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {
            "ok": False,
            "error": f"exit code {proc.returncode}",
            "stderr_tail": proc.stderr[-1500:],
            "wall_s": time.perf_counter() - t0,
        }
    return {"ok": True, **json.loads(lines[-1][len("RESULT ") :]), "wall_s": time.perf_counter() - t0}


def summarize(sections: dict[str, dict[str, Any]], cpu_baseline: float | None) -> dict[str, Any]:
    """Ratios against the targets, from whatever sections succeeded."""

    def ips(name: str) -> float | None:
        s = sections.get(name, {})
        return s.get("images_per_s") if s.get("ok") else None

    fp32, bf16, comp = ips("vqvae_fp32"), ips("vqvae_bf16"), ips("vqvae_bf16_compile")
    best = max([v for v in (fp32, bf16, comp) if v], default=None)
    out: dict[str, Any] = {"cpu_baseline_images_per_s": cpu_baseline}
    if fp32 and bf16:
        out["bf16_over_fp32"] = bf16 / fp32
        out["bf16_over_fp32_target_met"] = bf16 / fp32 >= TARGETS["bf16_over_fp32"]
    if fp32 and comp:
        out["bf16_compile_over_fp32"] = comp / fp32
    for q in ("fsq", "rotation"):
        if fp32 and ips(f"vqvae_{q}"):
            out[f"{q}_over_ema_fp32"] = ips(f"vqvae_{q}") / fp32
    if best and cpu_baseline:
        out["gpu_best_over_cpu"] = best / cpu_baseline
        out["gpu_fp32_over_cpu"] = fp32 / cpu_baseline if fp32 else None
        out["gpu_over_cpu_target_met"] = best / cpu_baseline >= TARGETS["gpu_over_cpu"]
    stream = sections.get("rocket_stream", {})
    if stream.get("ok"):
        out["rocket_stream_device_over_cpu"] = stream["device_over_cpu"]
    rocket = sections.get("rocket", {})
    if rocket.get("ok"):
        out["rocket_cases_per_s"] = rocket["cases_per_s"]
        out["rocket_device_over_aeon_cpu"] = rocket["ratio_over_aeon"]  # per method
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the check (or one --section of it); returns the exit code."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON path (default benchmarks/results/gpu_check.json; gpu_check_forced_cpu.json with --force-cpu).",
    )
    p.add_argument("--force-cpu", action="store_true", help="Run every section on the CPU (code-path check).")
    p.add_argument("--tiny", action="store_true", help="Tiny sizes (numbers not meaningful).")
    p.add_argument(
        "--cpu-baseline-json",
        type=Path,
        default=None,
        help="JSON with an 'images_per_s' (or cpu_baseline.images_per_s) for the 2-core CPU at 128x128.",
    )
    p.add_argument("--nproc", type=int, default=None, help="DDP ranks (default: number of GPUs; 2 with --force-cpu).")
    p.add_argument("--budget-scale", type=float, default=1.0, help="Scale every section's time limit.")
    p.add_argument("--only", default=None, help="Comma-separated sections to run (default: all).")
    p.add_argument("--section", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    import torch

    if args.section:
        print("RESULT " + json.dumps(run_section(args.section, args)), flush=True)
        return 0
    if not args.force_cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU on this machine; skipped (use --force-cpu --tiny to exercise the code paths)")
        return 0
    ngpu = torch.cuda.device_count() if not args.force_cpu else 0
    args.nproc = args.nproc or (ngpu if ngpu else 2)
    out_path = args.out or (RESULTS / "gpu_check_forced_cpu.json" if args.force_cpu else OUT)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if ngpu else "cpu (--force-cpu)",
        "gpus": ngpu,
        "torch": torch.__version__,
        "tiny": args.tiny,
        "force_cpu": args.force_cpu,
        "sizes": sizes(args.tiny),
        "section_limits_s": {k: v * args.budget_scale for k, v in BUDGETS.items()},
        "sections": {},
    }
    order = [
        "vqvae_fp32",
        "vqvae_bf16",
        "vqvae_bf16_compile",
        "vqvae_fsq",
        "vqvae_rotation",
        "prior",
        "sampling",
        "rocket",
        "rocket_stream",
        "ddp",
        "lstm_train",
    ]
    from archkit.train.accelerate import describe_precision

    # what `--precision auto` picks on this machine's GPU (or CPU with --force-cpu), and why
    report["precision_auto"] = describe_precision("auto", torch.device("cpu" if args.force_cpu else "cuda"))
    baseline = None
    if args.cpu_baseline_json is not None:
        data = json.loads(args.cpu_baseline_json.read_text())
        baseline = data.get("images_per_s") or (data.get("cpu_baseline") or {}).get("images_per_s")
        if baseline is None:
            raise SystemExit(f"--cpu-baseline-json: {str(args.cpu_baseline_json)!r} has no 'images_per_s'")
        report["cpu_baseline_source"] = str(args.cpu_baseline_json)
    else:
        order.append("cpu_baseline")
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(BUDGETS))
        if unknown:
            raise SystemExit(f"--only: unknown sections {unknown}; expected some of {sorted(BUDGETS)}")
        order = [name for name in order if name in wanted]
    t_start = time.perf_counter()
    for name in order:
        limit = BUDGETS[name] * args.budget_scale
        print(f"[{time.perf_counter() - t_start:5.0f} s] {name} (limit {limit:.0f} s) ...", flush=True)
        report["sections"][name] = res = _child(name, args, limit)
        print(f"        {json.dumps({k: v for k, v in res.items() if k != 'stderr_tail'})}", flush=True)
        if name == "cpu_baseline" and res.get("ok"):
            baseline = res["images_per_s"]
        report["summary"] = summarize(report["sections"], baseline)
        report["total_s"] = time.perf_counter() - t_start
        _write(out_path, report)
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {out_path} in {report['total_s']:.0f} s")
    return 0


def _write(path: Path, report: dict[str, Any]) -> None:
    sys.path.insert(0, str(REPO / "src"))
    write_json(path, report, say=False)


if __name__ == "__main__":
    sys.exit(main())
