"""`archkit export --run DIR`: a checkpoint saved after recorded surgery is rebuilt, exported and checked."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from archkit.cli.main import cli
from archkit.loading import load_model
from archkit.models import ResNet, ResNetConfig
from archkit.surgery import fuse_bn, randomize_bn_stats, record_step
from archkit.train import save_checkpoint

pytest.importorskip("onnxruntime", reason="the `export` extra is not installed")


def test_export_cli_replays_surgery_and_checks_the_onnx_file(tmp_path):
    import onnxruntime as ort

    torch.set_num_threads(1)
    cfg = ResNetConfig(widths=(8, 16), blocks=(1, 1))
    fused, _ = fuse_bn(randomize_bn_stats(ResNet(cfg), seed=0).eval())
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint", fused, cfg, surgery=[record_step("fuse_bn")], input_shape=[1, 16, 16])
    out = tmp_path / "net.onnx"
    res = CliRunner().invoke(cli, ["export", "--run", str(run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "after fuse_bn" in res.output and "checked with onnxruntime" in res.output
    x = torch.randn(1, 1, 16, 16)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        want = load_model(run / "checkpoint")(x)
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-5)
    again = CliRunner().invoke(cli, ["export", "--run", str(run), "--out", str(out)])
    assert again.exit_code == 0, again.output  # archkit's own export is written over
    theirs = tmp_path / "theirs.onnx"
    theirs.write_bytes(b"a model someone else made")
    refused = CliRunner().invoke(cli, ["export", "--run", str(run), "--out", str(theirs)])
    assert refused.exit_code == 2 and "archkit did not write it" in refused.output
    assert theirs.read_bytes() == b"a model someone else made"


def test_export_cli_errors_name_the_argument(tmp_path):
    res = CliRunner().invoke(cli, ["export", "--run", str(tmp_path), "--out", str(tmp_path / "x.onnx")])
    assert res.exit_code != 0 and "--run" in res.output and "no checkpoint" in res.output


def test_export_output_is_archkits_own_lines_only(tmp_path):
    # a fresh process: torch's ONNX registry logs its "torchvision is not installed. Skipping ..." lines once per process
    import subprocess
    import sys

    cfg = ResNetConfig(widths=(8,), blocks=(1,))
    model = ResNet(cfg).eval()
    save_checkpoint(tmp_path / "run", model, cfg, input_shape=[1, 8, 8])
    out = subprocess.run(
        [sys.executable, "-m", "archkit", "export", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "m.onnx")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    assert [ln.split()[0] for ln in lines] == ["exported", "checked"], lines
