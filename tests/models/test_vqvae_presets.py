"""VQVAE2 presets (digits-32, natural-64, paper-256), the paper layout and the layout table."""

import pytest
import torch
from torch import nn

from archkit.models.vqvae import VQVAE2, VQVAE2Config
from archkit.models.vqvae_layout import format_layout_table, format_presets, layout_table
from archkit.models.vqvae_presets import PRESETS
from archkit.surgery import count_params

SIZES = {"digits-32": 32, "natural-64": 64, "paper-256": 256}


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_build_and_run_a_forward_at_their_size(name):
    size = SIZES[name]
    # channels reduced (overrides) so the 256 forward stays cheap; the structure is the preset's
    cfg = VQVAE2Config.preset(name, hidden_channels=16, res_channels=8, code_dim=8)
    assert PRESETS[name][2]["image_size"] == size
    torch.manual_seed(0)
    model = VQVAE2(cfg)
    x = torch.rand(1, cfg.in_channels, size, size)
    out = model(x)
    assert out.recon.shape == x.shape
    sides = [size // cfg.downsample_factor(l) for l in range(cfg.levels)]
    assert [tuple(c.shape) for c in out.codes] == [(1, s, s) for s in sides]
    assert sides[-1] == size // cfg.bottom_stride and sides[0] == sides[-1] // 2


def test_paper_256_is_the_paper_layout():
    cfg = VQVAE2Config.preset("paper-256")
    assert (cfg.hidden_channels, cfg.res_channels, cfg.res_blocks, cfg.code_dim, cfg.codes_per_level(), cfg.layout) == (
        128,
        64,
        2,
        64,
        [512, 512],
        "paper",
    )
    model = VQVAE2(cfg)
    bottom, top = model.encoders[0], model.encoders[1]
    convs = lambda m: [c for c in m.modules() if isinstance(c, nn.Conv2d)]  # noqa: E731
    # h128 = ReLU(Conv(image, s2)); h64 = ReLU(Conv(h128, s2)); h64 = ResNet(h64): no other conv
    strided = [c for c in convs(bottom) if c.stride == (2, 2)]
    assert [(c.in_channels, c.out_channels) for c in strided] == [(3, 64), (64, 128)]
    assert len(convs(bottom)) == 2 + 2 * cfg.res_blocks
    # h32 = ReLU(Conv(h64, s2)); ResNet(h32)
    assert next((c.in_channels, c.out_channels, c.stride) for c in convs(top)) == (128, 128, (2, 2))
    assert len(convs(top)) == 1 + 2 * cfg.res_blocks
    # q32 = Quantize(Conv1x1(h32)); h64' = Conv1x1(concat[h64, ConvT(ResNet(Conv1x1(q32)))])
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in model.pre_quant] == [
        (128, 64, (1, 1)),
        (192, 64, (1, 1)),
    ]
    cond = model.cond_decoders[0]
    first = convs(cond)[0]
    assert (first.in_channels, first.out_channels, first.kernel_size) == (64, 128, (1, 1))
    assert isinstance(cond[-1], nn.ConvTranspose2d) and cond[-1].stride == (2, 2)
    # 256 -> 64x64 bottom, 32x32 top
    rows = layout_table(model, 256)
    assert [(r["feature_map"], r["code_map"]) for r in rows[:2]] == [("128x32x32", "32x32"), ("128x64x64", "64x64")]


def test_default_layout_is_unchanged_by_the_presets():
    # digits-32 is the default configuration (old checkpoints have no `layout` field and load as it)
    assert VQVAE2Config.preset("digits-32", in_channels=3) == VQVAE2Config()
    model = VQVAE2(VQVAE2Config())
    assert model.cond_decoders[0][0].conv.kernel_size == (3, 3)


@pytest.mark.parametrize("name,levels", [("natural-64", 2), ("paper-256", 2), ("natural-64", 3)])
def test_layout_table_values(name, levels):
    cfg = VQVAE2Config.preset(
        name, hidden_channels=16, res_channels=8, code_dim=8, levels=levels, num_codes=[7, 11, 13][:levels]
    )
    model = VQVAE2(cfg)
    size = SIZES[name]
    rows = layout_table(model, size)
    assert len(rows) == levels + 1 and rows[-1]["level"] == "decoder"
    for l, r in enumerate(rows[:-1]):
        side = size // cfg.downsample_factor(l)
        assert r["code_map"] == f"{side}x{side}" and r["feature_map"] == f"16x{side}x{side}"
        assert r["codebook"] == f"{[7, 11, 13][l]}x8"
    # the actual code maps have the sizes the table says
    codes = model.encode(torch.rand(1, 3, size, size))
    assert [f"{c.shape[1]}x{c.shape[2]}" for c in codes] == [r["code_map"] for r in rows[:-1]]
    assert rows[-1]["parameters"] == count_params(model.decoder)
    assert rows[0]["parameters"] == sum(
        count_params(m) for m in (model.encoders[-1], model.pre_quant[0], model.upsamplers[0])
    )
    assert sum(r["parameters"] for r in rows) == count_params(model)
    text = format_layout_table(rows)
    assert f"{count_params(model):,}" in text and "decoder" in text


@pytest.mark.parametrize("layout", ["archkit", "paper"])
@pytest.mark.parametrize("levels", [2, 3])
def test_bottom_stride_2_gives_4x_the_codes_and_decodes_to_the_image_size(layout, levels):
    small = dict(hidden_channels=16, res_channels=8, code_dim=8, levels=levels, layout=layout)
    torch.manual_seed(0)
    model = VQVAE2(VQVAE2Config(bottom_stride=2, **small))
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    assert out.recon.shape == x.shape
    assert [tuple(c.shape[1:]) for c in out.codes] == [(16 // 2 ** (levels - 1 - l),) * 2 for l in range(levels)]
    assert model.decode_codes(model.encode(x)).shape == x.shape
    # the bottom encoder halves the image once (one strided conv), the decoder doubles once
    strided = [c for c in model.encoders[0].modules() if isinstance(c, nn.Conv2d) and c.stride == (2, 2)]
    assert len(strided) == 1
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in model.decoder.modules()) == 1
    rows = layout_table(model, 32)
    assert rows[levels - 1]["code_map"] == "16x16"
    # the default (and every checkpoint written before the field existed) is the paper's 1/4
    assert VQVAE2Config().bottom_stride == 4 and VQVAE2Config.ADDED_FIELDS["bottom_stride"] == 4
    with pytest.raises(ValueError, match="bottom_stride: expected one of \\[2, 4\\], got 3"):
        VQVAE2Config(bottom_stride=3)
    with pytest.raises(ValueError, match=f"not divisible by {2**levels}"):
        VQVAE2(VQVAE2Config(bottom_stride=2, **small))(torch.rand(1, 3, 30, 30))


def test_unknown_preset_and_layout_are_clear_errors():
    with pytest.raises(ValueError, match="preset: expected one of"):
        VQVAE2Config.preset("paper-512")
    with pytest.raises(ValueError, match="layout: expected one of"):
        VQVAE2Config(layout="paper-256")
    with pytest.raises(ValueError, match="image_size"):
        layout_table(VQVAE2(VQVAE2Config(hidden_channels=8, res_channels=4, code_dim=4)), 30)
    assert all(name in format_presets() for name in PRESETS)


def test_a_model_saved_with_the_layouts_earlier_name_still_loads(tmp_path):
    import json

    from archkit.io import save_checkpoint
    from archkit.loading import load_model
    from archkit.train.vqvae import VQVAETrainConfig

    torch.manual_seed(0)
    model = VQVAE2(VQVAE2Config(hidden_channels=16, res_channels=8, code_dim=8, num_codes=16, layout="paper")).eval()
    folder = save_checkpoint(tmp_path / "old", model, model.config)
    # as a checkpoint written before the rename (and before manifests): "layout": "seed"
    meta = json.loads((folder / "config.json").read_text())
    assert meta["config"]["layout"] == "paper"
    meta["config"]["layout"] = "seed"
    (folder / "config.json").write_text(json.dumps(meta))
    (folder / "manifest.json").unlink()
    loaded = load_model(folder)
    assert loaded.config.layout == "paper"
    x = torch.rand(2, model.config.in_channels, 16, 16)
    assert torch.equal(loaded(x).recon, model(x).recon)
    assert VQVAETrainConfig(layout="seed").layout == "paper"  # an old run's train_config.json resumes
    with pytest.raises(ValueError, match="layout: expected one of \\['archkit', 'paper'\\], got 'seeds'"):
        VQVAE2Config(layout="seeds")
