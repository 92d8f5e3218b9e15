"""Codes folders as users really meet them: nothing of theirs deleted, labels with their pixels, provenance
checked, hand-edited meta.json refused field by field, a killed encode's temp folder cleaned up."""

import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from archkit import UnreadableFilesWarning
from archkit.cli.main import cli
from archkit.data import open_image_dataset
from archkit.train import VQVAETrainConfig, encode_dataset, train_vqvae
from archkit.train.codes import load_codes
from archkit.train.prior import PriorTrainConfig, train_prior
from archkit.train.provenance import StaleCodesWarning

TINY = dict(
    image_size=16,
    hidden_channels=16,
    res_blocks=1,
    res_channels=8,
    code_dim=8,
    num_codes=16,
    batch_size=8,
    log_every=1,
    restart_after=2,
    workers=0,
)
PRIOR = dict(steps=1, batch_size=4, eval_every=1, channels=8, layers=1, device="cpu")


@pytest.fixture(scope="module")
def jpeg_run(tmp_path_factory):
    """A 2-step VQ-VAE on 2 classes of noisy 64x64 JPEGs: 'dark' (0..60) and 'light' (195..255).

    (64x64 so a JPEG cut to 70 % still passes Pillow's scan and fails only when decoded.)"""
    root = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    for cls, lo in (("dark", 0), ("light", 195)):
        (root / cls).mkdir()
        for i in range(24):
            Image.fromarray(rng.integers(lo, lo + 61, (64, 64)).astype(np.uint8)).save(root / cls / f"{i:02d}.jpg")
    run = tmp_path_factory.mktemp("run")
    train_vqvae(VQVAETrainConfig(out=str(run), data=str(root), steps=2, eval_every=2, **TINY), progress=False)
    return run, root


def _one_line_error(res):
    assert res.exit_code != 0 and res.exception is not None and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    return res.output


def test_encode_never_deletes_a_user_folder_or_the_run(jpeg_run, tmp_path):
    run, _ = jpeg_run
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("three years of work")
    res = CliRunner().invoke(cli, ["vqvae", "encode", "--run", str(run), "--out", str(mine), "--workers", "0"])
    assert "thesis.txt" in _one_line_error(res)
    assert (mine / "thesis.txt").read_text() == "three years of work"
    res = CliRunner().invoke(cli, ["vqvae", "encode", "--run", str(run), "--out", str(run), "--workers", "0"])
    assert "is also the input --run" in _one_line_error(res)
    with pytest.raises(ValueError, match="holds archkit's run folder"):  # the library refuses it by its kind
        encode_dataset(run, out=run)
    assert (run / "vqvae" / "model.safetensors").is_file() and (run / "train_config.json").is_file()
    out = tmp_path / "codes"
    for _ in range(2):  # its own codes folder is replaced as a whole
        assert encode_dataset(run, out=out, workers=0) == out
    assert json.loads((out / "meta.json").read_text())["format"] == "archkit-codes"


@pytest.mark.parametrize("workers", [0, 2])
def test_encode_writes_each_images_own_label(jpeg_run, tmp_path, workers):
    run, root = jpeg_run
    data = tmp_path / "data"
    data.mkdir()
    for cls in ("dark", "light"):
        _copy(root / cls, data / cls)
    ds = open_image_dataset(data, "train", 16)
    last_dark = max(k for k in range(len(ds)) if int(ds.labels[k]) == 0)
    victim = ds.folder.files[ds.indices[last_dark]]
    victim.write_bytes(victim.read_bytes()[: int(victim.stat().st_size * 0.7)])  # passes the scan, fails to decode
    with pytest.warns(UnreadableFilesWarning) as caught:  # in-process reads also warn at the first failure
        out = encode_dataset(run, data=str(data), out=tmp_path / "codes", workers=workers)
    assert {w.category for w in caught} == {UnreadableFilesWarning}
    assert any("1 image file(s)" in str(w.message) and victim.name in str(w.message) for w in caught)
    z = load_codes(run, out)
    r = last_dark
    assert np.array_equal(z["train_codes_1"][r], z["train_codes_1"][r + 1])  # replaced by the next image...
    assert z["train_labels"][r] == z["train_labels"][r + 1] == 1  # ...with that image's label, not 0


def _copy(src, dst):
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())


def test_killed_encodes_temp_folder_is_cleaned_by_the_next(jpeg_run, tmp_path):
    run, _ = jpeg_run
    dead = tmp_path / ".codes.tmp-999999"  # no process has this id: a killed encode's leftovers
    dead.mkdir()
    (dead / "train_codes_0.npy").write_bytes(b"\0" * 100)
    encode_dataset(run, out=tmp_path / "codes", workers=0)
    assert not dead.exists() and not list(tmp_path.glob(".codes.*"))


def test_codes_from_other_weights_are_refused_naming_both_steps(jpeg_run, tmp_path):
    run, root = jpeg_run
    fork = tmp_path / "fork"
    shutil.copytree(run, fork)
    encode_dataset(fork, workers=0)
    assert json.loads((fork / "codes" / "meta.json").read_text())["vqvae_step"] == 2
    cfg = VQVAETrainConfig(out=str(fork), data=str(root), steps=3, eval_every=3, resume=True, **TINY)
    train_vqvae(cfg, progress=False)
    with pytest.raises(ValueError, match=r"step 2 .* now holds the VQ-VAE at step 3.*--accept-stale-codes"):
        train_prior(PriorTrainConfig(run=str(fork), level="top", **PRIOR), progress=False)
    with pytest.warns(StaleCodesWarning, match="used anyway"):
        train_prior(PriorTrainConfig(run=str(fork), level="top", accept_stale_codes=True, **PRIOR), progress=False)
    res = CliRunner().invoke(cli, ["sample", "--run", str(fork), "--n", "1", "--out", str(tmp_path / "s.png")])
    assert "step 2" in _one_line_error(res) and "step 3" in res.output


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda m: m.update(splits=[1, 2]), "splits"),
        (lambda m: m["splits"].pop("test"), "splits.test"),
        (lambda m: m["splits"]["train"].pop("shapes"), "splits.train.shapes"),
        (lambda m: m["splits"]["train"].update(n=0), "splits.train.n"),
        (lambda m: m.update(num_codes="16"), "num_codes"),
        (lambda m: m["splits"]["test"].update(shapes=[[3, 3], [4, 4]]), "test_codes_0"),
    ],
)
def test_hand_edited_meta_json_is_one_clear_error(jpeg_run, tmp_path, edit, field):
    run, _ = jpeg_run
    out = encode_dataset(run, out=tmp_path / "codes", workers=0)
    meta = json.loads((out / "meta.json").read_text())
    edit(meta)
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=rf"meta\.json.*{field}|{field}.*meta\.json") as err:
        load_codes(run, out)
    assert "\n" not in str(err.value)
    assert os.path.isdir(out)
