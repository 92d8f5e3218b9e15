"""VQVAE2: shapes for 2/3 levels, encode/decode round trip, gradients, checkpoints, clear errors."""

import pytest
import torch

from archkit.loading import load_model
from archkit.models import MODEL_KINDS, VQVAE2, VQVAE2Config, load_vqvae
from archkit.train import save_checkpoint


def tiny(**kw) -> VQVAE2Config:
    base = dict(in_channels=1, hidden_channels=16, res_blocks=1, res_channels=8, code_dim=8, num_codes=32)
    base.update(kw)
    return VQVAE2Config(**base)


@pytest.mark.parametrize("levels,size", [(2, 16), (2, 32), (2, 48), (3, 32), (3, 64)])
def test_shapes(levels, size):
    torch.manual_seed(0)
    model = VQVAE2(tiny(levels=levels, in_channels=3))
    x = torch.rand(2, 3, size, size)
    out = model(x)
    assert out.recon.shape == x.shape
    assert len(out.levels) == levels and len(out.codes) == levels
    for l, codes in enumerate(out.codes):
        f = model.downsample_factor(l)
        assert f == 4 * 2 ** (levels - 1 - l)
        assert codes.shape == (2, size // f, size // f)
    assert [len(c) for c in model.encode(x)] == [2] * levels
    assert out.vq_loss.dim() == 0


def test_num_codes_per_level():
    cfg = tiny(num_codes=[16, 64])
    assert cfg.codes_per_level() == [16, 64]
    model = VQVAE2(cfg)
    assert [q.num_codes for q in model.quantizers] == [16, 64]
    with pytest.raises(ValueError, match="num_codes"):
        tiny(num_codes=[16, 32, 64])


def test_encode_decode_round_trip_equals_forward():
    torch.manual_seed(0)
    model = VQVAE2(tiny())
    x = torch.rand(4, 1, 32, 32)
    model.train()(x)  # initializes the codebooks from data
    model.eval()
    codes = model.encode(x)
    assert all(c.dtype == torch.int64 for c in codes)
    assert torch.allclose(model.decode_codes(codes), model(x).recon, atol=1e-5)


def test_gradients_reach_the_encoder_through_both_levels():
    torch.manual_seed(0)
    model = VQVAE2(tiny()).train()
    x = torch.rand(4, 1, 32, 32)
    out = model(x)
    ((out.recon - x).pow(2).mean() + out.vq_loss).backward()
    for enc in model.encoders:
        first = next(enc.parameters())
        assert first.grad is not None and first.grad.abs().sum() > 0


def test_eval_mode_does_not_change_codebooks():
    model = VQVAE2(tiny())
    x = torch.rand(4, 1, 32, 32)
    model.train()(x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()(x)
    model.encode(x + 0.1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_top_codes_change_the_decoding():
    torch.manual_seed(0)
    model = VQVAE2(tiny()).eval()
    x = torch.rand(2, 1, 32, 32)
    codes = model.encode(x)
    other = [torch.full_like(codes[0], 1), codes[1]]
    codes[0].fill_(0)
    assert (model.decode_codes(codes) - model.decode_codes(other)).abs().max() > 0


def test_code_dropout_only_in_training():
    torch.manual_seed(0)
    model = VQVAE2(tiny(code_dropout=0.99))
    qs = [torch.ones(8, 8, 4, 4), torch.ones(8, 8, 8, 8)]
    dropped = model.train()._drop_lower_levels(qs)
    assert torch.equal(dropped[0], qs[0]) and dropped[1].sum() < qs[1].sum()
    kept = model.eval()._drop_lower_levels(qs)
    assert all(torch.equal(a, b) for a, b in zip(kept, qs))


def test_wrong_image_size_is_a_clear_error():
    model = VQVAE2(tiny(levels=3))
    with pytest.raises(ValueError, match=r"30x30 is not divisible by 16"):
        model(torch.rand(1, 1, 30, 30))
    with pytest.raises(ValueError, match=r"expected images \(B, 1, H, W\)"):
        model(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="codes"):
        model.decode_codes([torch.zeros(1, 2, 2, dtype=torch.long)])


def test_checkpoint_round_trip_and_mismatch(tmp_path):
    torch.manual_seed(0)
    model = VQVAE2(tiny())
    x = torch.rand(3, 1, 32, 32)
    model.train()(x)
    save_checkpoint(tmp_path / "vqvae", model, model.config)
    assert "VQVAE2Config" in MODEL_KINDS
    for loaded in (load_vqvae(tmp_path), load_model(tmp_path / "vqvae")):
        assert not loaded.training
        model.eval()
        assert torch.equal(loaded(x).recon, model(x).recon)
        assert all(torch.equal(a, b) for a, b in zip(loaded.encode(x), model.encode(x)))
    # a config that does not match the weights
    save_checkpoint(tmp_path / "bad" / "vqvae", model, tiny(code_dim=4))
    with pytest.raises(ValueError, match="does not match the model config"):
        load_vqvae(tmp_path / "bad")


def test_missing_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trained VQ-VAE"):
        load_vqvae(tmp_path / "nope")


@pytest.mark.parametrize(
    "field, value",
    [
        ("fsq_levels", 8),
        ("quantizer", None),
        ("quantizer", ["ema", 3]),
        ("levels", True),
        ("norm", "instance"),
        ("codebook_init", "zeros"),
        ("beta", float("nan")),
        ("ema_decay", 1.0),
        ("restart_after", -1),
    ],
)
def test_every_config_field_is_checked_by_name(field, value):
    with pytest.raises(ValueError, match=rf"^{field}: expected"):
        VQVAE2Config(**{field: value})
