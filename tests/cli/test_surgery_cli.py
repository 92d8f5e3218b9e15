"""`archkit surgery ...` on tiny models: BatchNorm commands, then lowrank/decompose (cli/factorize.py)."""

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


def test_fuse_saves_a_reloadable_checkpoint(tmp_path):
    out = _ok(["fuse", *FAST, "--randomize-bn", "--out", str(tmp_path / "fused")])
    assert "13 of 13 BatchNorm layers folded" in out and "latency ms" in out
    assert json.loads((tmp_path / "fused" / "config.json").read_text())["surgery"] == [{"op": "fuse_bn"}]
    out = _ok(["compare", *FAST, "--randomize-bn", "--candidate", str(tmp_path / "fused")])
    err = float(out.split("relative ")[1].split()[0])
    assert err < 1e-5


def test_freeze_replace_selu_commands(tmp_path):
    assert "frozen" in _ok(["freeze", *FAST])
    out = _ok(["replace-norm", *FAST, "--norm", "group", "--num-groups", "4", "--out", str(tmp_path / "g")])
    assert "GroupNorm(4, 16)" in out
    out = _ok(["selu", "--checkpoint", str(tmp_path / "g"), "--repeats", "1"])
    assert "SELU" in out and "reinitialized" in out


def test_bad_sources_give_clean_errors(tmp_path):
    runner = CliRunner()
    both = runner.invoke(cli, ["surgery", "fuse", *FAST, "--checkpoint", str(tmp_path)])
    assert both.exit_code != 0 and "exactly one of --model" in both.output
    missing = runner.invoke(cli, ["surgery", "fuse", "--checkpoint", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "does not exist" in missing.output and "Traceback" not in missing.output
    unknown = runner.invoke(cli, ["surgery", "fuse", "--model", "resnet-1000"])
    assert unknown.exit_code != 0 and "resnet-digits" in unknown.output


def test_decompose_then_lowrank_checkpoint_roundtrip(tmp_path):
    out = _ok(["decompose", *FAST, "--rank", "2", "--out", str(tmp_path / "dec")])
    assert "decomposed" in out and "1-D" in out and "latency ms" in out and "relative" in out
    step = json.loads((tmp_path / "dec" / "config.json").read_text())["surgery"][0]
    assert step["op"] == "decompose" and set(step["rank"].values()) == {2}

    out = _ok(
        [
            "lowrank",
            "--checkpoint",
            str(tmp_path / "dec"),
            "--rank",
            "2",
            "--repeats",
            "1",
            "--out",
            str(tmp_path / "both"),
        ]
    )
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


def _save(folder, model):
    from archkit.train import save_checkpoint

    save_checkpoint(folder, model, model.config)
    return folder


def _kinds():
    from archkit.models import (
        VQVAE2,
        FunctionApproximator,
        FunctionApproximatorConfig,
        GatedPixelCNN,
        GatedPixelCNNConfig,
        SequenceClassifier,
        SequenceClassifierConfig,
        VQVAE2Config,
    )

    return {
        "seq": SequenceClassifier(
            SequenceClassifierConfig(
                in_features=3,
                num_classes=2,
                hidden=8,
                frontend="conv",
                conv_channels=6,
                conv_stride=2,
                conv_norm="batch",
                fcn_channels=4,
            )
        ),
        "pixelcnn": GatedPixelCNN(
            GatedPixelCNNConfig(
                num_codes=8, channels=8, layers=2, dropout=0.0, num_classes=3, cond_num_codes=5, cond_scale=2
            )
        ),
        "vqvae": VQVAE2(
            VQVAE2Config(
                in_channels=1, hidden_channels=8, res_blocks=1, res_channels=4, code_dim=4, num_codes=8, norm="batch"
            )
        ),
        "function": FunctionApproximator(FunctionApproximatorConfig(in_dim=2, hidden=8, layers=2)),
    }


def test_checkpoint_of_every_kind_gets_the_right_example_input(tmp_path):
    """`surgery fuse --checkpoint` on a sequence run once built an image-shaped input and failed."""
    for kind, model in _kinds().items():
        folder = _save(tmp_path / kind, model)
        model, x = load_model_and_input(None, folder, batch_size=2, randomize_bn=True)
        with torch.no_grad():
            model(*(x if isinstance(x, tuple) else (x,)))  # the input fits
        out = _ok(
            [
                "fuse",
                "--checkpoint",
                str(folder),
                "--randomize-bn",
                "--batch-size",
                "2",
                "--repeats",
                "1",
                "--out",
                str(tmp_path / f"{kind}-fused"),
            ]
        )
        assert "whole model checked" in out, out
        err = float(out.split("output error: max-abs")[1].split("relative ")[1].split()[0])
        assert err <= 1e-5, (kind, out)
        out = _ok(
            [
                "lowrank",
                "--checkpoint",
                str(folder),
                "--rank",
                "1",
                "--repeats",
                "1",
                "--out",
                str(tmp_path / f"{kind}-low"),
            ]
        )
        reloaded, x = load_model_and_input(None, tmp_path / f"{kind}-low", batch_size=2)  # replay rebuilds it
        with torch.no_grad():
            reloaded(*(x if isinstance(x, tuple) else (x,)))
