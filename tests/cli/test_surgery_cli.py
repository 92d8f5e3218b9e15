import json

from click.testing import CliRunner

from archkit.cli.main import cli

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
