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
    """Input xgenfill cannot process, with a one-line reason."""


class WeightsError(GenfillError):
    """Model weights are missing, corrupted or do not match their registered hash."""


class OfflineError(GenfillError):
    """A download was needed but the network is disabled or unreachable."""


class GenfillWarning(UserWarning):
    """Something the user should know about, that does not stop the computation."""


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
