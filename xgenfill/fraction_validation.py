"""Score fills of fractions that sum to 1 on observed pixels hidden under real clouds.

As :func:`xgenfill.validate` for one variable: there is no truth inside a gap, so whole
observed compositions (every fraction of a pixel together, as a retrieval loses them) are
hidden under cloud masks transplanted from other dates, each model fills them from what is
left (:func:`xgenfill.inpaint_fractions`, with the covariates when given; trainable models
are trained again without the hidden pixels when ``fit=`` is given), and the fills are scored
there: per fraction, in centred log-ratio space, and for closure (the largest departure of a
filled pixel's fractions from a sum of 1).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .errors import GenfillError

__all__ = ["validate_fractions"]


def _crps_gaussian(mu: np.ndarray, sigma: np.ndarray, y: np.ndarray) -> float:
    """Mean CRPS of normal distributions N(mu, sigma) at observations y (closed form)."""
    from scipy.stats import norm

    z = (y - mu) / sigma
    return float(np.mean(sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z)
                                  - 1 / np.sqrt(np.pi))))


def _label(spec: Any) -> str:
    """The ``model`` coordinate of a spec: its name; a mapping's distinct names."""
    if isinstance(spec, Mapping):
        return ", ".join(sorted({_label(m) for m in spec.values()}))
    return spec if isinstance(spec, str) else str(getattr(spec, "name", type(spec).__name__))


def validate_fractions(ds: xr.Dataset, variables: Sequence[str],
                       models: Sequence[Any] | Any = ("anomaly",), *,
                       covariates: "Sequence[str | xr.DataArray] | None" = None,
                       fraction: float = 0.1, seed: int = 0, n_samples: int = 8,
                       mask: xr.DataArray | np.ndarray | None = None,
                       dims: dict[str, str] | None = None,
                       fit: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Hide observed compositions under transplanted real clouds, fill, and score there.

    The fractions of a pixel are hidden together (as a retrieval loses them), each model
    fills them from what is left, and the fills are scored on the hidden pixels: per
    fraction, in centred log-ratio space, and for closure. The covariates keep all their
    values.

    Parameters
    ----------
    ds : xarray.Dataset
        Dataset holding the fractions (and the covariates named in ``covariates``), with a
        time axis.
    variables : list of str
        Names of the two or more fractions of one composition.
    models : str, model mapping, or a sequence of them, default ("anomaly",)
        What :func:`xgenfill.inpaint_fractions` accepts as ``model=``: a classical model name,
        a ``{fraction: model}`` mapping (e.g. from :func:`xgenfill.train_fractions`), or
        ``"diffusion"`` / ``"vae"`` / ``"joint"`` / ``"joint_vae"`` with ``fit=`` (trained
        here on the data left after hiding, with :func:`xgenfill.train_fractions`).
    covariates : list of str or xarray.DataArray, optional
        Covariates for every model (see :func:`xgenfill.inpaint_fractions`); they keep all
        their values (only the fractions are hidden).
    fraction : float, default 0.1
        Share of the observed compositions to hide, in (0, 0.5].
    seed : int, default 0
        Seed of the holdout and of the generative models.
    n_samples : int, default 8
        Ensemble size of generative models (their spread gives ``crps``).
    mask : xarray.DataArray, numpy.ndarray or "auto", optional
        Boolean land/sea mask (True = sea) or ``"auto"``, as in :func:`xgenfill.inpaint_fractions`.
    dims : dict, optional
        Explicit axis names, as in :func:`xgenfill.inpaint_fractions`.
    fit : dict, optional
        Options of :func:`xgenfill.train_fractions` for the models named by kind
        entries of ``models`` (``max_steps``, ``patch``...).

    Returns
    -------
    xarray.Dataset
        Over ``model`` and ``variable``: ``n``, ``rmse``, ``mae``, ``bias`` (fraction units);
        over ``model``: ``rmse_mean`` (mean of the fractions' RMSE), ``clr_rmse`` (centred
        log-ratio space), ``max_sum_deviation`` (largest ``|sum - 1|`` of a filled pixel),
        ``share_filled`` (of the hidden compositions), ``crps`` (mean over fractions of the
        CRPS of a normal with the fill's spread; NaN for deterministic models) and
        ``seconds``.

    Raises
    ------
    GenfillError
        If the data have no time axis (clouds are transplanted from other dates), nothing
        could be hidden, or ``fraction`` is out of range; and what
        :func:`xgenfill.inpaint_fractions` refuses.

    See Also
    --------
    xgenfill.validate : The same for one variable.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> import xgenfill
    >>> chl = xgenfill.open_sample("oahu").chlor_a.isel(time=slice(0, 60))
    >>> pn, p = 1.057 * (1 - np.exp(-0.851 * chl)), 0.107 * (1 - np.exp(-6.801 * chl))
    >>> ds = xr.Dataset({"pico": p / chl, "nano": (pn - p) / chl, "micro": 1 - pn / chl,
    ...                  "chl": chl})
    >>> res = xgenfill.validate_fractions(ds, ["pico", "nano", "micro"],
    ...                                   models=["linear_time", "anomaly"])
    >>> res.rmse.dims, bool((res.max_sum_deviation < 1e-6).all())
    (('model', 'variable'), True)
    """
    import time

    from .axes import find_axes
    from .fractions import JOINT, inpaint_fractions, train_fractions
    from .masks import transplant_clouds
    from .prepare import user_mask_array

    if not 0 < fraction <= 0.5:
        raise GenfillError(f"fraction must be in (0, 0.5], got {fraction!r}")
    variables = list(variables)
    if isinstance(models, (str, Mapping)) or not isinstance(models, Sequence):
        models = [models]
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise GenfillError(f"variables {missing} not in the dataset (has {list(ds.data_vars)})")
    first = ds[variables[0]]
    axes = find_axes(first, dims)
    if axes.time is None or first.sizes[axes.time] < 2:
        raise GenfillError("validate_fractions transplants clouds from other dates: it needs "
                           "a time axis with two or more steps")
    order = [axes.time] + [d for d in first.dims if d != axes.time]
    vals = np.stack([ds[v].transpose(*order).values.astype(np.float64) for v in variables])
    # compositions: pixels where every fraction is observed, as (T, rows, columns) images
    obs = np.isfinite(vals).all(0)
    t = first.sizes[axes.time]
    obs2 = obs.reshape(t, -1, obs.shape[-1])
    ocean = obs2.any(0)
    user = user_mask_array(mask, first, axes)
    if user is not None:
        ocean &= np.asarray(user.transpose(*[d for d in order if d != axes.time]).values,
                            bool).reshape(ocean.shape)
    hidden = transplant_clouds(obs2, ocean, fraction=fraction, rng=seed)
    if not hidden.any():
        raise GenfillError("no observed composition could be hidden (too few dates with "
                           "clouds to transplant)")
    hide = xr.DataArray(hidden.reshape(first.transpose(*order).shape), dims=order)
    left = ds.copy()
    for v in variables:
        left[v] = ds[v].where(~hide.transpose(*first.dims))
    truth = vals.reshape(len(variables), -1)[:, hidden.ravel()]

    rows = []
    names = []
    for spec in models:
        t0 = time.perf_counter()
        model = spec
        if isinstance(spec, str) and spec in ("diffusion", "vae", *JOINT):
            if fit is None:
                raise GenfillError(f"model {spec!r} has no pretrained weights for fractions: "
                                   "pass fit={'max_steps': ...} to train it here, or a "
                                   "trained mapping from xgenfill.train_fractions")
            model = train_fractions(left, variables, model=spec, covariates=covariates,
                                    mask=mask, dims=dims, seed=seed, **dict(fit))
        # an ensemble where every fraction's model is a generative model object (names
        # and paths: classical fills, one member)
        parts = model.values() if isinstance(model, Mapping) else [model]
        k = n_samples if all(getattr(m, "stochastic", False) for m in parts) else 1
        out = inpaint_fractions(left, variables, model=model, covariates=covariates,
                                n_samples=k, seed=seed, mask=mask, dims=dims)
        pred = np.stack([out[v].transpose(*order).values.astype(np.float64)
                         for v in variables]).reshape(len(variables), -1)[:, hidden.ravel()]
        spread = np.stack([out[f"{v}_uncertainty"].transpose(*order).values
                           .astype(np.float64) for v in variables]
                          ).reshape(len(variables), -1)[:, hidden.ravel()]
        ok = np.isfinite(pred).all(0)
        p, y = pred[:, ok], truth[:, ok]
        err = p - y

        def clr(a):
            la = np.log(np.clip(a, 1e-4, 1.0))
            return la - la.mean(0)

        s = spread[:, ok]
        good = np.isfinite(s).all(0) & (s > 0).all(0)
        crps = (np.mean([_crps_gaussian(p[i][good], s[i][good], y[i][good])
                         for i in range(len(variables))])
                if k > 1 and good.any() else np.nan)
        rows.append({
            "n": [int(ok.sum())] * len(variables),
            "rmse": np.sqrt(np.mean(err ** 2, axis=1)), "mae": np.mean(np.abs(err), axis=1),
            "bias": np.mean(err, axis=1),
            "clr_rmse": float(np.sqrt(np.mean((clr(p) - clr(y)) ** 2))) if ok.any() else np.nan,
            "max_sum_deviation": float(np.abs(p.sum(0) - 1).max()) if ok.any() else np.nan,
            "share_filled": float(ok.mean()), "crps": float(crps),
            "seconds": time.perf_counter() - t0})
        names.append(_label(spec))
    per_var = {key: (("model", "variable"), np.array([r[key] for r in rows], float))
               for key in ("n", "rmse", "mae", "bias")}
    per_model = {key: ("model", np.array([r[key] for r in rows], float))
                 for key in ("clr_rmse", "max_sum_deviation", "share_filled", "crps",
                             "seconds")}
    res = xr.Dataset({**per_var, **per_model},
                     coords={"model": [str(n) for n in names], "variable": variables})
    res["n"] = res.n.astype(int)
    res["rmse_mean"] = res.rmse.mean("variable")
    res.attrs = {"holdout": "transplanted real clouds (whole compositions)",
                 "fraction": fraction, "seed": seed, "hidden_compositions": int(hidden.sum()),
                 "covariates": str([getattr(c, "name", c) for c in covariates or []])}
    return res
