import json

import torch
from click.testing import CliRunner

from archkit.cli.main import cli
from archkit.cli.surgery import load_model_and_input
from archkit.layers import DecomposedConv2d, LowRankConv2d
from archkit.surgery import output_error

FAST = ["--model", "resnet-digits", "--batch-size", "2", "--repeats", "1"]


def _ok(args):
    result = CliRunner().invoke(cli, ["surgery", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_decompose_then_lowrank_checkpoint_roundtrip(tmp_path):
    out = _ok(["decompose", *FAST, "--rank", "2", "--out", str(tmp_path / "dec")])
    assert "decomposed" in out and "1-D" in out and "latency ms" in out and "relative" in out
    step = json.loads((tmp_path / "dec" / "config.json").read_text())["surgery"][0]
    assert step["op"] == "decompose" and set(step["rank"].values()) == {2}

    out = _ok(["lowrank", "--checkpoint", str(tmp_path / "dec"), "--rank", "2", "--repeats", "1",
               "--out", str(tmp_path / "both")])
    assert "factorized" in out and "vertical" not in out  # 1-D convs inside DecomposedConv2d are left alone
    # the saved structure is rebuilt from config.json and the weights load into it
    model, x = load_model_and_input(None, tmp_path / "both", batch_size=2)
    mods = list(model.modules())
    assert any(isinstance(m, DecomposedConv2d) for m in mods) and any(isinstance(m, LowRankConv2d) for m in mods)
    dec, _ = load_model_and_input(None, tmp_path / "dec", batch_size=2)
    from archkit.surgery import lowrank
    again, _ = lowrank(dec, rank=2, example_inputs=x)
    with torch.no_grad():
        assert output_error(again(x), model(x))[1] <= 1e-6


def test_energy_layers_and_finetune(tmp_path):
    out = _ok(["lowrank", *FAST, "--energy", "0.5", "--layers", "head", "--finetune-epochs", "1"])
    assert "not selected by layers=" in out and "fine-tune: 1 epoch(s)" in out


def test_bad_arguments_give_clean_errors():
    runner = CliRunner()
    for args in (["--rank", "0"], ["--energy", "1.5"], ["--energy", "0"]):
        result = runner.invoke(cli, ["surgery", "lowrank", *FAST, *args])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "--rank" in result.output or "--energy" in result.output
