"""``mask="auto"``: the sea from a land mask that works offline.

Without ``mask=``, a pixel never observed is land. ``mask="auto"`` instead takes the sea from
the 30 arc-second (about 1 km) GLOBE land mask shipped inside the ``global-land-mask``
package (MIT licence; NOAA GLOBE elevation data), so that a sea pixel under a cloud on every
date of a short record is filled (status ``filled_never_observed``) rather than taken for land.

A grid cell is sea when any of nine points spread over its footprint (3 x 3, at the centre and
a third of a cell either way) is sea on that mask: a coastal cell that is partly water can be
filled, a cell that is all land never is. The mask needs the data's latitude and longitude
(1-D or 2-D coordinates, in degrees); loading it takes about 1 GB of memory for a moment (the
package decompresses the whole 1 km globe).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .axes import Axes
from .errors import GenfillError

__all__ = ["auto_sea_mask"]

_OFFSETS = (-1.0 / 3.0, 0.0, 1.0 / 3.0)  # sub-points per cell, in cells


def _globe() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The GLOBE mask (True = sea) and its latitudes and longitudes, read from the package's
    file without importing the package (which would keep the 1 GB array for the session)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("global_land_mask")
    if spec is None or not spec.submodule_search_locations:
        raise GenfillError(
            "mask='auto' needs the package global-land-mask (pip install global-land-mask, or "
            "pip install 'xgenfill[landmask]'); or pass a boolean mask= (True = sea)")
    path = Path(list(spec.submodule_search_locations)[0]) / "globe_combined_mask_compressed.npz"
    with np.load(path) as f:
        return f["mask"], f["lat"], f["lon"]


def _is_sea(mask: np.ndarray, glat: np.ndarray, glon: np.ndarray, lat: np.ndarray,
            lon: np.ndarray) -> np.ndarray:
    """Nearest-cell lookup, as ``global_land_mask.globe.is_ocean`` does it."""
    i = ((np.clip(lat, glat.min(), glat.max()) - glat[0]) / (glat[1] - glat[0])).astype(int)
    j = ((np.clip(lon, glon.min(), glon.max()) - glon[0]) / (glon[1] - glon[0])).astype(int)
    return mask[i, j]


def _spacing(coord: np.ndarray, axis: int) -> np.ndarray:
    """The cell size along ``axis`` at every point (one-sided at the edges)."""
    if coord.shape[axis] < 2:
        return np.zeros_like(coord)
    return np.gradient(coord, axis=axis)


def auto_sea_mask(da: xr.DataArray, axes: Axes) -> xr.DataArray:
    """Boolean ``(y, x)`` sea mask of ``da``'s grid from the GLOBE 1 km land mask.

    A cell is sea when any of 3 x 3 points over its footprint is, so that a partly wet
    coastal cell may be filled; what ``mask="auto"`` uses.

    Parameters
    ----------
    da : xarray.DataArray
        The data, with latitude and longitude coordinates in degrees.
    axes : xgenfill.axes.Axes
        Its axes (:func:`xgenfill.axes.find_axes`).

    Returns
    -------
    xarray.DataArray
        True over sea (any of 3 x 3 points of the cell is sea), on ``(axes.y, axes.x)``.

    Raises
    ------
    GenfillError
        Without latitude and longitude coordinates, or without the package.

    See Also
    --------
    xgenfill.inpaint : Takes ``mask="auto"``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from xgenfill.axes import find_axes
    >>> from xgenfill.landmask import auto_sea_mask
    >>> da = xr.DataArray(np.zeros((3, 4)), dims=("lat", "lon"),  # Bay of Biscay to France
    ...                   coords={"lat": [45.0, 45.1, 45.2], "lon": [-3.0, -2.9, 0.9, 1.0]})
    >>> auto_sea_mask(da, find_axes(da)).values.tolist()
    [[True, True, False, False], [True, True, False, False], [True, True, False, False]]
    """
    if axes.lat is None or axes.lon is None:
        raise GenfillError(
            "mask='auto' needs latitude and longitude coordinates on the data (degrees); this "
            f"grid has none among {list(da.coords)}: pass a boolean mask= (True = sea)")
    lat = da[axes.lat]
    lon = da[axes.lon]
    if lat.ndim == 1 and lon.ndim == 1:
        la, lo = xr.broadcast(lat, lon)
        la, lo = la.transpose(axes.y, axes.x), lo.transpose(axes.y, axes.x)
    else:
        la = lat.transpose(axes.y, axes.x)
        lo = lon.transpose(axes.y, axes.x)
    la = np.asarray(la.values, np.float64)
    lo = np.asarray(lo.values, np.float64)
    if not (np.isfinite(la).all() and np.isfinite(lo).all()):
        raise GenfillError("mask='auto': the latitude or longitude coordinate has NaNs; pass a "
                           "boolean mask= (True = sea)")
    if np.abs(la).max() > 90.0 + 1e-6:
        raise GenfillError(f"mask='auto': latitude {axes.lat!r} goes beyond +-90 degrees; is it "
                           "in degrees? Pass a boolean mask= (True = sea)")
    globe = _globe()  # read only now: the checks above cost nothing
    # steps along each grid axis, in degrees of latitude and longitude
    dlat_y, dlat_x = _spacing(la, 0), _spacing(la, 1)
    # (unwrapped first: a grid may cross the antimeridian or the 0/360 seam)
    dlon_y = _spacing(np.unwrap(lo, period=360.0, axis=0), 0)
    dlon_x = _spacing(np.unwrap(lo, period=360.0, axis=1), 1)
    sea = np.zeros(la.shape, bool)
    for a in _OFFSETS:
        for b in _OFFSETS:
            plat = np.clip(la + a * dlat_y + b * dlat_x, -90.0, 90.0)
            plon = (lo + a * dlon_y + b * dlon_x + 180.0) % 360.0 - 180.0
            sea |= _is_sea(*globe, plat, plon)
    return xr.DataArray(sea, dims=(axes.y, axes.x),
                        coords={d: da[d] for d in (axes.y, axes.x) if d in da.coords},
                        attrs={"long_name": "sea (True) from the GLOBE 1 km land mask",
                               "source": "global-land-mask (NOAA GLOBE), any of 3x3 points"})
