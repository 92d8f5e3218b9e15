"""load_model rebuilds converted checkpoints: the recorded surgery steps are replayed before the weights load."""
import dataclasses

import pytest
import torch

from archkit.models import ResNet, ResNetConfig, build_model, load_model
from archkit.surgery import decompose, fuse_bn, lowrank, randomize_bn_stats, record_step
from archkit.train import save_checkpoint


def _model() -> ResNet:
    torch.manual_seed(0)
    return randomize_bn_stats(ResNet(ResNetConfig()), seed=1).eval()


def test_fused_then_factorized_checkpoint_round_trips(tmp_path):
    x = torch.randn(2, 1, 8, 8)
    model, _ = fuse_bn(_model())
    model, low = lowrank(model, rank=2, example_inputs=x)
    model, dec = decompose(model, energy=0.8, example_inputs=x)
    assert low.changed and dec.changed  # the replay has something to rebuild
    steps = [record_step("fuse_bn"), record_step("lowrank", low, x), record_step("decompose", dec, x, act=None)]
    save_checkpoint(tmp_path / "ck", model, model.config, surgery=steps)
    loaded = load_model(tmp_path / "ck")
    assert str(loaded) == str(model)
    torch.testing.assert_close(loaded(x), model(x))


def test_unknown_surgery_step_is_a_clear_error():
    meta = {"kind": "ResNetConfig", "config": dataclasses.asdict(ResNetConfig()), "surgery": [{"op": "melt"}]}
    with pytest.raises(ValueError, match="unknown surgery 'melt'.*fuse_bn"):
        build_model(meta)


def test_unknown_kind_lists_the_loadable_ones():
    with pytest.raises(ValueError, match="loadable kinds are .*ResNetConfig"):
        build_model({"kind": "Nope", "config": {}})
