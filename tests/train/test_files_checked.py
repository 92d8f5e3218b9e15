"""Hand-edited files archkit reads: each bad field is one ValueError naming the file and the field."""

import json
from dataclasses import dataclass

import pytest
from torch import nn

from archkit.io import config_from_dict, read_config, save_checkpoint
from archkit.surgery import replay_surgery


@dataclass
class Cfg:
    beta: float = 0.25


def test_nan_and_infinity_are_never_a_setting():
    assert config_from_dict(Cfg, {"beta": 0.5}).beta == 0.5
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"cfg\.json: config for Cfg: field 'beta'"):
            config_from_dict(Cfg, {"beta": bad}, "cfg.json")


def test_recorded_surgery_must_be_a_list_of_steps():
    with pytest.raises(ValueError, match=r"^m/config\.json: field surgery: expected a list"):
        replay_surgery(nn.Linear(2, 2), 7, "m/config.json")
    with pytest.raises(ValueError, match=r"field surgery\[0\]: expected an object"):
        replay_surgery(nn.Linear(2, 2), ["fuse_bn"], "m/config.json")
    with pytest.raises(ValueError, match=r"field surgery\[0\] \(fuse_bn\): bad arguments"):
        replay_surgery(nn.Linear(2, 2), [{"op": "fuse_bn", "colour": "red"}], "m/config.json")


def test_a_manifest_entry_that_is_a_string_is_named(tmp_path):
    folder = save_checkpoint(tmp_path / "ck", nn.Linear(2, 2), Cfg(), step=1)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["model.safetensors"] = "abc"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"manifest\.json field files\.model\.safetensors: expected an object") as e:
        read_config(folder)
    assert "\n" not in str(e.value)


def test_a_value_the_config_itself_refuses_names_the_file_and_the_field():
    from dataclasses import asdict

    from archkit.models import VQVAE2Config

    fields = {**asdict(VQVAE2Config()), "fsq_levels": [1, 8]}  # the right JSON type, a wrong value
    with pytest.raises(ValueError, match=r"^run/config\.json: config for VQVAE2Config: fsq_levels: expected"):
        config_from_dict(VQVAE2Config, fields, "run/config.json")
