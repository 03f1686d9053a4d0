"""The ``.genfill`` accessor: thin forwarders to the public functions.

Each method is the function of the same job with the object as its first argument; its
signature and docstring are the function's, less that argument, so the two cannot drift apart.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable

import xarray as xr

from . import api
from .fraction_validation import validate_fractions
from .fractions import inpaint_fractions, train_fractions
from .validation import validate

__all__ = ["GenfillDataArrayAccessor", "GenfillDatasetAccessor"]


def _without_first_parameter(doc: str, name: str) -> str:
    """``doc`` (numpydoc) without the entry of parameter ``name`` in its Parameters section."""
    lines = inspect.cleandoc(doc).splitlines()
    out, skipping = [], False
    for line in lines:
        if re.fullmatch(rf"{re.escape(name)}(\s*:.*)?", line):
            skipping = True  # the entry's name line; its description is indented below it
            continue
        if skipping and (line.startswith(" ") or not line):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out)


def _forward(func: Callable[..., Any], owner: str, name: str | None = None
             ) -> Callable[..., Any]:
    """A method ``obj.genfill.<name>(...)`` that calls ``func(obj, ...)``."""
    name = name or func.__name__
    sig = inspect.signature(func)
    first, *rest = sig.parameters.values()

    def method(self, *args: Any, **kwargs: Any) -> Any:
        return func(self._obj, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__module__ = __name__
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = sig.replace(parameters=[self_param, *rest])  # type: ignore[attr-defined]
    doc = _without_first_parameter(func.__doc__ or "", first.name)
    summary, _, body = doc.partition("\n")
    method.__doc__ = (f"{summary}\n\nThe accessor form of :func:`xgenfill.{func.__name__}` on "
                      f"this {owner}: ``obj.genfill.{method.__name__}(...)`` is "
                      f"``xgenfill.{func.__name__}(obj, ...)``.\n{body.rstrip()}\n")
    return method


@xr.register_dataarray_accessor("genfill")
class GenfillDataArrayAccessor:
    """Gap filling on a DataArray: ``da.genfill.inpaint()``, ``.validate()``, ``.fit()``.

    Registered as ``genfill`` on :class:`xarray.DataArray` by ``import xgenfill``.

    Parameters
    ----------
    obj : xarray.DataArray
        The gridded field the methods work on.

    See Also
    --------
    xgenfill.inpaint : The function form of ``inpaint``.
    GenfillDatasetAccessor : The accessor on a Dataset.

    Examples
    --------
    >>> import xgenfill
    >>> chl = xgenfill.open_sample("oahu").chlor_a
    >>> filled = chl.genfill.inpaint(model="linear_time")
    >>> int(filled.isnull().sum()) < int(chl.isnull().sum())
    True
    """

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    inpaint = _forward(api.inpaint, "DataArray")
    validate = _forward(validate, "DataArray")
    fit = _forward(api.train, "DataArray", "fit")


@xr.register_dataset_accessor("genfill")
class GenfillDatasetAccessor:
    """Gap filling on a Dataset: ``ds.genfill.inpaint()`` and the fraction methods.

    ``.inpaint_fractions()``, ``.fit_fractions()`` and ``.validate_fractions()`` fill, train
    and score fractions that sum to 1 (size classes), with covariates.

    Registered as ``genfill`` on :class:`xarray.Dataset` by ``import xgenfill``.

    Parameters
    ----------
    obj : xarray.Dataset
        The Dataset whose variables the methods fill.

    See Also
    --------
    xgenfill.inpaint_dataset : The function form of ``inpaint``.
    xgenfill.inpaint_fractions : The function form of ``inpaint_fractions``.
    xgenfill.train_fractions : The function form of ``fit_fractions``.
    xgenfill.validate_fractions : The function form of ``validate_fractions``.

    Examples
    --------
    >>> import xgenfill
    >>> ds = xgenfill.open_sample("oahu")
    >>> out = ds.genfill.inpaint(["chlor_a"], model="linear_time")
    >>> sorted(out.data_vars)
    ['chlor_a', 'chlor_a_filled_flag', 'chlor_a_uncertainty']
    """

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    inpaint = _forward(api.inpaint_dataset, "Dataset", "inpaint")
    inpaint_fractions = _forward(inpaint_fractions, "Dataset")
    fit_fractions = _forward(train_fractions, "Dataset", "fit_fractions")
    validate_fractions = _forward(validate_fractions, "Dataset")
