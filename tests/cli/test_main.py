import subprocess
import sys

from click.testing import CliRunner

from archkit.cli.main import COMMANDS, cli


def test_every_command_has_help():
    runner = CliRunner()
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in result.output
        sub = runner.invoke(cli, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)
        # groups: every subcommand's --help works too
        cmd = cli.get_command(None, name)
        for subname in getattr(cmd, "commands", {}):
            r = runner.invoke(cli, [name, subname, "--help"])
            assert r.exit_code == 0, (name, subname, r.output)


def test_console_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "archkit", "--help"], capture_output=True, text=True, check=True)
    assert "Commands" in out.stdout


def test_value_errors_become_clean_messages(tmp_path):
    result = CliRunner().invoke(cli, ["study", "no-such-study", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def _one_clean_line(result):
    assert result.exit_code != 0, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


import pytest  # noqa: E402


@pytest.mark.parametrize(
    "expr, says", [("x + 9**9**9", "exponent"), ("x + " + "9" * 400, "characters"), ("x+" * 999 + "x", "levels deep")]
)
def test_fit_with_hostile_expressions_prints_one_line_and_fails(tmp_path, expr, says):
    result = CliRunner().invoke(cli, ["fit", "--expr", expr, "--domain", "x=-1:1", "--out", str(tmp_path)])
    assert says in _one_clean_line(result)
    assert not (tmp_path / "checkpoint").exists()


def test_hostile_expression_through_the_real_console_entry_point(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "archkit", "fit", "--expr", "x + 9**9**9", "--domain", "x=-1:1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr + out.stdout
    assert [line for line in out.stderr.splitlines() if line.strip()] == [out.stderr.strip()]
    assert "exponent" in out.stderr


def test_corrupt_and_malformed_checkpoints_print_one_line(tmp_path):
    import json

    from archkit.models import ResNet, ResNetConfig
    from archkit.train import save_checkpoint

    model = ResNet(ResNetConfig(widths=[8, 8, 8]))
    ck = tmp_path / "ck"
    save_checkpoint(ck, model, model.config)
    (ck / "manifest.json").unlink()  # a folder from before manifests: the files themselves are checked
    weights = (ck / "model.safetensors").read_bytes()
    (ck / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    line = _one_clean_line(CliRunner().invoke(cli, ["surgery", "fuse", "--checkpoint", str(ck)]))
    assert "model.safetensors" in line and str(ck) in line
    (ck / "model.safetensors").write_bytes(weights)
    meta = json.loads((ck / "config.json").read_text())
    del meta["config"]["act"]
    (ck / "config.json").write_text(json.dumps(meta))
    line = _one_clean_line(CliRunner().invoke(cli, ["surgery", "fuse", "--checkpoint", str(ck)]))
    assert "config.json" in line and "'act'" in line
    (ck / "config.json").write_text("[1, 2]")
    assert "expected a JSON object" in _one_clean_line(
        CliRunner().invoke(cli, ["surgery", "fuse", "--checkpoint", str(ck)])
    )
    line = _one_clean_line(CliRunner().invoke(cli, ["surgery", "fuse", "--checkpoint", str(tmp_path / "nowhere")]))
    assert "does not exist" in line


@pytest.mark.parametrize(
    "command",
    [["sample"], ["evaluate"], ["prior", "train"], ["vqvae", "encode"], ["vqvae", "reconstruct"], ["export"]],
)
def test_a_missing_run_folder_is_named_as_missing(tmp_path, command):
    missing = tmp_path / "nope"
    line = _one_clean_line(CliRunner().invoke(cli, [*command, "--run", str(missing)]))
    assert line == f"Error: --run: the folder '{missing}' does not exist", line
