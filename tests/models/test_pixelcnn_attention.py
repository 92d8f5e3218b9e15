"""Causal self-attention in the Gated PixelCNN (the paper's top prior): causality, reach, exact cached sampling."""

import json

import pytest
import torch

from archkit.layers.pixelcnn import CausalSelfAttention2d
from archkit.loading import load_model
from archkit.models import GatedPixelCNN, GatedPixelCNNConfig
from archkit.train import save_checkpoint


def _model(**kw):
    cfg = dict(
        num_codes=12,
        channels=8,
        layers=4,
        kernel_size=3,
        dropout=0.0,
        head_channels=16,
        attention_every=2,
        attention_heads=2,
    )
    cfg.update(kw)
    torch.manual_seed(0)
    return GatedPixelCNN(GatedPixelCNNConfig(**cfg)).eval()


@pytest.mark.parametrize("hw", [(5, 7), (9, 4)])
def test_attention_prior_is_strictly_causal_at_odd_sizes(hw, input_grad):
    h, w = hw
    model = _model(num_classes=3, cond_num_codes=5, cond_scale=1)
    assert len(model.attention) == 2
    codes = torch.randint(0, 12, (1, h, w))
    labels, cond = torch.tensor([2]), torch.randint(0, 5, (1, h, w))
    for p in range(h * w):
        g = input_grad(model, codes, divmod(p, w), labels, cond).flatten()
        assert torch.all(g[p:] == 0), (
            f"logits at raster position {p} depend on codes at {g[p:].nonzero().flatten().tolist()}"
        )


def test_attention_reaches_beyond_the_convolutions(input_grad):
    # 2 gated 3x3 layers reach 2 columns/rows back; attention reaches the very first code from the last position
    codes = torch.randint(0, 12, (1, 7, 7))
    far = input_grad(_model(layers=2, attention_every=1), codes, divmod(48, 7)).flatten()
    assert far[0] > 0 and far[7 * 3] > 0
    conv_only = input_grad(_model(layers=2, attention_every=0), codes, divmod(48, 7)).flatten()
    assert conv_only[0] == 0


def test_attention_block_alone_attends_only_to_the_past():
    torch.manual_seed(0)
    block = CausalSelfAttention2d(8, 2).eval()
    x = torch.randn(1, 8, 3, 5, requires_grad=True)
    block(x)[0, :, 1, 2].sum().backward()
    g = x.grad[0].abs().sum(0).flatten()
    assert torch.all(g[8:] == 0) and torch.all(g[:8] > 0)  # p = 1*5+2 = 7 sees 0..7 (itself included)


def test_checkpoints_without_attention_fields_still_load(tmp_path):
    model = _model(attention_every=0)
    save_checkpoint(tmp_path / "p", model, model.config)
    path = tmp_path / "p" / "config.json"
    meta = json.loads(path.read_text())
    for key in ("attention_every", "attention_heads"):
        del meta["config"][key]
    path.write_text(json.dumps(meta))
    (tmp_path / "p" / "manifest.json").unlink()  # as written by archkit before attention (and manifests) existed
    again = load_model(tmp_path / "p")
    assert again.config.attention_every == 0 and len(again.attention) == 0
    codes = torch.randint(0, 12, (2, 4, 5))
    torch.testing.assert_close(model(codes), again(codes))
    with_attn = _model()
    save_checkpoint(tmp_path / "a", with_attn, with_attn.config)
    torch.testing.assert_close(with_attn(codes), load_model(tmp_path / "a")(codes))


def test_bad_attention_settings_are_clear_errors():
    with pytest.raises(ValueError, match="attention_heads: expected a positive int dividing channels=8"):
        _model(attention_heads=3)
    with pytest.raises(ValueError, match="attention_every: expected an int >= 0"):
        _model(attention_every=-1)
