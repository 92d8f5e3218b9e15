"""Gated PixelCNN prior over discrete code maps, conditioned on a class and on the code map above.

Conditioning follows the VQ-VAE-2 author's advice: the upper code map is embedded,
passed through a small conv stack, aligned with this level by a transposed conv (stride `cond_scale`)
and *added* inside every gated layer through a 1x1 conv; the class is a per-layer bias.
With `attention_every=K`, a causal multi-head self-attention block follows every K-th gated layer on
the horizontal stack (the paper's top prior), giving every position the whole past, not just the
convolutions' receptive field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, cast

import torch
from torch import nn

from ..layers.pixelcnn import CausalSelfAttention2d, GatedPixelCNNLayer
from ..utils.modules import param_dtype_device
from .sampling import sample_codes


@dataclass
class GatedPixelCNNConfig:
    """Configuration of `GatedPixelCNN`; `cond_num_codes`/`cond_scale` describe the conditioning map."""

    ADDED_FIELDS: ClassVar[dict] = {"attention_every": 0, "attention_heads": 4}  # added after checkpoints existed
    num_codes: int = 512
    channels: int = 64
    layers: int = 8
    kernel_size: int = 5
    num_classes: int | None = None
    cond_num_codes: int | None = None
    cond_scale: int = 1
    dropout: float = 0.1
    cond_layers: int = 2
    head_channels: int = 128
    attention_every: int = 0  # a self-attention block after every K-th gated layer; 0 = none
    attention_heads: int = 4

    def attention_layers(self) -> list[int]:
        """Indices of the gated layers followed by a self-attention block."""
        k = self.attention_every
        return [l for l in range(self.layers) if (l + 1) % k == 0] if k else []


def _exporting() -> bool:
    return bool(getattr(torch.compiler, "is_exporting", lambda: False)())


class GatedPixelCNN(nn.Module):
    """Autoregressive prior p(codes | class, upper codes) in raster order; `forward` returns logits."""

    def __init__(self, config: GatedPixelCNNConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or GatedPixelCNNConfig()
        for name in ("num_codes", "channels", "layers", "cond_scale"):
            if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 1:
                raise ValueError(f"{name}: expected a positive int, got {getattr(cfg, name)!r}")
        if not isinstance(cfg.attention_every, int) or cfg.attention_every < 0:
            raise ValueError(f"attention_every: expected an int >= 0 (0 = no attention), got {cfg.attention_every!r}")
        c = cfg.channels
        self.embed = nn.Embedding(cfg.num_codes, c)
        self.cond_embed: nn.Embedding | None = None
        self.cond_net: nn.Sequential | None = None
        if cfg.cond_num_codes:
            self.cond_embed = nn.Embedding(cfg.cond_num_codes, c)
            convs: list[nn.Module] = []
            for _ in range(cfg.cond_layers):
                convs += [nn.Conv2d(c, c, 3, padding=1), nn.ReLU()]
            if cfg.cond_scale > 1:
                convs += [nn.ConvTranspose2d(c, c, cfg.cond_scale, stride=cfg.cond_scale), nn.ReLU()]
            self.cond_net = nn.Sequential(*convs)
        self.layers = nn.ModuleList(
            GatedPixelCNNLayer(
                c,
                cfg.kernel_size,
                first=(i == 0),
                num_classes=cfg.num_classes,
                cond_channels=c if cfg.cond_num_codes else None,
                dropout=cfg.dropout,
            )
            for i in range(cfg.layers)
        )
        # keyed by the index of the gated layer they follow (absent without attention: old checkpoints load)
        self.attention = nn.ModuleDict(
            {str(l): CausalSelfAttention2d(c, cfg.attention_heads, cfg.dropout) for l in cfg.attention_layers()}
        )
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(c, cfg.head_channels, 1), nn.ReLU(), nn.Conv2d(cfg.head_channels, cfg.num_codes, 1)
        )

    # -- input checks ---------------------------------------------------------------------------
    # Value-range checks branch on data, which an exported graph (torch.export / ONNX) cannot do: they
    # are skipped while exporting (shape checks still run); eager calls always make them.
    def check_inputs(
        self, shape: tuple[int, ...], labels: torch.Tensor | None, cond_codes: torch.Tensor | None
    ) -> None:
        """Raise a clear ValueError when labels or the conditioning map do not fit this prior."""
        cfg = self.config
        b, h, w = shape
        if cfg.num_classes:
            if labels is None:
                raise ValueError(f"labels: this prior is class-conditional ({cfg.num_classes} classes); pass labels")
            if labels.shape != (b,):
                raise ValueError(f"labels: expected shape ({b},), got {tuple(labels.shape)}")
            if labels.numel() and not _exporting() and (labels.min() < 0 or labels.max() >= cfg.num_classes):
                raise ValueError(
                    f"labels: expected values in [0, {cfg.num_classes}), got "
                    f"min {labels.min().item()} max {labels.max().item()}"
                )
        elif labels is not None:
            raise ValueError("labels: this prior is unconditional (num_classes=None); got labels")
        if cfg.cond_num_codes:
            s = cfg.cond_scale
            want = (b, h // s, w // s)
            if cond_codes is None:
                raise ValueError(f"cond_codes: this prior is conditioned on the code map above; pass a {want} map")
            if tuple(cond_codes.shape) != want or h % s or w % s:
                raise ValueError(
                    f"cond_codes: expected shape {want} (code map {h}x{w} / cond_scale {s}), "
                    f"got {tuple(cond_codes.shape)}"
                )
            if (
                cond_codes.numel()
                and not _exporting()
                and (cond_codes.min() < 0 or cond_codes.max() >= cfg.cond_num_codes)
            ):
                raise ValueError(
                    f"cond_codes: expected values in [0, {cfg.cond_num_codes}), got "
                    f"min {cond_codes.min().item()} max {cond_codes.max().item()}"
                )
        elif cond_codes is not None:
            raise ValueError("cond_codes: this prior has no spatial conditioning (cond_num_codes=None)")

    def _check_codes(self, codes: torch.Tensor) -> None:
        if codes.dim() != 3 or codes.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"codes: expected an integer tensor (B, H, W), got {codes.dtype} {tuple(codes.shape)}")
        if codes.numel() and not _exporting() and (codes.min() < 0 or codes.max() >= self.config.num_codes):
            raise ValueError(
                f"codes: expected values in [0, {self.config.num_codes}), got "
                f"min {codes.min().item()} max {codes.max().item()}"
            )

    # -- conditioning ---------------------------------------------------------------------------
    def layer_biases(self, labels: torch.Tensor | None, cond_codes: torch.Tensor | None) -> list[torch.Tensor | None]:
        """Each layer's additive conditioning term; computed once per forward / per sampled map."""
        cond = None
        if self.cond_net is not None and self.cond_embed is not None and cond_codes is not None:
            cond = self.cond_net(self.cond_embed(cond_codes.long()).permute(0, 3, 1, 2))
        return [cast(GatedPixelCNNLayer, layer).condition(labels, cond) for layer in self.layers]

    def example_inputs(self, batch_size: int = 2, seed: int = 0, input_shape: Sequence[int] | None = None) -> tuple:
        """Random code maps (B, S, S), plus labels and the conditioning code map when the prior takes them."""
        cfg, b = self.config, batch_size
        _, device = param_dtype_device(self)
        gen = torch.Generator().manual_seed(seed)
        s = cfg.cond_scale
        size = input_shape[-1] if input_shape else 4 * s
        size = max(s, size // s * s)
        inputs: list[torch.Tensor | None] = [torch.randint(cfg.num_codes, (b, size, size), generator=gen).to(device)]
        inputs.append(torch.randint(cfg.num_classes, (b,), generator=gen).to(device) if cfg.num_classes else None)
        if cfg.cond_num_codes:
            inputs.append(torch.randint(cfg.cond_num_codes, (b, size // s, size // s), generator=gen).to(device))
        while inputs and inputs[-1] is None:
            inputs.pop()
        return tuple(inputs)

    def forward(
        self, codes: torch.Tensor, labels: torch.Tensor | None = None, cond_codes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (B, num_codes, H, W); logits at (i, j) depend only on codes before (i, j) in raster order."""
        self._check_codes(codes)
        self.check_inputs(tuple(codes.shape), labels, cond_codes)
        x = self.embed(codes.long()).permute(0, 3, 1, 2)
        v, h = x, x
        for l, (layer, bias) in enumerate(zip(self.layers, self.layer_biases(labels, cond_codes))):
            v, h = layer(v, h, bias)
            if str(l) in self.attention:
                h = self.attention[str(l)](h)
        return self.head(h)

    @torch.no_grad()
    def sample(
        self,
        shape: tuple[int, int, int],
        labels: torch.Tensor | None = None,
        cond_codes: torch.Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        method: str = "fast",
    ) -> torch.Tensor:
        """Sample a (B, H, W) code map; "fast" caches activations, "naive" re-runs the net per code.

        Both draw the same uniforms in the same order, so they return identical codes.
        """
        return sample_codes(self, shape, labels, cond_codes, temperature, generator, method)


__all__ = ["GatedPixelCNN", "GatedPixelCNNConfig"]
