"""Fills far outside the data's own range are not fills.

A network applied to data unlike its training data can return values orders of magnitude
beyond anything observed: the pretrained VAE gave up to 1e38 mg m-3 of chlorophyll (and the
diffusion model 1e6) in the overpasses of the OLCI North Sea cube (250 m, turbid coastal water)
that are 96-99 % missing. No model is trusted there: a pixel where any member leaves the
observed range widened by ``MARGIN`` robust standard deviations (in transformed units) is left
unfilled (status ``not_filled``) and the caller is warned, instead of returning a number
nobody should use.

The scale is robust (from the median absolute deviation) because such data also carry retrieval
artefacts decades away from the rest, which inflate the standard deviation. The same rule runs
in the eager fill, in every chunk of a lazy fill (with the whole record's range, so the result
does not depend on the chunking) and in :func:`xgenfill.validate`.
"""

from __future__ import annotations

import warnings

import numpy as np

from .errors import warn
from .transforms import spaced_units

__all__ = ["MARGIN", "OUTLIER_WIDTHS", "bounds", "check_outliers", "check_physical",
           "physical_bounds", "drop_implausible",
           "lattice_step", "robust_scale"]

# robust standard deviations beyond the observed min and max: the 3-sigma rule. Fitted models'
# ensemble members on the benchmark cases go up to 4.2 beyond (2 pixels in 133,000: a diffusion
# sample's own noise); the broken extrapolations this guards against go 50 and more.
MARGIN = 3.0
# Input values that are not data (an undecoded fill value: 1e30, 9.97e36, -999 in SST; a unit
# error): beyond what the variable can physically be, or further from the bulk of the field
# than OUTLIER_WIDTHS times its 0.1-99.9 % quantile range. A single 1e30 among SST near
# 15 degC made every linear_time fill 0 and every DINEOF fill +/-1e28, silently.
OUTLIER_WIDTHS = 100.0
_PHYSICAL = {  # units -> the widest physical range of the variables that use them
    "degc": (-5.0, 50.0), "deg_c": (-5.0, 50.0), "degree_c": (-5.0, 50.0),
    "degrees_c": (-5.0, 50.0), "celsius": (-5.0, 50.0), "degree_celsius": (-5.0, 50.0),
    "degrees_celsius": (-5.0, 50.0), "°c": (-5.0, 50.0),
    "k": (268.0, 323.0), "kelvin": (268.0, 323.0),
    # concentrations: retrieval noise can go a little negative; fill values go far beyond
    "mg m-3": (-100.0, 1e5), "mg m^-3": (-100.0, 1e5), "mg/m3": (-100.0, 1e5),
    "mg m**-3": (-100.0, 1e5),
}
SAMPLE_SIZE = 1_000_000  # at most this many pixels estimate the robust scale
MAD_TO_STD = 1.4826  # median absolute deviation of a normal variable -> its standard deviation


def lattice_step(shape: tuple[int, ...]) -> int:
    """Stride of the (Y, X) lattice whose pixels (every step) estimate the robust scale of a
    (..., T, Y, X) field: at most SAMPLE_SIZE pixels per field. It depends on the shape only, so
    eager and lazy fills, whatever their chunks, read the same pixels."""
    nt, ny, nx = shape[-3:]
    step = 1
    while nt * -(-ny // step) * -(-nx // step) > SAMPLE_SIZE:
        step += 1
    return step


def robust_scale(sample: np.ndarray, axis=None) -> np.ndarray:
    """Standard deviation from the median absolute deviation of the finite values (NaN when
    there are none): a few retrieval artefacts decades away from the rest do not inflate it
    as they do the standard deviation (OLCI North Sea chl: 0.30 of it)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN fields
        med = np.nanmedian(sample, axis=axis, keepdims=True)
        return MAD_TO_STD * np.nanmedian(np.abs(sample - med), axis=axis)


ABSURD = 1e20  # no geophysical value in any common unit is this large; fill values are 1e30+


def _refuse(n: int, name: str, example: float, where: str) -> None:
    from .errors import GenfillError

    raise GenfillError(
        f"{n} value(s) of {name!r} are not plausible data (e.g. {example:g}; {where}): most "
        "likely an undecoded fill value or a unit error. Set _FillValue or missing_value on "
        "the variable (or open the file with mask_and_scale=True), or mask them as NaN")


def _physical(units: str) -> tuple[float, float] | None:
    """The physical range of ``units`` (None when unknown); temperature units match with
    spaces as with underscores ("degree Celsius" = "degree_Celsius")."""
    return _PHYSICAL.get(str(units).strip().lower(), _PHYSICAL.get(spaced_units(units)))


def check_physical(raw: np.ndarray, name: str, units: str = "") -> None:
    """Refuse values beyond the physical range of ``units`` (when known) or beyond 1e20: the
    part of :func:`check_outliers` that needs no statistic of the whole field (lazy inputs run
    it block by block at compute time)."""
    phys = _physical(units)
    with np.errstate(invalid="ignore"):
        far = np.abs(raw) > ABSURD
        if phys is not None:
            far |= (raw < phys[0]) | (raw > phys[1])
    n = int(far.sum())
    if n:
        where = f"outside {phys[0]:g}..{phys[1]:g} {units}" if phys is not None else \
            f"beyond {ABSURD:g}"
        _refuse(n, name, float(raw[far][0]), where)


def check_outliers(t: np.ndarray, name: str, raw: np.ndarray, units: str = "") -> None:
    """Refuse input values that are not data before they ruin every statistic the models are
    normalised by: outside the physical range of the variable's ``units`` (when known), or
    further from the bulk of the field than ``OUTLIER_WIDTHS`` times its 0.1-99.9 % quantile
    range (``t``: transformed (F, T, Y, X); ``raw``: the same in physical units)."""
    check_physical(raw, name, units)
    step = lattice_step(t.shape)
    for f in range(t.shape[0]):
        sample = t[f][..., ::step, ::step]
        sample = sample[np.isfinite(sample)]
        if sample.size < 10:
            continue
        lo, hi = np.quantile(sample, [0.001, 0.999])
        width = hi - lo
        if width <= 0:
            continue
        with np.errstate(invalid="ignore"):
            far = (t[f] < lo - OUTLIER_WIDTHS * width) | (t[f] > hi + OUTLIER_WIDTHS * width)
        n = int(far.sum())
        if n:
            _refuse(n, name, float(raw[f][far][0]),
                    f"over {OUTLIER_WIDTHS:g} times the field's range away from the rest")


def bounds(lowest, highest, scale, fallback):
    """The plausible interval of a field whose observed values span [lowest, highest], with
    robust scale ``scale`` (``fallback``, its standard deviation, where that is 0 or NaN: a
    field of mostly equal values); numpy or dask, any consistent units."""
    ok = (scale > 0) & np.isfinite(scale)
    scale = np.where(ok, scale, fallback)
    return lowest - MARGIN * scale, highest + MARGIN * scale


def physical_bounds(units: str, transform) -> tuple[float, float]:
    """The physical range of a variable in ``units``, in ``transform``'s units (-inf, inf when
    the units say nothing): a fill outside it is not plausible, whatever the data."""
    phys = _physical(units)
    if phys is None:
        return -np.inf, np.inf
    with np.errstate(invalid="ignore", divide="ignore"):
        lo, hi = (float(transform.forward(np.float64(b))) for b in phys)
    return (lo if np.isfinite(lo) else -np.inf), (hi if np.isfinite(hi) else np.inf)


def drop_implausible(samples: np.ndarray, lo: float, hi: float, *, name: str = "the field",
                     to_physical=None, point: bool = False, counts: bool = True
                     ) -> np.ndarray:
    """``samples`` (K, ...) with NaN wherever any member is outside [lo, hi]; warns how many
    pixels that was. ``to_physical`` maps the bounds to the user's units for the message.

    With ``point`` the last entry is the model's own point estimate, which is the value: a
    pixel is refused where it is outside, and a member outside only loses that member (the
    spread is that of the others), so an ensemble never leaves more pixels empty than the
    point estimate alone. Without ``counts`` the warning names no count (lazy fills: one
    text for every chunk, which Python's warning filter then shows once, not once a chunk)."""
    with np.errstate(invalid="ignore"):
        bad = (samples < lo) | (samples > hi)
    filled = int(np.isfinite(samples[-1]).sum() if point
                 else np.isfinite(samples).all(axis=0).sum())
    if point:
        outside = bad[-1]
        samples = np.where(bad, np.nan, samples).astype(samples.dtype, copy=False)
    else:
        outside = bad.any(axis=0)
    n = int(outside.sum())
    if not n:
        return samples
    shown = (lo, hi) if to_physical is None else tuple(float(to_physical(b)) for b in (lo, hi))
    how_many = f"{n} of {filled} gap pixels" if counts else "Gap pixels"
    warn(f"{how_many} of {name} were left unfilled (status 'not_filled'): the "
         f"model's values there fell outside the observed range widened by {MARGIN:g} robust "
         f"standard deviations ({shown[0]:.3g} to {shown[1]:.3g}): it is extrapolating, e.g. "
         "on data unlike its training data or far from any observation. Check the input, fit "
         "the model on these data (xgenfill.train) or use a classical method "
         "(model='dineof')." + ("" if counts else " Count them with (flag == 3).sum()."))
    return np.where(outside[None], np.nan, samples).astype(samples.dtype, copy=False)
