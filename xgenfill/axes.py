"""Find the time, Y and X axes of a DataArray from its CF metadata (via cf-xarray).

Works whatever the axes are called (``lat/lon``, ``latitude/longitude``, ``y/x`` with 2-D
coordinates), in any dimension order. Everything else is an "extra" dimension whose slices
are filled as independent fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import numpy as np
import xarray as xr

from .errors import GenfillError

__all__ = ["Axes", "find_axes", "check_coordinates"]

# Fallback for dimensions that carry no coordinate variable (cf-xarray can only look at variables).
_DIM_NAME_PATTERNS = {
    "T": re.compile(r"^(time|t|date|day|days)$", re.I),
    "Y": re.compile(r"^(y|j|lat|latitude|nlat|rows?|eta_rho|yc)$", re.I),
    "X": re.compile(r"^(x|i|lon|long|longitude|nlon|cols?|xi_rho|xc)$", re.I),
}


@dataclass(frozen=True)
class Axes:
    """Names of the dimensions playing each role in one DataArray."""

    y: str
    x: str
    time: str | None
    extra: tuple[str, ...]
    lat: str | None = None  # latitude coordinate (1-D or 2-D), if any
    lon: str | None = None

    @property
    def canonical(self) -> tuple[str, ...]:
        """Internal dimension order: extra..., time, y, x."""
        return self.extra + ((self.time,) if self.time else ()) + (self.y, self.x)


def _candidates(obj: xr.DataArray, axis: str, coord_key: str) -> list[str]:
    names = list(obj.cf.axes.get(axis, [])) + list(obj.cf.coordinates.get(coord_key, []))
    return list(dict.fromkeys(names))


def _dims_of(da: xr.DataArray, names: list[str]) -> list[tuple[str, ...]]:
    return [tuple(da[n].dims) for n in names if n in da.coords or n in da.dims]


def find_axes(da: xr.DataArray, dims: dict[str, str] | None = None) -> Axes:
    """Identify the time, Y and X dimensions of ``da``.

    Parameters
    ----------
    da
        The field to fill.
    dims
        Optional explicit mapping, e.g. ``{"Y": "row", "X": "col", "T": "date"}``; it wins
        over anything guessed from metadata.

    Raises
    ------
    GenfillError
        When no Y/X pair can be identified, or an explicit name is not a dimension.
    """
    dims = {k.upper(): v for k, v in (dims or {}).items()}
    for role, name in dims.items():
        if role not in ("T", "Y", "X"):
            raise GenfillError(f"dims= keys must be 'T', 'Y' or 'X', got {role!r}")
        if name not in da.dims:
            raise GenfillError(f"dims={{{role!r}: {name!r}}}: {name!r} is not a dimension of "
                               f"{da.name!r} (dimensions: {da.dims})")

    guessed = da.cf.guess_coord_axis()  # returns a copy: the user's object is untouched
    found: dict[str, str | None] = {"T": None, "Y": None, "X": None}
    lat = lon = None

    # Time: a 1-D coordinate along one of our dimensions.
    for name in _candidates(guessed, "T", "time"):
        d = guessed[name].dims
        if len(d) == 1 and d[0] in da.dims:
            found["T"] = d[0]
            break

    lat_names = _candidates(guessed, "Y", "latitude")
    lon_names = _candidates(guessed, "X", "longitude")
    for role, names in (("Y", lat_names), ("X", lon_names)):
        for name in names:
            d = guessed[name].dims
            if len(d) == 1 and d[0] in da.dims and d[0] != found["T"]:
                found[role] = found[role] or d[0]
                if role == "Y":
                    lat = lat or name
                else:
                    lon = lon or name
    # Curvilinear grids: 2-D latitude/longitude give the two spatial dimensions.
    if found["Y"] is None or found["X"] is None:
        for name in lat_names:
            var = guessed[name]
            if var.ndim == 2 and all(d in da.dims for d in var.dims):
                vals = np.asarray(var.values, dtype=float)
                # Y is the dimension along which latitude changes most.
                d0 = np.nanmean(np.abs(np.diff(vals, axis=0))) if vals.shape[0] > 1 else 0.0
                d1 = np.nanmean(np.abs(np.diff(vals, axis=1))) if vals.shape[1] > 1 else 0.0
                ydim, xdim = (var.dims if d0 >= d1 else var.dims[::-1])
                found["Y"], found["X"], lat = ydim, xdim, name
                lon = next((n for n in lon_names if guessed[n].ndim == 2), None)
                break
    # Dimensions without coordinates: fall back on conventional names.
    for role, pattern in _DIM_NAME_PATTERNS.items():
        if found[role] is None:
            taken = {v for v in found.values() if v}
            match = [d for d in da.dims if pattern.match(str(d)) and d not in taken]
            if match:
                found[role] = match[0]
    for role, name in dims.items():
        found[role] = name

    if found["Y"] is None or found["X"] is None or found["Y"] == found["X"]:
        raise GenfillError(
            f"could not identify the spatial axes of {da.name!r} (dimensions {da.dims}); add CF "
            "attributes (axis='Y'/'X' or standard_name latitude/longitude) or pass "
            "dims={'Y': ..., 'X': ...}"
        )
    if found["T"] in (found["Y"], found["X"]):
        found["T"] = None
    extra = tuple(d for d in da.dims if d not in (found["T"], found["Y"], found["X"]))
    return Axes(y=found["Y"], x=found["X"], time=found["T"], extra=extra, lat=lat, lon=lon)


def check_coordinates(da: xr.DataArray, axes: Axes) -> None:
    """Refuse duplicated or non-monotonic 1-D coordinates along the time/Y/X axes."""
    for dim in (axes.time, axes.y, axes.x):
        if dim is None or dim not in da.coords:
            continue
        index = da.indexes.get(dim)
        if index is None:
            continue
        if index.hasnans:  # NaT in time, NaN in latitude: sorting would not help
            raise GenfillError(f"coordinate {dim!r} has {int(index.isna().sum())} missing "
                               f"value(s) (NaT/NaN); drop those steps or rows first (e.g. "
                               f"da.sel({{{dim!r}: da[{dim!r}].notnull()}}))")
        if not index.is_unique:
            raise GenfillError(f"coordinate {dim!r} has duplicated values; remove them first "
                               f"(e.g. da.drop_duplicates({dim!r}))")
        if not (index.is_monotonic_increasing or index.is_monotonic_decreasing):
            if dim == axes.x and _wraps_at_360(np.asarray(index, dtype=float)):
                raise GenfillError(
                    f"longitude {dim!r} runs across 0/360 (e.g. 354..359, 0..5): convert it to "
                    f"-180..180 first (da.assign_coords({dim}=((da.{dim} + 180) % 360) - 180)"
                    f".sortby({dim!r})); sorting it as it is would put a seam in the middle")
            raise GenfillError(f"coordinate {dim!r} is not monotonic; sort it first "
                               f"(da.sortby({dim!r}))")


def _wraps_at_360(lon: np.ndarray) -> bool:
    """Longitudes that increase except for one drop of about 360 degrees."""
    if lon.dtype.kind not in "fi" or lon.size < 3:
        return False
    drops = np.nonzero(np.diff(lon) < 0)[0]
    return drops.size == 1 and lon[drops[0]] - lon[drops[0] + 1] > 180


def is_periodic_longitude(da: xr.DataArray, axes: Axes) -> bool:
    """True when a 1-D longitude coordinate wraps around the globe."""
    if axes.lon is None or da[axes.lon].ndim != 1 or da[axes.lon].size < 3:
        return False
    lon = np.asarray(da[axes.lon].values, dtype=float)
    step = np.median(np.abs(np.diff(lon)))
    return bool(abs((lon.max() - lon.min()) + step - 360.0) < 0.5 * step)
