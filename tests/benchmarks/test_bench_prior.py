"""benchmarks/bench_prior.py --attention-study: equal-time schedule and the record it writes."""

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_prior.py"


@pytest.fixture(scope="module")
def bench_prior():
    spec = importlib.util.spec_from_file_location("bench_prior", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_prior"] = module
    spec.loader.exec_module(module)
    return module


def test_time_lr_warms_up_then_decays_to_a_tenth(bench_prior):
    lr = [bench_prior.time_lr(1e-3, t, 100.0) for t in range(0, 101)]
    assert lr[0] < lr[4] < lr[5] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lr[5:]))
    assert lr[100] == pytest.approx(1e-4)
    assert bench_prior.time_lr(1e-3, 250.0, 100.0) == pytest.approx(1e-4)  # past the budget: stays at the floor


def test_attention_study_trains_both_variants_per_seed_and_reports_their_ratio(bench_prior, monkeypatch, tmp_path):
    gen = torch.Generator().manual_seed(0)
    train, test = torch.randint(0, 16, (48, 4, 4), generator=gen), torch.randint(0, 16, (12, 4, 4), generator=gen)
    monkeypatch.setattr(bench_prior, "top_codes", lambda folder: (train, test, 16))
    out = tmp_path / "att.json"
    record = bench_prior.attention_study(
        "unused", [0, 1], budget_s=0.3, attention_every=4, out=str(out), batch=8, chunk_s=0.1, sample_maps=2
    )
    assert json.loads(out.read_text())["seeds"] == [0, 1]
    runs = record["runs"]
    assert [(r["seed"], r["variant"]) for r in runs] == [
        (0, "no attention"),
        (0, "attention every 4"),
        (1, "no attention"),
        (1, "attention every 4"),
    ]
    assert all(r["steps"] >= 1 and r["train_s"] >= 0.3 for r in runs)
    with_attention = [r for r in runs if r["variant"] != "no attention"]
    assert all(r["params"] > runs[0]["params"] for r in with_attention)  # the attention blocks are there
    ratios = [runs[i + 1]["held_out_bits_per_code"] / runs[i]["held_out_bits_per_code"] for i in (0, 2)]
    assert record["nll_ratio_attention_over_none_per_seed"] == pytest.approx(ratios)
    assert record["top_map"] == [4, 4] and record["num_codes"] == 16
