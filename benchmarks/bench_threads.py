"""Threads on a shared machine: CPU-seconds and wall time of a short demo-like job beside a CPU hog.

The job is the real demo pipeline (`archkit.cli.demo.run_demo`: VQ-VAE-2, encode, two priors, sample,
evaluate) at the demo's model sizes with a few steps per stage, run in a fresh subprocess per
measurement. Each configuration runs with no hog (the machine as it is: other users' load counts,
the 1-minute load average is recorded) and beside a hog (one busy-looping process per usable core,
started first and killed after). The job's user+sys CPU-seconds come from `os.wait4` on the child;
the hog's share of its cores over the same wall time is reported beside it (what the job left to
its neighbour). Configurations run interleaved per round, so machine load hits them alike:

    default       torch's own choice: one thread per usable core, libgomp's default wait (spin, then sleep)
    passive       OMP_WAIT_POLICY=PASSIVE: idle OpenMP workers sleep at once instead of spinning
    1-thread      OMP_NUM_THREADS=1
    archkit-cli   what the `archkit` command sets before torch starts (archkit.threads, loaded by path)

    python benchmarks/bench_threads.py              # ~40 min on the shared, loaded 2-core box
    python benchmarks/bench_threads.py --quick      # smoke run, numbers not meaningful
Writes benchmarks/results/bench_threads.json (bench_threads_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
SRC = Path(__file__).resolve().parents[1] / "src"
# variables that change how torch's OpenMP runtime waits or how many threads it starts
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
    "KMP_BLOCKTIME",
    "MKL_NUM_THREADS",
)
CONFIGS: dict[str, dict[str, str]] = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "1-thread": {"OMP_NUM_THREADS": "1"},
    "archkit-cli": {},  # the child applies archkit.threads' command defaults before torch loads (see CHILD)
}
CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
if sys.argv[2] == "archkit-cli":  # what archkit/__init__.py applies in the `archkit` command, before torch
    import importlib.util
    spec = importlib.util.spec_from_file_location("archkit_threads", sys.argv[3])
    threads = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(threads)
    threads.apply_cli_thread_defaults()
import os
import torch
from archkit.cli.demo import DemoConfig, run_demo
steps = int(sys.argv[1])
cfg = DemoConfig(vqvae_steps=steps, prior_steps=[steps, steps], eval_every=steps, grid_per_class=1,
                 eval_per_class=4, classifier_epochs=1,
                 threads=torch.get_num_threads())  # the configuration measured decides, not the demo's default
t = time.perf_counter()
with tempfile.TemporaryDirectory() as d:
    run_demo(Path(d), cfg, progress=False)
print(json.dumps({"threads": torch.get_num_threads(), "job_s": time.perf_counter() - t,
                  "wait_policy": os.environ.get("OMP_WAIT_POLICY")}))
"""
HOG = "while True: pass"


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), as torch's OpenMP runtime counts them."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def clean_env(config: str) -> dict[str, str]:
    """The environment of a child: the thread variables removed, then the configuration's set."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(CONFIGS[config])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.setdefault("MPLBACKEND", "Agg")
    return env


def cpu_seconds(rusage: Any) -> float:
    """user + sys seconds of a reaped child."""
    return float(rusage.ru_utime + rusage.ru_stime)


def reap(proc: subprocess.Popen[Any]) -> tuple[int, float]:
    """Wait for a child with os.wait4: its exit code and its own user+sys CPU-seconds."""
    _, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, cpu_seconds(rusage)


def run_once(config: str, steps: int, hogs: int, timeout: float, tmp: Path) -> dict[str, Any]:
    """One job in a fresh process, beside `hogs` busy-looping processes; wall, CPU-s and the hog's share."""
    hog_procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
    hog_cpu = 0.0
    try:
        load_before = os.getloadavg()[0]
        out_path, err_path = tmp / "stdout.txt", tmp / "stderr.txt"
        with out_path.open("w") as out, err_path.open("w") as err:
            t0 = time.perf_counter()
            job = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(steps), config, str(SRC / "archkit" / "threads.py")],
                env=clean_env(config),
                stdout=out,
                stderr=err,
            )
            timer = threading.Timer(timeout, job.kill)
            timer.start()
            try:
                code, job_cpu = reap(job)
            finally:
                timer.cancel()
                if job.returncode is None:  # interrupted while waiting: never leave the job running
                    job.kill()
            wall = time.perf_counter() - t0
    finally:
        for p in hog_procs:
            p.kill()
            hog_cpu += reap(p)[1]
    timed_out = wall >= timeout
    row: dict[str, Any] = {
        "config": config,
        "hogs": hogs,
        "wall_s": round(wall, 2),
        "cpu_s": round(job_cpu, 2),
        "timed_out": timed_out,
        "load_1min_before": round(load_before, 2),
        "hog_cores": round(hog_cpu / wall, 2) if hogs else None,
    }
    if code == 0:
        row.update(json.loads(out_path.read_text().strip().splitlines()[-1]))
    elif not timed_out:
        raise RuntimeError(f"{config}: the job failed (exit {code}):\n{err_path.read_text()[-3000:]}")
    return row


def openmp_info() -> dict[str, Any]:
    """torch's parallel_info() and the OpenMP library a fresh process loads (libgomp or Intel's libiomp)."""
    code = (
        "import torch; torch.ones(64, 64) @ torch.ones(64, 64); "
        "libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if 'omp' in l.rsplit('/', 1)[-1]}); "
        "print(repr(libs)); print(torch.__config__.parallel_info()); print(torch.__version__)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_env("default"),
        capture_output=True,
        text=True,
        check=True,
    )
    lines = res.stdout.strip().splitlines()
    return {
        "openmp_libraries": lines[0],
        "parallel_info": "\n".join(lines[1:-1]),
        "torch": lines[-1],
    }


def summarize(rows: list[dict[str, Any]], configs: list[str], hogs: list[int]) -> list[dict[str, Any]]:
    """Median wall, CPU-s and hog share per (configuration, hogs), with wall and CPU relative to default."""
    out = []
    for h in hogs:
        base = [r for r in rows if r["config"] == "default" and r["hogs"] == h]
        for c in configs:
            mine = [r for r in rows if r["config"] == c and r["hogs"] == h]
            wall = statistics.median(r["wall_s"] for r in mine)
            cpu = statistics.median(r["cpu_s"] for r in mine)
            share = [r["hog_cores"] for r in mine if r["hog_cores"] is not None]
            entry = {
                "config": c,
                "hogs": h,
                "runs": len(mine),
                "threads": mine[0].get("threads"),
                "median_wall_s": round(wall, 1),
                "median_cpu_s": round(cpu, 1),
                "timed_out": sum(r["timed_out"] for r in mine),
                "median_hog_cores": round(statistics.median(share), 2) if share else None,
            }
            if base:
                entry["wall_vs_default"] = round(wall / statistics.median(r["wall_s"] for r in base), 3)
                entry["cpu_vs_default"] = round(cpu / statistics.median(r["cpu_s"] for r in base), 3)
            out.append(entry)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="training steps per demo stage (default 3)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="interleaved rounds of every configuration",
    )
    parser.add_argument(
        "--hogs",
        type=int,
        default=None,
        help="busy processes beside the job (default: usable cores)",
    )
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"comma-separated, from {', '.join(CONFIGS)}",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds before a job is killed (reported)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 steps, 1 round (numbers not meaningful)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed benchmark still stops its hogs
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown:
        parser.error(f"--configs: expected names from {', '.join(CONFIGS)}; got {', '.join(unknown)}")
    for name, value, low in (("--steps", args.steps, 1), ("--rounds", args.rounds, 1)):
        if not low <= value <= 10_000:
            parser.error(f"{name}: expected an integer in [{low}, 10000]; got {value}")
    if args.quick:
        args.steps, args.rounds = 2, 1
    cores = usable_cores()
    hog_counts = [0, cores if args.hogs is None else args.hogs]
    if not 0 <= hog_counts[1] <= 4 * cores:
        parser.error(f"--hogs: expected an integer in [0, {4 * cores}]; got {hog_counts[1]}")

    from archkit.io import atomic_write_json
    from archkit.utils import format_table

    info = openmp_info()
    print(
        f"torch {info['torch']}, OpenMP libraries {info['openmp_libraries']}, {cores} usable cores, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            order = configs if rnd % 2 == 0 else configs[::-1]  # alternate so drift in load hits all alike
            for h in hog_counts:
                for c in order:
                    row = run_once(c, args.steps, h, args.timeout, Path(tmp))
                    row["round"] = rnd
                    rows.append(row)
                    print(
                        f"  round {rnd} hogs {h} {c:12s} wall {row['wall_s']:7.1f} s  CPU {row['cpu_s']:7.1f} s"
                        f"  threads {row.get('threads')}  load before {row['load_1min_before']}",
                        flush=True,
                    )
    summary = summarize(rows, configs, hog_counts)
    print(
        format_table(
            [
                "config",
                "hogs",
                "threads",
                "wall s",
                "CPU s",
                "wall / default",
                "CPU / default",
                "hog's cores",
                "runs timed out",
            ],
            [
                [
                    s["config"],
                    s["hogs"],
                    s["threads"],
                    s["median_wall_s"],
                    s["median_cpu_s"],
                    s.get("wall_vs_default"),
                    s.get("cpu_vs_default"),
                    s["median_hog_cores"],
                    f"{s['timed_out']} of {s['runs']}",
                ]
                for s in summary
            ],
        )
    )
    result = {
        "conditions": {
            "usable_cores": cores,
            "hogs": hog_counts[1],
            "steps_per_stage": args.steps,
            "rounds": args.rounds,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": " ".join(["python", *sys.argv]),
            **info,
        },
        "summary": summary,
        "runs": rows,
    }
    path = RESULTS / ("bench_threads_quick.json" if args.quick else "bench_threads.json")
    atomic_write_json(path, result)
    print(f"wrote {path}  (a timed-out run's wall and CPU are lower bounds)")


if __name__ == "__main__":
    main()
