"""Each quantizer (EMA, rotation trick, FSQ, and a mix per level) through the whole pipeline:
VQ-VAE training with codebook health, encoding, both priors, sampling; old configs load as EMA."""

import json

import pytest
import torch

from archkit.layers.fsq import FSQ
from archkit.layers.quantize import VectorQuantizer
from archkit.models.vqvae import VQVAE2, VQVAE2Config
from archkit.train import encode_dataset, read_jsonl
from archkit.train.generate import sample_images
from archkit.train.prior import PriorTrainConfig, train_prior
from archkit.train.vqvae import VQVAETrainConfig, train_vqvae

TINY = dict(
    image_size=16,
    hidden_channels=16,
    res_blocks=1,
    res_channels=8,
    code_dim=8,
    num_codes=16,
    batch_size=8,
    eval_every=3,
    log_every=1,
    fsq_levels=[4, 4],
)


@pytest.mark.parametrize("quantizer", ["ema", "rotation", "fsq", ["fsq", "rotation"]])
def test_train_encode_priors_and_sample(tmp_path, quantizer):
    run = tmp_path / "run"
    result = train_vqvae(VQVAETrainConfig(out=str(run), steps=3, quantizer=quantizer, **TINY), progress=False)
    health = result["codebook_health"]
    assert len(health) == 2 and all(0 < lv["usage"] <= 1 and lv["perplexity"] >= 1 for lv in health)
    logged = [r for r in read_jsonl(run / "metrics.jsonl") if r["split"] == "train"]
    assert all(len(r["codebook"]) == 2 and "dead" in r["codebook"][0] for r in logged)
    codes_dir = encode_dataset(run, device="cpu", workers=0)
    meta = json.loads((codes_dir / "meta.json").read_text())
    assert meta["num_codes"] == [16, 16]  # FSQ [4, 4] is 16 codes, as the EMA codebooks here
    for level in ("top", "bottom"):
        train_prior(
            PriorTrainConfig(
                run=str(run),
                level=level,
                steps=2,
                batch_size=8,
                channels=8,
                layers=1,
                kernel_size=3,
                dropout=0.0,
                eval_every=2,
                device="cpu",
            ),
            progress=False,
        )
    images, codes = sample_images(run, 2, torch.tensor([1, 2]), device="cpu")
    assert images.shape == (2, 1, 16, 16) and torch.isfinite(images).all()
    assert all(c.dtype == torch.int64 and int(c.min()) >= 0 and int(c.max()) < 16 for c in codes)


def test_quantizer_per_level_and_old_configs_load_as_ema():
    from archkit.io import config_from_dict

    cfg = VQVAE2Config(
        in_channels=1,
        hidden_channels=8,
        res_channels=4,
        code_dim=4,
        quantizer=["fsq", "rotation"],
        fsq_levels=[8, 5, 5, 5],
    )
    model = VQVAE2(cfg)
    assert isinstance(model.quantizers[0], FSQ) and model.quantizers[0].num_codes == 1000
    assert isinstance(model.quantizers[1], VectorQuantizer) and model.quantizers[1].grad == "rotation"
    assert cfg.codes_per_level() == [1000, 512]
    old = {k: v for k, v in VQVAE2Config().__dict__.items() if k not in ("quantizer", "fsq_levels")}
    loaded = config_from_dict(VQVAE2Config, json.loads(json.dumps(old)))
    assert loaded.quantizer_per_level() == ["ema", "ema"]
    assert config_from_dict(VQVAE2Config, json.loads(json.dumps(cfg.__dict__))) == cfg  # JSON round trip


def test_bad_quantizer_choices_are_named():
    with pytest.raises(ValueError, match="quantizer: expected one of"):
        VQVAE2Config(quantizer="lfq")
    with pytest.raises(ValueError, match="quantizer: expected one of"):
        VQVAE2Config(quantizer=["fsq"])  # 2 levels need 2 names
    with pytest.raises(ValueError, match="fsq_levels"):
        VQVAE2Config(quantizer="fsq", fsq_levels=[8, 1])
    with pytest.raises(ValueError, match="fsq_levels"):
        VQVAE2Config(fsq_levels=[[8, 8], [4, 4], [2, 2]])
