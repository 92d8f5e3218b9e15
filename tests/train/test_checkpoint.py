import json

import pytest
import torch

from archkit.models import ResNet, ResNetConfig
from archkit.train import config_from_dict, load_trainer_state, load_weights, read_config, save_checkpoint


def test_roundtrip_identical_outputs(tmp_path):
    model = ResNet(ResNetConfig()).eval()
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "ck", model, model.config, trainer_state={"optimizer": opt.state_dict(), "step": 7}, step=7)
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
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        read_config(tmp_path / "empty")
    model = ResNet(ResNetConfig())
    save_checkpoint(tmp_path / "ck", model, model.config)
    other = ResNet(ResNetConfig(widths=[8, 16, 32]))
    with pytest.raises(ValueError, match="does not match"):
        load_weights(tmp_path / "ck", other)
    with pytest.raises(ValueError, match="unknown fields"):
        config_from_dict(ResNetConfig, {**json.loads((tmp_path / "ck" / "config.json").read_text())["config"], "bogus": 1})


def test_load_model_by_kind(tmp_path):
    from archkit.models import load_model

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
        open(tmp, "w").write("half")
        raise RuntimeError("crash mid-write")

    target = tmp_path / "sub" / "grid.png"
    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert not target.exists() and list((tmp_path / "sub").iterdir()) == []
    seen = []
    atomic_write(target, lambda tmp: (seen.append(tmp), open(tmp, "w").write("ok")))
    assert seen[0].endswith(".png")  # libraries that pick a format from the suffix still work
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask and target.read_text() == "ok"
