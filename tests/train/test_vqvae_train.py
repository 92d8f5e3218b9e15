"""VQ-VAE training: run folder layout, exact resume, Ctrl-C, encode_dataset's memory-mapped codes folder."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from archkit.data import load_image_dataset
from archkit.models import load_vqvae
from archkit.train import VQVAETrainConfig, encode_dataset, read_config, read_jsonl, train_vqvae
from archkit.train.codes import load_codes

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
)


def test_run_folder_layout_and_metrics(tmp_path):
    cfg = VQVAETrainConfig(out=str(tmp_path / "run"), steps=4, eval_every=2, **TINY)
    result = train_vqvae(cfg, progress=False)
    run = tmp_path / "run"
    for name in (
        "vqvae/model.safetensors",
        "vqvae/config.json",
        "vqvae/trainer.pt",
        "recon.png",
        "metrics.jsonl",
        "train_config.json",
    ):
        assert (run / name).is_file(), name
    assert read_config(run / "vqvae")["step"] == 4
    evals = [r for r in read_jsonl(run / "metrics.jsonl") if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [2, 4]
    assert result["step"] == 4 and len(result["levels"]) == 2 and result["psnr"] > 0
    assert all(0 < lv["usage"] <= 1 for lv in result["levels"])
    assert json.loads((run / "train_config.json").read_text())["steps"] == 4
    with pytest.raises(ValueError, match="--resume"):  # never silently overwrite a run
        train_vqvae(cfg, progress=False)


def test_resume_continues_step_count_and_loss_curve(tmp_path):
    straight = VQVAETrainConfig(out=str(tmp_path / "a"), steps=6, eval_every=3, **TINY)
    train_vqvae(straight, progress=False)
    first = VQVAETrainConfig(out=str(tmp_path / "b"), steps=3, eval_every=3, **TINY)
    train_vqvae(first, progress=False)
    resumed = VQVAETrainConfig(out=str(tmp_path / "b"), steps=6, eval_every=3, resume=True, **TINY)
    train_vqvae(resumed, progress=False)
    losses = {}
    for run in ("a", "b"):
        recs = [r for r in read_jsonl(tmp_path / run / "metrics.jsonl") if r["split"] == "train"]
        losses[run] = [(r["step"], r["loss"]) for r in recs]
    assert [s for s, _ in losses["b"]] == [1, 2, 3, 4, 5, 6]
    assert np.allclose([l for _, l in losses["a"]], [l for _, l in losses["b"]], rtol=1e-5, atol=1e-7)
    wa, wb = (
        load_file(str(tmp_path / "a/vqvae/model.safetensors")),
        load_file(str(tmp_path / "b/vqvae/model.safetensors")),
    )
    for k in wa:
        assert torch.allclose(wa[k].float(), wb[k].float(), atol=1e-5), k


def test_augmented_half_stride_run_resumes_exactly_and_the_augmentation_is_applied(tmp_path):
    extra = dict(TINY, data="natural", bottom_stride=2, augment="flip-permute")
    straight = VQVAETrainConfig(out=str(tmp_path / "a"), steps=4, eval_every=2, **extra)
    train_vqvae(straight, progress=False)
    train_vqvae(VQVAETrainConfig(out=str(tmp_path / "b"), steps=2, eval_every=2, **extra), progress=False)
    train_vqvae(VQVAETrainConfig(out=str(tmp_path / "b"), steps=4, eval_every=2, resume=True, **extra), progress=False)
    plain = VQVAETrainConfig(out=str(tmp_path / "c"), steps=4, eval_every=2, **dict(extra, augment="none"))
    train_vqvae(plain, progress=False)
    loss = {r: [x["loss"] for x in read_jsonl(tmp_path / r / "metrics.jsonl") if x["split"] == "train"] for r in "abc"}
    assert np.allclose(loss["a"], loss["b"], rtol=1e-5, atol=1e-7)
    assert loss["a"][0] != loss["c"][0]  # same weights and images, augmented differently
    model = load_vqvae(tmp_path / "a")
    assert model.config.bottom_stride == 2
    assert [tuple(c.shape[1:]) for c in model.encode(torch.rand(1, 3, 16, 16))] == [(4, 4), (8, 8)]
    with pytest.raises(ValueError, match="augment: expected one of"):
        VQVAETrainConfig(augment="cutout")


def test_resume_with_a_different_model_config_is_a_clear_error(tmp_path):
    train_vqvae(VQVAETrainConfig(out=str(tmp_path), steps=1, eval_every=1, **TINY), progress=False)
    bad = VQVAETrainConfig(out=str(tmp_path), steps=2, eval_every=1, resume=True, **{**TINY, "code_dim": 4})
    with pytest.raises(ValueError, match=r"^--code-dim: the run was saved with 8, got 4"):  # refused before loading
        train_vqvae(bad, progress=False)


def test_encode_dataset_writes_every_level_and_labels(tmp_path):
    train_vqvae(VQVAETrainConfig(out=str(tmp_path), steps=2, eval_every=2, **TINY), progress=False)
    path = encode_dataset(tmp_path)
    assert path == tmp_path / "codes" and not list(tmp_path.glob(".codes.*"))  # no temp folder left behind
    z = load_codes(tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    model = load_vqvae(tmp_path)
    test = load_image_dataset("digits", "test", 16)
    assert z["num_codes"].tolist() == [16, 16] and int(z["num_classes"]) == 10 == meta["num_classes"]
    for split, n in (("train", 1437), ("test", 360)):
        assert z[f"{split}_codes_0"].shape == (n, 2, 2) and z[f"{split}_codes_1"].shape == (n, 4, 4)
        assert isinstance(z[f"{split}_codes_1"], np.memmap)  # read through mmap, never loaded whole
        assert z[f"{split}_codes_0"].dtype == np.int16 and z[f"{split}_labels"].shape == (n,)
        assert meta["splits"][split] == {"n": n, "shapes": [[2, 2], [4, 4]], "labelled": True}
    expected = model.encode(test.images[:20])
    assert np.array_equal(z["test_codes_1"][:20], expected[1].numpy())
    assert np.array_equal(z["test_labels"], test.labels.numpy())
    encode_dataset(tmp_path)  # re-encoding replaces the folder as a whole
    assert np.array_equal(load_codes(tmp_path)["test_codes_1"][:20], expected[1].numpy())


def test_encode_missing_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trained VQ-VAE"):
        encode_dataset(tmp_path / "nothing")


def test_ctrl_c_saves_and_exits_cleanly(tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "archkit",
        "vqvae",
        "train",
        "--out",
        str(run),
        "--steps",
        "100000",
        "--eval-every",
        "100000",
        "--log-every",
        "1",
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
        "16",
        "--batch-size",
        "8",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 180  # generous: the shared test machine can be slow to start torch
    while time.time() < deadline and len(read_jsonl(run / "metrics.jsonl")) < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "interrupted, saved at step" in out
    step = read_config(run / "vqvae")["step"]
    assert 3 <= step < 100000
    evals = [r for r in read_jsonl(run / "metrics.jsonl") if r["split"] == "eval"]
    assert evals[-1]["step"] == step and (run / "recon.png").is_file()


def _two_step_epochs_cfg(tmp_path, tensorboard):
    steps_per_epoch = 1437 // TINY["batch_size"]
    return VQVAETrainConfig(
        out=str(tmp_path), steps=999, epochs=2 / steps_per_epoch, eval_every=50, tensorboard=tensorboard, **TINY
    )


def test_epochs_budget(tmp_path):
    result = train_vqvae(_two_step_epochs_cfg(tmp_path, tensorboard=False), progress=False)
    assert result["step"] == 2
    assert not (tmp_path / "tensorboard").exists()


def test_tensorboard_logging(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is an optional extra")
    result = train_vqvae(_two_step_epochs_cfg(tmp_path, tensorboard=True), progress=False)
    assert result["step"] == 2
    assert any((tmp_path / "tensorboard").iterdir())


def test_without_tensorboard_installed_training_warns_and_goes_on(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what a missing package looks like
    with pytest.warns(UserWarning, match="tensorboard is not installed"):
        result = train_vqvae(_two_step_epochs_cfg(tmp_path, tensorboard=True), progress=False)
    assert result["step"] == 2
    assert not (tmp_path / "tensorboard").exists()
