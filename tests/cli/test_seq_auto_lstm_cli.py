"""`seq train --model auto` with an LSTM winner: refitted streamed (as --model lstm trains), resumable, and its run
predicts and evaluates like any auto run."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import archkit.cli.seqauto as seqauto
import archkit.cli.seqrun as seqrun
import archkit.estimators.auto as auto_mod
from archkit.cli.main import cli
from archkit.cli.seqrun import load_run_estimator
from archkit.data import open_shards
from archkit.data.real_tasks import make_real_task
from archkit.estimators.sequence import LSTMClassifier, _channel_stats
from archkit.train.run import GracefulInterrupt

pytest.importorskip("aeon")  # the long tasks are built from series bundled with aeon

LENGTH = 256  # the shortest a make-task case can be
CV_CASES = 12


def _run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def task(tmp_path, monkeypatch):
    """A tiny needle task (30 train cases after the held-out share) where auto can only choose lstm-conv."""
    folder = tmp_path / "needle"
    args = ["seq", "make-task", "needle", "--out", folder, "--n-train", 40, "--n-test", 8, "--length", LENGTH]
    assert _run(args).exit_code == 0
    monkeypatch.setattr(auto_mod, "AUTO_CANDIDATES", ("lstm-conv",))
    return folder


def _train(task, out, *extra):
    return [
        *("seq", "train", "--shards", task / "train", "--model", "auto", "--cv", 2, "--epochs", 2),
        *("--max-cv-cases", CV_CASES, "--val-fraction", 0.25, "--device", "cpu", "--out", out, *extra),
    ]


def _only_the_subsample_in_memory(monkeypatch):
    """Reading more than the CV subsample into memory, or fitting an LSTM in memory on more, fails the test."""
    materialize, fit = seqrun.materialize, LSTMClassifier.fit

    def bounded_materialize(data):
        if len(data) > CV_CASES:
            raise AssertionError(f"materialized {len(data)} cases: the refit must stream")
        return materialize(data)

    def bounded_fit(self, X, y):
        if len(X) > CV_CASES:
            raise AssertionError(f"LSTMClassifier.fit on {len(X)} cases in memory: the refit must stream")
        return fit(self, X, y)

    monkeypatch.setattr(seqrun, "materialize", bounded_materialize)
    monkeypatch.setattr(LSTMClassifier, "fit", bounded_fit)


def test_lstm_winner_is_refitted_streamed_and_its_run_predicts_and_evaluates(task, tmp_path, monkeypatch):
    _only_the_subsample_in_memory(monkeypatch)
    run = tmp_path / "run"
    r = _run(_train(task, run))
    assert r.exit_code == 0, r.output
    assert "auto chose lstm-conv" in r.output and "refitted on 30 cases, streamed (train_sequence)" in r.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["chosen"] == "lstm-conv" and summary["estimator"] == "LSTMClassifier"
    assert summary["cv_cases"] == CV_CASES and summary["num_train"] == 30 and "fit_s" in summary["cv"]["lstm-conv"]
    refit = summary["refit"]
    assert refit["streamed"] and refit["trainer"] == "train_sequence" and refit["stopped"] == "done"
    assert refit["epochs"] == 2 and refit["steps"] == 2 * 4  # 30 cases in batches of the winner's 8, two epochs
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2]  # --model lstm's per-epoch record of the streamed refit
    assert (run / "estimator").is_dir() and not (run / "checkpoint").exists()  # one model in the folder
    assert not (run / "auto_choice.json").exists() and not list(run.rglob("*.pkl"))

    est = load_run_estimator(run)
    train = open_shards(task / "train")
    split = train.split(0.25, seed=0)[0]  # the run's training cases (--val-fraction 0.25, --seed 0)
    x_train = np.concatenate([np.asarray(s.x)[r] for s, r in zip(split.shards, split.rows)]).astype(np.float32)
    mean, scale = _channel_stats(x_train, None)  # what LSTMClassifier.fit standardizes with, in memory
    np.testing.assert_allclose(est.channel_mean_, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.channel_scale_, scale, rtol=1e-5)

    x, _ = make_real_task("needle", 8, seed=0, split="test", length=LENGTH)
    np.save(tmp_path / "X.npy", x)
    r = _run(["seq", "predict", "--run", run, "--x", tmp_path / "X.npy", "--out", tmp_path / "pred.npy"])
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), est.predict(x))
    r = _run(["seq", "predict", "--run", run, "--shards", task / "test", "--out", tmp_path / "pred_shards.npy"])
    assert r.exit_code == 0, r.output
    pred = np.load(tmp_path / "pred_shards.npy")
    r = _run(["seq", "evaluate", "--run", run, "--shards", task / "test", "--out", tmp_path / "eval"])
    assert r.exit_code == 0, r.output
    test = open_shards(task / "test")
    y = np.concatenate([np.asarray(s.y) for s in test.shards])
    scored = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert scored["accuracy"] == pytest.approx(float(np.mean(pred == y)))


class _StopAfterThreeSteps(GracefulInterrupt):
    """Ctrl-C after the third optimizer step, as the trainer sees it."""

    checks = 0

    @property
    def requested(self):
        type(self).checks += 1
        return type(self).checks >= 3

    @requested.setter
    def requested(self, value):
        pass


def test_interrupted_lstm_refit_resumes_without_the_cv_and_equals_an_uninterrupted_run(task, tmp_path, monkeypatch):
    import archkit.train.sequence as trainer

    assert _run(_train(task, tmp_path / "whole")).exit_code == 0
    run = tmp_path / "run"
    refit = seqauto.refit_lstm

    def interrupted_refit(*args, **kwargs):  # Ctrl-C in the refit, not in the CV's fits
        with monkeypatch.context() as m:
            m.setattr(trainer, "GracefulInterrupt", _StopAfterThreeSteps)
            return refit(*args, **kwargs)

    monkeypatch.setattr(seqauto, "refit_lstm", interrupted_refit)
    r = _run(_train(task, run))
    assert r.exit_code == 0, r.output
    assert "refit was interrupted at step 3" in r.output and "--model auto --out" in r.output
    assert (run / "checkpoint").is_dir() and (run / "auto_choice.json").is_file() and not (run / "estimator").exists()
    r = _run(_train(task, run))
    assert r.exit_code == 2 and "already holds a run (checkpoint)" in r.output  # nothing overwritten without --resume
    np.save(tmp_path / "X.npy", make_real_task("needle", 4, seed=0, split="test", length=LENGTH)[0])
    for cmd in (
        ["predict", "--run", run, "--x", tmp_path / "X.npy", "--out", tmp_path / "pred.npy"],
        ["evaluate", "--run", run, "--shards", task / "test", "--out", tmp_path / "eval"],
    ):  # the refit's checkpoint is no finished model: refused in one line, not scored
        r = _run(["seq", *cmd])
        assert r.exit_code == 2 and "interrupted --model auto refit" in r.output and "Traceback" not in r.output

    monkeypatch.setattr(seqauto, "refit_lstm", refit)
    monkeypatch.setattr(auto_mod.AutoSequenceClassifier, "select", None)  # the CV must not run again
    r = _run(["seq", "train", "--shards", task / "train", "--out", run, "--resume"])  # --model: the run's own
    assert r.exit_code == 0, r.output
    summary = json.loads((run / "summary.json").read_text())
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert summary["chosen"] == "lstm-conv" and summary["cv_cases"] == CV_CASES and "lstm-conv" in summary["cv"]
    assert summary["refit"]["steps"] == whole["refit"]["steps"] == 8
    assert not (run / "checkpoint").exists() and not (run / "auto_choice.json").exists()
    x, _ = make_real_task("needle", 8, seed=0, split="test", length=LENGTH)
    np.testing.assert_allclose(
        load_run_estimator(run).predict_proba(x), load_run_estimator(tmp_path / "whole").predict_proba(x), atol=1e-6
    )


def test_streamed_standardization_equals_the_in_memory_one_and_travels_to_spawned_workers(tmp_path):
    import pickle

    from archkit.data import open_npy
    from archkit.data.sequences import MemmapRef, from_arrays
    from archkit.estimators.sequence import _apply

    rng = np.random.default_rng(0)
    x = (3.0 + 2.0 * rng.standard_normal((37, 20, 3))).astype(np.float32)
    x[:, :, 2] = 5.0  # a constant channel: scale 1
    lengths = rng.integers(1, 21, 37)
    data = from_arrays(x, rng.integers(0, 2, 37), lengths)
    mean, scale = seqauto.channel_stats(data, batch_size=8)  # five batches merged
    ref_mean, ref_scale = _channel_stats(x, lengths)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scale, ref_scale, rtol=1e-6)
    assert scale[2] == 1.0
    xb, _, lb = next(seqauto.standardized(data, mean, scale).batches(37, shuffle=False))
    np.testing.assert_allclose(xb.numpy(), _apply(x, lengths, mean, scale), rtol=1e-6, atol=1e-6)
    short = int(np.argmin(lengths))
    assert lengths[short] < 20 and float(xb[short, int(lb[short]) :].abs().sum()) == 0.0  # padding stays zero

    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", np.zeros(37, np.int64))
    mapped = seqauto.standardized(open_npy(tmp_path / "X.npy", tmp_path / "Y.npy"), mean, scale).shards[0].x
    state = mapped.__getstate__()
    assert isinstance(state["x"], MemmapRef)  # the file's place, not its data, goes to a spawned worker
    back = pickle.loads(pickle.dumps(mapped))
    np.testing.assert_array_equal(back[np.array([0, 5, 36])], mapped[np.array([0, 5, 36])])
