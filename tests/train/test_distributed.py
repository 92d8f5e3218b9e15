"""DDP via torchrun (2 gloo processes on CPU): replicas stay identical and match a single process."""

import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from archkit.train import VQVAETrainConfig, train_vqvae
from archkit.train.distributed import DistInfo, any_rank, replica_divergence, shard

ARGS = dict(
    image_size=16,
    hidden_channels=16,
    res_blocks=1,
    res_channels=8,
    code_dim=8,
    num_codes=16,
    batch_size=8,
    steps=4,
    eval_every=4,
    restart_after=2,
    code_dropout=0.5,
)


def test_single_process_helpers_are_no_ops():
    info = DistInfo()
    x = torch.arange(8)
    assert torch.equal(shard(x, info), x) and any_rank(True, info) and not any_rank(False, info)
    assert replica_divergence(torch.nn.Linear(2, 2), info) == 0.0
    assert shard(x, DistInfo(rank=1, world_size=2, enabled=True)).tolist() == [4, 5, 6, 7]


def test_torchrun_two_processes_match_single_process(tmp_path):
    flags = []
    for k, v in ARGS.items():
        flags += [f"--{k.replace('_', '-')}", str(v)]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "archkit",
        "vqvae",
        "train",
        "--out",
        str(tmp_path / "ddp"),
        "--quiet",
        *flags,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert result["replica_divergence"] < 1e-6  # weights and codebooks identical on both ranks
    assert result["step"] == 4

    # Same thread count as the ranks: multi-threaded conv reductions round differently and can flip
    # a near-tie in the nearest-code search, which would make the comparison test the BLAS, not DDP.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_vqvae(VQVAETrainConfig(out=str(tmp_path / "single"), **ARGS), progress=False)
    finally:
        torch.set_num_threads(threads)
    a = load_file(str(tmp_path / "ddp" / "vqvae" / "model.safetensors"))
    b = load_file(str(tmp_path / "single" / "vqvae" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-4, rtol=1e-4), k
    assert sum(k.endswith("codebook") for k in a) == 2  # both levels' codebooks were compared


WORKER = """
import json, os, sys, torch
from torch import nn
from archkit.train.distributed import cleanup_distributed, init_distributed

def comm_threads():
    names = []
    for t in os.listdir("/proc/self/task"):
        try:
            names.append(open(f"/proc/self/task/{t}/comm").read().strip())
        except OSError:
            pass
    return sorted(n for n in names if "gloo" in n)

info = init_distributed()
ddp = nn.parallel.DistributedDataParallel(nn.Linear(4, 4))
ddp(torch.randn(2, 4)).sum().backward()
during = comm_threads()
del ddp
cleanup_distributed(info)
sys.stdout.write(json.dumps({"rank": info.rank, "during": during, "after": comm_threads()}) + "\\n")  # one write
sys.stdout.flush()
"""


def test_cleanup_joins_the_process_group_threads_before_exit(tmp_path):
    # gloo threads still running at interpreter shutdown are what made a rank abort at exit
    # ("terminate called without an active exception"): none may outlive cleanup_distributed.
    if not os.path.isdir("/proc/self/task"):
        import pytest

        pytest.skip("thread names are read from /proc (Linux)")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the two ranks share one stdout: read every JSON object in it, even two that landed on one line
    decoder, text, reports = json.JSONDecoder(), proc.stdout, []
    at = text.find("{")
    while at != -1:
        report, end = decoder.raw_decode(text, at)
        reports.append(report)
        at = text.find("{", end)
    assert sorted(r["rank"] for r in reports) == [0, 1]
    for r in reports:
        assert r["during"], r  # the probe sees gloo's threads while the group is alive
        assert r["after"] == [], r
