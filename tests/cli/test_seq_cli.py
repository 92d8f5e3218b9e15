import json

import numpy as np
from click.testing import CliRunner

from archkit.cli.main import cli
from archkit.data import make_long_task


def _run(args):
    result = CliRunner().invoke(cli, args)
    return result


def test_seq_train_predict_and_resume_end_to_end(tmp_path):
    x, y = make_long_task(40, seed=0, length=128)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", np.eye(4)[y])  # one-hot, as in the question
    run = tmp_path / "run"
    common = [
        "seq",
        "train",
        "--model",
        "lstm",
        "--x",
        str(tmp_path / "X.npy"),
        "--y",
        str(tmp_path / "Y.npy"),
        "--out",
        str(run),
        "--frontend",
        "conv",
        "--hidden",
        "8",
        "--layers",
        "2",
        "--batch-size",
        "8",
    ]
    r = _run([*common, "--epochs", "1"])
    assert r.exit_code == 0, r.output
    assert "held-out accuracy" in r.output
    assert (run / "confusion.png").is_file() and (run / "checkpoint" / "model.safetensors").is_file()
    r = _run([*common, "--epochs", "2"])  # same folder without --resume: refused, nothing overwritten
    assert r.exit_code != 0 and "--resume" in r.output and "Traceback" not in r.output
    r = _run([*common, "--epochs", "2", "--resume", "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "checkpoint" / "config.json").read_text())["train_config"]["workers"] == 2
    epochs = [json.loads(s)["epoch"] for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]  # continued, not restarted
    r = _run(
        [
            "seq",
            "predict",
            "--run",
            str(run),
            "--x",
            str(tmp_path / "X.npy"),
            "--out",
            str(tmp_path / "pred.npy"),
            "--proba",
            str(tmp_path / "proba.npy"),
            "--batch-size",
            "16",
            "--workers",
            "2",
        ]
    )
    assert r.exit_code == 0, r.output
    pred, proba = np.load(tmp_path / "pred.npy"), np.load(tmp_path / "proba.npy")
    assert pred.shape == (40,) and set(pred.tolist()) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(pred, proba.argmax(1))


def test_padded_target_is_a_clean_error(tmp_path):
    x = np.zeros((6, 32, 8), dtype=np.float32)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", np.zeros_like(x))
    r = _run(
        ["seq", "train", "--x", str(tmp_path / "X.npy"), "--y", str(tmp_path / "Y.npy"), "--out", str(tmp_path / "r")]
    )
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "ONE target per sequence" in r.output


def test_bundled_dataset_and_unknown_name(tmp_path):
    r = _run(
        [
            "seq",
            "train",
            "--model",
            "lstm",
            "--dataset",
            "ItalyPowerDemand",
            "--out",
            str(tmp_path / "r"),
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--layers",
            "1",
        ]
    )
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["num_held_out"] == 1029
    r = _run(["seq", "train", "--dataset", "NoSuchSet", "--out", str(tmp_path / "r2")])
    assert r.exit_code != 0 and "BasicMotions" in r.output and "Traceback" not in r.output


def test_predict_feature_mismatch_is_clear(tmp_path):
    x, y = make_long_task(16, seed=0, length=64)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", y)
    np.save(tmp_path / "X3.npy", x[..., :3])
    assert (
        _run(
            [
                "seq",
                "train",
                "--model",
                "lstm",
                "--x",
                str(tmp_path / "X.npy"),
                "--y",
                str(tmp_path / "Y.npy"),
                "--out",
                str(tmp_path / "r"),
                "--epochs",
                "1",
                "--hidden",
                "4",
            ]
        ).exit_code
        == 0
    )
    r = _run(
        [
            "seq",
            "predict",
            "--run",
            str(tmp_path / "r"),
            "--x",
            str(tmp_path / "X3.npy"),
            "--out",
            str(tmp_path / "p.npy"),
        ]
    )
    assert r.exit_code != 0 and "8 features" in r.output


def test_seq_train_lstm_fcn_options(tmp_path):
    x, y = make_long_task(24, seed=0, length=64)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", y)
    run = tmp_path / "run"
    r = _run(
        [
            "seq",
            "train",
            "--model",
            "lstm",
            "--x",
            str(tmp_path / "X.npy"),
            "--y",
            str(tmp_path / "Y.npy"),
            "--out",
            str(run),
            "--frontend",
            "conv",
            "--conv-stride",
            "1",
            "--conv-blocks",
            "1",
            "--conv-channels",
            "4",
            "--conv-norm",
            "batch",
            "--fcn-channels",
            "4",
            "--hidden",
            "4",
            "--layers",
            "1",
            "--pool",
            "mean",
            "--label-smoothing",
            "0.1",
            "--weight-decay",
            "0",
            "--epochs",
            "1",
            "--batch-size",
            "8",
        ]
    )
    assert r.exit_code == 0, r.output
    cfg = json.loads((run / "summary.json").read_text())["model_config"]
    assert (cfg["conv_norm"], cfg["fcn_channels"], cfg["conv_stride"], cfg["conv_blocks"], cfg["conv_channels"]) == (
        "batch",
        4,
        1,
        1,
        4,
    )
    r = _run(
        [
            "seq",
            "train",
            "--model",
            "lstm",
            "--x",
            str(tmp_path / "X.npy"),
            "--y",
            str(tmp_path / "Y.npy"),
            "--out",
            str(tmp_path / "bad"),
            "--conv-norm",
            "batch",
            "--epochs",
            "1",
        ]
    )
    assert r.exit_code != 0 and "frontend='conv'" in r.output and "Traceback" not in r.output


def test_default_model_is_rocket_and_lstm_stays_available(tmp_path):
    x, y = make_long_task(24, seed=0, length=64)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", y)
    r = _run(
        ["seq", "train", "--x", str(tmp_path / "X.npy"), "--y", str(tmp_path / "Y.npy"), "--out", str(tmp_path / "r")]
    )
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["model"] == "rocket" and summary["estimator"] == "RocketClassifier"
    assert not (tmp_path / "r" / "checkpoint").exists() and "(the chosen model itself)" in r.output
    help_text = _run(["seq", "train", "--help"]).output
    assert "[default: rocket]" in help_text and "lstm" in help_text
