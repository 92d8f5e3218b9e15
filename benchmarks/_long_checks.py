"""Side checks of the long-task benchmark: a picture of the tasks (`vs_aeon_long.py --picture PNG`) and the
memory of the streamed ROCKET transform over long-task shards (`vs_aeon_long.py --rss CACHE`).

The memory check writes the needle task as .npy shards at N and 4N training cases and streams each through
`transform_shards` in a fresh process (`python _long_checks.py --rss-probe FOLDER FEATURES`), reporting the
peak RSS growth and the anonymous (heap) memory growth of each.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

LONG = ["needle", "order"]  # as in vs_aeon_long.py


def picture(path: Path, per_class: int = 2, seed: int = 0, length: int = 8192) -> Path:
    """A PNG of `per_class` test cases per class for each long task (channels stacked, one panel per case)."""
    from archkit.data.real_tasks import INFO, make_real_task
    from archkit.utils import new_figure, save_figure

    fig, axes = new_figure(len(LONG) * 4, per_class, figsize=(6 * per_class, 1.6 * 4 * len(LONG)), squeeze=False)
    for ti, task in enumerate(LONG):
        x, y = make_real_task(task, 64, seed=seed, split="test", length=length)
        for c in range(4):
            for j, i in enumerate(np.flatnonzero(y == c)[:per_class]):
                ax = axes[ti * 4 + c, j]
                for ch in range(x.shape[2]):
                    ax.plot(x[i, :, ch] + 3 * ch, lw=0.3)
                ax.set_yticks([])
                ax.set_title(f"{task}: class {c} ({INFO[task].classes[c]})", fontsize=8)
    return save_figure(fig, path)


RSS_SIZES = (512, 2048)  # training cases at T=8192: 128 MiB and 512 MiB of .npy shards
RSS_FEATURES = (
    84  # MiniRocket features for the memory check (time on a loaded box; memory per batch does not grow with N)
)


def _rss_probe(folder: str, features_out: str) -> None:
    """(subprocess) transform every training shard of `folder` to a features file; print peak RSS growth as JSON."""
    import threading

    from archkit.data import open_shards
    from archkit.layers.rocket import MiniRocket
    from archkit.surgery import peak_rss_growth_mib
    from archkit.train.rocket import transform_shards

    data = open_shards(Path(folder) / "train")
    x0 = np.ascontiguousarray(data.shards[0].x[:64].transpose(0, 2, 1), dtype=np.float32)
    module = MiniRocket.fit(x0, None, RSS_FEATURES, 32, seed=0)
    anon = {"peak_kib": 0}
    stop = threading.Event()

    def sample() -> None:  # anonymous (heap) memory, apart from the file pages the memory maps bring in
        while not stop.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    anon["peak_kib"] = max(anon["peak_kib"], int(line.split()[1]))
            stop.wait(0.05)

    start_anon = int(
        next(ln.split()[1] for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("RssAnon:"))
    )
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    growth = peak_rss_growth_mib(
        lambda: transform_shards(module, data, "cpu", batch_size=32, out=features_out, overwrite=True)
    )
    wall = time.perf_counter() - t0
    stop.set()
    t.join()
    print(
        json.dumps(
            {
                "n": len(data),
                "peak_rss_growth_mib": growth,
                "anon_growth_mib": (anon["peak_kib"] - start_anon) / 1024,
                "seconds": wall,
            }
        )
    )


def rss_check(cache: Path) -> dict[str, Any]:
    """Peak RSS of the streamed ROCKET transform over needle-task shards at N and 4N training cases (fresh processes)."""
    import subprocess
    import sys

    from archkit.data.real_tasks import write_real_task

    out: dict[str, Any] = {"sizes": list(RSS_SIZES), "num_features": RSS_FEATURES, "length": 8192, "batch_size": 32}
    for n in RSS_SIZES:
        folder = cache / f"needle-{n}"
        if not (folder / "task.json").is_file():
            write_real_task(folder, "needle", n_train=n, n_test=16, seed=0, length=8192, shard_size=256)
        res = subprocess.run(
            [sys.executable, __file__, "--rss-probe", str(folder), str(cache / f"features-{n}.npy")],
            capture_output=True,
            text=True,
            check=True,
        )
        out[str(n)] = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"  rss n={n}: {out[str(n)]}", flush=True)
    a, b = out[str(RSS_SIZES[0])], out[str(RSS_SIZES[1])]
    out["ratio_peak_rss"] = b["peak_rss_growth_mib"] / max(a["peak_rss_growth_mib"], 1e-9)
    out["ratio_anon"] = b["anon_growth_mib"] / max(a["anon_growth_mib"], 1e-9)
    return out


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--rss-probe"] and len(sys.argv) == 4:
        _rss_probe(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("usage: _long_checks.py --rss-probe FOLDER FEATURES_OUT (run by vs_aeon_long.py --rss CACHE)")
