"""Shared network blocks: a small convolutional U-Net with FiLM conditioning.

No normalisation layer that pools over space (GroupNorm, attention): every output pixel depends
only on a bounded neighbourhood (the receptive field), which is what makes tiled inference give
the same answer whatever the tiling.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["UNet", "noise_embedding"]


def noise_embedding(c: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of a per-sample scalar (e.g. log noise level), shape (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=c.device) / half)
    args = c.float()[:, None] * freqs[None] * 100.0
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with SiLU, a FiLM scale/shift from the embedding, and a skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * c_out) if emb_dim else None
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    @staticmethod
    def _zeros(h: torch.Tensor) -> torch.Tensor:
        return torch.zeros(h.shape[1], dtype=h.dtype, device=h.device)

    @staticmethod
    def _ones(h: torch.Tensor) -> torch.Tensor:
        return torch.ones(h.shape[1], dtype=h.dtype, device=h.device)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        h = F.silu(self.conv1(x))
        if self.film is not None and emb is not None:
            scale, shift = self.film(emb).chunk(2, dim=1)
            if emb.shape[0] == 1:
                # one conditioning for the whole batch (sampling): a per-channel affine, which
                # inference batch-norm does in one vectorised pass (broadcast bf16 ops are
                # ~10x slower on CPU)
                h = F.batch_norm(h, self._zeros(h), self._ones(h), (1 + scale[0]).to(h.dtype),
                                 shift[0].to(h.dtype), False, 0.0, 0.0)
            else:
                h = torch.addcmul(shift[:, :, None, None], h, 1 + scale[:, :, None, None])
        return self.skip(x) + self.conv2(F.silu(h))


class UNet(nn.Module):
    """U-Net over (B, c_in, H, W) with H, W multiples of ``2**(len(widths)-1)``.

    Parameters
    ----------
    c_in, c_out
        Input and output channels.
    widths
        Channels per level; each level below the first halves the resolution.
    emb_dim
        Size of the FiLM embedding of a per-sample scalar (0: unconditioned).
    """

    def __init__(self, c_in: int, c_out: int, widths: tuple[int, ...] = (32, 64, 96),
                 emb_dim: int = 64) -> None:
        super().__init__()
        self.widths, self.emb_dim = tuple(widths), emb_dim
        self.emb = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(),
                                 nn.Linear(emb_dim, emb_dim)) if emb_dim else None
        self.inp = nn.Conv2d(c_in, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        c = widths[0]
        for w in widths:
            self.down.append(ResBlock(c, w, emb_dim))
            c = w
        self.mid = ResBlock(c, c, emb_dim)
        self.up = nn.ModuleList()
        for w in reversed(widths):
            self.up.append(ResBlock(c + w, w, emb_dim))
            c = w
        self.out = nn.Conv2d(c, c_out, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.widths) - 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        emb = None
        if self.emb is not None:
            if cond is None:
                cond = torch.zeros(1, device=x.device)
            elif cond.shape[0] > 1 and not self.training and bool((cond == cond[0]).all()):
                cond = cond[:1]  # the same for every sample: embed once (batch-norm path)
            emb = self.emb(noise_embedding(cond, self.emb_dim))
        h = self.inp(x)
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                h = F.avg_pool2d(h, 2)
            h = block(h, emb)
            skips.append(h)
        h = self.mid(h, emb)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.up) - 1:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
        return self.out(h)


def receptive_radius(net: nn.Module, c_in: int, size: int = 160) -> int:
    """Measured receptive-field radius (pixels) of ``net``: how far from the centre an input
    change reaches the centre output."""
    net = net.eval()
    x = torch.randn(1, c_in, size, size, requires_grad=True)
    out = net(x)
    out[0, :, size // 2, size // 2].sum().backward()
    g = x.grad.abs().sum(dim=(0, 1))
    ys, xs = torch.nonzero(g > 0, as_tuple=True)
    return int(max((ys - size // 2).abs().max(), (xs - size // 2).abs().max()))
