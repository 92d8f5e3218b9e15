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


def layout_table(model: VQVAE2, image_size: int | tuple[int, int], health: list[dict] | None = None) -> list[dict]:
    """One row per level (top first) and one for the decoder: feature map, code map, codebook, parameters.

    `health` (one dict per level with usage, perplexity, dead: `archkit.train.health`) adds the codebook
    health of a trained model to the level rows.

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
                "codebook": _codebook(model, l),
                "quantizer": cfg.quantizer_per_level()[l],
                "parameters": sum(count_params(m) for m in mods),
                **({k: health[l][k] for k in ("usage", "perplexity", "dead")} if health else {}),
            }
        )
    rows.append(
        {
            "level": "decoder",
            "feature_map": f"{cfg.in_channels}x{h}x{w}",
            "code_map": "-",
            "codebook": "-",
            "quantizer": "-",
            "parameters": count_params(model.decoder),
        }
    )
    return rows


def format_layout_table(rows: list[dict]) -> str:
    """`layout_table` rows as plain text, with the total parameter count."""

    health = "usage" in rows[0]
    body = []
    for r in rows:
        row = [r["level"], r["feature_map"], r["code_map"], r["quantizer"], r["codebook"], f"{r['parameters']:,}"]
        if health:
            row += [f"{r['usage']:.1%}", f"{r['perplexity']:.0f}", r["dead"]] if "usage" in r else ["", "", ""]
        body.append(row)
    body.append(["total", "", "", "", "", f"{sum(r['parameters'] for r in rows):,}", *([""] * 3 * health)])
    header = ["level", "feature map (CxHxW)", "code map", "quantizer", "codebook (codes x dim)", "parameters"]
    return format_table(header + (["codes used", "perplexity", "dead codes"] if health else []), body)


def _codebook(model: VQVAE2, level: int) -> str:
    q, dim = model.quantizers[level], model.config.code_dim
    grid = getattr(q, "levels", None)
    return f"{q.num_codes} (FSQ {'x'.join(map(str, grid))}) -> {dim}" if grid else f"{q.num_codes}x{dim}"
