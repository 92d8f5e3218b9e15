"""Exact ancestral sampling for `GatedPixelCNN`: a naive reference and a cached fast sampler.

The naive sampler runs the whole network once per code (H*W full passes). The fast sampler uses the
structure of the stacks: the vertical stack at row i-1 depends on rows <= i-1 only, so it is computed
once per row; the horizontal stack at (i, j) needs columns <= j of row i, so each step computes one
position per layer from cached activations (as in Ramachandran et al., 2017, "Fast Generation for
Convolutional Autoregressive Models"). Both draw one uniform per position up front and invert the
CDF, so for the same generator they return the same codes. Self-attention blocks (if any) cache
each generated position's key and value, so position p costs one query against p+1 cached keys.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..layers.pixelcnn import gate, raster_position_encoding

METHODS = ("fast", "naive")


def draw(logits: torch.Tensor, u: torch.Tensor, temperature: float) -> torch.Tensor:
    """Invert the CDF of softmax(logits / T) at uniforms u: (B, K) logits, (B,) u -> (B,) codes."""
    probs = torch.softmax(logits.double() / temperature, dim=1)
    cdf = probs.cumsum(1)
    idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1)).squeeze(1)
    return idx.clamp_(max=logits.shape[1] - 1)


def sample_codes(
    model: Any,
    shape: tuple[int, int, int],
    labels: torch.Tensor | None = None,
    cond_codes: torch.Tensor | None = None,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    method: str = "fast",
) -> torch.Tensor:
    """Sample codes (B, H, W) from a GatedPixelCNN; see the module docstring for the two methods.

    `model` is a GatedPixelCNN; this module never imports it (the model imports its sampler).
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {list(METHODS)}, got {method!r}")
    if len(shape) != 3 or any(not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"shape: expected (B, H, W) positive ints, got {tuple(shape)!r}")
    if not temperature > 0:
        raise ValueError(f"temperature: expected > 0, got {temperature!r}")
    model.check_inputs(tuple(shape), labels, cond_codes)
    b, h, w = shape
    device = next(model.parameters()).device
    labels = None if labels is None else labels.to(device)  # callers may pass CPU labels to a GPU prior
    cond_codes = None if cond_codes is None else cond_codes.to(device)
    u = torch.rand((b, h, w), generator=generator, dtype=torch.float64).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            run = _naive if method == "naive" else _fast
            return run(model, shape, labels, cond_codes, temperature, u)
    finally:
        model.train(was_training)


def _naive(
    model: Any,
    shape: tuple[int, int, int],
    labels: torch.Tensor | None,
    cond_codes: torch.Tensor | None,
    temperature: float,
    u: torch.Tensor,
) -> torch.Tensor:
    _b, h, w = shape
    codes = torch.zeros(shape, dtype=torch.long, device=u.device)
    for i in range(h):
        for j in range(w):
            logits = model(codes, labels, cond_codes)[:, :, i, j]
            codes[:, i, j] = draw(logits, u[:, i, j], temperature)
    return codes


def _at(bias: torch.Tensor | None, rows: slice, cols: slice) -> torch.Tensor | None:
    """Slice a conditioning term that is either per-position (B,C,H,W) or global (B,C,1,1)."""
    if bias is None or (bias.shape[-1] == 1 and bias.shape[-2] == 1):
        return bias
    return bias[..., rows, cols]


def _fast(
    model: Any,
    shape: tuple[int, int, int],
    labels: torch.Tensor | None,
    cond_codes: torch.Tensor | None,
    temperature: float,
    u: torch.Tensor,
) -> torch.Tensor:
    b, h, w = shape
    c = model.config.channels
    layers = model.layers
    codes = torch.zeros(shape, dtype=torch.long, device=u.device)
    biases = [None if t is None else t.chunk(2, dim=1) for t in model.layer_biases(labels, cond_codes)]
    dtype = model.embed.weight.dtype  # caches in the model's float dtype (float64, bfloat16, ...)
    new = lambda ch: torch.zeros((b, ch, h, w), device=u.device, dtype=dtype)  # noqa: E731
    emb = new(c)
    v_in = [emb] + [new(c) for _ in layers[:-1]]  # v_in[l + 1] is layer l's vertical output
    v_last = new(c)
    v_feat = [new(2 * c) for _ in layers]
    h_in = [emb] + [new(c) for _ in layers[:-1]]
    h_last = new(c)
    v_out = [*v_in[1:], v_last]
    h_out = [*h_in[1:], h_last]
    attn = {l: model.attention[str(l)] for l in range(len(layers)) if str(l) in model.attention}
    caches = {l: a.new_cache(b, h * w, u.device, emb.dtype) for l, a in attn.items()}
    pos = raster_position_encoding(h, w, c, u.device, emb.dtype) if attn else None
    for i in range(h):
        if i > 0:  # the row above is complete: advance the vertical stack by one row, all layers
            r = slice(i - 1, i)
            for l, layer in enumerate(layers):
                vf = layer.v_conv.window(v_in[l], (i - 1, i), (0, w))
                v_feat[l][..., r, :] = vf
                bias_l = biases[l]
                if bias_l is not None:
                    vf = vf + _at(bias_l[0], r, slice(None))
                v_out[l][..., r, :] = gate(vf)
        v_to_h = [layer.v_to_h.window(v_feat[l], (i, i + 1), (0, w)) for l, layer in enumerate(layers)]
        for j in range(w):
            for l, layer in enumerate(layers):
                hf = layer.h_conv.window(h_in[l], (i, i + 1), (j, j + 1)) + v_to_h[l][..., j : j + 1]
                bias_l = biases[l]
                if bias_l is not None:
                    hf = hf + _at(bias_l[1], slice(i, i + 1), slice(j, j + 1))
                hn = F.conv2d(gate(hf), layer.h_out.weight, layer.h_out.bias)
                if not layer.first:
                    hn = h_in[l][..., i : i + 1, j : j + 1] + hn
                if l in attn:
                    hn = attn[l].step(hn[:, :, 0, 0], i * w + j, caches[l], pos)[:, :, None, None]
                h_out[l][..., i : i + 1, j : j + 1] = hn
            logits = model.head(h_last[..., i : i + 1, j : j + 1])[:, :, 0, 0]
            codes[:, i, j] = draw(logits, u[:, i, j], temperature)
            emb[:, :, i, j] = model.embed(codes[:, i, j])
    return codes


__all__ = ["METHODS", "draw", "sample_codes"]
