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
