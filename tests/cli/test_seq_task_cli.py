"""`seq make-task`, `seq train --model rocket|auto` (ROCKET baseline beside every run) and reloading a run."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from archkit.cli.main import cli
from archkit.cli.seqrun import below_baseline, load_run_estimator, train_estimator
from archkit.data.real_tasks import make_real_task
from archkit.train import SeqTrainConfig

pytest.importorskip("aeon")  # the long tasks are built from series bundled with aeon


def _run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_make_task_writes_shards_and_refuses_foreign_folders(tmp_path):
    out = tmp_path / "needle"
    r = _run(
        ["seq", "make-task", "needle", "--out", out, "--n-train", 12, "--n-test", 8, "--length", 256, "--shard-size", 8]
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "train").iterdir()) == [
        "part-00000_x.npy",
        "part-00000_y.npy",
        "part-00001_x.npy",
        "part-00001_y.npy",
    ]
    assert json.loads((out / "task.json").read_text())["n_test"] == 8
    r = _run(["seq", "make-task", "order", "--out", out, "--n-train", 4, "--n-test", 4, "--length", 256])
    assert r.exit_code == 0, r.output  # archkit's own task folder: replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    r = _run(["seq", "make-task", "needle", "--out", tmp_path / "mine", "--length", 256])
    assert r.exit_code != 0 and "holds files archkit did not write" in r.output and "Traceback" not in r.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    r = _run(["seq", "make-task", "needle", "--out", tmp_path / "x", "--n-train", 0])
    assert r.exit_code != 0 and "--n-train" in r.output


def test_auto_run_reports_cv_and_baseline_and_reloads_identically(tmp_path):
    task = tmp_path / "order"
    assert (
        _run(["seq", "make-task", "order", "--out", task, "--n-train", 24, "--n-test", 8, "--length", 256]).exit_code
        == 0
    )
    run = tmp_path / "run"
    r = _run(["seq", "train", "--shards", task / "train", "--model", "auto", "--cv", 2, "--epochs", 1, "--out", run])
    assert r.exit_code == 0, r.output
    assert "auto chose" in r.output and "ROCKET baseline" in r.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["chosen"] in summary["cv"] and summary["cv_folds"] == 2
    x, _ = make_real_task("order", 8, seed=0, split="test", length=256)
    np.save(tmp_path / "X.npy", x)
    r = _run(["seq", "predict", "--run", run, "--x", tmp_path / "X.npy", "--out", tmp_path / "pred.npy"])
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), load_run_estimator(run).predict(x))
    r = _run(["seq", "train", "--shards", task / "train", "--model", "auto", "--out", run])
    assert r.exit_code != 0 and "already holds a run" in r.output  # nothing overwritten


def test_auto_chooses_on_a_bounded_subsample_and_refits_the_winner_on_every_case(tmp_path):
    task = tmp_path / "needle"
    args = ["seq", "make-task", "needle", "--out", task, "--n-train", 40, "--n-test", 8, "--length", 256]
    assert _run(args).exit_code == 0
    run = tmp_path / "run"
    train = ["seq", "train", "--shards", task / "train", "--model", "auto", "--cv", 2, "--epochs", 1]
    r = _run([*train, "--max-cv-cases", 12, "--val-fraction", 0.25, "--out", run])
    assert r.exit_code == 0, r.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["cv_cases"] == 12 and summary["num_train"] == 30  # chosen on 12 cases, refitted on all 30
    assert all("fit_s" in row for row in summary["cv"].values())  # the cost of each candidate beside its accuracy
    assert summary["estimator"] == ("RocketClassifier" if summary["chosen"] != "lstm-conv" else "LSTMClassifier")
    r = _run([*train, "--max-cv-cases", 3, "--out", tmp_path / "other"])
    assert r.exit_code == 2 and "--max-cv-cases" in r.output


def test_rocket_run_in_process_equals_reloaded_run_and_a_changed_file_is_refused(tmp_path):
    task = tmp_path / "needle"
    assert (
        _run(["seq", "make-task", "needle", "--out", task, "--n-train", 16, "--n-test", 8, "--length", 256]).exit_code
        == 0
    )
    cfg = SeqTrainConfig(out=str(tmp_path / "run"), shards=str(task / "train"), device="cpu", progress=False)
    summary, est = train_estimator(cfg, "rocket")
    assert summary["rocket_baseline"]["same_model"] and 0.0 <= summary["held_out_accuracy"] <= 1.0
    assert summary["fit"]["transform_s"] > 0 and summary["fit"]["head"] == "ridge"
    assert not (tmp_path / "run" / "fit_state").exists()  # the fit's own state, removed once done
    assert not list((tmp_path / "run").rglob("*.pkl"))
    x, _ = make_real_task("needle", 8, seed=0, split="test", length=256)
    np.testing.assert_array_equal(load_run_estimator(tmp_path / "run").predict_proba(x), est.predict_proba(x))
    with open(tmp_path / "run" / "estimator" / "estimator.safetensors", "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        load_run_estimator(tmp_path / "run")


def test_pickled_run_of_an_earlier_archkit_is_refused_in_one_line(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "estimator.pkl").write_bytes(b"not unpickled")
    np.save(tmp_path / "X.npy", np.zeros((2, 16, 8), np.float32))
    r = _run(["seq", "predict", "--run", run, "--x", tmp_path / "X.npy", "--out", tmp_path / "pred.npy"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "estimator.pkl" in r.output and "--out NEW" in r.output and len(r.output.strip().splitlines()) == 1


def test_lstm_run_fits_the_rocket_baseline_on_the_same_split(tmp_path):
    task = tmp_path / "needle"
    assert (
        _run(["seq", "make-task", "needle", "--out", task, "--n-train", 16, "--n-test", 4, "--length", 256]).exit_code
        == 0
    )
    run = tmp_path / "run"
    r = _run(
        [
            "seq",
            "train",
            "--shards",
            task / "train",
            "--model",
            "lstm",
            "--frontend",
            "conv",
            "--hidden",
            8,
            "--epochs",
            1,
            "--out",
            run,
        ]
    )
    assert r.exit_code == 0, r.output
    base = json.loads((run / "baseline.json").read_text())
    assert base["num_held_out"] == json.loads((run / "summary.json").read_text())["num_held_out"] == 3
    assert "ROCKET baseline" in r.output


def test_below_baseline_warning():
    assert below_baseline(0.5, {"held_out_accuracy": 0.9}).startswith("warning: the chosen model")
    assert below_baseline(0.95, {"held_out_accuracy": 0.9}) is None
    assert below_baseline(0.5, {"held_out_accuracy": 0.9, "same_model": True}) is None


class Stop(Exception):
    pass


def test_killed_rocket_run_continues_when_the_same_command_is_rerun(tmp_path):
    task = tmp_path / "needle"
    make = ["seq", "make-task", "needle", "--out", task, "--n-train", 30, "--n-test", 8, "--length", 256]
    assert _run(make).exit_code == 0
    whole = ["seq", "train", "--shards", task / "train", "--model", "rocket", "--batch-size", 4, "--device", "cpu"]
    assert _run([*whole, "--out", tmp_path / "whole"]).exit_code == 0
    r = _run([*whole, "--out", tmp_path / "fresh", "--resume"])
    assert r.exit_code == 2 and "holds no interrupted --model rocket fit" in r.output

    def stop(name, done):
        if done == 3:
            raise Stop

    cfg = SeqTrainConfig(
        out=str(tmp_path / "run"), shards=str(task / "train"), batch_size=4, device="cpu", progress=False
    )
    with pytest.raises(Stop):
        train_estimator(cfg, "rocket", hook=stop, every=2)
    assert json.loads((tmp_path / "run" / "fit_state" / "ridge.rank0.json").read_text())["batches_done"] == 2
    r = _run([*whole, "--out", tmp_path / "run"])
    assert r.exit_code == 0, r.output
    assert "fitting on 24 cases in 1 shards: 1 pass over the data" in r.output
    x, _ = make_real_task("needle", 8, seed=0, split="test", length=256)
    np.testing.assert_array_equal(
        load_run_estimator(tmp_path / "run").predict_proba(x), load_run_estimator(tmp_path / "whole").predict_proba(x)
    )


def test_rocket_run_under_torchrun_equals_one_process(tmp_path):
    import os
    import subprocess
    import sys

    task = tmp_path / "needle"
    args = ["seq", "make-task", "needle", "--out", task, "--n-train", 24, "--n-test", 8, "--length", 256]
    assert _run(args).exit_code == 0
    train = [
        "seq",
        "train",
        "--shards",
        str(task / "train"),
        "--model",
        "rocket",
        "--device",
        "cpu",
        "--batch-size",
        "4",
    ]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "archkit"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*cmd, *train, "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _run([*train, "--out", tmp_path / "one"]).exit_code == 0
    two, one = (json.loads((tmp_path / r / "summary.json").read_text()) for r in ("two", "one"))
    assert two["fit"]["processes"] == 2 and one["fit"]["processes"] == 1
    assert two["held_out_accuracy"] == one["held_out_accuracy"]
    x, _ = make_real_task("needle", 8, seed=0, split="test", length=256)
    np.testing.assert_array_equal(
        load_run_estimator(tmp_path / "two").predict(x), load_run_estimator(tmp_path / "one").predict(x)
    )
