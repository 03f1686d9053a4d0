"""Turn model output back into an xarray object that honours the output contract.

Same dims, coords, dtype and attributes as the input, observed pixels bit-identical, land never
filled, a ``history`` line, and in the Dataset form a CF status flag and an uncertainty linked
through ``ancillary_variables``.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import xarray as xr

from ._version import __version__
from .models.base import Fill
from .prepare import Prepared
from .transforms import Transform

__all__ = ["assemble", "dataset_form", "status_codes", "FLAG_VALUES", "FLAG_MEANINGS",
           "history_line"]

FLAG_VALUES = np.array([0, 1, 2, 3], dtype=np.int8)
FLAG_MEANINGS = "observed filled land_or_masked not_filled"
OBSERVED, FILLED, LAND, NOT_FILLED = (int(v) for v in FLAG_VALUES)


def history_line(call: str, weights: str | None) -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{now}: {call} [xgenfill {__version__}; weights {weights or 'none'}]"


def status_codes(ocean, gap, filled):
    """The CF status of every pixel from the ocean mask, the gaps and where the model gave a
    value; numpy or dask arrays alike (``np.where`` dispatches), broadcasting as they do."""
    inner = np.where(gap, np.where(filled, FILLED, NOT_FILLED), OBSERVED)
    return np.where(ocean, inner, LAND).astype(np.int8)


def _prepend_history(attrs: dict, line: str) -> dict:
    attrs = dict(attrs)
    old = attrs.get("history")
    attrs["history"] = line if not old else f"{line}\n{old}"
    return attrs


def _to_source_layout(prep: Prepared, arr: np.ndarray, lead: tuple[str, ...] = ()) -> np.ndarray:
    """(lead..., F, T, Y, X) canonical -> (lead..., source dims...) in the source's order."""
    arr = prep.from_canonical(arr)
    axes = prep.axes
    nlead = len(lead)
    shape = arr.shape[:nlead] + prep.extra_shape + ((arr.shape[nlead + 1],) if axes.time else ())
    shape += arr.shape[-2:]
    arr = arr.reshape(shape)
    canonical = lead + axes.canonical
    order = [canonical.index(d) for d in lead + tuple(prep.source.dims)]
    return np.transpose(arr, order)


def assemble(prep: Prepared, fills: list[Fill], *, call: str, weights: str | None,
             members: bool, return_dataset: bool) -> xr.DataArray | xr.Dataset:
    """Build the user-facing result.

    Parameters
    ----------
    fills
        One :class:`Fill` per prepared field, in normalised canonical units.
    members
        Keep every ensemble member along a ``sample`` dimension (DataArray form); otherwise
        the point estimate is returned: the model's own (:attr:`Fill.mean`) or the members'
        mean in transformed space.
    """
    src = prep.source
    name = src.name if src.name is not None else "data"
    samples = np.stack([f.samples for f in fills], axis=1)  # (K, F, T, Y, X) normalised
    gaps = prep.gaps[None]
    samples = np.where(gaps, samples, np.nan)  # only gap pixels ever take model values
    own = any(f.mean is not None for f in fills)
    # the point estimate (a model's own, else the members' mean in transformed space)
    best = np.stack([f.best() for f in fills]) if own else None

    transformed = prep.to_transformed(samples, field_axis=1)
    k = samples.shape[0]
    if k > 1:
        spread = np.std(transformed, axis=0, ddof=1)  # NaN where not filled
    else:
        spread = np.stack([(f.std * s) if f.std is not None else np.full(f.samples.shape[1:],
                           np.nan, np.float32) for f, s in zip(fills, prep.std)])
    if own:
        mean_t = prep.to_transformed(np.where(gaps[0], best, np.nan), field_axis=0)
    else:
        mean_t = transformed.mean(axis=0) if k > 1 else transformed[0]

    src_vals = np.asarray(src.values)
    ok = np.isfinite(samples).all(axis=0) & np.isfinite(mean_t)
    status = status_codes(prep.ocean[:, None], prep.gaps, ok)
    status_src = _to_source_layout(prep, status)
    fill_here = status_src == FILLED

    def finish(values_t: np.ndarray, lead: tuple[str, ...] = ()) -> np.ndarray:
        phys = prep.transform.inverse(_to_source_layout(prep, values_t, lead))
        out = np.broadcast_to(src_vals, phys.shape).copy()
        mask = np.broadcast_to(fill_here, phys.shape)
        out[mask] = phys[mask].astype(src.dtype)
        return out

    attrs = _prepend_history(src.attrs, call_line := history_line(call, weights))
    if members and k > 1:
        data = finish(transformed, ("sample",))
        result = xr.DataArray(data, dims=("sample",) + src.dims, coords=src.coords,
                              attrs=attrs, name=name)
        result = result.assign_coords(sample=np.arange(k))
    else:
        result = src.copy(data=finish(mean_t[None], ("sample",))[0])
        result.attrs = attrs
    result.encoding = dict(src.encoding)
    if not return_dataset:
        return result

    return dataset_form(result, status_src, _to_source_layout(prep, spread), src=src,
                        transform=prep.transform, history=call_line,
                        comment=("ensemble spread of the generated members" if k > 1 else
                                 "model error estimate (e.g. DINEOF cross-validation RMSE)"))


def dataset_form(result: xr.DataArray, status, spread, *, src: xr.DataArray,
                 transform: Transform, history: str, comment: str) -> xr.Dataset:
    """The Dataset form: ``<var>``, its CF status flag and its uncertainty, linked through
    ``ancillary_variables``. ``status`` and ``spread`` are numpy or dask arrays in the source
    layout; the spread is kept at filled pixels only (0 where observed, NaN elsewhere)."""
    name = str(result.name)
    flag_name, unc_name = f"{name}_filled_flag", f"{name}_uncertainty"
    result.attrs["ancillary_variables"] = f"{flag_name} {unc_name}"
    std_name = src.attrs.get("standard_name")
    flag = xr.DataArray(status, dims=src.dims, coords=src.coords, name=flag_name, attrs={
        "long_name": f"gap-filling status of {name}",
        "standard_name": f"{std_name} status_flag" if std_name else "status_flag",
        "flag_values": FLAG_VALUES, "flag_meanings": FLAG_MEANINGS,
    })
    spread = xr.DataArray(spread, dims=src.dims, coords=src.coords)
    unc = xr.where(flag == FILLED, spread, xr.where(flag == OBSERVED, 0.0, np.nan))
    label = transform.label
    desc = f"{label}({name})" if label else name
    uncertainty = unc.astype(np.float32).rename(unc_name)
    uncertainty.attrs = {
        "long_name": f"standard deviation of {desc} at filled pixels (0 where observed)",
        "units": "1" if label else src.attrs.get("units", "1"), "transform": transform.name,
        "comment": comment,
    }
    ds = xr.Dataset({name: result, flag_name: flag, unc_name: uncertainty})
    ds.attrs = {"history": history, "xgenfill_version": __version__}
    return ds
