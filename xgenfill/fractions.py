"""Fill fractions that must sum to 1 (phytoplankton size classes: pico, nano, micro).

Filled one by one, even in logit space, the fractions of a pixel do not sum to 1. Here they are
filled together in centred log-ratio space (Aitchison's clr: ``log f_i`` minus the mean of the
``log f_j`` of the pixel), where the K fields are unconstrained, and brought back with a softmax,
which sums to 1 by construction. Observed values are never changed: where only some fractions
of a pixel are observed, the missing ones share what the observed ones leave (``1 - sum``) in
the proportions of the softmax. Every step is an xarray operation, so dask inputs stay lazy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import xarray as xr

from .api import check_n_samples, check_seed, inpaint
from .axes import find_axes
from .errors import GenfillError, warn
from .models.base import Filler
from .post import (MEMBER, dataset_form, history_line, merge_into, range_attrs, status_codes,
                   with_members)
from .prepare import user_mask_array
from .transforms import LOGIT_EPS, TRANSFORMS

__all__ = ["inpaint_fractions", "train_fractions", "to_log_ratios", "from_log_ratios",
           "covariate_trend"]

# An observed partial sum above 1 by more than float32 rounding leaves nothing to share out.
SUM_TOLERANCE = 1e-5
# Fully observed pixels must sum to 1 within this (retrievals round their fractions); a
# composition whose typical pixel misses it is refused, a few pixels that do are reported.
CLOSURE_TOLERANCE = 0.01
_COMPONENT = "component"


def _fractions(ds: xr.Dataset, variables: list[str] | tuple[str, ...]) -> list[xr.DataArray]:
    """The variables to fill together, checked (dask blocks when they are computed)."""
    if isinstance(variables, str) or len(variables) < 2:
        raise GenfillError(f"variables= needs two or more fractions that sum to 1, got "
                           f"{variables!r}")
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise GenfillError(f"variables {missing} not in the dataset (has {list(ds.data_vars)})")
    fracs = [ds[v] for v in variables]
    for f in fracs:
        if f.dims != fracs[0].dims or f.shape != fracs[0].shape:
            raise GenfillError(f"fractions must share their dimensions and shape: {f.name!r} "
                               f"has {dict(f.sizes)}, {fracs[0].name!r} {dict(fracs[0].sizes)}")
        if f.dtype.kind != "f":
            raise GenfillError(f"{f.name!r} has dtype {f.dtype}; fractions must be floating "
                               "point with NaN gaps (decode CF-encoded integers first)")
    # values at hand are checked now; dask blocks when they are computed
    return [f.copy(data=f.data.map_blocks(_checked, var=f.name, dtype=f.dtype))
            if f.chunks is not None else _checked(f, f.name) for f in fracs]


def _refuse_open_composition(total: np.ndarray, variables: list[str], where: str) -> np.ndarray:
    """Miss of 1 of the complete pixels of ``total`` (the sum of the fractions); refuses when
    their median misses by more than ``CLOSURE_TOLERANCE`` (not one composition)."""
    complete = np.isfinite(total)
    miss = np.abs(total[complete] - 1.0)
    if miss.size and np.median(miss) > CLOSURE_TOLERANCE:
        raise GenfillError(
            f"{variables} do not sum to 1 where all are observed (median sum "
            f"{np.median(total[complete]):.3g} {where} {int(complete.sum())} pixels; tolerance "
            f"{CLOSURE_TOLERANCE}): they are not the fractions of one composition. Pass all "
            "of its fractions, or divide them by their sum")
    return miss


def _closure_block(block: np.ndarray, total: np.ndarray, variables: list[str]) -> np.ndarray:
    _refuse_open_composition(total, variables, "in a chunk of")
    return block


def _check_closure(fracs: list[xr.DataArray], variables: list[str]) -> None:
    """Refuse fractions that are not one composition (their complete pixels do not sum to 1);
    warn about the pixels that miss it by more than ``CLOSURE_TOLERANCE``."""
    total = sum(np.asarray(f.values, np.float64) for f in fracs)
    miss = _refuse_open_composition(total, variables, "over")
    n = int((miss > CLOSURE_TOLERANCE).sum())
    if n:
        warn(f"{n} of {miss.size} fully observed pixels of {variables} do not sum to "
             f"1 within {CLOSURE_TOLERANCE} (worst {float(miss.max()):.3g}); they are kept as "
             "they are, and the fills of their neighbours sum to 1")


def _checked(values, var: str):
    """``values`` (an array or a dask block), after checking that they are fractions."""
    arr = np.asarray(values)
    if np.isinf(arr).any():
        raise GenfillError(f"{var!r} contains inf; mark gaps with NaN")
    finite = arr[np.isfinite(arr)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise GenfillError(f"{var!r} has values outside [0, 1] ({finite.min():g} .. "
                           f"{finite.max():g}); these are not fractions")
    return values


def to_log_ratios(ds: xr.Dataset, variables: list[str] | tuple[str, ...]) -> xr.Dataset:
    """Centred log-ratios of fractions, NaN wherever any fraction of the pixel is missing.

    ``clr_i = log(f_i) - mean_j log(f_j)``, with fractions clipped to ``[1e-4, 1]`` first
    (zeros have no logarithm). Train a model for :func:`inpaint_fractions` on these fields
    (``xgenfill.train(to_log_ratios(ds, names)[name], transform="identity")``).

    Parameters
    ----------
    ds : xarray.Dataset
        Dataset holding the fractions (floating point in [0, 1], NaN gaps).
    variables : list of str
        Names of the two or more fractions of one composition.

    Returns
    -------
    xarray.Dataset
        One centred log-ratio field per fraction, under the fraction's name (float64,
        ``units = "1"``); lazy for dask inputs.

    Raises
    ------
    GenfillError
        If fewer than two variables are named, one is missing, or values lie outside [0, 1].

    See Also
    --------
    inpaint_fractions : Fill the fractions together in this space.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> import xgenfill
    >>> ds = xr.Dataset({"pico": ("x", [0.2, 0.5]), "nano": ("x", [0.3, np.nan]),
    ...                  "micro": ("x", [0.5, 0.2])})
    >>> clr = xgenfill.to_log_ratios(ds, ["pico", "nano", "micro"])
    >>> float(abs(clr.pico + clr.nano + clr.micro)[0]) < 1e-12, bool(clr.pico[1].isnull())
    (True, True)
    """
    return _log_ratios(_fractions(ds, variables))


def _log_ratios(fracs: list[xr.DataArray]) -> xr.Dataset:
    logs = [np.log(f.astype(np.float64).clip(LOGIT_EPS, 1.0)) for f in fracs]
    centre = sum(logs) / len(logs)  # NaN where any fraction is missing
    out = {}
    for f, log in zip(fracs, logs):
        name = str(f.name)
        clr = log - centre
        clr.attrs = {"long_name": f"centred log-ratio of {name}", "units": "1"}
        out[name] = clr
    return xr.Dataset(out)


def from_log_ratios(clr: list[xr.DataArray]) -> xr.DataArray:
    """Softmax over the components (a new ``component`` dimension); sums to 1 by
    construction, NaN wherever any component is NaN."""
    stacked = xr.concat([c.astype(np.float64) for c in clr], dim=_COMPONENT,
                        coords="minimal", compat="override")
    top = stacked.max(_COMPONENT, skipna=False)  # for a softmax that cannot overflow
    e = np.exp(stacked - top)
    return e / e.sum(_COMPONENT, skipna=False)


def close(fracs: list[xr.DataArray], shares: xr.DataArray) -> list[xr.DataArray]:
    """Observed fractions as they are; missing ones share ``1 - sum(observed)`` in proportion
    to ``shares`` (softmax output). NaN where nothing is left to share or no share exists."""
    observed = [f.notnull() for f in fracs]
    parts = [shares.isel({_COMPONENT: i}, drop=True) for i in range(len(fracs))]
    left = 1.0 - sum(f.fillna(0).astype(np.float64) for f in fracs)
    left = xr.where(left >= -SUM_TOLERANCE, left.clip(min=0.0), np.nan)
    missing_share = sum(xr.where(o, 0.0, p) for o, p in zip(observed, parts))
    return [xr.where(o, f, left * p / missing_share) for f, o, p in zip(fracs, observed, parts)]


def _clr_filler(spec: Any, **model_kwargs: Any) -> Any:
    """A model for centred log-ratio fields: classical, or trained on such fields; never a
    pretrained chlorophyll or SST model (log-ratios are neither)."""
    from .models.registry import get_filler

    if isinstance(spec, str) and spec in ("diffusion", "vae"):
        filler = None
    else:
        filler = get_filler(spec, **model_kwargs)
    meta = getattr(filler, "meta", None) or {}
    if filler is None or meta.get("trained_on") == "pretrained":
        name = spec if filler is None else filler.name
        raise GenfillError(
            f"model {name!r} is a pretrained model of "
            "another variable; no pretrained model knows the centred log-ratios of fractions. "
            "Use a classical model (model='anomaly', the default, or 'dineof'), or train one on "
            "your fractions: xgenfill.train(xgenfill.to_log_ratios(ds, names)[name], "
            "model='vae', transform='identity')")
    if meta.get("transform") not in (None, "identity"):
        raise GenfillError(f"model {filler.name!r} was trained in {meta['transform']!r} "
                           "space; fractions are filled as centred log-ratios ('identity'): "
                           "train it on to_log_ratios() fields")
    return filler


def inpaint_fractions(ds: xr.Dataset, variables: list[str] | tuple[str, ...],
                      model: "str | Path | Any | Mapping[str, Any]" = "anomaly", *,
                      n_samples: int = 1, seed: int | None = 0,
                      mask: xr.DataArray | np.ndarray | None = None,
                      dims: dict[str, str] | None = None, progress: bool = False,
                      covariates: "list[str | xr.DataArray] | str | xr.DataArray | None" = None,
                      keep_members: bool = False, **model_kwargs: Any) -> xr.Dataset:
    """Fill fractions that sum to 1 (e.g. pico-, nano- and microplankton) together.

    Each fraction's gaps are filled so that the fractions of every pixel with a filled value
    sum to 1 (every ensemble member too); observed values are kept bit for bit. The fills are
    made in centred log-ratio space and closed with a softmax; where only some fractions of a
    pixel are observed, the missing ones share what the observed ones leave.

    Parameters
    ----------
    ds : xarray.Dataset
        Dataset holding the fractions (floating point in [0, 1], NaN gaps), with the same
        dimensions; dask-backed variables give a lazy result.
    variables : list of str
        Names of the two or more fractions of one composition.
    model : str, path, model object or dict, default "anomaly"
        A classical model (``"anomaly"``, ``"dineof"``, ``"linear_time"``...) or a model
        trained on :func:`to_log_ratios` fields of your data (the generative choice), used
        for every centred log-ratio field, or a mapping ``{variable: model}``. No pretrained
        model knows size classes, so ``"diffusion"``, ``"vae"`` and the registered
        pretrained models are refused.
    n_samples : int, default 1
        Ensemble size, as in :func:`xgenfill.inpaint`; every member sums to 1.
    seed : int or None, default 0
        Seed of the generative models; component ``i`` is sampled with ``seed + i``.
    mask : xarray.DataArray, numpy.ndarray or "auto", optional
        Boolean land/sea mask (True = sea) or ``"auto"``, as in :func:`xgenfill.inpaint`.
    dims : dict, optional
        Explicit axis names, as in :func:`xgenfill.inpaint`.
    progress : bool, default False
        Show a progress bar during eager neural fills.
    covariates : str, xarray.DataArray or list of them, optional
        Variables the fractions depend on, with gaps of their own (chlorophyll, SST), by
        name in ``ds`` or as DataArrays on the same grid. Each log-ratio field is split into
        its regression on the covariates (:func:`covariate_trend`: per date, quadratic in
        each standardised covariate) and a residual; the model fills the residual, and
        models trained with covariates (:func:`train_fractions`, the same ones in the same
        order) also read them. Works with every model: with ``"anomaly"`` it is the
        classical regression plus interpolated residuals. Dask fractions or covariates
        stay lazy (joint models excepted).
    keep_members : bool, default False
        With ``n_samples > 1``, also return every member of every fraction as
        ``<var>_members`` (along ``member``; the members of a pixel sum to 1 member by
        member, observed values in every member).
    **model_kwargs
        Options of the chosen model(s), as in :func:`xgenfill.inpaint`.

    Returns
    -------
    xarray.Dataset
        ``ds`` with each fraction filled (dtype, attributes and coordinates kept),
        ``<var>_filled_flag`` and ``<var>_uncertainty`` (standard deviation of the closed
        members in fraction units; NaN with ``n_samples=1``), and ``<var>_members`` with
        ``keep_members``; every other variable and the global attributes of ``ds`` are
        kept, with a ``history`` line prepended.

    Raises
    ------
    GenfillError
        If fewer than two variables are named, one is missing, values lie outside [0, 1],
        no pixel has every fraction observed, a model mapping does not name exactly the
        variables, or a model is pretrained for another variable.

    See Also
    --------
    to_log_ratios : The centred log-ratio fields the models fill.
    inpaint : Fill one variable.

    Examples
    --------
    Size-class fractions from the bundled MODIS chlorophyll with the abundance-based model
    of Brewin et al. (2010), with chlorophyll's real gaps:

    >>> import numpy as np
    >>> import xarray as xr
    >>> import xgenfill
    >>> chl = xgenfill.open_sample("phytofit").chl.isel(time=slice(0, 20))
    >>> pico_nano = 1.057 * (1 - np.exp(-0.851 * chl))
    >>> pico = 0.107 * (1 - np.exp(-6.801 * chl))
    >>> ds = xr.Dataset({"pico": pico / chl, "nano": (pico_nano - pico) / chl,
    ...                  "micro": (chl - pico_nano) / chl})
    >>> out = xgenfill.inpaint_fractions(ds, ["pico", "nano", "micro"], model="linear_time")
    >>> total = out.pico + out.nano + out.micro
    >>> bool(abs(total.where(out.pico_filled_flag == 1) - 1).max() < 1e-6)
    True
    """
    check_n_samples(n_samples)
    check_seed(seed)
    variables = list(variables) if not isinstance(variables, str) else variables
    fracs = _fractions(ds, variables)
    if fracs[0].chunks is None:
        _check_closure(fracs, variables)
    else:  # every block of a composition that does not sum to 1 shows it: checked at compute
        import dask.array as dsa

        total = sum(f.astype(np.float64) for f in fracs)
        fracs[0] = fracs[0].copy(data=dsa.map_blocks(
            _closure_block, fracs[0].data, total.data, variables=variables,
            dtype=fracs[0].dtype))
    clr = _log_ratios(fracs)
    if fracs[0].chunks is None and not bool(clr[variables[0]].notnull().any()):
        raise GenfillError(f"no pixel has all of {variables} observed: nothing to learn the "
                           "composition from")
    specs = dict(model) if isinstance(model, Mapping) else {v: model for v in variables}
    if set(specs) != set(variables):
        raise GenfillError(f"model= mapping must name exactly {variables}, got {sorted(specs)}")
    built: dict[tuple, Any] = {}  # one model object per distinct spec (weights load once)
    fillers = {}
    for v in variables:
        spec = specs[v]
        key = ("name", str(spec)) if isinstance(spec, (str, Path)) else ("object", id(spec))
        if key not in built:
            built[key] = _clr_filler(spec, **model_kwargs)
        fillers[v] = built[key]
    if n_samples > 1 and not all(m.stochastic for m in fillers.values()):
        raise GenfillError("n_samples > 1 needs generative models ('diffusion', 'vae' or "
                           "trained ones) for every fraction")

    cov = _covariates(ds, covariates, variables)
    for v, f in fillers.items():
        _check_residual_model(f, v, cov)
    target, trend = _residuals(clr, cov, dims)  # lazy for dask fractions or covariates

    from .models.joint import JointModel

    joints = {id(f) for f in fillers.values() if isinstance(f, JointModel)}
    if joints:
        if len(joints) > 1 or len({id(f) for f in fillers.values()}) > 1:
            raise GenfillError("a joint model fills every fraction: pass it for all of them "
                               "(the mapping train_fractions(model='joint') returns)")
        if fracs[0].chunks is not None:
            raise GenfillError("a joint model fills loaded fractions; load them first "
                               "(ds.load())")
        fillers = _joint_fillers(next(iter(fillers.values())), target, variables, cov, mask,
                                 dims, n_samples, seed)

    def fill(v: str, i: int, k: int) -> xr.DataArray:
        # neural models read the covariates themselves; classical ones use them through the
        # regression (the trend) alone
        net = getattr(fillers[v], "network", None) or fillers[v]  # model="auto" wraps one
        neural = getattr(net, "arch", {}).get("n_covariates", 0) > 0
        out = inpaint(target[v], fillers[v], n_samples=k, mask=mask, transform="identity",
                      dims=dims, progress=progress, seed=None if seed is None else seed + i,
                      covariates=cov if neural else None)
        return out + trend[v] if trend is not None else out

    members = [fill(v, i, n_samples) for i, v in enumerate(variables)]
    if n_samples == 1:
        points = members
    else:  # the model's own point estimate (one cheap call), else the members' mean
        points = [fill(v, i, 1) if fillers[v].has_point_estimate else m.mean(MEMBER)
                  for i, (v, m) in enumerate(zip(variables, members))]
    values = close(fracs, from_log_ratios(points))
    closed = None
    if n_samples > 1:
        closed = close(fracs, from_log_ratios(members))
        spreads = [m.std(MEMBER, ddof=1) for m in closed]
        # as in inpaint: a pixel refused for any member is refused (the point was a 2nd call)
        values = [v.where(s.notnull() | ~f.isnull()) for v, s, f in zip(values, spreads, fracs)]
    else:
        spreads = [xr.full_like(f, np.nan, dtype=np.float32) for f in fracs]

    axes = find_axes(fracs[0], dims)
    n_times = fracs[0].sizes[axes.time] if axes.time else 1
    user = user_mask_array(mask, fracs[0], axes)
    if user is not None and axes.time:
        user = user.drop_vars(axes.time, errors="ignore")
    weights = ", ".join(sorted({str(f.weights_hash or "none") for f in fillers.values()}))
    names = {v: getattr(s, "name", s) if not isinstance(s, (str, Path)) else str(s)
             for v, s in specs.items()}
    cov_names = None if cov is None else [str(c.name) for c in cov]
    call = (f"xgenfill.inpaint_fractions(variables={variables!r}, model={names!r}, "
            f"n_samples={n_samples!r}, seed={seed!r}"
            + ("" if cov is None else f", covariates={cov_names!r}") + ")")
    line = history_line(call, weights)
    parts = []
    for i, (f, value, spread) in enumerate(zip(fracs, values, spreads)):
        # as in inpaint: sea is what was ever observed, and not masked; one time step cannot
        # tell land from clouds, so there the mask alone decides (inpaint demands one)
        sea = f.notnull().any(axes.time) if axes.time else f.notnull()
        if user is not None:
            sea = user if n_times == 1 else sea & user
        gap = f.isnull()
        filled = gap & sea & value.notnull()
        status = status_codes(*(a.transpose(*f.dims).data
                                for a in xr.broadcast(sea, gap, value.notnull())))
        result = f.copy(data=xr.where(filled, value, f).transpose(*f.dims).astype(f.dtype).data)
        result.attrs = range_attrs(dict(f.attrs), None if f.chunks else result.values)
        result.encoding = dict(f.encoding)
        part = dataset_form(result, status, spread.transpose(*f.dims).data, src=f,
                            transform=TRANSFORMS["identity"], history=line,
                            comment=("spread of the generated members after closure"
                                     if n_samples > 1 else "no ensemble (n_samples=1)"))
        if keep_members and closed is not None:  # observed values in every member
            kept = xr.where(filled, closed[i], f).transpose(MEMBER, *f.dims).astype(f.dtype)
            part = with_members(part, kept.data, result)
        parts.append(part)
    out = merge_into(ds, parts[:1])  # one history line for the whole composition
    for part in parts[1:]:
        out.update(part.data_vars)
    if fracs[0].chunks is None:
        observed = sum(f.notnull().astype(int) for f in fracs)
        partial = (observed > 0) & (observed < len(fracs))
        over = sum(f.fillna(0).astype(np.float64) for f in fracs) > 1 + SUM_TOLERANCE
        if int((partial & over).sum()):
            warn(f"{int((partial & over).sum())} pixels keep their missing fractions NaN: "
                 "the observed fractions already sum to more than 1, leaving nothing to share")
    return out


def _covariates(ds: xr.Dataset, covariates: Any, variables: list[str]
                ) -> list[xr.DataArray] | None:
    """The covariates as DataArrays: names are looked up in ``ds``; a fraction of the
    composition itself is refused (it is what is filled, not a condition)."""
    if covariates is None:
        return None
    if isinstance(covariates, (str, xr.DataArray)):
        covariates = [covariates]
    out = []
    for c in covariates:
        if isinstance(c, str):
            if c in variables:
                raise GenfillError(f"covariate {c!r} is one of the fractions being filled; "
                                   "covariates are other variables (chlorophyll, SST)")
            if c not in ds.variables:
                raise GenfillError(f"covariate {c!r} not in the dataset (has "
                                   f"{list(ds.data_vars)}); pass its name or a DataArray")
            c = ds[c]
        elif not isinstance(c, xr.DataArray):
            raise GenfillError(f"covariates must be variable names or DataArrays, got "
                               f"{type(c).__name__}")
        out.append(c)
    if not out:
        raise GenfillError("covariates= is empty; pass None for no covariates")
    return out


def train_fractions(ds: xr.Dataset, variables: list[str] | tuple[str, ...],
                    model: str = "diffusion", *,
                    covariates: "list[str | xr.DataArray] | str | xr.DataArray | None" = None,
                    mask: xr.DataArray | np.ndarray | None = None,
                    dims: dict[str, str] | None = None, **train_kwargs: Any
                    ) -> dict[str, Any]:
    """Train generative models of fractions that sum to 1, conditioned on covariates.

    Each fraction's centred log-ratio field (:func:`to_log_ratios`) gets a network trained
    self-supervised on its observed pixels (as :func:`xgenfill.train`: observed pixels hidden
    under the data's own clouds of other dates), conditioned on the covariates with their
    own gaps (chlorophyll explains much of the size classes: Brewin et al. 2010). The
    result fills the fractions together with :func:`inpaint_fractions`, whose closure makes
    every member and the point estimate sum to 1.

    Parameters
    ----------
    ds : xarray.Dataset
        Dataset holding the fractions (floating point in [0, 1], NaN gaps) and the named
        covariates.
    variables : list of str
        Names of the two or more fractions of one composition.
    model : {"diffusion", "vae", "joint", "joint_vae"}, default "diffusion"
        Kind of network: one per fraction (``"diffusion"``, ``"vae"``), or one network over
        every fraction together, whose members are draws of the whole composition
        (``"joint"``: diffusion, :class:`~xgenfill.models.joint.JointDiffusionFiller`;
        ``"joint_vae"``: :class:`~xgenfill.models.joint.JointVAEFiller`).
    covariates : str, xarray.DataArray or list of them, optional
        Conditioning variables (names in ``ds`` or DataArrays on the same grid), each
        standardised in its own transform (log10 for chlorophyll); :func:`inpaint_fractions`
        then needs the same ones.
    mask : xarray.DataArray, numpy.ndarray or "auto", optional
        Boolean land/sea mask (True = sea) or ``"auto"``, as in :func:`xgenfill.inpaint`.
    dims : dict, optional
        Explicit axis names, as in :func:`xgenfill.inpaint`.
    **train_kwargs
        Options of :func:`xgenfill.train` (``max_steps``, ``max_time``, ``seed``,
        ``batch_size``, ``patch``, ``widths``...); ``max_time`` is the budget of each
        fraction's network.

    Returns
    -------
    dict
        ``{fraction: model}``, the ``model=`` of :func:`inpaint_fractions` (a joint model
        is the same object under every fraction); each model records the composition and
        the covariates it was trained with (``meta``).

    Raises
    ------
    GenfillError
        For fractions :func:`inpaint_fractions` would refuse, a covariate that is missing
        or is one of the fractions, or a model that cannot be trained.

    See Also
    --------
    inpaint_fractions : Fill the fractions with the trained models.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> import xgenfill
    >>> chl = xgenfill.open_sample("oahu").chlor_a.isel(time=slice(0, 24))
    >>> pn, p = 1.057 * (1 - np.exp(-0.851 * chl)), 0.107 * (1 - np.exp(-6.801 * chl))
    >>> ds = xr.Dataset({"pico": p / chl, "nano": (pn - p) / chl, "micro": 1 - pn / chl,
    ...                  "chl": chl})
    >>> models = xgenfill.train_fractions(ds, ["pico", "nano", "micro"], covariates=["chl"],
    ...                                   max_steps=2, batch_size=2, patch=16, widths=(8, 16))
    >>> sorted(models)
    ['micro', 'nano', 'pico']
    """
    from .api import train

    variables = list(variables) if not isinstance(variables, str) else variables
    fracs = _fractions(ds, variables)
    if fracs[0].chunks is None:
        _check_closure(fracs, variables)
    clr = _log_ratios(fracs)
    cov = _covariates(ds, covariates, variables)
    lazy = fracs[0].chunks is not None
    if lazy and model in JOINT:
        raise GenfillError("a joint model trains on loaded fractions; load them "
                           "(ds.isel(...).load()) or train one model per fraction")
    # what the regression on the covariates misses; for dask fractions (streamed training)
    # its coefficients are computed first, so that a block's trend needs only that block
    clr, _trend = _residuals(clr, cov, dims, compute_coefficients=lazy)
    info = {"variables": variables, "covariates": None if cov is None
            else [str(c.name) for c in cov],
            "target": "log-ratio" if cov is None else "log-ratio minus covariate_trend"}
    if model in JOINT:
        joint = _train_joint(JOINT[model], clr, variables, cov, mask, dims, train_kwargs)
        joint.meta["fractions"] = {**info, "component": "all (joint)"}
        return {v: joint for v in variables}
    models = {}
    for v in variables:
        m = train(clr[v], model=model, mask=mask, dims=dims, transform="identity",
                  covariates=cov, **train_kwargs)
        m.meta["fractions"] = {**info, "component": v}
        models[v] = m
    return models


# model= names of train_fractions that train one network over every fraction, and its kind
JOINT = {"joint": "joint_diffusion", "joint_diffusion": "joint_diffusion",
         "joint_vae": "joint_vae"}
_FIT_KEYS = ("max_steps", "max_time", "seed", "progress", "batch_size", "patch", "lr",
             "val_fraction", "augment", "val_split")


def _joint_cubes(target: xr.Dataset, variables: list[str], cov, mask, dims
                 ) -> tuple[list, list[list]]:
    """The prepared log-ratio fields and, per independent field, the K cubes of one
    composition (the covariates ride with the first)."""
    from .api import prepare_covariates
    from .models.base import Cube
    from .prepare import prepare

    preps = [prepare(target[v], mask=mask, transform="identity", dims=dims) for v in variables]
    covs = prepare_covariates(cov, preps[0])
    p0 = preps[0]
    groups = [[Cube(values=p.values[f], ocean=p.ocean[f], doy=p0.doy, time_index=p0.time_index,
                    periodic_x=p0.periodic_x,
                    covariates=None if covs is None or k else covs[f])
               for k, p in enumerate(preps)] for f in range(p0.values.shape[0])]
    return preps, groups


def _train_joint(kind: str, target: xr.Dataset, variables: list[str], cov, mask, dims,
                 train_kwargs: dict[str, Any]):
    """One network of ``kind`` over the K log-ratio fields (models.joint), from scratch,
    residual on each field's anomaly fill unless asked otherwise."""
    from .models.io import model_classes

    kw = dict(train_kwargs)
    kw.pop("init", None)
    fit = {k: kw.pop(k) for k in _FIT_KEYS if k in kw}
    fit.setdefault("max_steps", 2000)
    fit.setdefault("progress", False)
    device = kw.pop("device", "auto")
    kw.setdefault("residual", True)
    joint = model_classes()[kind](n_fields=len(variables), device=device,
                                  n_covariates=0 if cov is None else len(cov), **kw)
    preps, groups = _joint_cubes(target, variables, cov, mask, dims)
    joint.fit(groups, **fit)
    joint.meta["training"]["init"] = "scratch (joint, residual on the anomaly fill)" \
        if joint.arch.get("residual") else "scratch (joint)"
    joint.meta.update({
        "trained_on": "user", "variable": ", ".join(variables), "units": "1",
        "transform": "identity",
        "normalisation": {"mean": [p.mean.tolist() for p in preps],
                          "std": [p.std.tolist() for p in preps]},
        "training_data": {"shape": list(preps[0].values.shape),
                          "observed_fraction": float(preps[0].observed.mean())}})
    return joint


class _Precomputed(Filler):
    """The fills of one field of a joint model, handed to :func:`xgenfill.inpaint` as a
    model (which prepares, checks and assembles them as for any model): it returns, for the
    cube it is given, the fill made for the cube with the same values."""

    stochastic = True

    @property
    def has_point_estimate(self) -> bool:
        return self._point

    def __init__(self, joint, values: list[np.ndarray], fills: list) -> None:
        self.name, self.weights_hash = joint.name, joint.weights_hash
        self._point = bool(joint.has_point_estimate)
        self.meta = {"trained_on": "user", "transform": "identity"}
        self._values, self._fills = values, fills

    def fill(self, cube, n_samples: int = 1, seed: int | None = 0):
        from .models.base import Fill

        for v, f in zip(self._values, self._fills):
            if v.shape == cube.values.shape and np.array_equal(v, cube.values, equal_nan=True):
                if n_samples == 1 and f.mean is not None:  # the point estimate
                    return Fill(samples=f.mean[None], info=f.info)
                if f.samples.shape[0] != n_samples:
                    raise GenfillError("internal: joint fill drawn with another n_samples")
                return f
        raise GenfillError("internal: no joint fill for this field")


def _joint_fillers(joint, target: xr.Dataset, variables: list[str], cov, mask, dims,
                   n_samples: int, seed: int | None) -> dict[str, Any]:
    """Fill the K fields together once; one precomputed model per field."""
    _preps, groups = _joint_cubes(target, variables, cov, mask, dims)
    fills = [joint.fill_joint(g, n_samples=n_samples, seed=seed) for g in groups]
    return {v: _Precomputed(joint, [g[k].values for g in groups], [f[k] for f in fills])
            for k, v in enumerate(variables)}


def _check_residual_model(filler: Any, v: str, cov: list[xr.DataArray] | None) -> None:
    """A model of train_fractions fills what it was trained on: residuals of the covariate
    regression with covariates, log-ratios without."""
    info = (getattr(filler, "meta", None) or {}).get("fractions")
    if not info:
        return
    trained = info.get("covariates")
    given = None if cov is None else [str(c.name) for c in cov]
    if (trained is None) != (given is None):
        raise GenfillError(
            f"the model of {v!r} was trained {'with' if trained else 'without'} covariates "
            f"({trained}); pass covariates={trained!r}" if trained else
            f"the model of {v!r} was trained without covariates; fill without covariates=, or "
            "train with them (train_fractions(..., covariates=...))")


def _residuals(clr: xr.Dataset, covariates: list[xr.DataArray] | None,
              dims: dict[str, str] | None = None, compute_coefficients: bool = False
              ) -> tuple[xr.Dataset, dict[str, xr.DataArray] | None]:
    """What the models fill: the log-ratio fields minus their :func:`covariate_trend`, and
    that trend; ``(clr, None)`` without covariates."""
    if covariates is None:
        return clr, None
    trend = covariate_trend(clr, covariates, dims, compute_coefficients=compute_coefficients)
    return xr.Dataset({v: (clr[v] - trend[v]).assign_attrs(clr[v].attrs)
                       for v in clr.data_vars}), trend


def covariate_trend(clr: xr.Dataset, covariates: list[xr.DataArray],
                    dims: dict[str, str] | None = None, min_pixels: int = 30,
                    shrink: float = 10.0, compute_coefficients: bool = False
                    ) -> dict[str, xr.DataArray]:
    """The regression of each centred log-ratio field on the covariates, per date.

    Each covariate is put in its own transform (log10 for chlorophyll) and standardised; its
    gaps are filled first (``anomaly``, or ``linear_space`` without a time axis), so that
    the trend exists wherever the sea is. Per time step, ``clr ~ 1 + sum_k (z_k + z_k^2)``
    is fitted on the pixels where the field is observed (abundance-based size-class models
    are smooth monotone functions of chlorophyll: Brewin et al. 2010), shrunk towards the
    fit of all steps together (ridge, ``shrink``): a step's clear pixels often span a
    narrow range of the covariate, and its own quadratic extrapolated under the clouds
    (0.43 log-ratio RMSE on the size-class benchmark, 0.11 shrunk). Steps with fewer than
    ``min_pixels`` observations (or fewer than 3 per coefficient) use the pooled fit.

    The fits need only the normal equations of each date, sums over its pixels, so dask
    fields and covariates give a lazy trend, chunk by chunk, equal to the eager one (the
    covariate's own fill needs the whole record of each spatial chunk, as the anomaly
    fill does).

    Parameters
    ----------
    clr : xarray.Dataset
        Centred log-ratio fields (:func:`to_log_ratios`), NaN gaps.
    covariates : list of xarray.DataArray
        Covariates on the same grid, gaps allowed.
    dims : dict, optional
        Explicit axis names, as in :func:`xgenfill.inpaint`.
    min_pixels : int, default 30
        Observations a step needs for its own fit.
    shrink : float, default 10
        Ridge weight pulling each step's coefficients towards the pooled ones (in units of
        squared standardised covariate summed over pixels).
    compute_coefficients : bool, default False
        For dask inputs: compute the covariates' statistics and every date's coefficients
        now (three passes over the data), so that the trend of a block needs only that
        block's covariates, not sums over the whole record (what streamed training reads,
        block by block). A covariate with gaps still needs its fill, over the whole record
        of the block's area, for every block (warned): pass a filled one.

    Returns
    -------
    dict
        ``{name: DataArray}`` of the trend of each field (NaN where a covariate has no value
        even after its fill); lazy for dask inputs.

    See Also
    --------
    inpaint_fractions : Fills the residuals of this trend when given covariates.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> import xgenfill
    >>> from xgenfill.fractions import covariate_trend
    >>> chl = xgenfill.open_sample("oahu").chlor_a.isel(time=slice(0, 12))
    >>> pn, p = 1.057 * (1 - np.exp(-0.851 * chl)), 0.107 * (1 - np.exp(-6.801 * chl))
    >>> ds = xr.Dataset({"pico": p / chl, "nano": (pn - p) / chl, "micro": 1 - pn / chl})
    >>> clr = xgenfill.to_log_ratios(ds, ["pico", "nano", "micro"])
    >>> trend = covariate_trend(clr, [chl])
    >>> bool(abs(trend["pico"] - clr.pico).mean() < 0.01)  # chl explains it all here
    True
    """
    from .lazy import is_lazy
    from .prepare import require_same_grid

    first = clr[list(clr.data_vars)[0]]
    axes = find_axes(first, dims)
    x = _trend_terms(first, covariates, axes, dims, compute_coefficients)
    x_ok = x.notnull().all(_TERM)
    sums = [d for d in first.dims if d != axes.time]  # per date: sums over the pixels
    betas = {}
    for name in clr.data_vars:
        y = clr[name].astype(np.float64)
        require_same_grid(y, first, f"fraction {name!r}")
        ok = y.notnull() & x_ok
        xm = x.where(ok, 0.0)
        # the normal equations of each date: sums over its pixels, so a dask field gives
        # them chunk by chunk and nothing of the field is held
        gram = xr.dot(xm, xm.rename({_TERM: _TERM2}), dim=sums)
        rhs = xr.dot(xm, y.where(ok, 0.0), dim=sums)
        count = ok.sum(sums)
        date = axes.time or "_date"
        if axes.time is None:
            gram, rhs, count = (a.expand_dims(date) for a in (gram, rhs, count))
        beta = xr.apply_ufunc(
            _coefficients, gram, rhs, count,
            input_core_dims=[[date, _TERM, _TERM2], [date, _TERM], [date]],
            output_core_dims=[[date, _TERM]], dask="parallelized",
            output_dtypes=[np.float64], dask_gufunc_kwargs={"allow_rechunk": True},
            kwargs={"min_pixels": min_pixels, "shrink": shrink, "name": str(name)})
        if axes.time is None:
            beta = beta.isel({date: 0}, drop=True)
        betas[name] = beta
    if compute_coefficients:  # all fields in one pass
        import dask

        betas = dict(zip(betas, dask.compute(*betas.values())))
    out = {}
    for name, beta in betas.items():
        trend = xr.dot(beta, x, dim=_TERM).where(x_ok)
        trend = trend.transpose(*first.dims).rename(str(name))
        trend.attrs = dict(clr[name].attrs)
        out[str(name)] = trend.drop_vars([c for c in trend.coords
                                          if c not in clr[name].coords])
    if not any(is_lazy(v) for v in out.values()):
        out = {k: v.compute() for k, v in out.items()}
    return out


_TERM, _TERM2 = "_xgenfill_term", "_xgenfill_term2"


def _trend_terms(first: xr.DataArray, covariates: list[xr.DataArray], axes, dims,
                 compute_statistics: bool = False) -> xr.DataArray:
    """The regressors of :func:`covariate_trend` along a new dimension: 1, then ``z`` and
    ``z**2`` of each covariate (in its own transform, gaps filled, standardised over the
    record); lazy for dask covariates."""
    from .lazy import is_lazy
    from .prepare import require_same_grid
    from .transforms import choose_transform

    terms = []
    for c in covariates:
        require_same_grid(c, first, f"covariate {c.name!r}")
        lazy = is_lazy(c)
        c = c.astype(np.float64)
        # values at hand are filled only when they have gaps; a dask covariate is filled
        # lazily (the fill leaves complete pixels as they are), unless it is found complete
        # first (compute_statistics: one pass)
        # gaps: missing where the covariate is observed at some other step (never observed
        # is land, which no fill changes)
        missing = c.isnull() & c.notnull().any(axes.time) if axes.time else c.isnull()
        gappy = bool(missing.any()) if (not lazy or compute_statistics) else True
        if gappy and lazy and compute_statistics:
            warn(f"covariate {c.name!r} has gaps: every block read from its trend recomputes "
                 "the covariate's anomaly fill over the whole record of the block's area. "
                 "Fill it once first (xgenfill.inpaint(cov).to_zarr(...)) and pass the "
                 "filled field to train from a large archive")
        if gappy:
            c = inpaint(c, model="anomaly" if axes.time else "linear_space",
                        dims=dims).astype(np.float64)
        tf = choose_transform(c, np.empty(0) if lazy else c.values, "auto")

        def forward(v, tf=tf):
            with np.errstate(invalid="ignore", divide="ignore"):
                return tf.forward(v)

        z = xr.apply_ufunc(forward, c, dask="parallelized", output_dtypes=[np.float64])
        mean, std = z.mean(), z.std()
        if compute_statistics and lazy:  # one pass, then numbers in the graph
            import dask

            mean, std = (float(v) for v in dask.compute(mean, std))
        std = xr.where(std > 0, std, 1.0) if isinstance(std, xr.DataArray) else (
            std if std > 0 else 1.0)
        z = (z - mean) / std
        terms += [z, z ** 2]
    ones = xr.ones_like(terms[0])
    x = xr.concat([ones, *terms], dim=_TERM, coords="minimal", compat="override")
    return x.transpose(_TERM, *first.dims).assign_coords(
        {d: first[d] for d in first.dims if d in first.coords})


def _coefficients(gram: np.ndarray, rhs: np.ndarray, count: np.ndarray, *, min_pixels: int,
                  shrink: float, name: str) -> np.ndarray:
    """Per-date coefficients (T, P) from the normal equations (T, P, P), (T, P) and the
    pixel counts (T,): the pooled least-squares fit, and each date's own fit ridge-shrunk
    towards it where the date has enough pixels."""
    if not count.sum():
        raise GenfillError(f"no pixel of {name!r} is observed where the covariates have "
                           "values: nothing to regress on")
    p = gram.shape[-1]
    # lstsq: the minimum-norm solution when a covariate is constant (a singular system)
    pooled = np.linalg.lstsq(gram.sum(0), rhs.sum(0), rcond=None)[0]
    beta = np.broadcast_to(pooled, rhs.shape).copy()
    own = count >= max(min_pixels, 3 * p)
    if own.any():
        beta[own] = np.linalg.solve(gram[own] + shrink * np.eye(p),
                                    (rhs[own] + shrink * pooled)[..., None])[..., 0]
    return np.nan_to_num(beta)
