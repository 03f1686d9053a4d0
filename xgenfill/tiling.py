"""Tiled application of a convolutional network, and counter-based noise.

Both are built so that the result at a pixel does not depend on how the array is cut: tiles sit
on a fixed grid anchored at the array origin (multiples of the network's down-sampling factor),
every tile sees a halo at least as wide as the network's receptive field (zeros beyond the
array, or wrapped longitude on global grids), and random numbers are a hash of the absolute
pixel position, member, step and seed rather than a stream consumed in tile order.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["tiled_apply", "hash_normal", "round_up"]


def round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)


def _wrap_x(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Extend the last axis periodically by ``left`` and ``right`` columns."""
    nx = x.shape[-1]
    reps = max(left, right) // nx + 1
    wide = torch.cat([x] * (2 * reps + 1), dim=-1)
    start = reps * nx - left
    return wide[..., start:start + nx + left + right]


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, tile: int,
                halo: int, multiple: int = 8, periodic_x: bool = False, batch_size: int = 16,
                ) -> torch.Tensor:
    """Apply ``fn`` (B, C, h, w) -> (B, C', h, w) to ``x`` (B, C, Y, X) tile by tile.

    Tiles lie on a grid anchored at the array origin. Each window is its tile plus ``halo``
    pixels of context on every side, clipped at the array edges: at an edge the network sees
    its own zero padding, exactly as when the whole array is one tile. With ``halo`` at least
    the receptive-field radius, the result does not depend on ``tile`` (up to float rounding).

    Parameters
    ----------
    tile
        Core tile size (rounded up to ``multiple``, and shrunk to the array when smaller).
    halo
        Context added on each side of a tile (rounded up to ``multiple``).
    periodic_x
        Wrap the last axis (global longitude) instead of treating its ends as edges.
    batch_size
        Windows per call of ``fn``: bounds memory whatever the array size.
    """
    b, _, ny, nx = x.shape
    halo = round_up(max(halo, 0), multiple)
    ny_p, nx_p = round_up(ny, multiple), round_up(nx, multiple)
    ty, tx = min(round_up(tile, multiple), ny_p), min(round_up(tile, multiple), nx_p)
    if not periodic_x and (ty, tx) == (ny_p, nx_p):
        # one tile covers each image: batch whole images, no window copies (same result)
        xp = x if (ny_p, nx_p) == (ny, nx) else torch.nn.functional.pad(
            x, (0, nx_p - nx, 0, ny_p - ny))
        parts = [fn(xp[i:i + batch_size]) for i in range(0, b, batch_size)]
        return torch.cat(parts)[:, :, :ny, :nx]
    # pad the far edges to the down-sampling multiple (the same for every tiling)
    xp = torch.nn.functional.pad(x, (0, 0 if periodic_x else nx_p - nx, 0, ny_p - ny))
    if periodic_x:
        nx_t = round_up(nx, tx)
        xp = _wrap_x(xp, halo, halo + nx_t - nx)  # column j of x is column j + halo of xp
        x_off, x_lim = halo, nx_t + halo
    else:
        x_off, x_lim = 0, nx_p
    groups: dict[tuple[int, int], list[tuple[int, int, int, int, int]]] = {}
    for y0 in range(0, ny_p, ty):
        wy0, wy1 = max(y0 - halo, 0), min(y0 + ty + halo, ny_p)
        for x0 in range(0, nx if periodic_x else nx_p, tx):
            wx0 = max(x0 + x_off - halo, 0)
            wx1 = min(x0 + x_off + tx + halo, x_lim + (halo if periodic_x else 0))
            groups.setdefault((wy1 - wy0, wx1 - wx0), []).append((y0, x0, wy0, wx0, 0))
    out = None
    for (h, w), tiles in groups.items():
        jobs = [(i, *t) for i in range(b) for t in tiles]
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start:start + batch_size]
            windows = torch.stack([xp[i, :, wy0:wy0 + h, wx0:wx0 + w]
                                   for i, _, _, wy0, wx0, _ in chunk])
            res = fn(windows)
            if out is None:
                out = torch.empty((b, res.shape[1], ny_p, nx + tx), dtype=res.dtype,
                                  device=res.device)
            for r, (i, y0, x0, wy0, wx0, _) in zip(res, chunk):
                cy, cx = y0 - wy0, x0 + x_off - wx0
                core = r[:, cy:cy + min(ty, ny_p - y0), cx:cx + tx]
                out[i, :, y0:y0 + core.shape[1], x0:x0 + core.shape[2]] = core
    assert out is not None
    return out[:, :, :ny, :nx]


_M1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_M2 = 0x94D049BB133111EB - (1 << 64)
_GOLD = 0x9E3779B97F4A7C15 - (1 << 64)


def _lsr(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """splitmix64 finaliser (integer overflow wraps, as in C)."""
    x = x ^ _lsr(x, 30)
    x = x * _M1
    x = x ^ _lsr(x, 27)
    x = x * _M2
    return x ^ _lsr(x, 31)


def _key(*parts: int) -> int:
    h = torch.tensor(0, dtype=torch.int64)
    for p in parts:
        h = _mix(h + int(p) * 1 + _GOLD)
    return int(h)


def hash_normal(shape_tyx: tuple[int, int, int], *, seed: int, member: int, step: int,
                t0: int = 0, y0: int = 0, x0: int = 0, t_index: torch.Tensor | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal noise of shape (T, Y, X) that is a pure function of
    (seed, member, step, absolute t, y, x)."""
    nt, ny, nx = shape_tyx
    t = (t_index.to(device=device, dtype=torch.int64) if t_index is not None
         else torch.arange(t0, t0 + nt, device=device, dtype=torch.int64))
    y = torch.arange(y0, y0 + ny, device=device, dtype=torch.int64)
    x = torch.arange(x0, x0 + nx, device=device, dtype=torch.int64)
    pos = (t[:, None, None] * 0x100000 + y[None, :, None]) * 0x100000 + x[None, None, :]
    out = []
    for stream in (0, 1):
        h = _mix(pos * _GOLD + _key(seed, member, step, stream))
        u = (_lsr(h, 11).double() + 0.5) / float(1 << 53)
        out.append(u)
    z = torch.sqrt(-2.0 * torch.log(out[0])) * torch.cos(2.0 * math.pi * out[1])
    return z.float()
