"""Gap-filling models behind one interface (:class:`~xgenfill.models.base.Filler`).

This subpackage is also callable, so that ``xgenfill.models()``, the call the model zoo has
always had, keeps working beside ``import xgenfill.models.neural``: it is
:func:`xgenfill.list_models`.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    # A package cannot also be a function under the same name; a callable module is both.
    def __call__(self) -> list[dict[str, Any]]:
        from ..zoo import list_models

        return list_models()


sys.modules[__name__].__class__ = _CallableModule
