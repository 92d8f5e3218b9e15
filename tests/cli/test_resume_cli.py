"""`--resume` from the command line: flags left out keep the saved run, a changed architecture is one line, exit 2."""

import dataclasses
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from archkit.cli.main import cli
from archkit.train import read_config
from archkit.train.resume import NEVER_RESTORED

TINY = ["--image-size", "16", "--hidden-channels", "16", "--res-blocks", "1", "--res-channels", "8", "--code-dim", "8"]
TINY += ["--num-codes", "16", "--batch-size", "8", "--eval-every", "1", "--quiet"]


def _run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_line_error(result, flag):
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith(f"Error: {flag}:"), result.output


def test_vqvae_resume_keeps_the_saved_quantizer_and_refuses_another(tmp_path):
    run = tmp_path / "run"
    assert _run(["vqvae", "train", "--out", run, "--steps", "1", "--quantizer", "rotation", *TINY]).exit_code == 0
    _one_line_error(
        _run(["vqvae", "train", "--out", run, "--steps", "2", "--resume", "--quantizer", "ema"]), "--quantizer"
    )
    _one_line_error(
        _run(["vqvae", "train", "--out", run, "--steps", "2", "--resume", "--preset", "natural-64"]), "--data"
    )
    r = _run(["vqvae", "train", "--out", run, "--steps", "2", "--resume", "--quiet"])  # model flags all left out
    assert r.exit_code == 0, r.output
    assert json.loads((run / "train_config.json").read_text())["quantizer"] == "rotation"
    assert read_config(run / "vqvae")["config"]["quantizer"] == "rotation" and read_config(run / "vqvae")["step"] == 2


def test_seq_resume_alone_continues_the_saved_run_and_refuses_a_new_architecture(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.standard_normal((20, 12, 2)).astype(np.float32))
    np.save(tmp_path / "Y.npy", np.arange(20) % 2)
    run = tmp_path / "run"
    first = [
        "seq",
        "train",
        "--x",
        tmp_path / "X.npy",
        "--y",
        tmp_path / "Y.npy",
        "--out",
        run,
        "--hidden",
        "4",
        "--model",
        "lstm",
    ]
    assert _run([*first, "--layers", "1", "--epochs", "1", "--batch-size", "8"]).exit_code == 0
    _one_line_error(_run(["seq", "train", "--out", run, "--resume", "--epochs", "2", "--hidden", "8"]), "--hidden")
    _one_line_error(_run(["seq", "train", "--out", run, "--resume", "--epochs", "2", "--seed", "3"]), "--seed")
    r = _run(["seq", "train", "--out", run, "--resume", "--epochs", "2"])  # no data, no model flags: the saved ones
    assert r.exit_code == 0, r.output
    meta = read_config(run / "checkpoint")
    assert (meta["config"]["hidden"], meta["train_config"]["hidden"], meta["train_config"]["layers"]) == (4, 4, 1)
    assert meta["train_config"]["epochs"] == 2 and meta["train_config"]["x"] == str(tmp_path / "X.npy")


@pytest.mark.parametrize(
    "command, module, rename",
    [
        (("vqvae", "train"), "archkit.train.vqvae:VQVAETrainConfig", {}),
        (("seq", "train"), "archkit.train.sequence:SeqTrainConfig", {"x_path": "x", "y_path": "y"}),
        (("prior", "train"), "archkit.train.prior:PriorTrainConfig", {}),
    ],
)
def test_resume_help_lists_exactly_the_flags_that_may_change(command, module, rename):
    import importlib

    from archkit.cli.main import cli as group

    path, cls_name = module.split(":")
    mod = importlib.import_module(path)
    fields = {f.name for f in dataclasses.fields(getattr(mod, cls_name))}
    changeable = fields - set(mod.RESUME_FIXED) - set(NEVER_RESTORED) - {"level"} | {"device", "precision", "compile"}
    cmd = group.get_command(None, command[0]).get_command(None, command[1])
    flags = {p.opts[0] for p in cmd.params if rename.get(p.name, p.name) in changeable}
    resume = next(p for p in cmd.params if p.name == "resume")
    listed = set(re.findall(r"--[a-z-]+", resume.help.split("These may change:")[1]))
    assert listed == flags
