"""`--resume` continues a run as it was saved: the saved config rebuilds the model, a changed architecture is refused."""

import json
from dataclasses import dataclass, field

import pytest

from archkit.train import VQVAETrainConfig, read_config, train_vqvae
from archkit.train.resume import resume_config

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


@dataclass
class Cfg:
    out: str = "run"
    hidden: int = 8
    lr: float = 0.1
    steps: int = 10
    epochs: float | None = None
    sizes: list[int] = field(default_factory=lambda: [1, 2])


def test_fields_left_out_take_the_saved_values_and_a_changed_fixed_field_is_refused():
    saved = {"out": "elsewhere", "hidden": 32, "lr": 0.5, "steps": 20, "epochs": 3.0, "sizes": [4, 5]}
    cfg = Cfg()
    restored = resume_config(cfg, saved, fixed=("hidden", "sizes"))
    assert cfg == Cfg(out="run", hidden=32, lr=0.5, steps=20, epochs=3.0, sizes=[4, 5])  # the folder is never taken
    assert sorted(restored) == ["epochs", "hidden", "lr", "sizes", "steps"]

    cfg = Cfg(lr=0.2, steps=30)  # changeable fields given: kept; steps given brings its group (epochs) along
    resume_config(cfg, saved, fixed=("hidden",), groups=[("steps", "epochs")])
    assert (cfg.hidden, cfg.lr, cfg.steps, cfg.epochs) == (32, 0.2, 30, None)

    cfg = Cfg(hidden=64)
    with pytest.raises(ValueError, match=r"^--hidden: the run was saved with 32, got 64"):
        resume_config(cfg, saved, fixed=("hidden",))
    cfg = Cfg()  # the default value, but named as given on the command line: still a change, refused
    with pytest.raises(ValueError, match="--hidden"):
        resume_config(cfg, saved, fixed=("hidden",), explicit={"hidden"})
    resume_config(Cfg(hidden=32, sizes=(4, 5)), saved, fixed=("hidden", "sizes"))  # the same values: fine


def test_a_restored_value_is_checked_like_any_config_read_back():
    with pytest.raises(ValueError, match=r"run\.json.*field 'hidden' expected int, got 'big'"):
        resume_config(Cfg(), {"hidden": "big"}, fixed=(), source="run.json")
    with pytest.raises(ValueError, match="expected the run's settings as a JSON object"):
        resume_config(Cfg(), ["hidden"], fixed=(), source="run.json")


def test_a_rotation_run_resumed_without_its_quantizer_flag_stays_rotation(tmp_path):
    run = str(tmp_path / "run")
    train_vqvae(VQVAETrainConfig(out=run, steps=1, eval_every=1, quantizer="rotation", lr=1e-3, **TINY), progress=False)
    train_vqvae(VQVAETrainConfig(out=run, steps=2, eval_every=1, resume=True, **TINY), progress=False)
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["quantizer"] == "rotation" and saved["lr"] == 1e-3  # not rewritten to today's defaults
    assert read_config(tmp_path / "run" / "vqvae")["config"]["quantizer"] == "rotation"
    assert read_config(tmp_path / "run" / "vqvae")["step"] == 2
    with pytest.raises(ValueError, match=r"^--quantizer: the run was saved with 'rotation', got 'ema'"):
        train_vqvae(
            VQVAETrainConfig(out=run, steps=3, eval_every=1, resume=True, **TINY),
            explicit={"quantizer"},
            progress=False,
        )
    with pytest.raises(ValueError, match=r"^--code-dim"):
        train_vqvae(
            VQVAETrainConfig(out=run, steps=3, eval_every=1, resume=True, **{**TINY, "code_dim": 4}), progress=False
        )
    assert read_config(tmp_path / "run" / "vqvae")["step"] == 2  # nothing trained by a refused resume


def test_a_resumed_prior_keeps_its_architecture_and_refuses_another(tmp_path):
    from test_prior_train import _write_codes  # the codes folder `vqvae encode` writes, made directly

    from archkit.train.prior import PriorTrainConfig, prior_dir, train_prior

    run = _write_codes(tmp_path / "run")
    common = dict(run=str(run), level="top", batch_size=16, lr=3e-3, eval_every=5)
    train_prior(PriorTrainConfig(steps=5, channels=16, layers=2, kernel_size=3, **common), progress=False)
    with pytest.raises(ValueError, match=r"^--channels: the run was saved with 16, got 32"):
        train_prior(PriorTrainConfig(steps=10, channels=32, resume=True, **common), progress=False)
    train_prior(PriorTrainConfig(steps=10, resume=True, **common), progress=False)  # model flags left out
    meta = read_config(prior_dir(run, 0))
    assert meta["step"] == 10 and meta["config"]["channels"] == 16
    assert (meta["train_config"]["channels"], meta["train_config"]["layers"]) == (16, 2)  # the record stays true
