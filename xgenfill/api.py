"""Public functions. The ``.genfill`` accessor forwards to these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import GenfillError, warn
from .models.base import Cube, Fill, Filler
from .models.registry import get_filler
from .axes import find_axes
from .post import assemble, limit_gaps, merge_into
from .prepare import Prepared, prepare
from .transforms import describe, variable_family

__all__ = ["inpaint", "inpaint_dataset"]


def _cubes(prep: Prepared, covariates: np.ndarray | None = None) -> list[Cube]:
    return [Cube(values=prep.values[f], ocean=prep.ocean[f], doy=prep.doy,
                 time_index=prep.time_index, periodic_x=prep.periodic_x,
                 covariates=None if covariates is None else covariates[f])
            for f in range(prep.values.shape[0])]


def prepare_covariates(covariates: "list[xr.DataArray] | xr.DataArray | None", prep: Prepared
                       ) -> np.ndarray | None:
    """Conditioning variables on the data's grid, each in its own transform and standardised:
    (field, covariate, time, y, x) in the prepared (canonical) layout; NaN where missing."""
    from .prepare import decode_input, require_same_grid
    from .transforms import choose_transform

    if covariates is None:
        return None
    if isinstance(covariates, xr.DataArray):
        covariates = [covariates]
    out = []
    for cov in covariates:
        cov = decode_input(cov)
        require_same_grid(cov, prep.source, f"covariate {cov.name!r}")
        raw = prep.canonical_of(cov).astype(np.float64)
        if np.isinf(raw).any():
            raise GenfillError(f"covariate {cov.name!r} contains +/-inf")
        tf = choose_transform(cov, raw, "auto")
        tf.check(raw, str(cov.name))
        with np.errstate(invalid="ignore", divide="ignore"):
            t = tf.forward(raw)
        finite = t[np.isfinite(t)]
        if not finite.size:
            raise GenfillError(f"covariate {cov.name!r} is entirely NaN")
        std = finite.std() or 1.0
        out.append(((t - finite.mean()) / std).astype(np.float32))
    return np.ascontiguousarray(np.stack(out, axis=1))


def _check_covariates(filler: Filler, cov: np.ndarray | None) -> None:
    from .models.guard import Guarded
    from .models.neural import NeuralFiller

    if isinstance(filler, Guarded) and filler.network is not None and (
            cov is not None or getattr(filler.network, "arch", {}).get("n_covariates", 0)):
        filler = filler.network  # the classical candidates ignore covariates

    n = 0 if cov is None else cov.shape[1]
    if not isinstance(filler, NeuralFiller):
        if n:
            raise GenfillError(f"model {filler.name!r} does not use covariates; they condition "
                               "the neural models ('diffusion', 'vae')")
        return
    want = filler.arch["n_covariates"]
    if n != want:
        raise GenfillError(f"model {filler.name!r} was built for {want} covariate(s), got {n}; "
                           "pass the same covariates as in training (xgenfill.train(..., "
                           "covariates=...))")


def check_n_samples(n_samples: Any) -> None:
    """Refuse an ensemble size that is not a positive integer."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) \
            or n_samples < 1:
        raise GenfillError(f"n_samples must be a positive integer, got {n_samples!r}")


def check_seed(seed: Any, allow_none: bool = True) -> None:
    """Refuse a seed that is not an integer (``seed="abc"`` failed deep in numpy)."""
    if seed is None and allow_none:
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise GenfillError(f"seed must be an integer{' or None' if allow_none else ''}, got "
                           f"{seed!r}")


def _call_repr(model: Any, **kw: Any) -> str:
    label = model if isinstance(model, str) else getattr(model, "name", type(model).__name__)
    args = ", ".join([f"model={str(label)!r}"] + [f"{k}={v!r}" for k, v in kw.items()])
    return f"xgenfill.inpaint({args})"


def build_filler(model: "str | Path | Filler", transform_name: str,
                 variable: xr.DataArray | None = None, **model_kwargs: Any) -> Filler:
    """Build a model for a variable in a transform, refusing pretrained or trained models that
    were not trained for both.

    The generic names ``"diffusion"`` and ``"vae"`` pick the pretrained model of the
    variable's family (chlorophyll in log10, SST standardised); a variable whose metadata say
    neither gets the SST family with a warning that says so.
    """
    family = None if variable is None else variable_family(variable, transform_name)
    label = "the data" if variable is None else describe(variable)
    if isinstance(model, str) and model == "auto":
        model_kwargs = dict(model_kwargs)
        network = model_kwargs.pop("network", None)
        if network is not None:  # a network of the user's (e.g. from xgenfill.train)
            from .models.guard import CLASSICAL, HOLDOUT, Guarded

            guard = {k: model_kwargs.pop(k) for k in ("candidates", "holdout_fraction")
                     if k in model_kwargs}
            net = build_filler(network, transform_name, variable, **model_kwargs)
            return Guarded(net, guard.get("candidates", CLASSICAL),
                           guard.get("holdout_fraction", HOLDOUT))
        try:
            net = _generic_family("diffusion", transform_name, family, label)
        except GenfillError:  # no pretrained network for these data: classical candidates only
            net = None
        return get_filler("auto", variable=net, **model_kwargs)
    if isinstance(model, str) and model in ("diffusion", "vae"):
        return get_filler(model, variable=_generic_family(model, transform_name, family, label),
                          **model_kwargs)
    filler = get_filler(model, **model_kwargs)
    if str(getattr(filler, "kind", "")).startswith("joint_"):
        raise GenfillError(f"model {filler.name!r} fills the fractions of a composition "
                           "together: use xgenfill.inpaint_fractions(ds, names, model=...)")
    check_trained_for(filler, transform_name, family, label)
    return filler


def _generic_family(model: str, transform_name: str, family: str | None, label: str) -> str:
    if family in ("chl", "sst"):
        return family
    if family == "fraction":
        raise GenfillError(f"no pretrained model knows fractions ({label}, logit space): use a "
                           "classical model (model='dineof' or 'anomaly'), inpaint_fractions() "
                           "for fractions that sum to 1, or train one (xgenfill.train)")
    if family == "chl-linear":
        raise GenfillError(f"{label} is chlorophyll filled in {transform_name!r} space, but the "
                           "pretrained chlorophyll models work in log10: drop transform= (or "
                           "pass transform='log10'), use a classical model (model='dineof'), "
                           "or train one in this transform (xgenfill.train)")
    if transform_name == "log10":
        warn(f"{label} is not identified as chlorophyll by its metadata; it is filled in log10 "
             f"with the chlorophyll-family pretrained {model!r} model (as transform='log10' "
             "asks); check the fill with validate() or train one on these data")
        return "chl"
    warn(f"xgenfill cannot tell what {label} is: its metadata say neither chlorophyll nor sea "
         f"temperature. It is standardised (transform={transform_name!r}) and filled with the "
         f"SST-family pretrained {model!r} model. Check the fill with validate(), pass a "
         "classical model (model='dineof'), or train one on these data (xgenfill.train)")
    return "sst"


def check_trained_for(filler: Filler, transform_name: str, family: str | None,
                      label: str = "the data") -> None:
    """Refuse a learned model trained in another transform or, if pretrained, for another
    variable family; warn when the variable cannot be identified."""
    meta = getattr(filler, "meta", None) or {}
    trained = meta.get("transform")
    if trained and trained != transform_name:
        raise GenfillError(
            f"model {filler.name!r} was trained on {meta.get('variable', '?')!r} in {trained!r} "
            f"space, but {label} is filled in {transform_name!r} space: pass "
            f"transform={trained!r} if these data are of that kind, choose a model for this "
            "variable (model=...), or train one on it (xgenfill.train)")
    if meta.get("trained_on") != "pretrained":
        return
    own = meta.get("variable")
    if family is None:
        warn(f"xgenfill cannot identify {label} by its metadata; the pretrained model "
             f"{filler.name!r} ({own} family, {trained} space) is applied to it as asked. Check "
             "the fill with validate() or train one on these data (xgenfill.train)")
    elif family != own:
        raise GenfillError(
            f"pretrained model {filler.name!r} is for {own!r}, but {label} is {family!r}: pass "
            f"model='diffusion' (or 'vae') for the pretrained model of its own family, a "
            "classical model (model='dineof'), or train one (xgenfill.train)")


def run_filler(filler: Filler, prep: Prepared, n_samples: int, seed: int | None,
               covariates: np.ndarray | None = None) -> list[Fill]:
    """Fill every independent field of a prepared cube."""
    nt = prep.values.shape[1]
    if filler.needs_time and nt < 3:
        raise GenfillError(f"model {filler.name!r} needs a time axis with at least 3 steps "
                           f"(got {nt}); use model='linear_space' or a generative model")
    fills = []
    for f, cube in enumerate(_cubes(prep, covariates)):
        if not cube.gaps.any():
            fills.append(Fill(samples=np.full((n_samples,) + cube.values.shape, np.nan,
                                              np.float32)))
            continue
        fills.append(prep.plausible_fill(f, filler.fill(cube, n_samples=n_samples, seed=seed)))
    return fills


def inpaint(da: xr.DataArray, model: "str | Path | Filler" = "auto", *, n_samples: int = 1,
            seed: int | None = 0, mask: xr.DataArray | np.ndarray | None = None,
            transform: str = "auto", dims: dict[str, str] | None = None,
            return_dataset: bool = False, keep_members: bool = False,
            uncertainty_members: int = 4, obs_error: "float | xr.DataArray | None" = None,
            max_gap: int | None = None, progress: bool = False,
            covariates: "list[xr.DataArray] | xr.DataArray | None" = None, **model_kwargs: Any
            ) -> xr.DataArray | xr.Dataset:
    """Fill the gaps (NaN) of a gridded field.

    The field is prepared from its CF metadata (axes, transform, land), filled by the chosen
    model in transformed, standardised units, and put back in the input's units, layout and
    attributes. Observed pixels are never changed, land is never filled, and the input object
    is never modified.

    Parameters
    ----------
    da : xarray.DataArray
        Field with a time axis and two spatial axes, found from CF metadata whatever their
        names or order; other dimensions are filled independently. A dask-backed input gives
        a lazy dask-backed result (nothing is computed until you ask; input checks that need
        the values then run at compute time).
    model : str, path or model object, default "auto"
        ``"auto"`` (default): the pretrained conditional diffusion model of the variable's
        family and the classical fills, combined with weights fitted on observed pixels of
        ``da`` hidden under transplanted real clouds (:mod:`xgenfill.models.guard`), so that a
        network that is wrong on these data gets no weight; the weights are recorded in the
        ``history`` and, with ``return_dataset=True``, in the ``xgenfill_guard_*``
        attributes. It costs about two fills of each candidate. ``"diffusion"`` (the
        pretrained network alone; the one embedded in the package when nothing else is
        cached), ``"vae"``, ``"dineof"``, a baseline
        (``"linear_time"``, ``"climatology"``, ``"linear_space"``, ``"anomaly"``), a registered
        pretrained name (:func:`xgenfill.list_models`), a path to saved weights, or a model
        object from :func:`xgenfill.train`.
    n_samples : int, default 1
        Ensemble size for generative models. With ``n_samples > 1`` the DataArray form returns
        the members along a new ``member`` dimension (CF ``standard_name: realization``, the
        name xskillscore and climpred use); the Dataset form returns the point
        estimate and a ``<var>_uncertainty`` spread.
    seed : int or None, default 0
        Seed of the generative sampler (the same seed gives the same output, whatever the
        tiling or chunking).
    mask : xarray.DataArray, numpy.ndarray or "auto", optional
        Boolean land/sea mask (True = sea, may be filled), on the data's grid; it defines the
        sea. A sea pixel never observed in the input is filled from its nearest pixel with a
        value, status ``filled_never_observed``, its uncertainty the error of that spatial
        extrapolation (:mod:`xgenfill.extrapolate`; dask inputs: status ``not_filled``, load
        the data to fill them). ``"auto"``: the sea from the GLOBE 1 km land mask of the
        optional package ``global-land-mask`` (offline; needs latitude and longitude
        coordinates; :mod:`xgenfill.landmask`), plus every pixel the data observe. Without a
        mask, a pixel never observed is land and is not filled.
    transform : {"auto", "log10", "logit", "identity"}, default "auto"
        ``"auto"``: log10 for chlorophyll, logit for fractions, standardisation otherwise.
    dims : dict, optional
        Explicit axis names, e.g. ``{"T": "date", "Y": "row", "X": "col"}``.
    return_dataset : bool, default False
        Return a Dataset with ``<var>``, ``<var>_filled_flag`` (CF flags) and
        ``<var>_uncertainty`` linked through ``ancillary_variables``.
    keep_members : bool, default False
        With ``return_dataset=True`` and ``n_samples > 1``, also return every member as
        ``<var>_members`` (along ``member``): members, point estimate and flags in one call.
    uncertainty_members : int, default 4
        With ``return_dataset=True`` and ``n_samples=1``, a generative model also generates
        this many members so that ``<var>_uncertainty`` is their spread at every filled pixel
        (the value stays the model's point estimate). It costs as many fills (diffusion: 6
        network calls each, against 1 for the point estimate); ``0`` skips it (NaN).
    obs_error : float or xarray.DataArray, optional
        Observation error (standard deviation, in the uncertainty's transformed units: log10
        for chlorophyll) given to observed pixels in ``<var>_uncertainty``; NaN without it.
    max_gap : int, optional
        Fill only gaps of at most this many consecutive time steps at a pixel (as in xarray's
        ``interpolate_na``); pixels of longer gaps stay NaN with status ``not_filled``.
    progress : bool, default False
        Show a tqdm progress bar over the time steps of eager neural fills (dask inputs use
        dask's own progress reporting, e.g. ``dask.diagnostics.ProgressBar``). Off by
        default in library calls, as in xarray and pooch; the CLI shows it.
    covariates : xarray.DataArray or list of xarray.DataArray, optional
        Extra variables on the same grid that condition a neural model trained with them
        (``xgenfill.train(..., covariates=...)``), e.g. SST for chlorophyll; gaps allowed.
    **model_kwargs
        Options of the chosen model (e.g. ``nev=20`` for DINEOF; ``steps=10``,
        ``sampler="repaint"``, ``device="cuda"``, ``tile=512`` for diffusion).

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        Same dims, coords, dtype and attributes as ``da`` (plus a ``history`` line; range
        attributes such as ``actual_range`` updated to the filled values); observed pixels
        are bit-identical to the input, which is never modified. With
        ``return_dataset=True`` a CF Dataset: the ``history`` line is a global attribute,
        the flag and uncertainty are stored compressed like ``da``.

    Raises
    ------
    GenfillError
        For input that cannot be filled as given (unidentifiable axes, all-NaN or infinite
        values, a mask on another grid, an unknown model or option...); the message says
        what to change.
    WeightsError
        If pretrained weights are missing or fail their sha256 check.
    OfflineError
        If a model must be downloaded and the network is disabled or unreachable.

    See Also
    --------
    inpaint_dataset : Fill several variables of a Dataset.
    inpaint_fractions : Fill fractions that sum to 1 together.
    validate : Score models on observed pixels hidden from them.
    train : Fit a generative model to your own gappy data.

    Examples
    --------
    >>> import xgenfill
    >>> ds = xgenfill.open_sample("oahu")  # monthly OC-CCI chlorophyll around Oahu
    >>> filled = xgenfill.inpaint(ds.chlor_a, model="linear_time")
    >>> filled.dims == ds.chlor_a.dims
    True
    >>> int(filled.isnull().sum()) < int(ds.chlor_a.isnull().sum())
    True

    The accessor form is the same call; ``return_dataset=True`` adds the CF flag and the
    uncertainty:

    >>> out = ds.chlor_a.genfill.inpaint(model="linear_time", return_dataset=True)
    >>> out.chlor_a_filled_flag.attrs["flag_meanings"].split()  # doctest: +NORMALIZE_WHITESPACE
    ['observed', 'filled', 'land_or_masked', 'not_filled', 'filled_outside_observed_range',
     'filled_never_observed']
    """
    check_n_samples(n_samples)
    check_seed(seed)
    if max_gap is not None:
        if isinstance(max_gap, bool) or not isinstance(max_gap, (int, np.integer)) \
                or max_gap < 1:
            raise GenfillError(f"max_gap must be a positive number of time steps, got "
                               f"{max_gap!r}")
        time_dim = find_axes(da, dims).time if isinstance(da, xr.DataArray) else None
        if time_dim is None:
            raise GenfillError("max_gap counts time steps, but this field has no time axis")
        result = inpaint(da, model, n_samples=n_samples, seed=seed, mask=mask,
                         transform=transform, dims=dims, return_dataset=return_dataset,
                         keep_members=keep_members, uncertainty_members=uncertainty_members,
                         obs_error=obs_error, progress=progress, covariates=covariates,
                         **model_kwargs)
        name = str(da.name if da.name is not None else "data")
        return limit_gaps(result, da, time_dim, int(max_gap), name)
    if not isinstance(uncertainty_members, (int, np.integer)) or uncertainty_members < 0:
        raise GenfillError(f"uncertainty_members must be 0 or a positive integer, got "
                           f"{uncertainty_members!r}")
    from .lazy import inpaint_lazy, is_lazy

    lazy = isinstance(da, xr.DataArray) and is_lazy(da)
    if lazy:
        from .transforms import choose_transform

        tf_name = choose_transform(da, np.empty(0), transform).name
    else:
        prep = prepare(da, mask=mask, transform=transform, dims=dims)
        tf_name = prep.transform.name
    filler = build_filler(model, tf_name, da if lazy else prep.source, **model_kwargs)
    if n_samples > 1 and not filler.stochastic:
        raise GenfillError(f"model {filler.name!r} is deterministic: n_samples must be 1 "
                           "(use model='diffusion' or 'vae' for ensembles)")
    asked = n_samples
    if return_dataset and n_samples == 1 and filler.stochastic and uncertainty_members > 1:
        n_samples = int(uncertainty_members)  # members for the spread; the value is the point
        model_kwargs_call = dict(model_kwargs, uncertainty_members=n_samples)
    else:
        model_kwargs_call = model_kwargs
    if lazy:
        covs = [covariates] if isinstance(covariates, xr.DataArray) else covariates
        n_cov = len(covs or [])
        _check_covariates(filler, np.empty((1, n_cov)) if n_cov else None)
        call = _call_repr(model, n_samples=asked, seed=seed, **model_kwargs_call)
        return inpaint_lazy(da, filler, n_samples=n_samples, seed=seed, mask=mask,
                            transform=transform, dims=dims, return_dataset=return_dataset,
                            call=call, keep_members=keep_members and asked > 1,
                            obs_error=obs_error, covariates=covs)
    cov = prepare_covariates(covariates, prep)
    _check_covariates(filler, cov)
    previous = getattr(filler, "progress", None)
    try:  # the bar is a property of this call, not of the (possibly shared) model object
        if previous is not None:
            filler.progress = progress
        fills = run_filler(filler, prep, n_samples, seed, cov)
    finally:
        if previous is not None:
            filler.progress = previous
    extrapolation = None
    if prep.never is not None:
        fills, extrapolation = extend_to_never_observed(prep, fills)
    call = _call_repr(model, n_samples=asked, seed=seed, **model_kwargs_call)
    guard = guard_summary(fills, prep)
    if guard:  # what the default's own check decided belongs to the record of the fill
        call += f" (auto check: {'; '.join(g['weights'] for g in guard)})"
    result = assemble(prep, fills, call=call, weights=filler.weights_hash,
                      members=n_samples > 1 and not return_dataset,
                      return_dataset=return_dataset, keep_members=keep_members and asked > 1,
                      obs_error=obs_error, extrapolation=extrapolation)
    if return_dataset:
        info = {k: v for f in fills for k, v in f.info.items()
                if isinstance(v, (int, float, str))}
        for key, value in info.items():
            result.attrs[f"xgenfill_{key}"] = value
        if "cv_rmse" in info:  # report DINEOF's CV error in transformed units, not normalised
            result.attrs["xgenfill_cv_rmse"] = float(info["cv_rmse"] * prep.std[0])
        for key in [k for k in result.attrs if k.startswith("xgenfill_guard_rmse_")
                    or k in ("xgenfill_guard_spread_floor", "xgenfill_guard_spread_depth")]:
            del result.attrs[key]
        for f, g in enumerate(guard):  # hidden-pixel errors and spread, in transformed units
            tag = "" if len(guard) == 1 else f"_field{f}"
            for key, value in g["rmse"].items():
                result.attrs[f"xgenfill_guard_rmse_{key}{tag}"] = value
            if g["spread_floor"] is not None:
                result.attrs[f"xgenfill_guard_spread_floor{tag}"] = g["spread_floor"]
                result.attrs[f"xgenfill_guard_spread_depth{tag}"] = g["spread_depth"]
            if len(guard) > 1:
                result.attrs[f"xgenfill_guard_weights{tag}"] = g["weights"]
    return result


def extend_to_never_observed(prep: Prepared, fills: list[Fill]
                             ) -> tuple[list[Fill], np.ndarray]:
    """Fill the sea pixels of ``mask=`` that were never observed from their nearest known
    pixel (:mod:`xgenfill.extrapolate`); ``prep`` then counts them as ocean. Returns the fills
    and the (F, T, Y, X) normalised extrapolation error."""
    from .extrapolate import extend_fill, extrapolation_std, structure_function

    out, extra = [], np.zeros(prep.values.shape, np.float32)
    for f, fill in enumerate(fills):
        never = prep.never[f]
        if not never.any():
            out.append(fill)
            continue
        fill, dist = extend_fill(fill, prep.values[f], never)
        sf = structure_function(prep.values[f])
        extra[f] = np.where(never[None], extrapolation_std(dist, sf), 0.0)
        out.append(fill)
    prep.ocean = prep.ocean | prep.never
    return out, extra


def guard_summary(fills: list[Fill], prep: Prepared) -> list[dict[str, Any]]:
    """Per field, the weights model='auto' gave its candidates, their hidden-pixel RMSE, and
    the floor and depth term of its members' spread, in transformed units (empty for other
    models)."""
    out = []
    for f, fill in enumerate(fills):
        if "guard_weights" not in fill.info:
            continue
        rmse = {k[len("guard_rmse_"):]: float(v * prep.std[f]) for k, v in fill.info.items()
                if k.startswith("guard_rmse_")}
        floor = fill.info.get("guard_spread_floor")
        depth = fill.info.get("guard_spread_depth", 0.0)
        out.append({"weights": fill.info["guard_weights"], "rmse": rmse,
                    "spread_floor": None if floor is None else float(floor * prep.std[f]),
                    "spread_depth": float(depth * prep.std[f])})
    return out


def inpaint_dataset(ds: xr.Dataset, variables: list[str] | str | None = None,
                    model: "str | Path | Filler" = "auto", **kwargs: Any) -> xr.Dataset:
    """Fill several variables of a Dataset, each with its flag and uncertainty.

    Each variable is filled on its own by :func:`inpaint` with ``return_dataset=True``; the
    other variables and the global attributes of ``ds`` are kept, and a ``history`` line is
    prepended.

    Parameters
    ----------
    ds : xarray.Dataset
        The Dataset holding the variables to fill.
    variables : str or list of str, optional
        Names of the variables to fill; by default every floating-point data variable with a
        spatial extent (two or more dimensions).
    model : str, path or model object, default "auto"
        Any model :func:`inpaint` accepts, used for every variable.
    **kwargs
        Other options of :func:`inpaint` (``n_samples``, ``seed``, ``mask``, ``dims``,
        model options...), the same for every variable.

    Returns
    -------
    xarray.Dataset
        ``ds`` with each variable filled and its ``<var>_filled_flag`` and
        ``<var>_uncertainty`` added.

    Raises
    ------
    GenfillError
        If a named variable is not in ``ds``, there is nothing to fill, or :func:`inpaint`
        refuses a variable.

    See Also
    --------
    inpaint : Fill one DataArray.
    inpaint_fractions : Fill fractions that sum to 1 together.

    Examples
    --------
    >>> import xgenfill
    >>> ds = xgenfill.open_sample("oahu")
    >>> out = xgenfill.inpaint_dataset(ds, ["chlor_a"], model="linear_time")
    >>> sorted(out.data_vars)
    ['chlor_a', 'chlor_a_filled_flag', 'chlor_a_uncertainty']
    """
    if isinstance(variables, str):
        variables = [variables]
    if variables is None:
        variables = [str(v) for v, x in ds.data_vars.items() if x.dtype.kind == "f" and x.ndim >= 2]
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise GenfillError(f"variables {missing} not in the dataset (has {list(ds.data_vars)})")
    if not variables:
        raise GenfillError("no variable to fill in this dataset")
    parts = [inpaint(ds[v], model=model, return_dataset=True, **kwargs) for v in variables]
    return merge_into(ds, parts)


def _adapt_init(filler: "Filler", arch: dict[str, Any], n_covariates: int = 0) -> "Filler":
    """A copy of the init model, with guides, DINEOF's reconstruction and covariates added
    and options changed as asked."""
    arch = dict(arch)
    guides = arch.pop("guides", None)
    dineof = arch.pop("dineof_guide", None)
    fixed = sorted(k for k in arch if k not in filler.options)
    if fixed:
        raise GenfillError(f"cannot change {fixed} of an init model (its architecture is "
                           "fixed by its weights); train from scratch (init=None) instead")
    if guides is not None and not guides and filler.arch.get("guides"):
        raise GenfillError("cannot remove the guides of an init model trained with them")
    if dineof is not None and not dineof and filler.arch.get("dineof_guide"):
        raise GenfillError("cannot remove the DINEOF guide of an init model trained with it")
    out = filler.with_guides() if guides else filler.copy()
    if dineof:
        out = out.with_dineof_guide()
    if n_covariates and not filler.arch["n_covariates"]:
        out = out.with_covariates(n_covariates)  # zero weights: starts from the init's function
    out.options.update(arch)
    return out


# largest field (values) whose fine-tune reads DINEOF's reconstruction by default: six DINEOF
# runs at every fill (27 s for case A's 5.6 M values on a 2-core CPU)
DINEOF_GUIDE_MAX = 20_000_000


def _dineof_guide_default(da: xr.DataArray, dims: dict[str, str] | None) -> bool:
    """Whether ``init="auto"`` adds the DINEOF guide: a field in memory, small enough, with 3
    time steps or more (DINEOF needs the whole field and a time axis)."""
    from .axes import find_axes
    from .lazy import is_lazy

    if is_lazy(da) or da.size > DINEOF_GUIDE_MAX:
        return False
    try:
        axes = find_axes(da, dims)
    except GenfillError:
        return False
    return axes.time is not None and da.sizes[axes.time] >= 3


def _auto_init(model: Any, da: xr.DataArray, transform: str,
               arch: dict[str, Any], device: str, dims: dict[str, str] | None = None
               ) -> tuple[Any, dict[str, Any], str]:
    """``init="auto"``: for chlorophyll, the pretrained chlorophyll model (with guides,
    DINEOF's reconstruction where the field allows it, and covariate channels if asked) when
    ``arch`` changes nothing fixed; else (SST included, where it won) a residual network from
    scratch."""
    from .models.neural import NeuralFiller
    from .transforms import choose_transform

    if isinstance(model, NeuralFiller) or model not in ("diffusion", "vae"):
        return None, arch, "given model" if isinstance(model, NeuralFiller) else "scratch"
    try:
        tf_name = choose_transform(da, np.empty(0), transform).name
    except GenfillError:
        tf_name = None
    family = None if tf_name is None else variable_family(da, tf_name)
    from .models.io import model_classes

    adaptable = {"guides", "dineof_guide"} | set(model_classes()[model].default_options())
    fixed = set(arch) - adaptable
    # fine-tuning the pretrained chlorophyll model won on cases A and C; on the SST case (B,
    # Alboran AVHRR, which the SST model never saw) a residual network from scratch won:
    # 0.814x vs 0.841x the anomaly fill, benchmarks/results/recipe-sweep-20261207T2131-B*
    pretrained_ok = family == "chl" and tf_name == "log10"
    # with covariates too: their channels start at zero weight (with_covariates), which beat a
    # residual network from scratch in benchmarks/multisensor.py
    if pretrained_ok and not fixed:
        import warnings

        with warnings.catch_warnings():  # the family is known: nothing to warn about here
            warnings.simplefilter("ignore")
            init = get_filler(model, variable=family, device=device)
        arch = {"guides": True, "dineof_guide": _dineof_guide_default(da, dims), **arch}
        guided = " with the DINEOF guide" if arch["dineof_guide"] else ""
        return init, arch, f"pretrained {init.name} (fine-tuned{guided})"
    if fixed:  # an architecture of the user's own: exactly as asked
        return None, arch, "scratch"
    return None, {"residual": True, **arch}, "scratch (residual on the anomaly fill)"


def train(da: xr.DataArray, model: "str | Filler" = "diffusion", *, mask=None,
          transform: str = "auto", dims: dict[str, str] | None = None, max_steps: int = 2000,
          max_time: float | None = None, device: str = "auto", seed: int = 0,
          progress: bool = False, init: "str | Path | Filler | None" = "auto",
          batch_size: int = 16, patch: int = 64, lr: float = 2e-3, val_fraction: float = 0.1,
          augment: bool = False, val_split: str = "auto",
          covariates: "list[xr.DataArray] | xr.DataArray | None" = None,
          block: tuple[int, int, int] | None = None, **arch: Any
          ) -> Filler:
    """Train a generative gap filler on your own gappy data (self-supervised).

    Observed pixels of each training sample are hidden under real cloud masks taken from other
    dates of the same data; the model learns to predict them; a held-out share of the dates
    (``val_fraction``) is scored for early stopping. No gap-free truth is needed.

    Parameters
    ----------
    da : xarray.DataArray
        Gappy training field, prepared as in :func:`inpaint` (axes from CF metadata,
        transform, land = never observed or masked).
    model : {"diffusion", "vae"} or model object, default "diffusion"
        The kind of model to train, or a trained model to train further.
    mask : xarray.DataArray, numpy.ndarray or "auto", optional
        Boolean land/sea mask (True = sea) on the data's grid, or ``"auto"``, as in
        :func:`inpaint`.
    transform : {"auto", "log10", "logit", "identity"}, default "auto"
        Transform of the values, as in :func:`inpaint`; recorded with the model, which
        refuses data in another transform.
    dims : dict, optional
        Explicit axis names, e.g. ``{"T": "date", "Y": "row", "X": "col"}``.
    max_steps : int, default 2000
        Optimiser steps budget.
    max_time : float, optional
        Wall-clock seconds budget (whichever of the two comes first). The learning rate
        warms up for 100 steps, then decays (cosine) to a step horizon: ``max_steps``, or
        with ``max_time`` the number of steps the budget allows, estimated once from the
        warm-up speed and recorded as ``meta["training"]["horizon_steps"]``. The schedule never
        reads the clock afterwards, so ``max_steps=horizon_steps`` without ``max_time`` (and
        the same ``seed``) repeats a time-budgeted fit, bit for bit on the same kind of
        machine; only a machine that slows down part-way is stopped early by the clock.
        The budget is the training loop's: preparing the data and, with ``dineof_guide``,
        the six DINEOF runs of its reconstruction come before it (about 5 s for the
        ``"phytofit"`` sample, 27 s for a year of it on a 2-core CPU).
    device : str, default "auto"
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    seed : int, default 0
        Seed of the initialisation, the crops and their transplanted clouds.
    progress : bool, default False
        Show a tqdm progress bar over the training steps.
    init : "auto", str, path, model object or None, default "auto"
        Start from these weights (e.g. ``"diffusion"`` for the pretrained default, or a path)
        instead of a random initialisation (fine-tuning). ``guides=True`` adds the guide
        channels to a model saved without them (they start with zero weight); sampler options
        may be changed; the rest of the architecture is the init's. ``"auto"`` (the
        benchmark's best recipe): for chlorophyll (log10), fine-tune the pretrained
        chlorophyll model with guide channels when ``arch`` asks for nothing it cannot change
        (with ``covariates``, their channels are added with zero weights, so fine-tuning
        starts from the pretrained function), and with DINEOF's reconstruction as a further
        input (``dineof_guide=True``) when the field is in memory, has 3 time steps or more
        and at most ``DINEOF_GUIDE_MAX`` (20 million) values. Otherwise, SST included (on the
        benchmark's SST case a residual network from scratch beat the fine-tuned SST model,
        0.81x vs 0.84x the anomaly fill; pass ``init="diffusion-sst-v1"`` to fine-tune it),
        with no architecture asked for, train from scratch as a residual correction of the
        anomaly fill (``residual=True``); with an architecture of your own in ``arch``
        (``widths=``, ``window=``...), from scratch exactly as asked. ``None``: from scratch
        as ``arch`` says. The start is recorded in ``meta["training"]["init"]``. Fill with
        the result through the default's check, ``inpaint(da, network=model)``, or alone,
        ``inpaint(da, model=model)``.
    batch_size : int, default 16
        Training crops per optimiser step.
    patch : int, default 64
        Side of the square training crops, in pixels.
    lr : float, default 2e-3
        Peak learning rate (AdamW).
    val_fraction : float, default 0.1
        Share of the usable dates held out for early stopping (at least one date when > 0
        and there are 4 or more); ``0`` trains on every date for the whole budget and keeps
        the last weights.
    augment : bool, default False
        Show the network each training crop flipped and transposed at random (eight views of
        every sample; the inputs hold no directions). Off by default: on the benchmark cases
        (10 days of SST, a year of daily chl, 25 years of monthly chl) it did not improve the
        held-out scores at equal training budgets.
    val_split : {"auto", "dates", "pixels"}, default "auto"
        ``"dates"`` holds out whole dates; ``"pixels"`` holds out, on every date, observed
        pixels under other dates' clouds inside random blocks (no date is lost); ``"auto"``:
        dates, or pixels where there are too few usable dates (under 4) to hold one out.
    covariates : xarray.DataArray or list of xarray.DataArray, optional
        Conditioning variables on the same grid (each standardised in its own transform);
        the trained model then needs the same covariates in :func:`inpaint`.
    block : (int, int, int), optional
        For a dask- or zarr-backed ``da`` (an archive larger than memory), the steps, rows
        and columns of the blocks training streams from it (default ``(64, 256, 256)``, see
        :mod:`xgenfill.streaming`): two lazy passes compute the sea and the normalisation,
        then crops are drawn from random blocks read a few at a time, in float32, and the
        last block of the record is kept for validation. Memory is set by the block and
        the batch, not by the archive.
    **arch
        Architecture and sampler options (``window``, ``widths``, ``steps``, ``guides``,
        ``dineof_guide``, ``residual``...).

    Returns
    -------
    Filler
        A model accepted by :func:`inpaint` (``model=``); save it with ``.save(path)`` and
        load it back with ``inpaint(model=path)``.

    Raises
    ------
    GenfillError
        For a model that cannot be trained, an ``init`` of another kind, architecture options
        an ``init`` model cannot change, or input :func:`inpaint` would refuse.

    See Also
    --------
    inpaint : Fill gaps with the trained model (``model=``).
    validate : Score it on held-out pixels (``fit=`` refits without them).

    Examples
    --------
    A few steps of a small VAE on the monthly Oahu sample (real fits take minutes):

    >>> import xgenfill
    >>> chl = xgenfill.open_sample("oahu").chlor_a
    >>> model = xgenfill.train(chl, model="vae", max_steps=3, batch_size=2, patch=16,
    ...                        progress=False, widths=(8, 16))
    >>> filled = xgenfill.inpaint(chl, model=model, progress=False)
    >>> bool(filled.notnull().sum() > chl.notnull().sum())
    True
    """
    check_seed(seed, allow_none=False)
    from .models.io import model_classes
    from .models.neural import NeuralFiller

    classes = model_classes()
    if str(getattr(model, "kind", model)).startswith("joint"):
        raise GenfillError("a joint model fills several fields together; train it with "
                           "xgenfill.train_fractions(ds, names, model='joint') (or "
                           "'joint_vae')")
    start = "given model"
    if isinstance(init, str) and init == "auto":
        init, arch, start = _auto_init(model, da, transform, arch, device, dims)
    elif init is not None:
        start = str(getattr(init, "name", init))
    else:
        start = "scratch"
    n_cov = 0 if covariates is None else (
        1 if isinstance(covariates, xr.DataArray) else len(covariates))
    if isinstance(model, NeuralFiller):
        filler = model.copy()
    elif model in classes:
        if init is not None:
            filler = get_filler(init, device=device) if not isinstance(init, Filler) else init
            if not isinstance(filler, NeuralFiller) or filler.kind != model:
                raise GenfillError(f"init={init!r} is not a {model!r} model")
            filler = _adapt_init(filler, arch, n_cov)
        else:
            filler = classes[str(model)](device=device, n_covariates=n_cov, **arch)
    else:
        raise GenfillError(f"cannot train model {model!r}; trainable models: {sorted(classes)}")
    fit_kwargs = dict(max_steps=max_steps, max_time=max_time, seed=seed, progress=progress,
                      batch_size=batch_size, patch=patch, lr=lr, val_fraction=val_fraction,
                      augment=augment, val_split=val_split)
    from .lazy import is_lazy

    if isinstance(da, xr.DataArray) and is_lazy(da):
        prep = _train_streamed(filler, da, mask=mask, transform=transform, dims=dims,
                               covariates=covariates, block=block, fit_kwargs=fit_kwargs)
        nt, ny, nx = prep.shape
        data = {"shape": [1, nt, ny, nx], "observed_fraction": None, "streamed": True}
    else:
        prep = prepare(da, mask=mask, transform=transform, dims=dims)
        cov = prepare_covariates(covariates, prep)
        _check_covariates(filler, cov)
        filler.fit(_cubes(prep, cov), **fit_kwargs)
        ny, nx = prep.values.shape[-2:]
        data = {"shape": list(prep.values.shape),
                "observed_fraction": float(prep.observed.mean())}
    filler.meta.setdefault("training", {})["init"] = start
    init_source = init if isinstance(init, (str, Path)) else getattr(init, "source", None)
    if init_source:  # where a refit (validate) starts again: these weights, not from scratch
        filler.meta["init_source"] = str(init_source)
    filler.meta.update({
        "trained_on": "user", "variable": str(da.name), "units": da.attrs.get("units", ""),
        "transform": prep.transform.name,
        "normalisation": {"mean": prep.mean.tolist(), "std": prep.std.tolist()},
        "training_data": {**data, "grid": [int(ny), int(nx)], "dims": list(da.dims)},
    })
    return filler


def _train_streamed(filler: Filler, da: xr.DataArray, *, mask, transform: str, dims,
                    covariates, block, fit_kwargs: dict[str, Any]):
    """Fit ``filler`` on a dask-backed field, blocks streamed by
    :class:`xgenfill.streaming.ArchiveSampler` (never the whole archive in memory); returns
    the sampler (its transform and normalisation are the model's)."""
    from .streaming import DEFAULT_BLOCK, ArchiveSampler

    covs = [covariates] if isinstance(covariates, xr.DataArray) else list(covariates or [])
    want = getattr(filler, "arch", {}).get("n_covariates", 0)
    if len(covs) != want:
        raise GenfillError(f"model {filler.name!r} was built for {want} covariate(s), got "
                           f"{len(covs)}")
    if block is not None and (len(block) != 3 or min(block) < 1):
        raise GenfillError(f"block must be three positive sizes (steps, rows, columns), got "
                           f"{block!r}")
    if getattr(filler, "arch", {}).get("dineof_guide"):
        raise GenfillError("a model with dineof_guide=True needs the whole field for DINEOF's "
                           "reconstruction and cannot stream its training; load the data "
                           "(da.load()) or train with dineof_guide=False")
    sampler = ArchiveSampler(da, mask=mask, transform=transform, dims=dims, covariates=covs,
                             block=tuple(block or DEFAULT_BLOCK), seed=fit_kwargs["seed"])
    filler.fit([], stream=sampler, **fit_kwargs)
    return sampler
