"""Fills far outside the data's own range are not fills.

A network fed inputs unlike its training data (retrieval artefacts four decades below the
rest of the field, a region far from any observation) can return values that are orders of
magnitude beyond anything observed: 1e38 mg m-3 of chlorophyll from the pretrained VAE on
the OLCI North Sea cube. No model is trusted there: a pixel where any member leaves the
observed range widened by ``MARGIN`` standard deviations (in transformed units) is left
unfilled (status ``not_filled``) and the caller is warned, instead of returning a number
nobody should use.

The same rule runs in the eager fill, in every chunk of a lazy fill (with the whole record's
range, so the result does not depend on the chunking) and in :func:`xgenfill.validate`.
"""

from __future__ import annotations

import numpy as np

from .errors import warn

__all__ = ["MARGIN", "bounds", "drop_implausible"]

# standard deviations of the observed values beyond their min and max: the 3-sigma rule. Fitted
# models' ensemble members on the benchmark cases go up to 3.6 beyond (a few pixels in 1e5: a
# diffusion sample's own noise); the broken extrapolations this guards against go 50 and more.
MARGIN = 3.0


def bounds(lowest: float, highest: float, std: float = 1.0) -> tuple[float, float]:
    """The plausible interval of a field whose observed values span [lowest, highest] with
    standard deviation ``std`` (any consistent units: normalised, std = 1, or transformed)."""
    return lowest - MARGIN * std, highest + MARGIN * std


def drop_implausible(samples: np.ndarray, lo: float, hi: float, *, name: str = "the field",
                     to_physical=None) -> np.ndarray:
    """``samples`` (K, ...) with NaN wherever any member is outside [lo, hi]; warns how many
    pixels that was. ``to_physical`` maps the bounds to the user's units for the message."""
    with np.errstate(invalid="ignore"):
        outside = ((samples < lo) | (samples > hi)).any(axis=0)
    n = int(outside.sum())
    if not n:
        return samples
    filled = int(np.isfinite(samples).all(axis=0).sum())
    shown = (lo, hi) if to_physical is None else tuple(float(to_physical(b)) for b in (lo, hi))
    warn(f"{n} of {filled} gap pixels of {name} were left unfilled (status 'not_filled'): the "
         f"model's values there fell outside the observed range widened by {MARGIN:g} standard "
         f"deviations ({shown[0]:.3g} to {shown[1]:.3g}). The model is extrapolating, e.g. from "
         "outliers in the input or far from any observation: check the input, fit the model "
         "on these data (xgenfill.train) or use a classical method (model='dineof').")
    return np.where(outside[None], np.nan, samples).astype(samples.dtype, copy=False)
