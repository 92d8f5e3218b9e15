"""The plain reference of bench_vqvae.py: two-level VQ-VAE-2 as the author's answer builds it, nothing added."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archkit.models import VQVAE2Config
from archkit.models.vqvae import VQVAEOutput


# ---- the plain reference: the author's architecture as the best-known public port builds it ----------
class PlainQuantize(nn.Module):
    """EMA vector quantizer with a Gaussian-initialized codebook and no dead-code handling."""

    def __init__(self, dim: int, num_codes: int, decay: float = 0.99, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_codes, self.decay, self.eps = num_codes, decay, eps
        embed = torch.randn(dim, num_codes)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(num_codes))
        self.register_buffer("embed_avg", embed.clone())

    def forward(self, x: torch.Tensor):  # x: (B, H, W, dim)
        flat = x.reshape(-1, x.shape[-1])
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed + self.embed.pow(2).sum(0, keepdim=True)
        ind = dist.argmin(1)
        onehot = F.one_hot(ind, self.num_codes).type(flat.dtype)
        quant = F.embedding(ind.view(*x.shape[:-1]), self.embed.t())
        if self.training:
            with torch.no_grad():
                self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
                self.embed_avg.mul_(self.decay).add_(flat.t() @ onehot, alpha=1 - self.decay)
                n = self.cluster_size.sum()
                size = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
                self.embed.copy_(self.embed_avg / size.unsqueeze(0))
        diff = (quant.detach() - x).pow(2).mean()
        quant = x + (quant - x).detach()
        counts = onehot.sum(0)
        p = counts / counts.sum()
        ppl = torch.exp(-(p * (p + 1e-10).log()).sum())
        return quant, diff, ind.view(*x.shape[:-1]), ppl, (counts > 0).float().mean()


class PlainResBlock(nn.Module):
    def __init__(self, ch: int, res_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, res_ch, 3, padding=1), nn.ReLU(), nn.Conv2d(res_ch, ch, 1))

    def forward(self, x):
        return x + self.conv(x)


def _plain_encoder(cin: int, ch: int, res_blocks: int, res_ch: int, stride: int) -> nn.Sequential:
    if stride == 4:
        layers = [
            nn.Conv2d(cin, ch // 2, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(ch // 2, ch, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1),
        ]
    else:
        layers = [nn.Conv2d(cin, ch // 2, 4, 2, 1), nn.ReLU(), nn.Conv2d(ch // 2, ch, 3, padding=1)]
    return nn.Sequential(*layers, *[PlainResBlock(ch, res_ch) for _ in range(res_blocks)], nn.ReLU())


def _plain_decoder(cin: int, cout: int, ch: int, res_blocks: int, res_ch: int, stride: int) -> nn.Sequential:
    layers = [nn.Conv2d(cin, ch, 3, padding=1), *[PlainResBlock(ch, res_ch) for _ in range(res_blocks)], nn.ReLU()]
    if stride == 4:
        layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(ch // 2, cout, 4, 2, 1)]
    else:
        layers += [nn.ConvTranspose2d(ch, cout, 4, 2, 1)]
    return nn.Sequential(*layers)


class PlainVQVAE2(nn.Module):
    """Two-level VQ-VAE-2 exactly as in the author's answer, nothing added (same channels as VQVAE2Config)."""

    def __init__(self, cfg: VQVAE2Config) -> None:
        super().__init__()
        c, ch, rb, rc, d = cfg.in_channels, cfg.hidden_channels, cfg.res_blocks, cfg.res_channels, cfg.code_dim
        n_top, n_bottom = cfg.codes_per_level()
        self.enc_b = _plain_encoder(c, ch, rb, rc, 4)
        self.enc_t = _plain_encoder(ch, ch, rb, rc, 2)
        self.quantize_conv_t = nn.Conv2d(ch, d, 1)
        self.quantize_t = PlainQuantize(d, n_top)
        self.dec_t = _plain_decoder(d, d, ch, rb, rc, 2)
        self.quantize_conv_b = nn.Conv2d(d + ch, d, 1)
        self.quantize_b = PlainQuantize(d, n_bottom)
        self.upsample_t = nn.ConvTranspose2d(d, d, 4, 2, 1)
        self.dec = _plain_decoder(2 * d, c, ch, rb, rc, 4)
        self.quantizers = [self.quantize_t, self.quantize_b]  # plain list: only for evaluate_vqvae's num_codes
        self.beta = cfg.beta

    def _encode(self, x):
        enc_b = self.enc_b(x * 2 - 1)
        enc_t = self.enc_t(enc_b)
        qt, dt, it, pt, ut = self.quantize_t(self.quantize_conv_t(enc_t).permute(0, 2, 3, 1))
        qt = qt.permute(0, 3, 1, 2)
        dec_t = self.dec_t(qt)
        qb, db, ib, pb, ub = self.quantize_b(self.quantize_conv_b(torch.cat([dec_t, enc_b], 1)).permute(0, 2, 3, 1))
        return qt, qb.permute(0, 3, 1, 2), dt + db, [it, ib], [(pt, ut), (pb, ub)]

    def _decode(self, qt, qb):
        return (self.dec(torch.cat([self.upsample_t(qt), qb], 1)) + 1) / 2

    def forward(self, x):
        qt, qb, diff, codes, stats = self._encode(x)
        levels = [{"loss": self.beta * diff, "perplexity": p, "usage": u} for p, u in stats]
        return VQVAEOutput(self._decode(qt, qb), self.beta * diff, levels, codes)

    @torch.no_grad()
    def encode(self, x):
        return self._encode(x)[3]

    def decode_codes(self, codes):
        qt = F.embedding(codes[0], self.quantize_t.embed.t()).permute(0, 3, 1, 2)
        qb = F.embedding(codes[1], self.quantize_b.embed.t()).permute(0, 3, 1, 2)
        return self._decode(qt, qb)
