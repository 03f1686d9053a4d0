"""Input checking and preparation: from a user's DataArray to normalised numpy cubes.

The prepared cube has shape ``(field, time, y, x)``: extra dimensions are stacked into
``field`` (each slice is filled independently), a missing time axis becomes length 1, and
descending 1-D spatial coordinates are flipped so that every result is orientation-independent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import xarray as xr

from .axes import Axes, check_coordinates, find_axes, is_periodic_longitude
from .errors import GenfillError, warn
from .models.base import Fill
from .plausible import check_outliers
from .transforms import Transform, choose_transform

__all__ = ["Prepared", "prepare", "decode_input", "check_structure", "descending_axes",
           "require_same_grid", "time_axis_info", "MIN_SIZE"]

MIN_SIZE = 4  # smallest spatial extent along Y and X that any model can work with


@dataclass
class Prepared:
    """Normalised, transformed numpy view of the input, plus what is needed to undo it."""

    values: np.ndarray  # (F, T, Y, X) float32, normalised transformed values, NaN = missing
    ocean: np.ndarray  # (F, Y, X) bool: may be filled (observed at least once and not masked)
    transform: Transform
    mean: np.ndarray  # (F,) transformed-space mean of observed values
    std: np.ndarray  # (F,) transformed-space std of observed values
    axes: Axes
    source: xr.DataArray  # decoded input, never modified
    flips: tuple[bool, bool] = (False, False)  # Y, X flipped to ascending
    doy: np.ndarray | None = None  # (T,) day of year, or None without a time axis
    time_index: np.ndarray | None = None  # (T,) float days since the first step, for interpolation
    periodic_x: bool = False
    extra_shape: tuple[int, ...] = field(default_factory=tuple)
    # (F, Y, X) sea pixels of mask= never observed (filled by spatial extrapolation); None: none
    never: np.ndarray | None = None

    @property
    def observed(self) -> np.ndarray:
        return np.isfinite(self.values)

    @property
    def gaps(self) -> np.ndarray:
        """Pixels to fill: missing, inside the ocean."""
        return ~self.observed & self.ocean[:, None]

    def plausible_fill(self, f: int, fill: Fill) -> Fill:
        """The fill of field ``f`` (normalised) with NaN, in its members and its point
        estimate, wherever one of them leaves the plausible range of this field's observed
        values (see :mod:`xgenfill.plausible`)."""
        from .plausible import (bounds, drop_implausible, lattice_step, physical_bounds,
                                robust_scale)

        values = self.values[f]
        if not np.isfinite(values).any():
            return fill
        step = lattice_step(values.shape)
        lo, hi = bounds(np.nanmin(values), np.nanmax(values),
                        robust_scale(values[:, ::step, ::step]), 1.0)  # normalised: std 1
        # and never beyond what the variable can physically be (e.g. SST of 60 degC)
        p_lo, p_hi = physical_bounds(self.source.attrs.get("units", ""), self.transform)
        lo = max(lo, (p_lo - self.mean[f]) / self.std[f])
        hi = min(hi, (p_hi - self.mean[f]) / self.std[f])
        name = repr(self.source.name) if self.source.name is not None else "the field"
        own = fill.mean is not None
        both = np.concatenate([fill.samples, fill.mean[None]]) if own else fill.samples
        both = drop_implausible(both, lo, hi, name=name, point=own, to_physical=lambda b: (
            self.transform.inverse(np.float64(b) * self.std[f] + self.mean[f])))
        return replace(fill, samples=both[:-1] if own else both, mean=both[-1] if own else None)

    def to_physical(self, normalised: np.ndarray, field_axis: int = 0) -> np.ndarray:
        """Undo normalisation and transform; ``field_axis`` is where F sits in ``normalised``."""
        shape = [1] * normalised.ndim
        shape[field_axis] = -1
        transformed = normalised * self.std.reshape(shape) + self.mean.reshape(shape)
        return self.transform.inverse(transformed)

    def to_transformed(self, normalised: np.ndarray, field_axis: int = 0) -> np.ndarray:
        """Undo the normalisation, in the input's float precision (model output is float32;
        upcasting a whole ensemble to float64 costs time and memory for nothing)."""
        shape = [1] * normalised.ndim
        shape[field_axis] = -1
        dt = normalised.dtype if normalised.dtype.kind == "f" else np.float64
        std, mean = self.std.astype(dt).reshape(shape), self.mean.astype(dt).reshape(shape)
        return normalised * std + mean

    def to_canonical(self, arr: np.ndarray) -> np.ndarray:
        """Apply the same flips as the prepared cube to an array whose last dims are (Y, X)."""
        if self.flips[0]:
            arr = arr[..., ::-1, :]
        if self.flips[1]:
            arr = arr[..., ::-1]
        return arr

    from_canonical = to_canonical  # flipping is its own inverse

    def canonical_of(self, other: xr.DataArray) -> np.ndarray:
        """``other`` (same grid as the source) in the prepared (F, T, Y, X) layout."""
        arr = np.asarray(other.transpose(*self.axes.canonical).values)
        return np.ascontiguousarray(self.to_canonical(arr.reshape(self.values.shape)))

    def transformed_source(self) -> np.ndarray:
        """The input in transformed units, (F, T, Y, X) float64 canonical, NaN off the ocean;
        recomputed from the source so that it depends on no statistic."""
        raw = _canonical_raw(self.source, self.axes)
        with np.errstate(invalid="ignore"):
            t = self.transform.forward(raw)
        return np.where(self.ocean[:, None], self.to_canonical(t), np.nan)

    def without(self, hide: np.ndarray) -> "Prepared":
        """A copy with the ``hide`` pixels missing and the normalisation recomputed from the
        remaining ones only (so that held-out values cannot leak through the statistics)."""
        kept = np.where(hide, np.nan, self.transformed_source())
        mean, std = _field_stats(kept)
        values = ((kept - mean[:, None, None, None]) / std[:, None, None, None])
        return replace(self, values=values.astype(np.float32), mean=mean, std=std)


def _canonical_raw(da: xr.DataArray, axes: Axes) -> np.ndarray:
    nt = da.sizes[axes.time] if axes.time else 1
    raw = np.asarray(da.transpose(*axes.canonical).values)
    return raw.reshape(-1, nt, da.sizes[axes.y], da.sizes[axes.x]).astype(np.float64)


def _field_stats(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-field mean and std of the finite values of (F, T, Y, X) transformed data."""
    nf = t.shape[0]
    mean, std = np.zeros(nf), np.ones(nf)
    for f in range(nf):
        v = t[f][np.isfinite(t[f])]
        if v.size:
            mean[f] = v.mean()
            s = v.std()
            std[f] = s if s > 0 else 1.0
    return mean, std


def decode_input(da: xr.DataArray) -> xr.DataArray:
    """Return a float view of ``da``: integers with ``_FillValue`` are CF-decoded, other dtypes
    are refused with a message."""
    if not isinstance(da, xr.DataArray):
        raise GenfillError(f"expected an xarray.DataArray, got {type(da).__name__}")
    kind = da.dtype.kind
    if kind == "f":
        return da
    if kind in "iu":
        fill_attrs = ("_FillValue", "missing_value")
        if any(a in da.attrs for a in fill_attrs) or any(a in da.encoding for a in fill_attrs):
            name = da.name if da.name is not None else "__xgenfill__"
            ds = da.to_dataset(name=name)
            for a in fill_attrs:  # encoding-only fill values become attrs so decode_cf sees them
                if a in da.encoding and a not in da.attrs:
                    ds[name].attrs[a] = da.encoding[a]
            # and leave the encoding, where xarray refuses to find them twice
            ds[name].encoding = {k: v for k, v in da.encoding.items() if k not in fill_attrs}
            decoded = xr.decode_cf(ds)[name]
            if decoded.dtype.kind != "f":
                decoded = decoded.astype("float32")
            return decoded.rename(da.name)
        raise GenfillError(
            f"{da.name!r} has integer dtype {da.dtype} and no _FillValue, so missing pixels "
            "cannot be told apart; decode it (xr.decode_cf) or convert to float with NaN gaps"
        )
    raise GenfillError(f"{da.name!r} has dtype {da.dtype}; xgenfill fills floating-point fields "
                       "(or CF-encoded integers with a _FillValue)")


def _user_mask(mask: xr.DataArray | np.ndarray | str | None, da: xr.DataArray, axes: Axes
               ) -> np.ndarray | None:
    """Broadcast a user mask (True = sea, may be filled) to (F, Y, X) in the input's order."""
    full = user_mask_array(mask, da, axes)
    if full is None:
        return None
    out = np.asarray(full.values, dtype=bool).reshape(-1, da.sizes[axes.y], da.sizes[axes.x])
    if not out.any():
        raise GenfillError("mask= is False everywhere, so no pixel is sea (True = sea, may be "
                           "filled); if you passed a land mask, pass its inverse (~mask)")
    return out


def user_mask_array(mask: xr.DataArray | np.ndarray | str | None, da: xr.DataArray, axes: Axes
                    ) -> xr.DataArray | None:
    """A user mask (True = sea, may be filled), checked against the data's grid, as a boolean
    DataArray with dims (extra..., Y, X)."""
    if mask is None:
        return None
    if isinstance(mask, str):
        if mask != "auto":
            raise GenfillError(f"mask={mask!r}: pass 'auto' (the sea from the GLOBE 1 km land "
                               "mask), a boolean mask (True = sea), or None")
        from .landmask import auto_sea_mask

        mask = auto_sea_mask(da, axes)
        if da.chunks is None:
            # what the data observe is water too (GLOBE counts most lakes as land); lazy
            # callers keep observed pixels as sea themselves
            seen = np.isfinite(da)
            mask = mask | (seen.any(axes.time) if axes.time else seen)
    if not isinstance(mask, xr.DataArray):
        arr = np.asarray(mask)
        if arr.shape != (da.sizes[axes.y], da.sizes[axes.x]):
            raise GenfillError(f"mask= has shape {arr.shape}; expected ({axes.y}, {axes.x}) = "
                               f"{(da.sizes[axes.y], da.sizes[axes.x])}")
        mask = xr.DataArray(arr, dims=(axes.y, axes.x))
    unknown = set(mask.dims) - set(da.dims)
    if unknown or axes.y not in mask.dims or axes.x not in mask.dims:
        raise GenfillError(f"mask= has dimensions {mask.dims}; it must span ({axes.y}, {axes.x}) "
                           f"and use only dimensions of the data {da.dims}")
    if axes.time in mask.dims:
        raise GenfillError("mask= must not vary along time: it marks sea (True) and land (False)")
    for dim in mask.dims:
        if mask.sizes[dim] != da.sizes[dim]:
            raise GenfillError(f"mask= has {mask.sizes[dim]} points along {dim!r}; the data has "
                               f"{da.sizes[dim]} (mask on a different grid)")
        if dim in mask.coords and dim in da.coords:
            a, b = np.asarray(mask[dim].values), np.asarray(da[dim].values)
            same = np.array_equal(a, b) if a.dtype.kind not in "f" else np.allclose(a, b)
            if not same:
                raise GenfillError(f"mask= coordinate {dim!r} differs from the data's "
                                   "(mask on a different grid)")
    if mask.dtype.kind not in "biuf":
        raise GenfillError(f"mask= must be boolean (True = sea), got dtype {mask.dtype}")
    values = np.asarray(mask.values)
    if values.dtype.kind == "f":
        values = np.nan_to_num(values, nan=0.0)
    mask = mask.copy(data=values != 0)
    order = [d for d in axes.extra if d in mask.dims] + [axes.y, axes.x]
    full = mask.transpose(*order).broadcast_like(da.isel({axes.time: 0}) if axes.time else da)
    return full.transpose(*axes.extra, axes.y, axes.x)


def time_axis_info(da: xr.DataArray, axes: Axes) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Day of year (T,) when the time axis is a calendar, and the time of each step (T,) in
    days (or coordinate units) since the first one, increasing; (None, None) without time."""
    if axes.time is None:
        return None, None
    nt = da.sizes[axes.time]
    coord = da[axes.time] if axes.time in da.coords else None
    doy = time_index = None
    if coord is not None and np.issubdtype(coord.dtype, np.datetime64):
        times = coord.values.astype("datetime64[ns]")
        doy = np.asarray(coord.dt.dayofyear.values, dtype=np.float32)
        time_index = ((times - times[0]) / np.timedelta64(1, "D")).astype(np.float64)
    elif coord is not None and np.issubdtype(coord.dtype, np.number):
        time_index = np.asarray(coord.values, dtype=np.float64)
    elif coord is not None and hasattr(coord.values[0], "dayofyr"):  # cftime calendars
        doy = np.array([t.dayofyr for t in coord.values], dtype=np.float32)
        # the real spacing, in the file's own calendar (noleap, 360_day...): cftime subtraction
        t0 = coord.values[0]
        time_index = np.array([(t - t0).total_seconds() / 86400.0 for t in coord.values],
                              dtype=np.float64)
    if time_index is None:
        time_index = np.arange(nt, dtype=np.float64)
    if time_index[0] > time_index[-1]:
        time_index = -time_index  # descending time: keep interpolation weights positive
    return doy, time_index


def require_same_grid(other: xr.DataArray, da: xr.DataArray, what: str) -> None:
    """Refuse ``other`` unless it has exactly the dimensions, sizes and coordinates of ``da``."""
    if set(other.dims) != set(da.dims):
        raise GenfillError(f"{what} has dimensions {other.dims}; the data has {da.dims} "
                           f"({what} on a different grid)")
    for d in da.dims:
        if other.sizes[d] != da.sizes[d]:
            raise GenfillError(f"{what} has {other.sizes[d]} points along {d!r}, the data "
                               f"{da.sizes[d]} ({what} on a different grid)")
        if d in other.coords and d in da.coords and not np.array_equal(
                np.asarray(other[d].values), np.asarray(da[d].values)):
            raise GenfillError(f"{what} coordinate {d!r} differs from the data's ({what} on a "
                               "different grid)")


def check_structure(da: xr.DataArray, dims: dict[str, str] | None = None
                    ) -> tuple[xr.DataArray, Axes]:
    """Checks that need no data values: dtype (integers CF-decoded), axes, coordinates, size."""
    da = decode_input(da)
    axes = find_axes(da, dims)
    check_coordinates(da, axes)
    if axes.time is not None and da.sizes[axes.time] == 0:
        raise GenfillError(f"time axis {axes.time!r} has no steps: there is nothing to fill")
    ny, nx = da.sizes[axes.y], da.sizes[axes.x]
    if ny < MIN_SIZE or nx < MIN_SIZE:
        raise GenfillError(f"domain too small: {axes.y}={ny}, {axes.x}={nx}; at least "
                           f"{MIN_SIZE} x {MIN_SIZE} points are needed")
    return da, axes


def descending_axes(da: xr.DataArray, axes: Axes) -> tuple[bool, bool]:
    """Whether the 1-D Y and X coordinates decrease (they are flipped to ascending inside)."""
    def desc(dim: str) -> bool:
        return dim in da.indexes and da.sizes[dim] > 1 and da.indexes[dim].is_monotonic_decreasing

    return desc(axes.y), desc(axes.x)


def prepare(da: xr.DataArray, *, mask=None, transform: str | None = "auto",
            dims: dict[str, str] | None = None) -> Prepared:
    """Check ``da`` and build the normalised ``(field, time, y, x)`` cube.

    Raises
    ------
    GenfillError
        For anything the models cannot handle, with a one-line reason.
    """
    da, axes = check_structure(da, dims)
    cube = _canonical_raw(da, axes)  # (F, T, Y, X) float64, source orientation
    if np.isinf(cube).any():
        raise GenfillError(f"{da.name!r} contains +/-inf; replace them with NaN (missing) or "
                           "finite values first")
    if not np.isfinite(cube).any():
        raise GenfillError(f"{da.name!r} is entirely NaN: there is nothing to learn from")

    tf = choose_transform(da, cube, transform)
    tf.check(cube, str(da.name))

    nt = cube.shape[1]
    extra_shape = tuple(da.sizes[d] for d in axes.extra)
    flips = descending_axes(da, axes)

    user = _user_mask(mask, da, axes)
    observed_ever = np.isfinite(cube).any(axis=1)
    if nt == 1 and user is None:
        raise GenfillError(
            "a single time step cannot tell land from clouds (land is what is never observed); "
            "pass mask= (True over sea) or give a time axis"
        )
    ocean = observed_ever if user is None else (user & (observed_ever | (nt == 1)))
    # mask= defines the sea: its pixels without a single observation are filled afterwards,
    # from their surroundings (xgenfill.extrapolate), not taken for land
    never = None if user is None or nt == 1 else user & ~observed_ever

    with np.errstate(invalid="ignore"):
        t = tf.forward(cube)
    t = np.where(ocean[:, None], t, np.nan)
    check_outliers(t, str(da.name), cube, str(da.attrs.get("units", "")))
    mean, std = _field_stats(t)
    values = ((t - mean[:, None, None, None]) / std[:, None, None, None]).astype(np.float32)

    doy, time_index = time_axis_info(da, axes)

    prep = Prepared(values=values, ocean=ocean, transform=tf, mean=mean, std=std, axes=axes,
                    source=da, flips=flips, doy=doy, time_index=time_index,
                    periodic_x=is_periodic_longitude(da, axes), extra_shape=extra_shape)
    prep.values = np.ascontiguousarray(prep.to_canonical(prep.values))
    prep.ocean = np.ascontiguousarray(prep.to_canonical(prep.ocean))
    if never is not None and never.any():
        prep.never = np.ascontiguousarray(prep.to_canonical(never))
    if not prep.gaps.any():
        warn(f"{da.name!r} has no missing pixels over the ocean: nothing to fill")
    return prep
