"""Hold-out masks with realistic shapes, shared by training and ``validate()``.

Without ground truth inside a gap, skill is measured (and generative models are trained) by
hiding pixels that *were* observed. How they are hidden matters: isolated random pixels are easy
to interpolate, so the default hides real cloud shapes transplanted from other dates, as DINEOF's
``dineof_cvp`` and DINCAE's ``addcvpoint`` do. All functions work on (T, Y, X) boolean arrays
and return a boolean mask that is a subset of ``observed``.
"""

from __future__ import annotations

import numpy as np

from .errors import GenfillError

__all__ = ["transplant_clouds", "cluster_clouds", "random_pixels", "dineof_cv_count",
           "coverage"]


def coverage(observed: np.ndarray, ocean: np.ndarray) -> np.ndarray:
    """Fraction of the ocean observed at each time step, shape (T,)."""
    n = max(int(ocean.sum()), 1)
    return (observed & ocean[None]).reshape(observed.shape[0], -1).sum(1) / n


def dineof_cv_count(n_sea_values: int) -> int:
    """DINEOF's default number of cross-validation points: min(0.01 MN + 40, 0.03 MN)."""
    return int(min(0.01 * n_sea_values + 40, 0.03 * n_sea_values))


def transplant_clouds(observed: np.ndarray, ocean: np.ndarray, fraction: float = 0.1,
                      rng: np.random.Generator | int | None = 0, targets: np.ndarray | None = None,
                      donors: np.ndarray | None = None, keep: float = 0.5, tries: int = 1
                      ) -> np.ndarray:
    """Hide observed pixels under real cloud masks taken from other time steps.

    Target steps are taken from the clearest down (or from ``targets``); each receives the
    cloud mask of a randomly chosen donor step (from ``donors``, default: every step whose
    ocean is 10-90 % cloudy). Stops once ``fraction`` of all observed pixels is hidden, or when
    every target has been used. A pixel is never hidden so often that it keeps less than
    ``keep`` of its observations (on small domains, persistently cloudy coastal pixels would
    otherwise lose their whole record and could not be filled by any method). A donor whose
    cloud would hide nothing, or the whole image, is passed over; with ``tries`` > 1 the target
    then tries up to that many donors (short records, where one bad draw leaves a step out).
    """
    rng = np.random.default_rng(rng)
    observed = observed & ocean[None]
    nt = observed.shape[0]
    cover = coverage(observed, ocean)
    if targets is None:
        targets = np.argsort(-cover, kind="stable")
        targets = targets[cover[targets] > 0]
    targets = np.asarray(targets)
    if donors is None:
        donors = np.flatnonzero((cover > 0.1) & (cover < 0.9))
        if donors.size == 0:
            donors = np.flatnonzero(cover < 1.0)
    donors = np.asarray(donors)
    hidden = np.zeros_like(observed)
    if donors.size == 0 or nt < 2:
        return hidden
    goal = fraction * observed.sum()
    n_hidden = 0
    n_obs = observed.sum(axis=0)
    budget = np.floor((1.0 - keep) * n_obs).astype(int)  # how often each pixel may be hidden
    for t in targets:
        choices = donors[donors != t]
        if choices.size == 0:
            continue
        for _ in range(min(tries, choices.size)):
            donor = rng.choice(choices)
            hide = observed[t] & ~observed[donor] & ocean & (budget > 0)
            # never nothing, nor a whole image: keep at least a few observations for context
            if 0 < hide.sum() < observed[t].sum():
                break
            choices = choices[choices != donor]
        else:
            continue
        hidden[t] = hide
        budget -= hide
        n_hidden += int(hide.sum())
        if n_hidden >= goal:
            break
    return hidden


def cluster_clouds(observed: np.ndarray, n_points: int, cloud_size: int = 500,
                   rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """DINEOF-style clustered clouds: seeds at random observed pixels, each grown through
    4-connected observed neighbours (random frontier order) up to ``cloud_size`` pixels, until
    ``n_points`` pixels are hidden."""
    rng = np.random.default_rng(rng)
    nt, ny, nx = observed.shape
    avail = observed.copy()
    hidden = np.zeros_like(observed)
    flat_obs = np.flatnonzero(avail)
    if n_points >= flat_obs.size:
        raise GenfillError(f"cannot hide {n_points} points: only {flat_obs.size} are observed")
    order = rng.permutation(flat_obs)
    total = 0
    for seed in order:
        if total >= n_points:
            break
        if not avail.flat[seed]:
            continue
        t, rem = divmod(int(seed), ny * nx)
        y0, x0 = divmod(rem, nx)
        frontier = [(y0, x0)]
        avail[t, y0, x0] = False
        size = 0
        target = min(cloud_size, n_points - total)
        while frontier and size < target:
            y, x = frontier.pop(int(rng.integers(len(frontier))))
            hidden[t, y, x] = True
            size += 1
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < ny and 0 <= xx < nx and avail[t, yy, xx]:
                    avail[t, yy, xx] = False
                    frontier.append((yy, xx))
        for y, x in frontier:  # pixels queued but not taken go back to the pool
            avail[t, y, x] = True
        total += size
    return hidden


def random_pixels(observed: np.ndarray, fraction: float = 0.1,
                  rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """Single random pixels (optimistic: isolated pixels are easy to interpolate)."""
    rng = np.random.default_rng(rng)
    flat = np.flatnonzero(observed)
    n = int(round(fraction * flat.size))
    hidden = np.zeros(observed.shape, dtype=bool)
    hidden.flat[rng.choice(flat, size=n, replace=False)] = True
    return hidden
