"""`seq predict --shards`, `seq evaluate` and `seq train --test-shards` on tiny shards written here."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from archkit.cli.main import cli
from archkit.io import is_own_file, save_checkpoint
from archkit.models import ResNet, ResNetConfig

CLASSES = ["low", "mid", "high"]
T, F = 48, 3


def _run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _cases(n, seed, t=T, f=F):
    """Class k: a bump of height k+1 in channel k over a random stretch of noise (learnable in one epoch)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(CLASSES)
    rng.shuffle(y)
    x = rng.normal(0, 0.3, (n, t, f)).astype(np.float32)
    for i, k in enumerate(y):
        start = rng.integers(0, t - 8)
        x[i, start : start + 8, k % f] += 2.0 * (k + 1)
    return x, y


def _write_shards(folder, sizes, seed, t=T, f=F):
    folder.mkdir(parents=True)
    xs, ys = [], []
    for k, n in enumerate(sizes):
        x, y = _cases(n, seed + k, t, f)
        np.save(folder / f"part-{k:05d}_x.npy", x)
        np.save(folder / f"part-{k:05d}_y.npy", y)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _task(root):
    """A folder shaped like `seq make-task` writes: train/, test/ shards and task.json naming the classes."""
    _write_shards(root / "train", [20, 16], seed=0)
    x_test, y_test = _write_shards(root / "test", [7, 5, 6], seed=100)
    (root / "task.json").write_text(json.dumps({"kind": "archkit-long-task", "classes": CLASSES}))
    return x_test, y_test


LSTM = ["--frontend", "conv", "--conv-channels", "8", "--hidden", "8", "--layers", "1", "--batch-size", "8"]


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("task")
    x_test, y_test = _task(root)
    run = root / "run"
    r = _run(
        [
            "seq",
            "train",
            "--shards",
            root / "train",
            "--test-shards",
            root / "test",
            "--out",
            run,
            "--epochs",
            "6",
            *LSTM,
        ]
    )
    assert r.exit_code == 0, r.output
    return root, run, x_test, y_test, r.output


def _one_line_error(r, *words):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, r.output
    for w in words:
        assert w in errors[0], errors[0]


def test_lstm_run_scores_the_test_folder_and_evaluate_agrees(lstm_run, tmp_path):
    root, run, x_test, y_test, output = lstm_run
    summary = json.loads((run / "summary.json").read_text())
    # nothing carved from training: all 36 training cases trained, the 18 test cases were scored
    assert summary["num_train"] == 36 and summary["num_held_out"] == 18
    assert summary["test_shards"] == str(root / "test")
    assert summary["test_accuracy"] == summary["held_out_accuracy"]
    assert summary["classes"] == CLASSES and summary["timesteps"] == T and summary["in_features"] == F
    assert f"test accuracy {summary['test_accuracy']:.4f}" in output

    out = tmp_path / "eval"
    r = _run(["seq", "evaluate", "--run", run, "--shards", root / "test", "--out", out, "--batch-size", "4"])
    assert r.exit_code == 0, r.output
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["kind"] == "archkit-sequence-evaluation" and is_own_file(out / "evaluation.json")
    assert is_own_file(out / "confusion.png")
    cm = np.array(ev["confusion_matrix"])
    assert cm.sum() == 18 and cm.sum(1).tolist() == [int((y_test == k).sum()) for k in range(3)]
    # the same model on the same rows: the accuracy the run reported for its test folder
    assert ev["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert [c["class"] for c in ev["per_class"]] == CLASSES
    recalls = [c["recall"] for c in ev["per_class"]]
    assert ev["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    assert f"accuracy {100 * ev['accuracy']:.1f} %" in r.output and "low" in r.output

    # predictions keep the shards' row order: the same as predicting their rows concatenated in one X.npy
    np.save(tmp_path / "X.npy", x_test)
    np.save(tmp_path / "Y.npy", y_test)
    r = _run(["seq", "predict", "--run", run, "--shards", root / "test", "--out", tmp_path / "p.npy", "--proba",
              tmp_path / "proba.npy", "--batch-size", "5", "--workers", "2"])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = _run(["seq", "predict", "--run", run, "--x", tmp_path / "X.npy", "--out", tmp_path / "px.npy"])
    assert r.exit_code == 0, r.output
    pred, proba = np.load(tmp_path / "p.npy"), np.load(tmp_path / "proba.npy")
    np.testing.assert_array_equal(pred, np.load(tmp_path / "px.npy"))
    np.testing.assert_array_equal(pred, proba.argmax(1))
    assert np.mean(pred == y_test) == pytest.approx(ev["accuracy"])

    # --x/--y gives the same evaluation, written over the earlier one (archkit's own folder)
    r = _run(["seq", "evaluate", "--run", run, "--x", tmp_path / "X.npy", "--y", tmp_path / "Y.npy", "--out", out])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "evaluation.json").read_text())["confusion_matrix"] == cm.tolist()


def test_rocket_run_with_test_shards_evaluate_and_predict(tmp_path):
    x_test, y_test = _task(tmp_path)
    run = tmp_path / "run"
    r = _run(["seq", "train", "--shards", tmp_path / "train", "--test-shards", tmp_path / "test", "--out", run,
              "--model", "rocket"])  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["num_train"] == 36 and summary["num_held_out"] == 18
    assert summary["test_accuracy"] == summary["held_out_accuracy"] and summary["classes"] == CLASSES
    r = _run(["seq", "evaluate", "--run", run, "--shards", tmp_path / "test", "--out", tmp_path / "ev"])
    assert r.exit_code == 0, r.output
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert ev["model"] == "rocket" and ev["accuracy"] == pytest.approx(summary["test_accuracy"])
    np.save(tmp_path / "X.npy", x_test)
    for source, out in (("--shards", "p.npy"), ("--x", "px.npy")):
        data = tmp_path / "test" if source == "--shards" else tmp_path / "X.npy"
        r = _run(["seq", "predict", "--run", run, source, data, "--out", tmp_path / out, "--batch-size", "4"])
        assert r.exit_code == 0, r.output
    pred = np.load(tmp_path / "p.npy")
    np.testing.assert_array_equal(pred, np.load(tmp_path / "px.npy"))
    assert np.mean(pred == y_test) == pytest.approx(ev["accuracy"])


def test_bad_data_is_refused_in_one_line(lstm_run, tmp_path):
    root, run, _, _, _ = lstm_run
    _write_shards(tmp_path / "chan", [4], seed=1, f=F + 1)
    _write_shards(tmp_path / "steps", [4], seed=1, t=T + 8)
    _write_shards(tmp_path / "labels", [4], seed=1)
    np.save(tmp_path / "labels" / "part-00000_y.npy", np.array([0, 1, 2, 5]))
    x, _ = _write_shards(tmp_path / "nan", [4, 4], seed=1)
    x = np.load(tmp_path / "nan" / "part-00001_x.npy")
    x[2, 5, 1] = np.inf
    np.save(tmp_path / "nan" / "part-00001_x.npy", x)
    cases = [("chan", "has 4 channels"), ("steps", f"{T} steps"), ("labels", "do not fit"), ("nan", "NaN or inf")]
    for name, words in cases:
        out = tmp_path / f"ev-{name}"
        r = _run(["seq", "evaluate", "--run", run, "--shards", tmp_path / name, "--out", out])
        _one_line_error(r, "--shards", words)
        assert not (out / "evaluation.json").exists()
    r = _run(["seq", "predict", "--run", run, "--shards", tmp_path / "nan", "--out", tmp_path / "p.npy"])
    _one_line_error(r, "series 2 of 'part-00001'")
    assert not (tmp_path / "p.npy").exists()
    r = _run(["seq", "predict", "--run", run, "--shards", tmp_path / "chan", "--x", tmp_path / "x.npy",
              "--out", tmp_path / "p.npy"])  # fmt: skip
    _one_line_error(r, "exactly one of --x or --shards")
    r = _run(["seq", "evaluate", "--run", run, "--x", tmp_path / "x.npy", "--out", tmp_path / "ev"])
    _one_line_error(r, "--y")
    # a training test folder of another shape, or beside --dataset
    r = _run(["seq", "train", "--shards", root / "train", "--test-shards", tmp_path / "chan", "--out", tmp_path / "r"])
    _one_line_error(r, "--test-shards", "channels")
    r = _run(["seq", "train", "--dataset", "BasicMotions", "--test-shards", root / "test", "--out", tmp_path / "r"])
    _one_line_error(r, "--test-shards", "--dataset")


def test_a_corrupt_shard_is_skipped_with_a_warning(lstm_run, tmp_path):
    run = lstm_run[1]
    test = tmp_path / "test"
    _write_shards(test, [7, 5], seed=100)  # the first two shards of the test folder
    (test / "part-00002_x.npy").write_bytes(b"not an array")
    np.save(test / "part-00002_y.npy", np.zeros(3, np.int64))
    with pytest.warns(UserWarning, match="skipped 1 corrupt shard file.*part-00002_x.npy"):
        r = _run(["seq", "evaluate", "--run", run, "--shards", test, "--out", tmp_path / "ev"])
    assert r.exit_code == 0, r.output
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert ev["skipped_shards"] == 1 and ev["num_cases"] == 12 and "1 corrupt shard" in r.output
    with pytest.warns(UserWarning, match="skipped 1 corrupt shard"):
        r = _run(["seq", "predict", "--run", run, "--shards", test, "--out", tmp_path / "p.npy"])
    assert r.exit_code == 0 and "their rows have no predictions" in r.output
    assert np.load(tmp_path / "p.npy").shape == (12,)


def test_wrong_run_and_out_are_refused(lstm_run, tmp_path):
    root, run, _, _, _ = lstm_run
    test = root / "test"
    not_run = tmp_path / "notes"
    not_run.mkdir()
    (not_run / "summary.json").write_text("{}")
    r = _run(["seq", "evaluate", "--run", not_run, "--shards", test, "--out", tmp_path / "ev"])
    _one_line_error(r, "--run", "not a `seq train` run")
    r = _run(["seq", "predict", "--run", not_run, "--shards", test, "--out", tmp_path / "p.npy"])
    _one_line_error(r, "--run")
    image_run = tmp_path / "resnet"  # a checkpoint of another model where a sequence run's would be
    resnet = ResNet(ResNetConfig(widths=[8, 8, 8]))
    save_checkpoint(image_run / "checkpoint", resnet, resnet.config)
    r = _run(["seq", "evaluate", "--run", image_run, "--shards", test, "--out", tmp_path / "ev"])
    _one_line_error(r, "--run", "holds a ResNet checkpoint")

    users = tmp_path / "thesis"
    users.mkdir()
    (users / "chapter1.tex").write_text("mine")
    r = _run(["seq", "evaluate", "--run", run, "--shards", test, "--out", users])
    _one_line_error(r, "--out", "did not write")
    (tmp_path / "file").write_text("mine")
    r = _run(["seq", "evaluate", "--run", run, "--shards", test, "--out", tmp_path / "file"])
    _one_line_error(r, "--out", "is a file")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "evaluation.json").write_text('{"kind": "archkit-sequence-evaluation"}')  # no archkit mark
    r = _run(["seq", "evaluate", "--run", run, "--shards", test, "--out", fake])
    _one_line_error(r, "--out", "holds files archkit did not write")
    assert (users / "chapter1.tex").read_text() == "mine" and (tmp_path / "file").read_text() == "mine"
    assert (fake / "evaluation.json").read_text() == '{"kind": "archkit-sequence-evaluation"}'
    r = _run(["seq", "evaluate", "--run", run, "--shards", test, "--out", run])  # the run folder itself
    _one_line_error(r, "--out", "holds archkit's", "not a sequence evaluation")
