"""Simple baselines that any learned model must beat: linear interpolation in time,
a day-of-year climatology, and per-time-step spatial linear interpolation.

On real ocean-colour data these often beat DINEOF, so the benchmark and ``validate()`` run them
beside every model.
"""

from __future__ import annotations

import numpy as np

from ..errors import GenfillError
from .base import Cube, Fill, Filler

__all__ = ["LinearTime", "Climatology", "LinearSpace"]


def _deterministic(n_samples: int, name: str) -> None:
    if n_samples != 1:
        raise GenfillError(f"{name} is deterministic: n_samples must be 1")


class LinearTime(Filler):
    """Per-pixel linear interpolation between the nearest observations before and after;
    the nearest observation is repeated at the ends of the record."""

    name = "linear_time"
    needs_time = True
    spatial_radius = 0  # each pixel's own record

    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        _deterministic(n_samples, self.name)
        v = cube.values
        nt = v.shape[0]
        if nt < 2:
            raise GenfillError("linear_time needs at least 2 time steps")
        t = cube.time_index if cube.time_index is not None else np.arange(nt, dtype=float)
        obs = np.isfinite(v)
        idx = np.where(obs, np.arange(nt)[:, None, None], -1)
        prev = np.maximum.accumulate(idx, axis=0)
        idx_rev = np.where(obs, np.arange(nt)[:, None, None], nt)
        nxt = np.minimum.accumulate(idx_rev[::-1], axis=0)[::-1]
        has_prev, has_next = prev >= 0, nxt < nt
        p, n = np.clip(prev, 0, nt - 1), np.clip(nxt, 0, nt - 1)
        vp = np.take_along_axis(v, p, 0)
        vn = np.take_along_axis(v, n, 0)
        tp, tn, tt = t[p], t[n], t[:, None, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(tn > tp, (tt - tp) / (tn - tp), 0.0)
        out = np.where(has_prev & has_next, vp + w * (vn - vp),
                       np.where(has_prev, vp, np.where(has_next, vn, np.nan)))
        out = np.where(cube.ocean[None], out, np.nan).astype(np.float32)
        return Fill(samples=out[None])


class Climatology(Filler):
    """Mean of the observations at the same pixel within ``window`` days of the same day of
    year (any year)."""

    name = "climatology"
    needs_time = True
    spatial_radius = 0  # each pixel's own record

    def __init__(self, window: float = 15.0) -> None:
        self.window = window

    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        _deterministic(n_samples, self.name)
        if cube.doy is None:
            raise GenfillError("climatology needs a datetime time axis (day of year)")
        v = cube.values
        obs = np.isfinite(v)
        vals = np.where(obs, v, 0.0).astype(np.float64)
        d = np.abs(cube.doy[:, None] - cube.doy[None, :])
        d = np.minimum(d, 365.25 - d)
        w = (d <= self.window).astype(np.float64)  # (T, T): which steps inform which
        num = np.tensordot(w, vals, axes=(1, 0))
        den = np.tensordot(w, obs.astype(np.float64), axes=(1, 0))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(den > 0, num / den, np.nan)
        out = np.where(cube.ocean[None], out, np.nan).astype(np.float32)
        return Fill(samples=out[None])


class LinearSpace(Filler):
    """Per-time-step linear (Delaunay) interpolation between observed pixels; pixels outside
    the observations' convex hull take the nearest observation."""

    name = "linear_space"

    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

        _deterministic(n_samples, self.name)
        v = cube.values
        out = np.full(v.shape, np.nan, dtype=np.float32)
        yy, xx = np.mgrid[0 : v.shape[1], 0 : v.shape[2]]
        for t in range(v.shape[0]):
            obs = np.isfinite(v[t])
            gap = cube.gaps[t]
            out[t][obs] = v[t][obs]
            if not gap.any() or obs.sum() < 1:
                continue
            pts = np.column_stack([yy[obs], xx[obs]])
            q = np.column_stack([yy[gap], xx[gap]])
            if obs.sum() >= 3 and np.linalg.matrix_rank(pts - pts.mean(0)) == 2:
                est = LinearNDInterpolator(pts, v[t][obs])(q)
            else:
                est = np.full(len(q), np.nan)
            miss = ~np.isfinite(est)
            if miss.any():
                est[miss] = NearestNDInterpolator(pts, v[t][obs])(q[miss])
            out[t][gap] = est
        return Fill(samples=out[None])
