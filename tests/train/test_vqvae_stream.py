"""VQ-VAE on a streamed image folder: same batches and weights as in memory, exact mid-epoch resume with
workers, streamed encoding into memory-mapped codes the prior trains on, and the --workers flag."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from archkit.cli.main import cli
from archkit.data import load_digits, load_image_dataset, open_image_dataset, write_image_folder
from archkit.models import load_vqvae
from archkit.train import VQVAETrainConfig, encode_dataset, read_jsonl, train_vqvae, vqvae_data
from archkit.train import vqvae as vqvae_module
from archkit.train.codes import load_codes
from archkit.train.distributed import DistInfo
from archkit.train.prior import PriorTrainConfig, train_prior

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


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """48 digit PNGs (16x16, a sub-folder per class): ~38 train images, 4 steps per epoch at batch 8."""
    x, y = load_digits("train", image_size=16)
    return write_image_folder(x[:48], tmp_path_factory.mktemp("digits"), labels=y[:48])


def _weights(run):
    return load_file(str(run / "vqvae" / "model.safetensors"))


def _same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_train_batches_streamed_equal_in_memory_across_epochs(folder):
    memory = load_image_dataset(folder, "train", 16)
    streamed = open_image_dataset(folder, "train", 16)
    a = vqvae_data.TrainBatches(memory, 8, seed=0, info=DistInfo())
    b = vqvae_data.TrainBatches(streamed, 8, seed=0, info=DistInfo(), workers=0)
    straight = [a.batch(step) for step in range(2 * a.steps_per_epoch + 1)]
    for step, x in enumerate(straight):
        assert torch.equal(x, b.batch(step)), step
    assert not torch.equal(straight[0], straight[a.steps_per_epoch])  # each epoch is shuffled anew
    resumed = vqvae_data.TrainBatches(streamed, 8, seed=0, info=DistInfo(), workers=0)
    assert torch.equal(resumed.batch(5), straight[5]) and torch.equal(resumed.batch(6), straight[6])


def test_streamed_training_matches_in_memory_training(folder, tmp_path, monkeypatch):
    cfg = dict(data=str(folder), steps=5, eval_every=5, workers=0, **TINY)
    train_vqvae(VQVAETrainConfig(out=str(tmp_path / "streamed"), **cfg), progress=False)
    in_memory = lambda data, split, size, channels=None: load_image_dataset(data, split, size, channels)  # noqa: E731
    monkeypatch.setattr(vqvae_module, "open_image_dataset", in_memory)
    train_vqvae(VQVAETrainConfig(out=str(tmp_path / "memory"), **cfg), progress=False)
    _same_weights(_weights(tmp_path / "streamed"), _weights(tmp_path / "memory"))
    ev = {
        r: [e for e in read_jsonl(tmp_path / r / "metrics.jsonl") if e["split"] == "eval"][-1]
        for r in ("streamed", "memory")
    }
    assert ev["streamed"]["mse"] == pytest.approx(ev["memory"]["mse"], rel=1e-6)  # streamed held-out eval


def test_resume_mid_epoch_with_two_workers_continues_the_same_order(folder, tmp_path):
    # 4 steps per epoch: stop at step 3 (mid epoch 0), resume to 7 (through epoch 1, mid epoch 1)
    base = dict(data=str(folder), eval_every=3, **TINY)
    train_vqvae(VQVAETrainConfig(out=str(tmp_path / "a"), steps=7, workers=0, **base), progress=False)
    train_vqvae(VQVAETrainConfig(out=str(tmp_path / "b"), steps=3, workers=2, **base), progress=False)
    result = train_vqvae(
        VQVAETrainConfig(out=str(tmp_path / "b"), steps=7, workers=2, resume=True, **base), progress=False
    )
    assert result["step"] == 7 and result["unreadable_at_load"] == 0
    losses = {
        r: [(e["step"], e["loss"]) for e in read_jsonl(tmp_path / r / "metrics.jsonl") if e["split"] == "train"]
        for r in ("a", "b")
    }
    assert [s for s, _ in losses["b"]] == list(range(1, 8))
    assert losses["a"] == losses["b"]  # bit-identical: same batches in the same order
    _same_weights(_weights(tmp_path / "a"), _weights(tmp_path / "b"))


def test_encode_streams_a_folder_into_codes_the_prior_trains_on(folder, tmp_path):
    run = tmp_path / "run"
    train_vqvae(
        VQVAETrainConfig(out=str(run), data=str(folder), steps=2, eval_every=2, workers=0, **TINY), progress=False
    )
    path = encode_dataset(run, batch_size=5, workers=2)
    z = load_codes(run)
    test = load_image_dataset(folder, "test", 16)
    expected = load_vqvae(run).encode(test.images)
    assert path == run / "codes" and isinstance(z["test_codes_0"], np.memmap)
    assert np.array_equal(z["test_codes_0"], expected[0].numpy()) and np.array_equal(
        z["test_codes_1"], expected[1].numpy()
    )
    assert np.array_equal(z["test_labels"], test.labels.numpy()) and int(z["num_classes"]) == 10
    rec = train_prior(
        PriorTrainConfig(
            run=str(run), level="bottom", steps=3, batch_size=4, channels=8, layers=1, kernel_size=3, eval_every=3
        ),
        progress=False,
    )
    assert rec["step"] == 3 and rec["level"] == 1 and np.isfinite(rec["test_bits_per_code"])


def test_legacy_codes_npz_is_still_read(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "num_codes": np.array([8]),
        "num_classes": np.array(0),
        "train_codes_0": rng.integers(0, 8, (12, 2, 2)),
        "test_codes_0": rng.integers(0, 8, (4, 2, 2)),
    }
    np.savez(tmp_path / "codes.npz", **arrays)
    z = load_codes(tmp_path)
    assert np.array_equal(z["train_codes_0"], arrays["train_codes_0"])
    (tmp_path / "codes").mkdir()  # a folder without meta.json (e.g. an interrupted copy) is named, not guessed
    with pytest.raises(ValueError, match="not a complete codes folder"):
        load_codes(tmp_path)


def test_workers_flag_reaches_the_loader(folder, tmp_path, monkeypatch):
    seen = []
    real = vqvae_data.make_loader

    def spy(*args, **kwargs):
        seen.append(kwargs.get("workers"))
        return real(*args, **kwargs)

    monkeypatch.setattr(vqvae_data, "make_loader", spy)  # the training loader
    monkeypatch.setattr(vqvae_module, "make_loader", spy)  # the held-out loader
    flags = [
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
    run = tmp_path / "run"
    res = CliRunner().invoke(
        cli,
        [
            "vqvae",
            "train",
            "--data",
            str(folder),
            "--out",
            str(run),
            "--steps",
            "1",
            "--eval-every",
            "1",
            "--workers",
            "1",
            *flags,
        ],
    )
    assert res.exit_code == 0, res.output
    assert seen == [1, 1]  # the training loader and the held-out loader
    assert json.loads((run / "train_config.json").read_text())["workers"] == 1
    res = CliRunner().invoke(cli, ["vqvae", "encode", "--run", str(run), "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert seen[2:] == [2, 2]  # train and test splits
    res = CliRunner().invoke(cli, ["vqvae", "train", "--out", str(tmp_path / "x"), "--workers", "-1", *flags])
    assert res.exit_code != 0 and "--workers" in res.output
