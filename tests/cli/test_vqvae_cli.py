"""`archkit vqvae train|encode|reconstruct` end to end on a tiny model, plus clean error messages."""
import numpy as np
from click.testing import CliRunner
from PIL import Image

from archkit.cli.main import cli
from archkit.train import read_config
from archkit.train.codes import load_codes

TINY = ["--image-size", "16", "--hidden-channels", "16", "--res-blocks", "1", "--res-channels", "8",
        "--code-dim", "8", "--num-codes", "16,32", "--batch-size", "8", "--quiet"]


def test_train_resume_encode_reconstruct(tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(cli, ["vqvae", "train", "--out", str(run), "--steps", "2", "--eval-every", "2", *TINY])
    assert res.exit_code == 0, res.output
    assert "done at step 2" in res.output and "held-out PSNR" in res.output
    res = runner.invoke(cli, ["vqvae", "train", "--out", str(run), "--steps", "3", "--eval-every", "2", "--resume", *TINY])
    assert res.exit_code == 0, res.output
    assert read_config(run / "vqvae")["step"] == 3
    assert (run / "recon.png").is_file()

    res = runner.invoke(cli, ["vqvae", "encode", "--run", str(run), "--out", str(tmp_path / "codes"), "--workers", "0"])
    assert res.exit_code == 0, res.output
    z = load_codes(run, tmp_path / "codes")
    assert z["num_codes"].tolist() == [16, 32] and z["test_codes_0"].shape[1:] == (2, 2)

    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(0).random((24, 20)) * 255).astype(np.uint8)).save(img)
    res = runner.invoke(cli, ["vqvae", "reconstruct", "--run", str(run), str(img), str(img), "--out", str(tmp_path / "g.png")])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "g.png").size == (2 * 18 + 2, 2 * 18 + 2)


def test_clean_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["vqvae", "encode", "--run", str(tmp_path / "missing")])
    assert res.exit_code != 0 and "Error: no trained VQ-VAE" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["vqvae", "reconstruct", "--run", str(tmp_path / "missing"), "x.png"])
    assert res.exit_code != 0 and "no trained VQ-VAE" in res.output
    res = runner.invoke(cli, ["vqvae", "train", "--out", str(tmp_path / "r"), "--steps", "1", *TINY[:-1],
                              "--image-size", "20", "--quiet"])
    assert res.exit_code != 0 and "20x20 is not divisible by 8" in res.output
    res = runner.invoke(cli, ["vqvae", "train", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "nope"), "--steps", "1"])
    assert res.exit_code != 0 and "neither a built-in set" in res.output
    res = runner.invoke(cli, ["vqvae", "train", "--out", str(tmp_path / "r"), "--num-codes", "a,b", "--steps", "1"])
    assert res.exit_code != 0 and "comma-separated" in res.output
