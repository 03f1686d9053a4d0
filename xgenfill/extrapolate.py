"""Sea pixels that ``mask=`` declares but the input never observed.

Without a mask, a pixel never observed is land. With one, such a sea pixel (under a cloud on
every date of a short record, or beyond a swath) is filled from its surroundings: the models
fill what has a record, then each never-observed sea pixel takes, at every step and in every
member, the value of the nearest pixel with one (observed or filled). That is a spatial
extrapolation and its uncertainty says so: the error of taking the value ``d`` pixels away,
measured on the input's own observations as the root-mean-square difference of observed
pairs ``d`` pixels apart (the structure function), combined with the source pixel's spread.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .models.base import Fill

__all__ = ["structure_function", "extend_fill", "extrapolation_std"]


def structure_function(values: np.ndarray, max_lag: int = 64) -> np.ndarray:
    """RMS difference of observed pairs ``lag`` pixels apart along rows and columns.

    Parameters
    ----------
    values : numpy.ndarray
        (T, Y, X) with NaN where missing.
    max_lag : int
        Largest lag computed; the last value holds beyond it.

    Returns
    -------
    numpy.ndarray
        (max_lag + 1,) with 0 at lag 0, non-decreasing (a running maximum, so that a farther
        pixel is never said to be better known than a nearer one).

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.arange(10.0).reshape(1, 1, 10)  # one row rising by 1 per pixel
    >>> structure_function(ramp, 3).tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    lags = [0.0]
    for lag in range(1, max_lag + 1):
        sq, n = 0.0, 0
        for d in ((values[:, lag:, :] - values[:, :-lag, :]) if lag < values.shape[1] else None,
                  (values[:, :, lag:] - values[:, :, :-lag]) if lag < values.shape[2] else None):
            if d is None:
                continue
            ok = np.isfinite(d)
            sq += float(np.square(d[ok], dtype=np.float64).sum())
            n += int(ok.sum())
        lags.append(np.sqrt(sq / n) if n else np.nan)
    out = np.array(lags)
    good = np.isfinite(out)
    if not good[1:].any():
        return np.zeros_like(out)
    out = np.where(good, out, np.nan)
    # beyond the lags with pairs, the last known value holds
    last = out[good][-1]
    out[~good] = last
    return np.maximum.accumulate(out)


def _nearest_index(known: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy.ndimage import distance_transform_edt

    dist, (iy, ix) = distance_transform_edt(~known, return_indices=True)
    return dist, iy, ix


def extend_fill(fill: Fill, values: np.ndarray, never: np.ndarray) -> tuple[Fill, np.ndarray]:
    """``fill`` with every never-observed sea pixel given its nearest known pixel's value at
    each step (observed or filled, per member), and the distance (pixels) to that pixel.

    Parameters
    ----------
    fill : Fill
        The models' fill of one field, (K, T, Y, X), normalised.
    values : numpy.ndarray
        (T, Y, X) the field's observed values (NaN elsewhere), normalised.
    never : numpy.ndarray
        (Y, X) True at sea pixels never observed.

    Returns
    -------
    Fill, numpy.ndarray
        The extended fill and the (T, Y, X) distance (0 off the never-observed pixels).
    """
    samples = fill.samples.copy()
    mean = None if fill.mean is None else fill.mean.copy()
    nt = values.shape[0]
    dist = np.zeros(values.shape, np.float32)
    best = fill.best()  # once: without its own mean, it is the members' mean of the whole cube
    for t in range(nt):
        base = np.where(np.isfinite(values[t]), values[t], best[t])
        known = np.isfinite(base) & ~never
        if not known.any():
            continue
        d, iy, ix = _nearest_index(known)
        dist[t][never] = d[never]
        for k in range(samples.shape[0]):
            src = np.where(np.isfinite(values[t]), values[t], samples[k, t])
            samples[k, t][never] = src[iy, ix][never]
        if mean is not None:
            mean[t][never] = base[iy, ix][never]
    return replace(fill, samples=samples, mean=mean), dist


def extrapolation_std(distance: np.ndarray, sf: np.ndarray) -> np.ndarray:
    """The structure function ``sf`` read at each (rounded) ``distance``, capped at its last
    lag."""
    idx = np.clip(np.rint(distance).astype(int), 0, sf.size - 1)
    return sf[idx].astype(np.float32)
