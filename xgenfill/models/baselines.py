"""Simple baselines that any learned model must beat: linear interpolation in time,
a day-of-year climatology, per-time-step spatial linear interpolation, and the interpolation in
time corrected by the step's own smoothed departure from it (``anomaly``).

On real ocean-colour data these often beat DINEOF, so the benchmark and ``validate()`` run them
beside every model.
"""

from __future__ import annotations

import numpy as np

from ..errors import GenfillError
from .base import Cube, Fill, Filler

__all__ = ["LinearTime", "Climatology", "LinearSpace", "AnomalyInterp"]


def _deterministic(n_samples: int, name: str) -> None:
    if n_samples != 1:
        raise GenfillError(f"{name} is deterministic: n_samples must be 1")


def interpolate_in_time(values: np.ndarray, t: np.ndarray, exclude_self: bool = False
                        ) -> np.ndarray:
    """Per-pixel linear interpolation (in ``t``) between the nearest observations before and
    after each step, the nearest one repeated at the ends of the record, NaN where a pixel is
    never observed. ``exclude_self``: a step's own observation is left out (its value from
    the other steps alone)."""
    nt = values.shape[0]
    obs = np.isfinite(values)
    steps = np.arange(nt)[:, None, None]
    prev = np.maximum.accumulate(np.where(obs, steps, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(obs, steps, nt)[::-1], axis=0)[::-1]
    if exclude_self:  # the last one strictly before and the first one strictly after
        none = np.full((1,) + values.shape[1:], -1)
        prev = np.concatenate([none, prev[:-1]])
        nxt = np.concatenate([nxt[1:], np.full_like(none, nt)])
    has_prev, has_next = prev >= 0, nxt < nt
    p, n = np.clip(prev, 0, nt - 1), np.clip(nxt, 0, nt - 1)
    vp = np.take_along_axis(values, p, 0)
    vn = np.take_along_axis(values, n, 0)
    tp, tn, tt = t[p], t[n], t[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(tn > tp, (tt - tp) / (tn - tp), 0.0)
    return np.where(has_prev & has_next, vp + w * (vn - vp),
                    np.where(has_prev, vp, np.where(has_next, vn, np.nan)))


class LinearTime(Filler):
    """Per-pixel linear interpolation between the nearest observations before and after;
    the nearest observation is repeated at the ends of the record."""

    name = "linear_time"
    needs_time = True
    spatial_radius = 0  # each pixel's own record

    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        _deterministic(n_samples, self.name)
        nt = cube.values.shape[0]
        if nt < 2:
            raise GenfillError("linear_time needs at least 2 time steps")
        t = cube.time_index if cube.time_index is not None else np.arange(nt, dtype=float)
        out = interpolate_in_time(cube.values, t)
        out = np.where(cube.ocean[None], out, np.nan).astype(np.float32)
        return Fill(samples=out[None])


class AnomalyInterp(Filler):
    """Interpolation in time plus the step's own departure from it, spread in space.

    Each observed pixel's departure from the interpolation in time of the *other* steps is
    smoothed by normalised Gaussian convolutions at ``sigmas`` (pixels), the finest scale
    wherever it has data nearby, coarser ones further into a cloud; a gap pixel gets its
    interpolation in time plus that smoothed departure (plus nothing where no observation of
    the step reaches). A classical anomaly fill: it keeps the spatial structure the record
    gives a pixel and the step's large-scale warming, greening... that interpolation in time
    misses (on the first day of the Alboran record it is 0.44 degC too warm; with the
    departure, within 0.08). Pixels never observed at any step stay unfilled.
    """

    name = "anomaly"
    needs_time = True

    def __init__(self, sigmas: tuple[float, ...] = (3.0, 9.0, 27.0, 81.0),
                 truncate: float = 2.5) -> None:
        if not sigmas or min(sigmas) <= 0:
            raise GenfillError(f"sigmas must be positive pixel scales, got {sigmas!r}")
        self.sigmas = tuple(float(s) for s in sorted(sigmas))
        self.truncate = float(truncate)
        # how far an observation informs a gap (lazy fills add this as a spatial halo)
        self.spatial_radius = int(np.ceil(truncate * max(self.sigmas)))

    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        from scipy.ndimage import gaussian_filter

        _deterministic(n_samples, self.name)
        v = cube.values
        nt = v.shape[0]
        if nt < 2:
            raise GenfillError("anomaly needs at least 2 time steps")
        t = cube.time_index if cube.time_index is not None else np.arange(nt, dtype=float)
        # from the other steps: the departure of an observed pixel, the fill of a gap pixel
        # (which has no observation of its own to leave out)
        interp = interpolate_in_time(v, t, exclude_self=True)
        departure = v - interp
        known = np.isfinite(departure)
        # the field is mirrored at its edges (longitudes wrap on global grids): a coarse scale
        # keeps its full weight near a coast of the array (B: 0.362 degC vs 0.383 with zeros
        # outside). A chunk's halo covers the kernels' reach, so lazy fills are unchanged.
        mode = ("reflect", "wrap") if cube.periodic_x else "reflect"
        out = np.where(cube.gaps, interp, np.nan)
        for s in np.flatnonzero(cube.gaps.reshape(nt, -1).any(1)):
            est = np.zeros(v.shape[1:])
            taken = np.zeros(v.shape[1:])  # share of the estimate already given by finer scales
            for sigma in self.sigmas:
                num = gaussian_filter(np.where(known[s], departure[s], 0.0), sigma,
                                      mode=mode, truncate=self.truncate)
                den = gaussian_filter(known[s].astype(float), sigma, mode=mode,
                                      truncate=self.truncate)
                # a scale is trusted fully once a quarter of its kernel holds observations
                w = np.clip(4.0 * den, 0.0, 1.0) * (1.0 - taken)
                est += w * np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0)
                taken += w
            out[s] += est
        out = np.where(cube.gaps, out, np.where(cube.ocean[None], v, np.nan))
        return Fill(samples=out[None].astype(np.float32))


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
