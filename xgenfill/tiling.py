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

__all__ = ["tiled_apply", "blend_weights", "hash_normal", "round_up", "wrap_x"]


def round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)


def wrap_x(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Extend the last axis periodically by ``left`` and ``right`` columns."""
    nx = x.shape[-1]
    reps = max(left, right) // nx + 1
    wide = torch.cat([x] * (2 * reps + 1), dim=-1)
    start = reps * nx - left
    return wide[..., start:start + nx + left + right]


def blend_weights(n_core: int, e: int, device=None) -> torch.Tensor:
    """1-D weights over a tile's core extended by ``e`` on each side (length n_core + 2e).

    Raised-cosine ramps of width 2e centred on each core edge: the ramps of two neighbouring
    tiles sum to 1 across their shared edge, so blending is a partition of unity.
    """
    u = torch.arange(-e, n_core + e, device=device, dtype=torch.float32)
    if e == 0:
        return torch.ones_like(u)

    def ramp(d: torch.Tensor) -> torch.Tensor:  # d: distance inside the edge (neg. outside)
        w = 0.5 - 0.5 * torch.cos(math.pi * (d + e + 0.5) / (2 * e))
        return torch.where(d >= e, torch.ones_like(w), torch.where(d < -e, torch.zeros_like(w), w))

    return ramp(u) * ramp(n_core - 1 - u)


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, tile: int,
                halo: int, multiple: int = 8, periodic_x: bool = False, batch_size: int = 16,
                blend: int = 0) -> torch.Tensor:
    """Apply ``fn`` (B, C, h, w) -> (B, C', h, w) to ``x`` (B, C, Y, X) tile by tile.

    Tiles lie on a grid anchored at the array origin. Each window is its tile plus ``halo``
    pixels of context on every side, clipped at the array edges: at an edge the network sees
    its own zero padding, exactly as when the whole array is one tile. Each tile's output is
    kept over its core extended by ``blend // 2`` pixels and blended with its neighbours'
    with smooth (raised-cosine) weights. With ``halo`` at least the receptive-field radius plus
    ``blend // 2``, every kept pixel saw its whole receptive field, so blending averages equal
    values and the result does not depend on ``tile`` (up to float rounding); with a smaller
    halo (cheaper) the blending hides the seams.

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
    blend
        Width of the smooth transition between neighbouring tiles (at most ``2 * halo``).
    """
    b, _, ny, nx = x.shape
    halo = round_up(max(halo, 0), multiple)
    e = min(max(int(blend), 0) // 2, halo)
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
        x_end = round_up(nx, tx)
        xp = wrap_x(xp, halo, halo + x_end - nx)  # column j of x is column j + halo of xp
        x_off, x_lim = halo, x_end + 2 * halo
    else:
        x_end, x_off, x_lim = nx_p, 0, nx_p
    # each tile: its window origin (wy0, wx0) in xp, the rows/cols it keeps in array
    # coordinates (core + e, clipped to what the window holds) and their blending weights;
    # the weights' sum is the same map for every image
    wsum = torch.zeros((ny_p + 2 * e, x_end + 2 * e), dtype=torch.float32, device=x.device)
    groups: dict[tuple[int, int], list[tuple]] = {}
    for y0 in range(0, ny_p, ty):
        wy0, wy1 = max(y0 - halo, 0), min(y0 + ty + halo, ny_p)
        ly = min(ty, ny_p - y0)
        wy = blend_weights(ly, e, x.device)
        r0, r1 = max(y0 - e, wy0), min(y0 + ly + e, wy1)
        for x0 in range(0, x_end, tx):
            wx0, wx1 = max(x0 + x_off - halo, 0), min(x0 + x_off + tx + halo, x_lim)
            lx = min(tx, x_end - x0)
            wx = blend_weights(lx, e, x.device)
            c0, c1 = max(x0 - e, wx0 - x_off), min(x0 + lx + e, wx1 - x_off)
            wgt = wy[r0 - y0 + e:r1 - y0 + e, None] * wx[None, c0 - x0 + e:c1 - x0 + e]
            wsum[r0 + e:r1 + e, c0 + e:c1 + e] += wgt
            groups.setdefault((wy1 - wy0, wx1 - wx0), []).append(
                (wy0, wx0, slice(r0, r1), slice(c0, c1), wgt))
    # output canvas with an e-pixel margin on every side (canvas index = array index + e)
    acc = None
    for (h, w), tiles in groups.items():
        jobs = [(i, *t) for i in range(b) for t in tiles]
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start:start + batch_size]
            windows = torch.stack([xp[i, :, wy0:wy0 + h, wx0:wx0 + w]
                                   for i, wy0, wx0, *_ in chunk])
            res = fn(windows)
            if acc is None:
                acc = torch.zeros((b, res.shape[1], ny_p + 2 * e, x_end + 2 * e),
                                  dtype=torch.float32, device=res.device)
            for r, (i, wy0, wx0, rows, cols, wgt) in zip(res, chunk):
                part = r[:, rows.start - wy0:rows.stop - wy0,
                         cols.start + x_off - wx0:cols.stop + x_off - wx0]
                acc[i, :, rows.start + e:rows.stop + e, cols.start + e:cols.stop + e] += (
                    part.float() * wgt)
    assert acc is not None
    if periodic_x:  # fold the columns beyond either end back onto the circle
        idx = torch.arange(-e, x_end + e, device=acc.device) % nx
        acc = torch.zeros((*acc.shape[:3], nx), device=acc.device).index_add_(3, idx, acc)
        wsum = torch.zeros((wsum.shape[0], nx), device=acc.device).index_add_(1, idx, wsum)
        out = acc[:, :, e:e + ny] / wsum[e:e + ny]
    else:
        out = acc[:, :, e:e + ny, e:e + nx] / wsum[e:e + ny, e:e + nx]
    return out.to(res.dtype)


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
                y_index: torch.Tensor | None = None, x_index: torch.Tensor | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal noise of shape (T, Y, X) that is a pure function of
    (seed, member, step, absolute t, y, x). ``*_index`` give the absolute position of each row
    (e.g. of a spatial chunk with its halo, wrapped on a global grid); otherwise positions
    run from ``t0``, ``y0``, ``x0``."""
    nt, ny, nx = shape_tyx

    def axis(index, start, n):
        if index is not None:
            return index.to(device=device, dtype=torch.int64)
        return torch.arange(start, start + n, device=device, dtype=torch.int64)

    t, y, x = axis(t_index, t0, nt), axis(y_index, y0, ny), axis(x_index, x0, nx)
    pos = (t[:, None, None] * 0x100000 + y[None, :, None]) * 0x100000 + x[None, None, :]
    out = []
    for stream in (0, 1):
        h = _mix(pos * _GOLD + _key(seed, member, step, stream))
        u = (_lsr(h, 11).double() + 0.5) / float(1 << 53)
        out.append(u)
    z = torch.sqrt(-2.0 * torch.log(out[0])) * torch.cos(2.0 * math.pi * out[1])
    return z.float()
