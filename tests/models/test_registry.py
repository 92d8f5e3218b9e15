"""load_model rebuilds converted checkpoints: the recorded surgery steps are replayed before the weights load."""

import dataclasses

import pytest
import torch

from archkit.loading import build_model, load_model
from archkit.models import ResNet, ResNetConfig
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
    with pytest.raises(ValueError, match=r"unknown surgery 'melt'.*fuse_bn"):
        build_model(meta)


def test_unknown_kind_lists_the_loadable_ones():
    with pytest.raises(ValueError, match=r"loadable kinds are .*ResNetConfig"):
        build_model({"kind": "Nope", "config": {}})


def _checkpoint_without_manifest(tmp_path, model, **meta):
    folder = tmp_path / "ck"
    save_checkpoint(folder, model, model.config, **meta)
    (folder / "manifest.json").unlink()  # hand-edited config.json: the parser is what must catch it
    return folder


def _rewrite(folder, change):
    import json

    path = folder / "config.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps(change(meta)))


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda m: [m], "expected a JSON object"),
        (lambda m: {**m, "config": None}, "field 'config'.*null"),
        (lambda m: {k: v for k, v in m.items() if k != "config"}, "field 'config'.*missing"),
        (lambda m: {k: v for k, v in m.items() if k != "kind"}, "field 'kind'"),
        (lambda m: {**m, "kind": "Nope"}, "field 'kind' is 'Nope'"),
        (lambda m: {**m, "config": {**m["config"], "extra": 1}}, r"unknown fields \['extra'\]"),
        (
            lambda m: {**m, "config": {k: v for k, v in m["config"].items() if k != "pool"}},
            r"missing fields \['pool'\]",
        ),
        (lambda m: {**m, "config": {**m["config"], "hidden": "8"}}, "field 'hidden' expected int"),
    ],
)
def test_malformed_config_json_names_the_file_and_field(tmp_path, change, field):
    from archkit.models import SequenceClassifier, SequenceClassifierConfig

    model = SequenceClassifier(SequenceClassifierConfig(in_features=3, num_classes=2, hidden=8, layers=1, pool="mean"))
    folder = _checkpoint_without_manifest(tmp_path, model)
    _rewrite(folder, change)
    with pytest.raises(ValueError, match=field) as err:
        load_model(folder)
    assert str(folder / "config.json") in str(err.value)


def test_a_missing_field_is_never_filled_with_the_default(tmp_path):
    from archkit.models import SequenceClassifier, SequenceClassifierConfig

    model = SequenceClassifier(SequenceClassifierConfig(in_features=3, num_classes=2, hidden=8, layers=1, pool="mean"))
    folder = _checkpoint_without_manifest(tmp_path, model)
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(load_model(folder)(x), model.eval()(x))  # complete: loads as saved
    _rewrite(folder, lambda m: {**m, "config": {k: v for k, v in m["config"].items() if k != "pool"}})
    with pytest.raises(ValueError, match=r"missing fields \['pool'\].*never filled with a default"):
        load_model(folder)


def test_hand_edited_config_with_a_manifest_is_refused_as_modified(tmp_path):
    model = ResNet(ResNetConfig(widths=[8, 8, 8]))
    save_checkpoint(tmp_path / "ck", model, model.config)
    _rewrite(tmp_path / "ck", lambda m: {**m, "config": {**m["config"], "act": "tanh"}})
    with pytest.raises(ValueError, match=r"incomplete or mixed: config.json .*manifest.json.*edited"):
        load_model(tmp_path / "ck")


def test_vqvae_and_prior_loaders_name_the_file_and_field(tmp_path):
    from archkit.models import VQVAE2, GatedPixelCNN, GatedPixelCNNConfig, VQVAE2Config, load_vqvae
    from archkit.train import load_prior

    vq = VQVAE2(VQVAE2Config(in_channels=1, hidden_channels=8, res_blocks=1, res_channels=4, code_dim=4, num_codes=8))
    save_checkpoint(tmp_path / "run" / "vqvae", vq, vq.config)
    (tmp_path / "run" / "vqvae" / "manifest.json").unlink()
    _rewrite(
        tmp_path / "run" / "vqvae", lambda m: {**m, "config": {k: v for k, v in m["config"].items() if k != "levels"}}
    )
    with pytest.raises(ValueError, match=r"vqvae/config.json.*missing fields \['levels'\]"):
        load_vqvae(tmp_path / "run")
    prior = GatedPixelCNN(GatedPixelCNNConfig(num_codes=8, channels=8, layers=1, head_channels=8))
    folder = tmp_path / "run" / "prior_0"
    from archkit.train.prior import prior_dir

    folder = prior_dir(tmp_path / "run", 0)
    save_checkpoint(folder, prior, prior.config, step=1, shape=[2, 2])
    (folder / "manifest.json").unlink()
    _rewrite(folder, lambda m: {**m, "kind": "VQVAE2Config"})
    with pytest.raises(
        ValueError, match=r"config.json.*field 'kind' is 'VQVAE2Config', expected 'GatedPixelCNNConfig'"
    ):
        load_prior(tmp_path / "run", 0)
