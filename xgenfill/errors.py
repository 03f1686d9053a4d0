"""Exceptions and warnings raised by xgenfill.

Every error a user can trigger with bad input is a :class:`GenfillError` (a ``ValueError``),
so callers can catch one type; messages say what was wrong and how to fix it.
"""

from __future__ import annotations

import inspect
import os
import warnings

__all__ = ["GenfillError", "WeightsError", "OfflineError", "GenfillWarning", "warn"]


class GenfillError(ValueError):
    """Input xgenfill cannot process, with a one-line reason and what to do.

    Every error a user can trigger with bad input is one (a ``ValueError``), so a script can
    catch one type; :class:`WeightsError` and :class:`OfflineError` are kinds of it.

    See Also
    --------
    GenfillWarning : Something unusual that does not stop the computation.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> import xgenfill
    >>> da = xr.DataArray(np.full((3, 8, 8), np.nan), dims=("time", "lat", "lon"))
    >>> try:
    ...     xgenfill.inpaint(da, model="linear_time")
    ... except xgenfill.GenfillError as err:
    ...     print("refused:", type(err).__name__)
    refused: GenfillError
    """


class WeightsError(GenfillError):
    """Model weights are missing, corrupted or do not match their registered hash.

    Raised instead of loading weights that could give silently wrong fills; delete the
    cached file (``xgenfill models cache-dir``) and download it again.

    See Also
    --------
    OfflineError : The weights could not be downloaded.

    Examples
    --------
    >>> import xgenfill
    >>> try:
    ...     xgenfill.inpaint(xgenfill.open_sample("oahu").chlor_a, model="no/such/weights")
    ... except xgenfill.GenfillError as err:
    ...     print(type(err).__name__)
    GenfillError
    >>> issubclass(xgenfill.WeightsError, xgenfill.GenfillError)
    True
    """


class OfflineError(GenfillError):
    """A download was needed but the network is disabled or unreachable.

    ``XGENFILL_OFFLINE=1`` forbids downloads; ``xgenfill models download`` on a machine with
    network (with ``XGENFILL_CACHE_DIR`` on a shared folder) fills the cache beforehand.

    See Also
    --------
    WeightsError : The weights are there but corrupted.

    Examples
    --------
    >>> import xgenfill
    >>> issubclass(xgenfill.OfflineError, xgenfill.GenfillError)
    True
    """


class GenfillWarning(UserWarning):
    """Something the user should know about, that does not stop the computation.

    For example pixels left unfilled because every model value there was implausible. The
    result is still correct; the warning says what was done and how to change it.

    See Also
    --------
    GenfillError : Input that cannot be processed.

    Examples
    --------
    >>> import warnings
    >>> import xgenfill
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", xgenfill.GenfillWarning)  # turn them into errors
    ...     issubclass(xgenfill.GenfillWarning, UserWarning)
    True
    """


def _stacklevel_outside_package() -> int:
    # Point the warning at the user's line, not at xgenfill internals (as xarray/cf-xarray do).
    import xgenfill

    pkg_dir = os.path.dirname(xgenfill.__file__)
    # level 1 is the caller of warnings.warn, i.e. warn() below, one frame up from here
    level = 1
    frame = inspect.currentframe().f_back
    while frame is not None:
        if not frame.f_code.co_filename.startswith(pkg_dir):
            return level
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: type[Warning] = GenfillWarning) -> None:
    """Emit a warning at the first stack frame outside xgenfill."""
    warnings.warn(message, category, stacklevel=_stacklevel_outside_package())
