import json
import os
import signal

import numpy as np
import pytest
import torch

from archkit.loading import load_model
from archkit.train import SeqTrainConfig, as_class_targets, predict_sequences, sequence_loss, train_sequence
from archkit.train import sequence as seqtrain
from archkit.train.checkpoint import load_trainer_state, read_config


def test_one_hot_and_integer_targets_give_the_same_loss():
    logits = torch.randn(6, 4, requires_grad=True)
    ids = torch.tensor([0, 3, 1, 1, 2, 0])
    one_hot = np.eye(4)[ids.numpy()]
    a, b = sequence_loss(logits, ids), sequence_loss(logits, one_hot)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, torch.nn.functional.cross_entropy(logits, ids))
    np.testing.assert_array_equal(as_class_targets(one_hot, 4).numpy(), ids.numpy())


def test_target_shaped_like_the_input_is_refused_with_the_explanation():
    x = np.zeros((5, 64, 8), dtype=np.float32)
    padded_y = np.zeros_like(x)
    padded_y[:, 0, :4] = np.eye(4)[[0, 1, 2, 3, 0]]  # the question's zero-padding of one-hot Y
    with pytest.raises(ValueError, match="same shape as the input") as err:
        as_class_targets(padded_y, 4, x)
    assert "ONE target per sequence" in str(err.value) and "zero-pad" in str(err.value)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((5, 64)),
        np.zeros((5, 4, 2)),
        np.eye(5)[:, :5],
        np.full((5, 4), 0.25),
        np.zeros(4),
        np.array([0, 1, 2, 7, 1]),
        np.array([0.5, 1, 2, 3, 1]),
    ],
)
def test_any_other_target_shape_or_content_is_refused(bad):
    with pytest.raises(ValueError, match="y:"):
        as_class_targets(bad, 4, np.zeros((5, 64, 8)))


def _files(tmp_path, n=48, t=64, one_hot=False):
    from archkit.data import make_long_task

    x, y = make_long_task(n, seed=0, length=t)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", np.eye(4)[y] if one_hot else y)
    return tmp_path / "X.npy", tmp_path / "Y.npy"


def _cfg(tmp_path, xp, yp, **kw):
    base = dict(
        out=str(tmp_path / "run"),
        x=str(xp),
        y=str(yp),
        hidden=8,
        layers=1,
        frontend="conv",
        conv_channels=8,
        conv_stride=2,
        epochs=2,
        batch_size=8,
        checkpoint_every=3,
        progress=False,
    )
    base.update(kw)
    return SeqTrainConfig(**base)


def test_train_writes_checkpoint_metrics_confusion_png_and_predicts(tmp_path):
    xp, yp = _files(tmp_path, one_hot=True)
    summary = train_sequence(_cfg(tmp_path, xp, yp))
    run = tmp_path / "run"
    assert summary["stopped"] == "done" and summary["epoch"] == 2 and 0 <= summary["held_out_accuracy"] <= 1
    assert (run / "confusion.png").stat().st_size > 1000
    assert np.asarray(summary["confusion_matrix"]).sum() == summary["num_held_out"] == 10
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    meta = read_config(run / "checkpoint")
    assert meta["kind"] == "SequenceClassifierConfig" and meta["train_config"]["frontend"] == "conv"
    model = load_model(run / "checkpoint")
    pred, proba = predict_sequences(model, np.load(xp, mmap_mode="r"), batch_size=7)
    assert pred.shape == (48,) and proba.shape == (48, 4)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)


def test_existing_run_needs_resume(tmp_path):
    xp, yp = _files(tmp_path)
    train_sequence(_cfg(tmp_path, xp, yp, epochs=1))
    with pytest.raises(ValueError, match="--resume"):
        train_sequence(_cfg(tmp_path, xp, yp, epochs=1))


def test_interrupt_then_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    xp, yp = _files(tmp_path)
    # dropout: the restored RNG must be the one the run would have drawn its masks from (no loader draws in between)
    straight = train_sequence(_cfg(tmp_path, xp, yp, out=str(tmp_path / "straight"), lr_schedule="cosine", dropout=0.3))

    calls = {"n": 0}
    real_loss = seqtrain.sequence_loss

    def loss_then_ctrl_c(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:  # mid first epoch (5 batches per epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return real_loss(*a, **k)

    monkeypatch.setattr(seqtrain, "sequence_loss", loss_then_ctrl_c)
    first = train_sequence(_cfg(tmp_path, xp, yp, lr_schedule="cosine", dropout=0.3))
    assert first["stopped"] == "interrupted" and first["step"] == 3
    state = load_trainer_state(tmp_path / "run" / "checkpoint")
    assert (state["epoch"], state["batch_in_epoch"], state["step"]) == (0, 3, 3)
    monkeypatch.setattr(seqtrain, "sequence_loss", real_loss)
    resumed = train_sequence(_cfg(tmp_path, xp, yp, lr_schedule="cosine", dropout=0.3), resume=True)
    assert resumed["step"] == straight["step"] == 10
    a, b = load_model(tmp_path / "straight" / "checkpoint"), load_model(tmp_path / "run" / "checkpoint")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p, q, msg=name)


def test_conv_lstm_learns_the_long_task(tmp_path):
    from archkit.data import make_long_task

    x, y = make_long_task(480, seed=0, length=256)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", y)
    summary = train_sequence(
        _cfg(
            tmp_path,
            tmp_path / "X.npy",
            tmp_path / "Y.npy",
            hidden=32,
            conv_channels=32,
            conv_stride=4,
            pool="max",
            epochs=10,
            batch_size=16,
            lr=3e-3,
            val_fraction=0.25,
        )
    )
    assert summary["held_out_accuracy"] > 0.7  # chance 25%, end-only 50%


def test_cosine_schedule_decays_to_zero_and_unknown_schedules_are_refused():
    from archkit.train.schedule import lr_at, warmup_cosine_lr

    assert lr_at(1e-2, "cosine", 0, 100) == pytest.approx(1e-2) and lr_at(1e-2, "cosine", 50, 100) == pytest.approx(
        5e-3
    )
    assert lr_at(1e-2, "cosine", 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(1e-2, "constant", 99, 100) == 1e-2
    with pytest.raises(ValueError, match=r"lr_schedule.*'cosine'.*'linear'"):
        lr_at(1e-2, "linear", 0, 10)
    # the priors' schedule: linear warm-up over 5 % of the steps, then cosine down to 10 %
    assert warmup_cosine_lr(1.0, 0, 200) == pytest.approx(0.1) and warmup_cosine_lr(1.0, 9, 200) == pytest.approx(1.0)
    assert warmup_cosine_lr(1.0, 200, 200) == pytest.approx(0.1)


def test_label_smoothing_changes_the_loss_and_bad_values_are_refused(tmp_path):
    logits, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    plain = sequence_loss(logits, y)
    assert sequence_loss(logits, y, label_smoothing=0.0) == plain
    torch.testing.assert_close(
        sequence_loss(logits, y, label_smoothing=0.1), torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1)
    )
    with pytest.raises(ValueError, match="label_smoothing"):
        sequence_loss(logits, y, label_smoothing=1.0)
    xp, yp = _files(tmp_path)
    with pytest.raises(ValueError, match="label_smoothing"):
        train_sequence(_cfg(tmp_path, xp, yp, label_smoothing=-0.1))


def test_fcn_branch_and_conv_batchnorm_train_save_and_reload(tmp_path):
    xp, yp = _files(tmp_path)
    summary = train_sequence(
        _cfg(
            tmp_path,
            xp,
            yp,
            conv_stride=1,
            conv_norm="batch",
            fcn_channels=4,
            pool="mean",
            label_smoothing=0.1,
            epochs=1,
        )
    )
    assert summary["stopped"] == "done"
    assert summary["model_config"]["conv_norm"] == "batch" and summary["model_config"]["fcn_channels"] == 4
    meta = read_config(tmp_path / "run" / "checkpoint")
    assert meta["train_config"]["label_smoothing"] == 0.1
    model = load_model(tmp_path / "run" / "checkpoint")
    assert model.fcn is not None and model.frontend.norms is not None
    pred, _ = predict_sequences(model, np.load(xp, mmap_mode="r"), batch_size=16)
    assert pred.shape == (48,)


def test_conv_norm_without_the_conv_frontend_is_a_clear_error(tmp_path):
    xp, yp = _files(tmp_path)
    with pytest.raises(ValueError, match=r"conv_norm.*frontend='conv'"):
        train_sequence(_cfg(tmp_path, xp, yp, frontend="none", conv_norm="batch"))


def test_two_workers_train_and_predict_exactly_as_none(tmp_path):
    xp, yp = _files(tmp_path)
    a = train_sequence(_cfg(tmp_path, xp, yp, out=str(tmp_path / "a")))
    b = train_sequence(_cfg(tmp_path, xp, yp, out=str(tmp_path / "b"), workers=2))
    assert a["step"] == b["step"] and a["confusion_matrix"] == b["confusion_matrix"]
    wa, wb = (load_model(tmp_path / r / "checkpoint").state_dict() for r in ("a", "b"))
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    model = load_model(tmp_path / "a" / "checkpoint")
    x = np.load(xp, mmap_mode="r")
    pa, qa = predict_sequences(model, x, batch_size=7)
    pb, qb = predict_sequences(model, x, batch_size=7, workers=2)
    assert np.array_equal(pa, pb) and np.array_equal(qa, qb) and len(pa) == 48
    with pytest.raises(ValueError, match="workers"):
        train_sequence(_cfg(tmp_path, xp, yp, out=str(tmp_path / "c"), workers=-1))
