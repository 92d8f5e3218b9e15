"""What a VQ-VAE-2 looks like as a table: per level feature map, code map, codebook and parameters; the presets."""

from __future__ import annotations

from torch import nn

from ..utils import count_params, format_table
from .vqvae import VQVAE2, VQVAE2Config
from .vqvae_presets import PRESETS


def format_presets() -> str:
    """The presets as a plain-text table (what `--preset list` prints)."""

    rows = []
    for name, (desc, model, train) in PRESETS.items():
        cfg = VQVAE2Config(**model)
        rows.append(
            [
                name,
                train["data"],
                f"{train['image_size']}",
                cfg.layout,
                f"1/{cfg.bottom_stride}",
                cfg.hidden_channels,
                f"{cfg.res_blocks}x{cfg.res_channels}",
                cfg.code_dim,
                ",".join(map(str, cfg.codes_per_level())),
                desc,
            ]
        )
    return format_table(
        ["preset", "data", "size", "layout", "bottom", "hidden", "res blocks x ch", "code dim", "codes", "what"], rows
    )


def layout_table(model: VQVAE2, image_size: int | tuple[int, int]) -> list[dict]:
    """One row per level (top first) and one for the decoder: feature map, code map, codebook, parameters.

    A level's parameters are the modules only it uses: its encoder, its 1x1 pre-quantizer conv, the
    decoder of the codes above that conditions its quantizer, and (above the bottom) the transposed
    convs lifting its codes to the decoder; the rows sum to the model's parameter count.
    """

    cfg = model.config
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    L = cfg.levels
    rows = []
    for l in range(L):
        f = cfg.downsample_factor(l)
        if h % f or w % f:
            raise ValueError(f"image_size: {h}x{w} is not divisible by {f}, the downsampling of level {l}")
        mods: list[nn.Module] = [model.encoders[L - 1 - l], model.pre_quant[l], model.quantizers[l]]
        if l > 0:
            mods.append(model.cond_decoders[l - 1])
        if l < L - 1:
            mods.append(model.upsamplers[l])
        name = "top" if l == 0 else "bottom" if l == L - 1 else f"middle {l}"
        rows.append(
            {
                "level": f"{l} ({name})",
                "feature_map": f"{cfg.hidden_channels}x{h // f}x{w // f}",
                "code_map": f"{h // f}x{w // f}",
                "codebook": f"{model.quantizers[l].num_codes}x{cfg.code_dim}",
                "parameters": sum(count_params(m) for m in mods),
            }
        )
    rows.append(
        {
            "level": "decoder",
            "feature_map": f"{cfg.in_channels}x{h}x{w}",
            "code_map": "-",
            "codebook": "-",
            "parameters": count_params(model.decoder),
        }
    )
    return rows


def format_layout_table(rows: list[dict]) -> str:
    """`layout_table` rows as plain text, with the total parameter count."""

    body = [[r["level"], r["feature_map"], r["code_map"], r["codebook"], f"{r['parameters']:,}"] for r in rows]
    body.append(["total", "", "", "", f"{sum(r['parameters'] for r in rows):,}"])
    return format_table(["level", "feature map (CxHxW)", "code map", "codebook (codes x dim)", "parameters"], body)
