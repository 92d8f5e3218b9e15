"""VQ-VAE-2 (Razavi et al. 2019): a hierarchy of vector-quantized code maps, top level coarsest.

How the levels connect (the author's recipe, sizes for a 256x256 image and 2 levels):
    h128 = ReLU(Conv(image, stride 2)); h64 = ReLU(Conv(h128, stride 2)); h64 = ResNet(h64)
    h32  = ResNet(ReLU(Conv(h64, stride 2)));  q32 = Quantize(Conv1x1(h32))
    hq32 = ResNet(Conv(q32)); hq64 = ConvTranspose(hq32, stride 2)
    q64  = Quantize(Conv1x1(concat[h64, hq64]))
    image' = Decoder(concat[ConvTranspose(q32, stride 2), q64])
The bottom level is 4x smaller than the image (`bottom_stride=2`: 2x); every extra level halves it again.
`layout="paper"` builds exactly these layers; the default `layout="archkit"` adds a 3x3 conv after
the strided convs (and reads the codes with a 3x3 conv): see docs/vqvae.md for the layer-by-layer map.
Named configurations (`VQVAE2Config.preset`): digits-32, natural-64, paper-256.
Quantization runs top-down: each level sees the (decoded) codes of the level above, so the lower
levels only have to encode what the coarser ones missed. Images are expected in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

import torch
from torch import nn

from ..io import checkpoint_exists, load_weights, read_model_config
from ..layers import ConvNormAct
from ..layers.fsq import FSQ, check_levels
from ..layers.norm import NORM_CHOICES
from ..layers.quantize import INITS, QuantizerOutput, VectorQuantizer
from ..utils import param_dtype_device
from .vqvae_presets import preset_fields


@dataclass
class VQVAE2Config:
    """Hyper-parameters of VQVAE2 (defaults: the paper's 2-level setup, sized for small images)."""

    # added after checkpoints existed, with the values that reproduce the models trained before them
    ADDED_FIELDS: ClassVar[dict] = {
        "layout": "archkit",
        "bottom_stride": 4,
        "quantizer": "ema",
        "fsq_levels": [8, 8, 8],
    }
    in_channels: int = 3
    hidden_channels: int = 128
    res_blocks: int = 2
    res_channels: int = 32
    code_dim: int = 64
    num_codes: int | list[int] = 512  # one value for every level, or a list, top level first
    levels: int = 2
    norm: str | None = None  # normalization inside the blocks; the paper uses none
    beta: float = 0.25  # commitment-loss weight
    ema_decay: float = 0.99
    codebook_init: str = "kmeans++"  # "kmeans++" | "data" | "random" (the collapse-prone classic)
    restart_after: int = 50  # re-seed a code unused for this many training steps; 0 = never
    code_dropout: float = 0.1  # training only: share of images decoded without the lower levels
    layout: str = "archkit"  # "archkit" | "paper" (the author's recipe verbatim, see the module doc)
    bottom_stride: int = 4  # image side / bottom code map side: 4 (the paper) or 2 (4x the codes per image)
    quantizer: str | list[str] = "ema"  # "ema" | "fsq" | "rotation" (QUANTIZERS), or one per level, top first
    fsq_levels: list[int] | list[list[int]] = field(default_factory=lambda: [8, 8, 8])  # FSQ grid, or one per level

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> VQVAE2Config:
        """The model configuration of a named preset (see `PRESETS`); keyword overrides replace its fields."""
        return cls(**{**preset_fields(name)[0], **overrides})

    def __post_init__(self) -> None:
        # every field is checked here, by name: a config may come from a file or a notebook, not only the CLI
        least = {"in_channels": 1, "hidden_channels": 2, "res_channels": 1, "code_dim": 1, "levels": 1}
        for name, low in {**least, "res_blocks": 0, "restart_after": 0}.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        for name, lo, high in (("code_dropout", 0.0, 1.0), ("ema_decay", 0.0, 1.0), ("beta", 0.0, math.inf)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value < high:
                raise ValueError(f"{name}: expected a number in [{lo}, {high}), got {value!r}")
        if self.norm not in NORM_CHOICES or self.norm == "frozen":
            raise ValueError(f"norm: expected one of {[None, 'batch', 'group', 'layer']}, got {self.norm!r}")
        if self.codebook_init not in INITS:
            raise ValueError(f"codebook_init: expected one of {list(INITS)}, got {self.codebook_init!r}")
        if not isinstance(self.quantizer, str) and not (
            isinstance(self.quantizer, (list, tuple)) and all(isinstance(q, str) for q in self.quantizer)
        ):
            raise ValueError(
                f"quantizer: expected one of {list(QUANTIZERS)} or a list of them (one per level, top first), "
                f"got {self.quantizer!r}"
            )
        if not isinstance(self.fsq_levels, (list, tuple)):
            raise ValueError(
                f"fsq_levels: expected a grid of ints >= 2 (e.g. [8, 5, 5, 5]) or a list of grids (one per level, "
                f"top first), got {self.fsq_levels!r}"
            )
        if self.bottom_stride not in BOTTOM_STRIDES:
            raise ValueError(f"bottom_stride: expected one of {list(BOTTOM_STRIDES)}, got {self.bottom_stride!r}")
        self.layout = LAYOUT_ALIASES.get(self.layout, self.layout)
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout: expected one of {list(LAYOUTS)}, got {self.layout!r}")
        self.codes_per_level()

    def quantizer_per_level(self) -> list[str]:
        """The quantizer of each level ("ema", "fsq" or "rotation"), top level first."""
        q = self.quantizer
        names = [q] * self.levels if isinstance(q, str) else list(q)
        if len(names) != self.levels or not all(n in QUANTIZERS for n in names):
            raise ValueError(
                f"quantizer: expected one of {list(QUANTIZERS)} or a list of {self.levels} of them "
                f"(one per level, top first), got {q!r}"
            )
        return names

    def fsq_levels_per_level(self) -> list[tuple[int, ...]]:
        """The FSQ grid of each level (used where the level's quantizer is "fsq"), top level first."""
        lv: Any = self.fsq_levels  # a config read from JSON may hold any value; check_levels validates each grid
        nested = isinstance(lv, (list, tuple)) and len(lv) > 0 and all(isinstance(v, (list, tuple)) for v in lv)
        per = [tuple(v) for v in lv] if nested else [tuple(lv)] * self.levels
        if len(per) != self.levels:
            raise ValueError(
                f"fsq_levels: expected one grid (e.g. [8, 8, 8]) or a list of {self.levels} grids "
                f"(one per level, top first), got {lv!r}"
            )
        return [check_levels(p, "fsq_levels") for p in per]

    def codes_per_level(self) -> list[int]:
        """Codebook size of each level, top level first (an FSQ level: the product of its grid)."""
        codes = self.num_codes
        if isinstance(codes, int):
            codes = [codes] * self.levels
        codes = list(codes)
        if len(codes) != self.levels or not all(isinstance(c, int) and c > 0 for c in codes):
            raise ValueError(
                f"num_codes: expected a positive int or a list of {self.levels} positive ints "
                f"(one per level, top first), got {self.num_codes!r}"
            )
        kinds, grids = self.quantizer_per_level(), self.fsq_levels_per_level()
        return [math.prod(grids[l]) if kinds[l] == "fsq" else c for l, c in enumerate(codes)]

    def downsample_factor(self, level: int) -> int:
        """How much smaller than the image the code map of `level` is (0 = top, levels-1 = bottom)."""
        if not 0 <= level < self.levels:
            raise ValueError(f"level: expected 0..{self.levels - 1}, got {level}")
        return self.bottom_stride * 2 ** (self.levels - 1 - level)


LAYOUTS = ("archkit", "paper")
# earlier name of a layout -> its name now: configs saved with the old name still load
LAYOUT_ALIASES = {"seed": "paper"}
QUANTIZERS = ("ema", "fsq", "rotation")  # EMA codebook + straight-through, FSQ, EMA codebook + rotation trick
BOTTOM_STRIDES = (2, 4)


@dataclass
class VQVAEOutput:
    """Result of VQVAE2.forward: reconstruction, total VQ loss, per-level statistics and code maps."""

    recon: torch.Tensor
    vq_loss: torch.Tensor
    levels: list[dict[str, torch.Tensor]] = field(default_factory=list)  # top first: loss, perplexity, usage
    codes: list[torch.Tensor] = field(default_factory=list)  # top first: (B, H_l, W_l) int64


class ResBlock(nn.Module):
    """Pre-activation residual block of the paper: x + Conv1x1(ReLU(Conv3x3(ReLU(x))))."""

    def __init__(self, channels: int, res_channels: int, norm: str | None) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvNormAct(channels, res_channels, 3, order="norm-act-conv", norm=norm, act="relu"),
            ConvNormAct(res_channels, channels, 1, order="norm-act-conv", norm=norm, act="relu"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _res_stack(cfg: VQVAE2Config) -> list[nn.Module]:
    # The trailing ReLU closes the pre-activation stack so the next conv sees a rectified input.
    return [*(ResBlock(cfg.hidden_channels, cfg.res_channels, cfg.norm) for _ in range(cfg.res_blocks)), nn.ReLU()]


def _quantizer(cfg: VQVAE2Config, level: int) -> VectorQuantizer | FSQ:
    """The quantizer of a level: FSQ, or the EMA codebook with a straight-through or rotation-trick gradient."""
    kind = cfg.quantizer_per_level()[level]
    if kind == "fsq":
        return FSQ(cfg.fsq_levels_per_level()[level], cfg.code_dim)
    return VectorQuantizer(
        cfg.codes_per_level()[level],
        cfg.code_dim,
        cfg.beta,
        cfg.ema_decay,
        cfg.codebook_init,
        cfg.restart_after,
        seed=level,
        grad="rotation" if kind == "rotation" else "ste",
    )


def _rank_and_world() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _down(cin: int, cout: int, norm: str | None) -> ConvNormAct:
    return ConvNormAct(cin, cout, 4, stride=2, padding=1, norm=norm, act="relu")


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)


def _bottom_down(cfg: VQVAE2Config) -> list[nn.Module]:
    """Image -> features at 1/bottom_stride size: two strided convs (1/4), or a full-size 3x3 conv and one (1/2)."""
    half, norm = cfg.hidden_channels // 2, cfg.norm
    first = (
        _down(cfg.in_channels, half, norm)
        if cfg.bottom_stride == 4
        else ConvNormAct(cfg.in_channels, half, 3, norm=norm, act="relu")
    )
    return [first, _down(half, cfg.hidden_channels, norm)]


def _encoder(cfg: VQVAE2Config, bottom: bool) -> nn.Sequential:
    """Bottom: image -> features at 1/bottom_stride size. Above: features -> 1/2 size."""
    ch, half, norm = cfg.hidden_channels, cfg.hidden_channels // 2, cfg.norm
    if cfg.layout == "paper":  # h = ReLU(Conv(x, stride 2)) [x2 at the bottom]; h = ResNet(h)
        down = _bottom_down(cfg) if bottom else [_down(ch, ch, norm)]
        return nn.Sequential(*down, *_res_stack(cfg))
    down = _bottom_down(cfg) if bottom else [_down(ch, half, norm)]
    mix = ConvNormAct(ch if bottom else half, ch, 3, norm=norm, act=None)
    return nn.Sequential(*down, mix, *_res_stack(cfg))


def _code_decoder(cfg: VQVAE2Config, in_dim: int, out_dim: int, upsample: int, k: int = 3) -> nn.Sequential:
    """Codes -> k x k conv -> ResNet -> `upsample` strided transposed convs (each x2) -> out_dim channels."""
    ch = cfg.hidden_channels
    layers: list[nn.Module] = [ConvNormAct(in_dim, ch, k, norm=cfg.norm, act=None), *_res_stack(cfg)]
    for i in range(upsample):
        last = i == upsample - 1
        layers.append(_up(ch if i == 0 else ch // 2, out_dim if last else ch // 2))
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VQVAE2(nn.Module):
    """Hierarchical VQ-VAE: `encode` -> code maps (top first), `decode_codes` -> image, `forward` -> both."""

    def __init__(self, config: VQVAE2Config | None = None) -> None:
        super().__init__()
        cfg = config or VQVAE2Config()
        self.config = cfg
        L, ch, dim = cfg.levels, cfg.hidden_channels, cfg.code_dim
        # encoders[0] is the bottom (image -> 1/4); encoders[k] takes level k-1's features to 1/2 size.
        self.encoders = nn.ModuleList([_encoder(cfg, bottom=(k == 0)) for k in range(L)])
        # Per level (top first): 1x1 conv into code space; below the top it also sees the upsampled
        # decoding of the level above, concatenated with the encoder features (the author's recipe).
        self.pre_quant = nn.ModuleList([nn.Conv2d(ch if l == 0 else ch + dim, dim, 1) for l in range(L)])
        self.quantizers = nn.ModuleList([_quantizer(cfg, l) for l in range(L)])
        # Level l's codes -> features at level l+1's resolution, conditioning level l+1's quantizer.
        # paper: hq = ConvTranspose(ResNet(Conv1x1(q))); archkit reads the codes with a 3x3 conv
        k = 1 if cfg.layout == "paper" else 3
        self.cond_decoders = nn.ModuleList([_code_decoder(cfg, dim, dim, 1, k) for _ in range(L - 1)])
        # Every non-bottom level's codes are upsampled to the bottom resolution for the decoder.
        self.upsamplers = nn.ModuleList(
            [nn.Sequential(*[_up(dim, dim) for _ in range(L - 1 - l)]) for l in range(L - 1)]
        )
        self.decoder = _code_decoder(cfg, dim * L, cfg.in_channels, cfg.bottom_stride.bit_length() - 1)

    def downsample_factor(self, level: int) -> int:
        """Image size / code-map size at `level` (0 = top)."""
        return self.config.downsample_factor(level)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the problem when x is not (B, in_channels, H, W) with H, W divisible."""
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"x: expected images (B, {cfg.in_channels}, H, W), got shape {tuple(x.shape)}")
        factor = cfg.downsample_factor(0)
        h, w = x.shape[-2:]
        if h % factor or w % factor:
            raise ValueError(
                f"image size {h}x{w} is not divisible by {factor}, the total downsampling factor of "
                f"a {cfg.levels}-level VQVAE2; use a multiple of {factor} (e.g. {max(factor, h // factor * factor)})"
            )

    def level_quantizer(self, level: int) -> VectorQuantizer | FSQ:
        """The quantizer of `level` (0 = top): an EMA codebook or FSQ."""
        return cast("VectorQuantizer | FSQ", self.quantizers[level])  # built by _quantizer

    def _quantize(self, x: torch.Tensor) -> list[QuantizerOutput]:
        self.check_input(x)
        h = x * 2 - 1  # centre [0, 1] images
        feats = []
        for enc in self.encoders:
            h = enc(h)
            feats.append(h)
        feats = feats[::-1]  # top first
        outs: list[QuantizerOutput] = []
        for l in range(self.config.levels):
            z = feats[l] if l == 0 else torch.cat([feats[l], self.cond_decoders[l - 1](outs[-1].quantized)], 1)
            outs.append(self.quantizers[l](self.pre_quant[l](z)))
        return outs

    def _drop_lower_levels(self, quantized: list[torch.Tensor]) -> list[torch.Tensor]:
        # Without this the decoder learns to ignore the top level (the bottom codes alone suffice to
        # reconstruct), which makes the hierarchy and the top prior pointless. Hiding the levels below
        # a random level for a few images forces the upper levels to carry the coarse content.
        p, L = self.config.code_dropout, self.config.levels
        if not self.training or p == 0 or L == 1:
            return quantized
        # Drawn for the global batch from a generator tied to the step count, then sliced to this
        # rank: identical under DDP and after a resume, equal to a single-process run.
        b, device = quantized[0].shape[0], quantized[0].device
        rank, world = _rank_and_world()
        gen = torch.Generator().manual_seed(7919 + int(self.level_quantizer(0).steps))
        dropped = (torch.rand(b * world, generator=gen) < p)[rank * b : (rank + 1) * b].to(device)
        first_hidden = torch.randint(1, L, (b * world,), generator=gen)[rank * b : (rank + 1) * b].to(device)
        out = []
        for l, q in enumerate(quantized):
            keep = ~(dropped & (first_hidden <= l)) if l > 0 else torch.ones_like(dropped)
            out.append(q * keep.view(-1, *([1] * (q.dim() - 1))).to(q.dtype))
        return out

    def _decode(self, quantized: list[torch.Tensor]) -> torch.Tensor:
        ups = [up(q) for up, q in zip(self.upsamplers, quantized[:-1])]
        return (self.decoder(torch.cat([*ups, quantized[-1]], 1)) + 1) / 2

    def example_inputs(self, batch_size: int = 2, seed: int = 0, input_shape: Sequence[int] | None = None) -> tuple:
        """Random images in [0, 1] (B, C, S, S), S a multiple of the downsampling (default 16 or the factor)."""
        dtype, device = param_dtype_device(self)
        factor = self.config.downsample_factor(0)
        size = input_shape[-1] if input_shape else max(16, factor)
        size = max(factor, size // factor * factor)
        gen = torch.Generator().manual_seed(seed)
        return (torch.rand((batch_size, self.config.in_channels, size, size), generator=gen).to(device, dtype),)

    def forward(self, x: torch.Tensor) -> VQVAEOutput:
        outs = self._quantize(x)
        recon = self._decode(self._drop_lower_levels([o.quantized for o in outs]))
        stats = [{"loss": o.loss, "perplexity": o.perplexity, "usage": o.usage} for o in outs]
        vq_loss = torch.stack([o.loss for o in outs]).sum()
        return VQVAEOutput(recon, vq_loss, stats, [o.indices for o in outs])

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Code maps of images x in [0, 1], top level first, each (B, H_l, W_l) int64 (no codebook update)."""
        was = self.training
        self.eval()
        try:
            return [o.indices for o in self._quantize(x)]
        finally:
            self.train(was)

    def decode_codes(self, codes: list[torch.Tensor]) -> torch.Tensor:
        """Images (B, C, H, W) (roughly in [0, 1]) from code maps, top level first."""
        L = self.config.levels
        if not isinstance(codes, (list, tuple)) or len(codes) != L:
            raise ValueError(
                f"codes: expected a list of {L} code maps (top first), got "
                f"{type(codes).__name__} of length {len(codes) if hasattr(codes, '__len__') else '?'}"
            )
        b, ht, wt = codes[0].shape if codes[0].dim() == 3 else (None, None, None)
        for l, c in enumerate(codes):
            scale = 2**l
            if c.dim() != 3 or b is None or tuple(c.shape) != (b, ht * scale, wt * scale):
                raise ValueError(
                    f"codes[{l}]: expected shape (B, {ht}*{scale}, {wt}*{scale}) matching the top "
                    f"level {tuple(codes[0].shape)}, got {tuple(c.shape)}"
                )
        return self._decode([self.level_quantizer(l).lookup(c) for l, c in enumerate(codes)])

    def decode_top(self, top: torch.Tensor) -> torch.Tensor:
        """Images from the top code map alone, the levels below hidden as `code_dropout` trains the decoder to."""
        if top.dim() != 3:
            raise ValueError(f"top: expected a code map (B, H, W), got shape {tuple(top.shape)}")
        q = self.level_quantizer(0).lookup(top)
        b, h, w = top.shape
        hidden = [q.new_zeros(b, self.config.code_dim, h * 2**l, w * 2**l) for l in range(1, self.config.levels)]
        return self._decode([q, *hidden])


def load_vqvae(run_dir: str | Path) -> VQVAE2:
    """The trained VQVAE2 of a run folder (RUN_DIR/vqvae), in eval mode."""

    folder = Path(run_dir) / "vqvae"
    if not checkpoint_exists(folder):
        raise FileNotFoundError(
            f"no trained VQ-VAE in {str(run_dir)!r}: run `archkit vqvae train --out {run_dir}` first"
        )
    config, _ = read_model_config(folder, VQVAE2Config)
    return load_weights(folder, VQVAE2(config)).eval()
