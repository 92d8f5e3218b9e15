import json
from pathlib import Path

import pytest
import torch

from archkit.models import ResNet, ResNetConfig
from archkit.train import config_from_dict, load_trainer_state, load_weights, read_config, save_checkpoint


def test_roundtrip_identical_outputs(tmp_path):
    model = ResNet(ResNetConfig()).eval()
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    opt.step()
    save_checkpoint(
        tmp_path / "ck", model, model.config, trainer_state={"optimizer": opt.state_dict(), "step": 7}, step=7
    )
    meta = read_config(tmp_path / "ck")
    assert meta["kind"] == "ResNetConfig" and meta["step"] == 7
    clone = ResNet(config_from_dict(ResNetConfig, meta["config"])).eval()
    load_weights(tmp_path / "ck", clone)
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(clone(x), model(x), rtol=0, atol=0)
    state = load_trainer_state(tmp_path / "ck")
    assert state["step"] == 7 and "state" in state["optimizer"]
    assert not [p for p in (tmp_path / "ck").iterdir() if p.name.endswith(".tmp")]


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_config(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"config.json is missing"):
        read_config(tmp_path / "empty")
    model = ResNet(ResNetConfig())
    save_checkpoint(tmp_path / "ck", model, model.config)
    other = ResNet(ResNetConfig(widths=[8, 16, 32]))
    with pytest.raises(ValueError, match="does not match"):
        load_weights(tmp_path / "ck", other)
    with pytest.raises(ValueError, match="unknown fields"):
        config_from_dict(
            ResNetConfig, {**json.loads((tmp_path / "ck" / "config.json").read_text())["config"], "bogus": 1}
        )


def test_load_model_by_kind(tmp_path):
    from archkit.loading import load_model

    model = ResNet(ResNetConfig(widths=[8, 8, 8])).eval()
    save_checkpoint(tmp_path / "ck", model, model.config)
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(load_model(tmp_path / "ck")(x), model(x))


def test_jsonl_survives_torn_line(tmp_path):
    from archkit.train import append_jsonl, read_jsonl

    append_jsonl(tmp_path / "m.jsonl", {"step": 1, "loss": torch.tensor(0.5)})
    with open(tmp_path / "m.jsonl", "a") as f:
        f.write('{"step": 2, "lo')
    assert read_jsonl(tmp_path / "m.jsonl") == [{"step": 1, "loss": 0.5}]


def test_atomic_write_leaves_nothing_on_failure_and_uses_umask_permissions(tmp_path):
    import os
    import stat

    from archkit.train import atomic_write

    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("crash mid-write")

    target = tmp_path / "sub" / "grid.png"
    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert not target.exists() and list((tmp_path / "sub").iterdir()) == []
    seen = []
    atomic_write(target, lambda tmp: (seen.append(tmp), Path(tmp).write_text("ok")))
    assert seen[0].endswith(".png")  # libraries that pick a format from the suffix still work
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask and target.read_text() == "ok"


# --- a checkpoint is one atomic set -----------------------------------------------------------

from archkit.io import checkpoint as ckmod  # noqa: E402

FS_STEPS = ("_write_file", "_rename", "_remove_tree", "_carry_extras")


class _Crash(BaseException):
    """A simulated kill: not an Exception, so no cleanup handler runs, as with SIGKILL."""


def _seq_files(tmp_path):
    import numpy as np

    from archkit.data import make_long_task

    x, y = make_long_task(48, seed=0, length=64)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", y)
    return tmp_path / "X.npy", tmp_path / "Y.npy"


def _seq_cfg(xp, yp, out, **kw):
    from archkit.train import SeqTrainConfig

    base = dict(
        out=str(out),
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
    return SeqTrainConfig(**{**base, **kw})


def _arm_fault(monkeypatch, on_save: int, at_step: int, seen: list[str]) -> None:
    """Make the `at_step`-th filesystem step of the `on_save`-th save_checkpoint call crash."""
    from archkit.train import sequence as seqtrain

    state = {"saves": 0, "steps": 0}
    real_save = seqtrain.save_checkpoint

    def counting_save(*a, **k):
        state["saves"] += 1
        state["steps"] = 0
        return real_save(*a, **k)

    monkeypatch.setattr(seqtrain, "save_checkpoint", counting_save)
    for name in FS_STEPS:
        real = getattr(ckmod, name)

        def step(*a, _real=real, _name=name, **k):
            if state["saves"] == on_save:
                if state["steps"] == at_step:
                    raise _Crash(_name)
                state["steps"] += 1
                seen.append(_name)
            return _real(*a, **k)

        monkeypatch.setattr(ckmod, name, step)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_crash_at_every_step_of_a_checkpoint_write_then_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    from archkit.train import train_sequence

    xp, yp = _seq_files(tmp_path)
    train_sequence(_seq_cfg(xp, yp, tmp_path / "straight"))
    expected = _weights(tmp_path / "straight" / "checkpoint")

    # the 2nd save (end of epoch 1, step 5) replaces the step-3 checkpoint: count its filesystem steps
    steps: list[str] = []
    with monkeypatch.context() as m:
        _arm_fault(m, on_save=2, at_step=10**6, seen=steps)
        train_sequence(_seq_cfg(xp, yp, tmp_path / "count"))
    assert steps.count("_write_file") == 4 and steps.count("_rename") == 2, steps  # 4 files, then the swap
    resumed_from = set()
    for k in range(len(steps) + 1):  # before step 0 (nothing written) ... after the last one
        out = tmp_path / f"crash{k}"
        with monkeypatch.context() as m:
            _arm_fault(m, on_save=2, at_step=k, seen=[])
            if k < len(steps):
                with pytest.raises(_Crash):
                    train_sequence(_seq_cfg(xp, yp, out))
            else:  # no crash inside the write: stop right after it instead
                _arm_fault(m, on_save=3, at_step=0, seen=[])
                with pytest.raises(_Crash):
                    train_sequence(_seq_cfg(xp, yp, out))
        ck = out / "checkpoint"
        step = read_config(ck)["step"]
        assert step in (3, 5), (k, step)  # the previous set or the new one, never a mix
        assert load_trainer_state(ck)["step"] == step
        resumed_from.add(step)
        train_sequence(_seq_cfg(xp, yp, out), resume=True)
        got = _weights(ck)
        assert got.keys() == expected.keys()
        for name in expected:
            assert torch.equal(got[name], expected[name]), (k, steps[k] if k < len(steps) else "after", name)
        assert sorted(p.name for p in out.iterdir()) == [
            ".archkit.json",  # the marker: an archkit sequence run
            "checkpoint",
            "confusion.png",
            "metrics.jsonl",
            "summary.json",
        ], k  # no leftovers after the resume
    assert resumed_from == {3, 5}  # both sides of the swap were exercised


def test_a_crash_between_the_two_renames_is_recovered_on_read_and_on_the_next_save(tmp_path, monkeypatch):
    model = ResNet(ResNetConfig(widths=[8, 8, 8]))
    save_checkpoint(tmp_path / "ck", model, model.config, step=1)
    (tmp_path / "ck" / "notes.txt").write_text("kept")  # not part of the checkpoint: carried over
    calls = []

    def rename(src, dst):
        if calls:
            raise _Crash("between the renames")
        calls.append(src)
        os.rename(src, dst)

    import os

    monkeypatch.setattr(ckmod, "_rename", rename)
    with pytest.raises(_Crash):
        save_checkpoint(tmp_path / "ck", model, model.config, step=2)
    monkeypatch.undo()
    assert not (tmp_path / "ck").exists()
    assert read_config(tmp_path / "ck")["step"] == 2  # the complete new set is found without moving anything
    save_checkpoint(tmp_path / "ck", model, model.config, step=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    assert read_config(tmp_path / "ck")["step"] == 3 and (tmp_path / "ck" / "notes.txt").read_text() == "kept"


def test_resume_refuses_a_mixed_or_incomplete_set_naming_the_folder(tmp_path):
    from archkit.train import train_sequence

    xp, yp = _seq_files(tmp_path)
    train_sequence(_seq_cfg(xp, yp, tmp_path / "a", epochs=1))
    train_sequence(_seq_cfg(xp, yp, tmp_path / "b", epochs=1, seed=1))
    a, b = tmp_path / "a" / "checkpoint", tmp_path / "b" / "checkpoint"
    (a / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes())  # weights from another run
    with pytest.raises(ValueError, match=rf"{a}.*incomplete or mixed.*model.safetensors"):
        train_sequence(_seq_cfg(xp, yp, tmp_path / "a", epochs=2), resume=True)
    (b / "trainer.pt").unlink()
    with pytest.raises(ValueError, match=rf"{b}.*trainer.pt is listed in manifest.json but missing"):
        train_sequence(_seq_cfg(xp, yp, tmp_path / "b", epochs=2, seed=1), resume=True)


def test_a_legacy_folder_without_manifest_still_loads_and_mismatched_steps_are_refused(tmp_path):
    model = ResNet(ResNetConfig(widths=[8, 8, 8])).eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    save_checkpoint(
        tmp_path / "ck", model, model.config, trainer_state={"optimizer": opt.state_dict(), "step": 4}, step=4
    )
    (tmp_path / "ck" / "manifest.json").unlink()  # what archkit wrote before manifests existed
    from archkit.loading import load_model

    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(load_model(tmp_path / "ck")(x), model(x))
    assert load_trainer_state(tmp_path / "ck")["step"] == 4
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    (tmp_path / "ck" / "config.json").write_text(json.dumps({**meta, "step": 2}))  # the old crash: mixed steps
    with pytest.raises(ValueError, match=r"trainer.pt is at step 4 but config.json at step 2"):
        load_trainer_state(tmp_path / "ck")


def test_tied_and_overlapping_weights_save_and_load(tmp_path):
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 4)
            self.head = torch.nn.Linear(4, 10, bias=False)
            self.head.weight = self.embed.weight  # tied, as in language models
            self.register_buffer("first_rows", self.embed.weight.detach()[:2])  # a view into the same storage

        def forward(self, i):
            return self.head(self.embed(i))

    model = Tied()
    save_checkpoint(tmp_path / "ck", model, {"vocab": 10}, kind="Tied")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "ck" / "model.safetensors"), "pt") as f:
        assert sorted(f.keys()) == ["embed.weight", "first_rows"]  # the tied tensor is stored once
    clone = Tied()
    load_weights(tmp_path / "ck", clone)
    assert clone.head.weight is clone.embed.weight
    i = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(clone(i), model(i), rtol=0, atol=0)
    torch.testing.assert_close(clone.first_rows, model.first_rows, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["model.safetensors", "trainer.pt"])
@pytest.mark.parametrize("manifest", [True, False])
def test_truncated_or_corrupt_files_name_the_file(tmp_path, name, manifest):
    model = ResNet(ResNetConfig(widths=[8, 8, 8]))
    save_checkpoint(tmp_path / "ck", model, model.config, trainer_state={"step": 1, "w": torch.ones(100)}, step=1)
    if not manifest:
        (tmp_path / "ck" / "manifest.json").unlink()
    path = tmp_path / "ck" / name
    data = path.read_bytes()
    for broken in (data[: len(data) // 2], b"\x00garbage" + data[8:]):
        path.write_bytes(broken)
        with pytest.raises(ValueError, match=name) as err:
            load_weights(tmp_path / "ck", model) if name == "model.safetensors" else load_trainer_state(tmp_path / "ck")
        assert str(tmp_path / "ck") in str(err.value)
