"""`archkit vqvae train|encode|reconstruct` end to end on a tiny model, plus clean error messages."""

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from archkit.cli.main import cli
from archkit.train import read_config
from archkit.train.codes import load_codes

TINY = [
    "--image-size",
    "16",
    "--hidden-channels",
    "16",
    "--res-blocks",
    "1",
    "--res-channels",
    "8",
    "--code-dim",
    "8",
    "--num-codes",
    "16,32",
    "--batch-size",
    "8",
    "--quiet",
]


def test_train_resume_encode_reconstruct(tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(cli, ["vqvae", "train", "--out", str(run), "--steps", "2", "--eval-every", "2", *TINY])
    assert res.exit_code == 0, res.output
    assert "done at step 2" in res.output and "held-out PSNR" in res.output
    res = runner.invoke(
        cli, ["vqvae", "train", "--out", str(run), "--steps", "3", "--eval-every", "2", "--resume", *TINY]
    )
    assert res.exit_code == 0, res.output
    assert read_config(run / "vqvae")["step"] == 3
    assert (run / "recon.png").is_file()

    res = runner.invoke(cli, ["vqvae", "encode", "--run", str(run), "--out", str(tmp_path / "codes"), "--workers", "0"])
    assert res.exit_code == 0, res.output
    z = load_codes(run, tmp_path / "codes")
    assert z["num_codes"].tolist() == [16, 32] and z["test_codes_0"].shape[1:] == (2, 2)

    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(0).random((24, 20)) * 255).astype(np.uint8)).save(img)
    res = runner.invoke(
        cli, ["vqvae", "reconstruct", "--run", str(run), str(img), str(img), "--out", str(tmp_path / "g.png")]
    )
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "g.png").size == (2 * 18 + 2, 2 * 18 + 2)


def test_clean_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["vqvae", "encode", "--run", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "Error: --run: the folder" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["vqvae", "reconstruct", "--run", str(tmp_path / "missing"), "x.png"])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(
        cli,
        ["vqvae", "train", "--out", str(tmp_path / "r"), "--steps", "1", *TINY[:-1], "--image-size", "20", "--quiet"],
    )
    assert res.exit_code != 0 and "20x20 is not divisible by 8" in res.output
    res = runner.invoke(
        cli, ["vqvae", "train", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "nope"), "--steps", "1"]
    )
    assert res.exit_code != 0 and "neither a built-in set" in res.output
    res = runner.invoke(cli, ["vqvae", "train", "--out", str(tmp_path / "r"), "--num-codes", "a,b", "--steps", "1"])
    assert res.exit_code != 0 and "comma-separated" in res.output


def test_preset_list_and_flags_override_the_preset(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["vqvae", "train", "--preset", "list"])
    assert res.exit_code == 0, res.output
    assert all(name in res.output for name in ("digits-32", "natural-64", "paper-256"))
    run = tmp_path / "run"
    # natural-64's data, the explicit size and channels: the flags win over the preset's fields
    res = runner.invoke(
        cli, ["vqvae", "train", "--preset", "natural-64", "--out", str(run), "--steps", "1", "--eval-every", "1", *TINY]
    )
    assert res.exit_code == 0, res.output
    meta = read_config(run / "vqvae")
    assert meta["data"] == "natural" and meta["image_size"] == 16
    assert meta["config"]["in_channels"] == 3 and meta["config"]["hidden_channels"] == 16
    # the layout table is printed at the start of every run
    # natural-64 halves the image once at the bottom: 16x16 images -> 4x4 top, 8x8 bottom codes
    assert "feature map" in res.output and "16x4x4" in res.output and "16x8x8" in res.output
    assert meta["config"]["bottom_stride"] == 2
    saved = json.loads((run / "train_config.json").read_text())
    assert (saved["lr"], saved["lr_schedule"], saved["augment"]) == (1e-3, "cosine", "none")
    res = runner.invoke(
        cli,
        [
            "vqvae",
            "train",
            "--out",
            str(tmp_path / "r3"),
            "--steps",
            "1",
            "--eval-every",
            "1",
            "--bottom-stride",
            "2",
            "--augment",
            "flip-permute",
            *TINY,
        ],
    )
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "r3" / "train_config.json").read_text())
    assert (saved["bottom_stride"], saved["augment"]) == (2, "flip-permute")
    assert read_config(tmp_path / "r3" / "vqvae")["config"]["bottom_stride"] == 2 and "16x8x8" in res.output
    res = runner.invoke(cli, ["vqvae", "train", "--out", str(tmp_path / "r4"), "--bottom-stride", "3"])
    assert res.exit_code != 0 and "--bottom-stride" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["vqvae", "train", "--preset", "nope", "--out", str(tmp_path / "r2")])
    assert res.exit_code != 0 and "preset: expected one of" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["vqvae", "train", "--steps", "1"])
    assert res.exit_code != 0 and "--out" in res.output


def test_no_preset_keeps_the_defaults(tmp_path):
    from archkit.train.vqvae import VQVAETrainConfig

    cfg = VQVAETrainConfig.from_preset(None, out="x")
    assert cfg == VQVAETrainConfig(out="x")
    assert VQVAETrainConfig.from_preset("digits-32", out="x").model_config(1) == VQVAETrainConfig(out="x").model_config(
        1
    )
    paper = VQVAETrainConfig.from_preset("paper-256", out="x", res_blocks=1)
    assert (paper.image_size, paper.layout, paper.res_channels, paper.res_blocks) == (256, "paper", 64, 1)


def test_lr_schedule_flag_and_bad_schedule(tmp_path):
    import json

    import pytest

    from archkit.train.vqvae import VQVAETrainConfig, train_vqvae

    runner = CliRunner()
    run = tmp_path / "cos"
    res = runner.invoke(
        cli,
        [
            "vqvae",
            "train",
            "--out",
            str(run),
            "--steps",
            "2",
            "--eval-every",
            "2",
            "--lr-schedule",
            "cosine",
            "--lr",
            "1e-3",
            *TINY,
        ],
    )
    assert res.exit_code == 0, res.output
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["lr_schedule"] == "cosine" and saved["lr"] == 1e-3 and saved["preset"] is None
    with pytest.raises(ValueError, match="lr_schedule: expected one of"):
        train_vqvae(VQVAETrainConfig(out=str(tmp_path / "bad"), lr_schedule="step"), progress=False)
