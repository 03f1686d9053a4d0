"""The ``.genfill`` accessor: thin forwarders to the public functions in :mod:`xgenfill.api`."""

from __future__ import annotations

from typing import Any

import xarray as xr

from . import api
from .fractions import inpaint_fractions

__all__ = ["GenfillDataArrayAccessor", "GenfillDatasetAccessor"]


@xr.register_dataarray_accessor("genfill")
class GenfillDataArrayAccessor:
    """``da.genfill.inpaint(...)`` is ``xgenfill.inpaint(da, ...)``."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def inpaint(self, model: Any = "diffusion", **kwargs: Any) -> xr.DataArray | xr.Dataset:
        return api.inpaint(self._obj, model=model, **kwargs)

    inpaint.__doc__ = api.inpaint.__doc__

    def validate(self, models: Any = ("dineof",), **kwargs: Any) -> xr.Dataset:
        from .validate import validate

        return validate(self._obj, models=models, **kwargs)

    validate.__doc__ = "Same as :func:`xgenfill.validate` on this DataArray."

    def fit(self, model: Any = "diffusion", **kwargs: Any):
        return api.train(self._obj, model=model, **kwargs)

    fit.__doc__ = api.train.__doc__


@xr.register_dataset_accessor("genfill")
class GenfillDatasetAccessor:
    """``ds.genfill.inpaint(variables=...)`` is ``xgenfill.inpaint_dataset(ds, ...)``."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def inpaint(self, variables: list[str] | str | None = None, model: Any = "diffusion",
                **kwargs: Any) -> xr.Dataset:
        return api.inpaint_dataset(self._obj, variables=variables, model=model, **kwargs)

    inpaint.__doc__ = api.inpaint_dataset.__doc__

    def inpaint_fractions(self, variables: list[str], model: Any = "diffusion",
                          **kwargs: Any) -> xr.Dataset:
        return inpaint_fractions(self._obj, variables, model=model, **kwargs)

    inpaint_fractions.__doc__ = "Same as :func:`xgenfill.inpaint_fractions` on this Dataset."
