"""MiniRocket over streamed shards: equal to the in-memory transform; under torchrun (2 gloo ranks) to one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from archkit.data.sequences import open_shards
from archkit.layers.rocket import MiniRocket
from archkit.train.rocket import rocket_features, transform_shards


def write_shards(folder, seed=0):
    """Three .npy shards of (n, T, C) series, one with lengths; returns x (N, C, T) padded and lengths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    xs, ls = [], []
    for k, n in enumerate([5, 7, 4]):
        x = rng.standard_normal((n, 60, 3)).astype(np.float32)
        lengths = rng.integers(12, 61, n) if k == 1 else np.full(n, 60)
        np.save(folder / f"s{k}_x.npy", x)
        np.save(folder / f"s{k}_y.npy", np.zeros(n, np.int64))
        if k == 1:
            np.save(folder / f"s{k}_lengths.npy", lengths)
        xs.append(x.transpose(0, 2, 1))
        ls.append(lengths)
    return np.concatenate(xs), np.concatenate(ls)


def test_streamed_features_equal_in_memory(tmp_path):
    x, lengths = write_shards(tmp_path / "shards")
    module = MiniRocket.fit(x, num_features=200, seed=0)
    expected = module(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    got = transform_shards(module, open_shards(tmp_path / "shards"), "cpu", batch_size=3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    path = transform_shards(module, tmp_path / "shards", "cpu", batch_size=4, out=tmp_path / "f.npy")
    np.testing.assert_allclose(np.load(path), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(rocket_features(module, x, lengths, "cpu", batch_size=5), expected, rtol=0, atol=1e-6)
    (tmp_path / "mine.txt").write_text("user file")
    with pytest.raises(ValueError, match="out"):
        transform_shards(module, tmp_path / "shards", "cpu", out=tmp_path / "mine.txt")
    assert (tmp_path / "mine.txt").read_text() == "user file"
    np.save(tmp_path / "theirs.npy", np.arange(3))  # a .npy carries no mark: kept unless overwrite=True
    with pytest.raises(ValueError, match=r"out: .*overwrite=True"):
        transform_shards(module, tmp_path / "shards", "cpu", out=tmp_path / "theirs.npy")
    assert np.load(tmp_path / "theirs.npy").tolist() == [0, 1, 2]
    transform_shards(module, tmp_path / "shards", "cpu", out=tmp_path / "theirs.npy", overwrite=True)
    np.testing.assert_allclose(np.load(tmp_path / "theirs.npy"), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        transform_shards(module, tmp_path / "shards", "cpu", batch_size=0)


WORKER = """
import json, sys, numpy as np, torch
from archkit.layers.rocket import MiniRocket
from archkit.train.distributed import cleanup_distributed, init_distributed
from archkit.train.rocket import transform_shards

info = init_distributed()
state = torch.load(sys.argv[2], weights_only=True)
module = MiniRocket.from_state_dict(state, in_channels=3)
gathered = transform_shards(module, sys.argv[1], "cpu", batch_size=2)
transform_shards(module, sys.argv[1], "cpu", batch_size=2, out=sys.argv[3])
with open(f"{sys.argv[3]}.rank{info.rank}.json", "w") as f:  # stdout lines of two ranks can interleave
    json.dump({"rank": info.rank, "features": gathered.tolist()}, f)
cleanup_distributed(info)
"""


def test_torchrun_two_ranks_equal_one_process(tmp_path):
    x, _ = write_shards(tmp_path / "shards")
    module = MiniRocket.fit(x, num_features=168, seed=3)
    torch.save(module.state_dict(), tmp_path / "rocket.pt")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(tmp_path / "shards"),
        str(tmp_path / "rocket.pt"),
        str(tmp_path / "ddp.npy"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = [json.loads((tmp_path / f"ddp.npy.rank{r}.json").read_text()) for r in (0, 1)]
    assert sorted(r["rank"] for r in reports) == [0, 1]
    single = transform_shards(module, tmp_path / "shards", "cpu", batch_size=2)
    assert single.shape == (len(x), 168)
    for r in reports:
        np.testing.assert_allclose(np.array(r["features"], np.float32), single, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "ddp.npy"), single, rtol=0, atol=1e-6)
