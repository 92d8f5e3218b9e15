"""Named VQ-VAE-2 configurations (model and training fields): digits-32, natural-64 and the paper's 256x256."""

from __future__ import annotations

# name -> (description, VQVAE2Config fields, training fields). Fields left out keep their defaults.
PRESETS: dict[str, tuple[str, dict, dict]] = {
    "digits-32": (
        "sklearn digits at 32x32, the default configuration",
        {"in_channels": 1},
        {"data": "digits", "image_size": 32},
    ),
    # Measured on the natural crops (docs/vqvae.md, "Natural 64x64 at >= 26 dB"): 4x the codes per image
    # (1/2 bottom) with a narrower net (hidden 64, so a step costs ~2x, not 4x) and cosine lr 1e-3 reach
    # 27.4-27.7 dB with >= 96% of the codes in use; at the paper's 1/4 ratio `augment="flip-permute"` reaches
    # 26.2 dB but leaves 42% of the top codes unused.
    "natural-64": (
        "64x64 crops of the bundled photographs: 16x16 top / 32x32 bottom codes",
        {"in_channels": 3, "bottom_stride": 2, "hidden_channels": 64},
        {"data": "natural", "image_size": 64, "lr": 1e-3, "lr_schedule": "cosine"},
    ),
    # Razavi et al. 2019, appendix (ImageNet 256): 128 hidden units, 64 residual units, 2 residual
    # layers, 512 codes of dimension 64 per level; the author's layers verbatim.
    "paper-256": (
        "the paper's 256x256 layout: 64x64 bottom and 32x32 top code maps",
        {
            "in_channels": 3,
            "hidden_channels": 128,
            "res_channels": 64,
            "res_blocks": 2,
            "code_dim": 64,
            "num_codes": 512,
            "levels": 2,
            "layout": "paper",
        },
        {"data": "natural", "image_size": 256},
    ),
}


def preset_fields(name: str) -> tuple[dict, dict]:
    """(VQVAE2Config fields, training fields) of a preset, with a clear error for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {list(PRESETS)}, got {name!r}")
    _, model, train = PRESETS[name]
    return dict(model), dict(train)
