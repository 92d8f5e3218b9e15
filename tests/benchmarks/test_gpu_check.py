"""benchmarks/gpu_check.py: skips cleanly without a GPU; its sections run end to end on the CPU in tiny mode."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_says_skipped_and_exits_0(gpu_check, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--out", str(out)]) == 0
    assert "no CUDA GPU on this machine; skipped" in capsys.readouterr().out
    assert not out.exists()  # nothing measured, nothing written


def test_section_limits_fit_in_seven_minutes(gpu_check):
    assert sum(gpu_check.BUDGETS.values()) <= 390


@pytest.mark.parametrize(
    "name",
    [
        "vqvae_fp32",
        "vqvae_bf16",
        "vqvae_fsq",
        "vqvae_rotation",
        "prior",
        "sampling",
        "cpu_baseline",
        "rocket",
        "rocket_stream",
        "lstm_train",
    ],
)
def test_tiny_sections_measure_on_the_cpu(gpu_check, name):
    args = gpu_check.argparse.Namespace(tiny=True, force_cpu=True, budget_scale=0.1, nproc=2)
    r = gpu_check.run_section(name, args)
    assert r["device"] == "cpu"
    if name.startswith("vqvae") or name == "cpu_baseline":
        assert r["images_per_s"] > 0 and r["timed_steps"] >= 2
        assert r["precision"] == ("bf16" if name == "vqvae_bf16" else "32")
    elif name == "prior":
        assert r["steps_per_s_32"] > 0 and r["steps_per_s_bf16"] > 0
    elif name == "rocket":
        speeds = r["cases_per_s"]
        assert set(speeds) == {"aeon", "archkit_exact", "archkit_conv"} and min(speeds.values()) > 0
        assert r["ratio_over_aeon"]["archkit_conv"] == speeds["archkit_conv"] / speeds["aeon"]
        # same parameters: the same features (conv: up to float32 near-ties of an output with a bias)
        assert r["features_differing_fraction"]["conv"] < 1e-3 and r["features_max_abs_diff"]["exact"] == 0
    elif name == "rocket_stream":
        assert r["device_cases_per_s"] > 0 and r["cpu_cases_per_s"] > 0 and r["device_transform_s"] > 0
        assert r["device_over_cpu"] == r["device_cases_per_s"] / r["cpu_cases_per_s"]
    elif name == "lstm_train":
        for key in ("none_32", "conv_32"):  # bf16 runs on a GPU only (no bf16 LSTM on the CPU backend)
            assert r[f"{key}_sequences_per_s"] > 0 and r[f"{key}_timed_steps"] >= 1
    else:
        assert r["fast_s"] > 0 and r["naive_s_extrapolated"] > 0 and r["naive_timed_positions"] >= 1
        assert r["naive_matches_fast_on_timed_positions"]  # both samplers draw the same codes
        assert "scaled linearly" in r["naive_note"]


def test_orchestrator_writes_json_with_ratios(gpu_check, tmp_path):
    out = tmp_path / "gc.json"
    assert (
        gpu_check.main(
            [
                "--force-cpu",
                "--tiny",
                "--only",
                "vqvae_fp32,vqvae_bf16",
                "--out",
                str(out),
                "--budget-scale",
                "10",  # the limits are for a GPU machine, not a loaded CI box
                "--cpu-baseline-json",
                str(_baseline(tmp_path)),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["force_cpu"] and report["tiny"] and set(report["sections"]) == {"vqvae_fp32", "vqvae_bf16"}
    assert all(s["ok"] for s in report["sections"].values()), report["sections"]
    fp32 = report["sections"]["vqvae_fp32"]["images_per_s"]
    bf16 = report["sections"]["vqvae_bf16"]["images_per_s"]
    assert report["summary"]["bf16_over_fp32"] == pytest.approx(bf16 / fp32)
    assert report["summary"]["gpu_best_over_cpu"] == pytest.approx(max(fp32, bf16) / 10.0)


def _baseline(tmp_path):
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps({"images_per_s": 10.0}))
    return path


@pytest.mark.slow
def test_full_tiny_run_on_the_cpu(tmp_path):
    import subprocess

    out = tmp_path / "all.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--force-cpu", "--tiny", "--budget-scale", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert all(s["ok"] for s in report["sections"].values()), report["sections"]
    assert report["sections"]["ddp"]["replica_divergence"] < 1e-6
