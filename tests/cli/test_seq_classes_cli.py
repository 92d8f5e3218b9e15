"""`archkit seq train|predict`: one probability column per class of the task, refused labels and series in one line."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from archkit.cli.main import cli
from archkit.data.real_tasks import TASK_FILE, TASK_KIND
from archkit.data.sequences import open_npy

LSTM = ["--hidden", "4", "--layers", "1", "--epochs", "1", "--batch-size", "8"]


def _run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _held_out_takes_class_3(folder):
    """X.npy / Y.npy of classes 0-3 where every row of class 3 falls in the held-out split (--val-fraction 0.2)."""
    rng = np.random.default_rng(0)
    n = 40
    x = rng.standard_normal((n, 24, 2)).astype(np.float32)
    y = np.arange(n) % 3
    np.save(folder / "X.npy", x)
    np.save(folder / "Y.npy", y)
    _, held = open_npy(folder / "X.npy", folder / "Y.npy").split(0.2, seed=0)
    y[held.rows[0][: len(held.rows[0]) // 2]] = 3
    x[y == 3] += 2.0
    np.save(folder / "X.npy", x)
    np.save(folder / "Y.npy", y)
    return folder / "X.npy", folder / "Y.npy"


@pytest.mark.parametrize("model", ["rocket", "lstm"])
def test_a_class_missing_from_training_keeps_its_column_and_pred_agrees_with_proba(tmp_path, model):
    x, y = _held_out_takes_class_3(tmp_path)
    run = tmp_path / "run"
    extra = LSTM if model == "lstm" else []
    r = _run(["seq", "train", "--x", x, "--y", y, "--model", model, "--out", run, *extra])
    assert r.exit_code == 0, r.output
    r = _run(["seq", "predict", "--run", run, "--x", x, "--out", tmp_path / "p.npy", "--proba", tmp_path / "q.npy"])
    assert r.exit_code == 0, r.output
    pred, proba = np.load(tmp_path / "p.npy"), np.load(tmp_path / "q.npy")
    assert proba.shape == (40, 4)  # column k is class id k, class 3 included
    assert np.array_equal(proba.argmax(1), pred)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    if model == "rocket":  # never seen in training: probability 0, never predicted
        assert np.all(proba[:, 3] == 0) and not np.any(pred == 3)


def _task(folder, classes, train_labels):
    """A make-task-like folder: train/ shards with the given labels, task.json naming `classes`."""
    (folder / "train").mkdir(parents=True)
    rng = np.random.default_rng(1)
    y = np.asarray(train_labels)
    x = rng.standard_normal((len(y), 16, 2)).astype(np.float32) + y[:, None, None]
    np.save(folder / "train" / "part-00000_x.npy", x)
    np.save(folder / "train" / "part-00000_y.npy", y)
    (folder / TASK_FILE).write_text(json.dumps({"kind": TASK_KIND, "classes": classes}))
    return folder / "train"


def test_the_class_list_of_task_json_sets_the_columns(tmp_path):
    shards = _task(tmp_path / "task", ["a", "b", "c", "d"], np.arange(30) % 3)  # class "d" in no shard
    run = tmp_path / "run"
    r = _run(["seq", "train", "--shards", shards, "--model", "rocket", "--out", run])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "summary.json").read_text())["num_classes"] == 4
    np.save(tmp_path / "X.npy", np.load(shards / "part-00000_x.npy"))
    r = _run(
        [
            "seq",
            "predict",
            "--run",
            run,
            "--x",
            tmp_path / "X.npy",
            "--out",
            tmp_path / "p.npy",
            "--proba",
            tmp_path / "q.npy",
        ]
    )
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "q.npy").shape == (30, 4)
    lstm = tmp_path / "lstm"
    r = _run(["seq", "train", "--shards", shards, "--model", "lstm", "--out", lstm, *LSTM])
    assert r.exit_code == 0, r.output
    meta = json.loads((lstm / "checkpoint" / "config.json").read_text())
    assert meta["config"]["num_classes"] == 4 and meta["classes"] == ["a", "b", "c", "d"]


def test_a_malformed_task_json_is_refused_naming_the_field(tmp_path):
    shards = _task(tmp_path / "task", "abcd", np.arange(30) % 3)
    r = _run(["seq", "train", "--shards", shards, "--model", "rocket", "--out", tmp_path / "run"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "task.json" in r.output and "field 'classes'" in r.output and len(r.output.strip().splitlines()) == 1


def test_text_labels_are_refused_in_one_line(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((10, 8, 2), np.float32))
    np.save(tmp_path / "Y.npy", np.array(["cat", "dog"] * 5))
    for model in ("lstm", "rocket"):
        r = _run(
            [
                "seq",
                "train",
                "--x",
                tmp_path / "X.npy",
                "--y",
                tmp_path / "Y.npy",
                "--model",
                model,
                "--out",
                tmp_path / model,
            ]
        )
        assert r.exit_code == 2 and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
        assert "--y" in r.output and "<U3" in r.output and "np.unique" in r.output


@pytest.mark.parametrize("model", ["rocket", "lstm"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_predict_refuses_non_finite_series_naming_x_and_the_row(tmp_path, model, bad):
    x, y = _held_out_takes_class_3(tmp_path)
    run = tmp_path / "run"
    extra = LSTM if model == "lstm" else []
    assert _run(["seq", "train", "--x", x, "--y", y, "--model", model, "--out", run, *extra]).exit_code == 0
    xs = np.load(x)
    xs[13, 5, 1] = bad
    np.save(tmp_path / "bad.npy", xs)
    r = _run(
        ["seq", "predict", "--run", run, "--x", tmp_path / "bad.npy", "--out", tmp_path / "p.npy", "--batch-size", "8"]
    )
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "Error: --x: row 13 holds" in r.output and not (tmp_path / "p.npy").exists()
