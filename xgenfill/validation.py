"""``validate()``: score any model on observed pixels hidden from it.

There is no truth inside a gap, so observed pixels are hidden (under transplanted real clouds by
default), every model fills them from what is left - models that learn from the data are
refitted without them - and the scores are computed on the hidden pixels only.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import xarray as xr

from . import metrics
from .api import (_check_covariates, _cubes, build_filler, check_seed, check_trained_for,
                  prepare_covariates)
from .errors import GenfillError
from .masks import cluster_clouds, random_pixels, transplant_clouds
from .models.base import Filler
from .post import history_line
from .prepare import Prepared, prepare, require_same_grid
from .transforms import describe, variable_family

__all__ = ["validate", "make_holdout"]

QUANTILES = np.array([0.05, 0.25, 0.5, 0.75, 0.95])


def _user_holdout(user: xr.DataArray, prep: Prepared) -> np.ndarray:
    if not isinstance(user, xr.DataArray):
        raise GenfillError("holdout= must be 'transplant', 'clouds', 'random' or a boolean "
                           "DataArray on the data's grid")
    require_same_grid(user, prep.source, "holdout mask")
    if user.dtype != bool:
        raise GenfillError(f"holdout mask must be boolean, got {user.dtype}")
    return prep.canonical_of(user)


def make_holdout(prep: Prepared, holdout: str | xr.DataArray = "transplant",
                 fraction: float = 0.1, seed: int = 0, cloud_size: int = 500) -> np.ndarray:
    """Boolean (field, time, y, x) mask of observed pixels to hide (canonical layout)."""
    if not isinstance(holdout, xr.DataArray) and not 0 < fraction <= 0.5:
        raise GenfillError(f"holdout fraction must lie in (0, 0.5], got {fraction}")
    obs = prep.observed & prep.ocean[:, None]
    if isinstance(holdout, xr.DataArray):
        mask = _user_holdout(holdout, prep) & obs
    else:
        rng = np.random.default_rng(seed)
        mask = np.zeros_like(obs)
        for f in range(obs.shape[0]):
            if holdout == "transplant":
                mask[f] = transplant_clouds(obs[f], prep.ocean[f], fraction, rng)
            elif holdout == "clouds":
                n = int(fraction * obs[f].sum())
                if n >= 1:
                    mask[f] = cluster_clouds(obs[f], n, cloud_size, rng)
            elif holdout == "random":
                mask[f] = random_pixels(obs[f], fraction, rng)
            else:
                raise GenfillError(f"unknown holdout {holdout!r}; use 'transplant', 'clouds', "
                                   "'random' or a boolean DataArray")
    if not mask.any():
        hint = (" The data have no gaps, so there is no cloud to transplant: pass "
                "holdout='clouds' (DINEOF-style clouds) or 'random'."
                if isinstance(holdout, str) and holdout == "transplant" and not prep.gaps.any()
                else "")
        raise GenfillError("nothing left to hide: no observed pixel could be held out (too few "
                           "observations, or no cloud mask to transplant)." + hint)
    # keep at least one observation per field and time step with data
    return mask


def _step_quantiles(prep: Prepared, fields: np.ndarray) -> np.ndarray:
    """QUANTILES of the finite values of each step of normalised (F, S, Y, X) fields, in
    physical units: (S, quantile)."""
    phys = prep.to_physical(fields, field_axis=0)
    q = np.full((fields.shape[1], QUANTILES.size), np.nan)
    for j in range(fields.shape[1]):
        v = phys[:, j][np.isfinite(phys[:, j])]
        if v.size:
            q[j] = np.quantile(v, QUANTILES)
    return q


def _resolve(spec: Any, model_kwargs: dict, fit: dict | None, cubes, prep: Prepared
             ) -> tuple[str, Filler, float, str]:
    """Build a model; learned models that saw the user's data are refitted on ``cubes``."""
    from .models.neural import NeuralFiller

    if isinstance(spec, Filler):
        label, filler = spec.name, spec
        check_trained_for(filler, prep.transform.name,
                          variable_family(prep.source, prep.transform.name),
                          describe(prep.source))
    else:
        label = str(spec)
        filler = build_filler(spec, prep.transform.name, prep.source,
                              **model_kwargs.get(label, {}))
    from .models.guard import Guarded

    if isinstance(filler, Guarded) and isinstance(filler.network, NeuralFiller):
        # model='auto' with a network: the network is refitted as it would be alone
        net, fit_seconds, summary = _refit(filler.network, fit, cubes)
        if net is not filler.network:
            filler = Guarded(net, filler.candidates, filler.holdout_fraction)
        return label, filler, fit_seconds, summary
    if isinstance(filler, NeuralFiller):
        filler, fit_seconds, summary = _refit(filler, fit, cubes)
        return label, filler, fit_seconds, summary
    return label, filler, 0.0, ""


def _point_blocks(hide: np.ndarray) -> np.ndarray:
    """The block of every held-out pixel, in the order of ``hide[hide]`` (F, T, Y, X): its
    field and time step, or, where one step holds every held-out pixel (a single image, or a
    benchmark that hides one date), its cloud (connected held-out pixels). Pixels of one
    block share their errors; a bootstrap resamples blocks, not pixels."""
    from scipy import ndimage

    nt = hide.shape[1]
    images = np.argwhere(hide.any(axis=(2, 3)))  # (field, step) of every image with some
    if len(images) > 1:
        f_idx, t_idx = np.nonzero(hide)[:2]  # in the order of hide[hide]
        return f_idx * nt + t_idx
    labels = np.zeros(hide.shape, int)
    f, t = images[0] if len(images) else (0, 0)
    labels[f, t] = ndimage.label(hide[f, t])[0]
    return labels[hide]


def _refit(filler: Any, fit: dict | None, cubes) -> tuple[Any, float, str]:
    """A learned model that saw the user's data (or any, with ``fit=``), refitted on
    ``cubes`` (the data without the held-out pixels)."""
    trained_on_user = filler.meta.get("trained_on") == "user"
    if not (trained_on_user or fit is not None):
        return filler, 0.0, ""
    kwargs = dict(filler.meta.get("training_kwargs", {}))
    kwargs.update(fit or {})
    # a model trained on these data has seen the held-out pixels: start afresh (from the
    # pretrained weights it was fine-tuned from, if it was)
    if trained_on_user and filler.meta.get("init_source"):
        from .api import _adapt_init
        from .models.registry import get_filler

        fresh = _adapt_init(get_filler(filler.meta["init_source"]),
                            {"guides": filler.arch.get("guides", False),
                             "dineof_guide": filler.arch.get("dineof_guide", False),
                             **filler.options},
                            filler.arch.get("n_covariates", 0))
        fresh.meta["training_kwargs"] = dict(filler.meta.get("training_kwargs", {}))
    else:
        fresh = filler.fresh() if trained_on_user else filler.copy()
    t0 = time.perf_counter()
    fresh.fit(cubes, **kwargs)
    fit_seconds = time.perf_counter() - t0
    return fresh, fit_seconds, json.dumps(fresh.meta.get("training", {}), default=str)


def validate(da: xr.DataArray, models: Sequence[Any] | Any = ("dineof",), *,
             holdout: str | xr.DataArray = "transplant", fraction: float = 0.1, seed: int = 0,
             n_samples: int = 8, cloud_size: int = 500, mask=None, transform: str = "auto",
             dims: dict[str, str] | None = None, by_time: bool = False,
             fit: dict | None = None, model_kwargs: dict[str, dict] | None = None,
             spectrum_length: int = 32, keep_members: bool = False,
             covariates: "list[xr.DataArray] | xr.DataArray | None" = None) -> xr.Dataset:
    """Hide observed pixels, fill them with each model, and score the fills there.

    There is no truth inside a gap, so observed pixels are hidden (under transplanted real
    clouds by default), every model fills them from what is left (models that learn from the
    data are refitted without them) and the scores are computed on the hidden pixels only.

    Parameters
    ----------
    da : xarray.DataArray
        Gappy field, prepared as in :func:`inpaint`.
    models : str, model object or sequence of them, default ("dineof",)
        Model names, model objects, or a single one; any model :func:`inpaint` accepts.
    holdout : str or xarray.DataArray, default "transplant"
        ``"transplant"`` (default): real cloud masks of other time steps pasted onto the
        clearest ones (DINEOF ``dineof_cvp``, DINCAE ``addcvpoint``); ``"clouds"``: DINEOF-style
        clustered clouds of ``cloud_size`` pixels; ``"random"``: single pixels (optimistic:
        isolated pixels are easy to fill); or a boolean DataArray on the data's grid.
    fraction : float, default 0.1
        Share of the observed pixels to hide, in (0, 0.5].
    seed : int, default 0
        Seed of the holdout and of the generative models.
    n_samples : int, default 8
        Ensemble size for generative models (ensemble scores need at least 2).
    cloud_size : int, default 500
        Pixels per cloud with ``holdout="clouds"``.
    mask : xarray.DataArray, numpy.ndarray or "auto", optional
        Boolean land/sea mask (True = sea) or ``"auto"``, as in :func:`inpaint`.
    transform : {"auto", "log10", "logit", "identity"}, default "auto"
        Transform of the values, as in :func:`inpaint`; scores are given in it and in
        physical units.
    dims : dict, optional
        Explicit axis names, e.g. ``{"T": "date", "Y": "row", "X": "col"}``.
    by_time : bool, default False
        Also return RMSE, bias and n per time step.
    fit : dict, optional
        Training options (e.g. ``{"max_time": 120}``) for neural models: with it, each neural
        model is (re)trained on the data with the held-out pixels removed. Models trained on
        these data with :func:`xgenfill.train` are always refitted, so a held-out pixel never
        reaches training.
    model_kwargs : dict, optional
        Options per model label, e.g. ``{"dineof": {"nev": 20}}``.
    spectrum_length : int, default 32
        Length in pixels of the zonal segments of the error spectra.
    keep_members : bool, default False
        Also return every member at every held-out pixel (``members``, transformed units), e.g.
        to score several models on the pixels they all filled.
    covariates : xarray.DataArray or list of xarray.DataArray, optional
        Conditioning variables for neural models trained with them (never held out: they are
        other variables).

    Returns
    -------
    xarray.Dataset
        Scores by ``model`` (and ``space``: transformed, physical), ensemble scores, the rank
        (PIT) histogram, zonal spectra and effective resolution, the distribution of filled vs
        observed values per held-out time step, and the exact ``holdout`` mask used.
        Per held-out pixel (``point``): the ``truth``, each model's ``prediction`` and its
        ``point_block`` (time step, or cloud when one image holds them all) for
        block-bootstrap intervals such as :func:`xgenfill.metrics.rmse_ratio_interval`.

    Raises
    ------
    GenfillError
        If nothing can be held out (too few observations, no cloud to transplant), the
        holdout options are out of range, or :func:`inpaint` would refuse the input.

    See Also
    --------
    inpaint : The fill being scored.
    xgenfill.plot.plot_validation : Figure of the result.

    Examples
    --------
    >>> import xgenfill
    >>> chl = xgenfill.open_sample("oahu").chlor_a
    >>> scores = xgenfill.validate(chl, models=["linear_time", "climatology"])
    >>> scores.rmse.sel(space="transformed").dims
    ('model',)
    >>> scores.model.values.tolist()
    ['linear_time', 'climatology']
    """
    check_seed(seed, allow_none=False)
    if isinstance(models, (str, Filler)):
        models = [models]
    model_kwargs = model_kwargs or {}
    prep = prepare(da, mask=mask, transform=transform, dims=dims)
    hide = make_holdout(prep, holdout, fraction, seed, cloud_size)
    held = prep.without(hide)  # what models see: no held-out value, not even in the stats
    # the truth, in the same normalised units (for scoring only)
    truth_cube = ((prep.transformed_source() - held.mean[:, None, None, None])
                  / held.std[:, None, None, None])
    prep = replace(held, values=np.where(held.ocean[:, None], truth_cube, np.nan)
                   .astype(np.float32))
    steps_h = hide.reshape(hide.shape[0], hide.shape[1], -1).any(axis=(0, 2))
    cov = prepare_covariates(covariates, prep)
    cubes = _cubes(held, cov)
    for c in cubes:
        c.steps = steps_h

    truth_n = prep.values[hide].astype(np.float64)  # normalised
    field_idx = np.nonzero(hide)[0]
    mean, std = prep.mean[field_idx], prep.std[field_idx]
    truth_t = truth_n * std + mean
    truth_p = prep.transform.inverse(truth_t)
    tf = prep.transform
    names, rows = [], []
    nt = prep.values.shape[1]
    time_idx = np.nonzero(hide)[1]
    kmax = max(n_samples, 1)
    pit = []
    err_psd, per_time, filled_q, predictions, all_members = [], [], [], [], []
    valid = (prep.observed & prep.ocean[:, None])[:, steps_h]  # fully observed truth
    for spec in models:
        label, filler, fit_s, summary = _resolve(spec, model_kwargs, fit, cubes, prep)
        _check_covariates(filler, cov)
        k = n_samples if filler.stochastic else 1
        t0 = time.perf_counter()
        fills = [filler.fill(c, n_samples=k, seed=seed) for c in cubes]
        fill_s = time.perf_counter() - t0
        # as inpaint does: values outside the plausible range are not fills (n_not_filled)
        fills = [held.plausible_fill(f, fl) for f, fl in enumerate(fills)]
        samples = np.stack([fl.samples for fl in fills], axis=1)  # (K, F, T, Y, X)
        point = np.stack([fl.best() for fl in fills])  # (F, T, Y, X): what inpaint returns
        members = samples[:, hide].astype(np.float64) * std + mean  # (K, n) transformed
        best = (point[hide].astype(np.float64) * std + mean
                if any(fl.mean is not None for fl in fills) else members.mean(0))
        ok = np.isfinite(members).all(0) & np.isfinite(best)
        predictions.append(tf.inverse(best))
        all_members.append(np.pad(members, ((0, kmax - k), (0, 0)), constant_values=np.nan))
        row: dict[str, Any] = {"fit_seconds": fit_s, "fill_seconds": fill_s,
                               "n_not_filled": int((~ok).sum()), "training": summary,
                               # model='auto': the weights its own check gave each candidate
                               "guard": "; ".join(str(fl.info.get("guard_weights", ""))
                                                  for fl in fills).strip("; ")}
        for space, pred, truth in (("transformed", best, truth_t),
                                   ("physical", tf.inverse(best), truth_p)):
            sc = metrics.deterministic_scores(pred[ok], truth[ok])
            ref = truth[ok] - (np.mean(truth[ok]) if truth[ok].size else 0)
            sc["rms"] = float(np.sqrt(np.mean(ref**2))) if ref.size else np.nan
            sc["skill"] = 1 - sc["rmse"] / sc["rms"] if sc["rms"] else np.nan
            es = metrics.ensemble_scores(members[:, ok] if space == "transformed"
                                         else tf.inverse(members[:, ok]), truth[ok])
            row[space] = {**sc, **es}
        hist = (metrics.rank_histogram(members[:, ok], truth_t[ok], seed) if k > 1
                else np.zeros(kmax + 1, int))
        pit.append(np.pad(hist, (0, kmax + 1 - hist.size)))
        # spectra on rows of the held-out steps: error of the fill vs the observed signal
        mean_fill = np.where(hide, point, np.nan)
        err = np.nan_to_num(np.where(hide, mean_fill - prep.values, 0.0))  # not filled: 0
        err_psd.append(metrics.zonal_spectrum(err[:, steps_h], valid, spectrum_length))
        if by_time:
            pt = []
            for t in range(nt):
                sel = (time_idx == t) & ok
                s = metrics.deterministic_scores(best[sel], truth_t[sel])
                pt.append((s["rmse"], s["bias"], s["n"]))
            per_time.append(pt)
        # distribution of filled values (all gap pixels of held-out steps), physical units
        filled_q.append(_step_quantiles(prep, np.where(held.gaps, samples[0], np.nan)[:, steps_h]))
        names.append(label)
        rows.append(row)

    sig_psd = metrics.zonal_spectrum(
        np.where(prep.ocean[:, None], prep.values, 0.0)[:, steps_h], valid, spectrum_length)
    obs_q = _step_quantiles(prep, np.where(prep.ocean[:, None], prep.values, np.nan)[:, steps_h])

    spaces = ["transformed", "physical"]
    data: dict[str, Any] = {}
    for key in ("n", "rms", "rmse", "mae", "bias", "corr", "skill", "crps", "spread_skill",
                "coverage_50", "coverage_90"):
        arr = np.array([[r[s][key] for s in spaces] for r in rows], dtype=float)
        if key in ("n", "coverage_50", "coverage_90"):
            data[key] = (("model",), arr[:, 0].astype(int) if key == "n" else arr[:, 0])
        else:
            data[key] = (("model", "space"), arr)
    for key in ("fit_seconds", "fill_seconds", "n_not_filled", "training", "guard"):
        data[key] = (("model",), np.array([r[key] for r in rows]))
    data["pit"] = (("model", "rank"), np.array(pit))
    data["prediction"] = (("model", "point"), np.array(predictions))
    data["truth"] = (("point",), truth_p)
    if keep_members:
        data["members"] = (("model", "member", "point"), np.array(all_members))
        data["truth_transformed"] = (("point",), truth_t)
    wl = spectrum_length / np.arange(1, spectrum_length // 2 + 1)
    data["psd_observed"] = (("wavelength",), sig_psd[1:])
    data["psd_error"] = (("model", "wavelength"), np.array([e[1:] for e in err_psd]))
    data["effective_resolution"] = (("model",), np.array(
        [metrics.effective_resolution(e, sig_psd, spectrum_length) for e in err_psd]))
    data["filled_quantiles"] = (("model", "holdout_step", "quantile"), np.array(filled_q))
    data["observed_quantiles"] = (("holdout_step", "quantile"), obs_q)
    coords: dict[str, Any] = {"model": names, "space": spaces, "rank": np.arange(kmax + 1),
                              "wavelength": wl, "quantile": QUANTILES}
    if prep.axes.time:
        coords["holdout_step"] = prep.source[prep.axes.time].values[np.flatnonzero(steps_h)]
    if by_time and prep.axes.time:
        pt = np.array(per_time)  # (model, T, 3)
        data["rmse_by_time"] = (("model", "time"), pt[..., 0])
        data["bias_by_time"] = (("model", "time"), pt[..., 1])
        data["n_by_time"] = (("model", "time"), pt[..., 2].astype(int))
        coords["time"] = prep.source[prep.axes.time].values
    coords["point_block"] = ("point", _point_blocks(hide))
    out = xr.Dataset(data, coords=coords)
    out["point_block"].attrs["long_name"] = (
        "block of each held-out pixel for resampling: its time step (of its field), or its "
        "cloud when one image holds them all (see xgenfill.metrics.rmse_ratio_interval)")
    # the exact hold-out mask, on the input's grid and dimension order
    from .post import _to_source_layout

    hold = _to_source_layout(prep, hide[None].astype(np.int8), ("member",))[0].astype(bool)
    out["holdout"] = xr.DataArray(hold, dims=prep.source.dims, coords=prep.source.coords)
    maps = np.full((len(names),) + hide.shape, np.nan, dtype=np.float32)
    for i, pred in enumerate(predictions):
        maps[i][hide] = pred
    out["prediction_map"] = xr.DataArray(
        _to_source_layout(prep, maps, ("model",)), dims=("model",) + prep.source.dims,
        coords={**{k: v for k, v in prep.source.coords.items()}, "model": names},
        attrs={"long_name": "ensemble-mean prediction at held-out pixels (NaN elsewhere)",
               "units": str(da.attrs.get("units", ""))})
    out["wavelength"].attrs = {"units": "pixels", "long_name": "zonal wavelength"}
    out["effective_resolution"].attrs = {
        "units": "pixels", "long_name": "shortest resolved zonal wavelength",
        "comment": "where PSD(fill error)/PSD(observed) reaches 0.5 (Ballarotta et al. 2019)"}
    for v in ("filled_quantiles", "observed_quantiles"):
        out[v].attrs["units"] = str(da.attrs.get("units", ""))
    out["training"].attrs["long_name"] = (
        "summary of the fit made for this run, JSON ('' without one); train(max_steps="
        "horizon_steps, seed=seed) repeats it")
    out["rms"].attrs["long_name"] = "RMS of held-out anomalies (about their mean)"
    out["skill"].attrs["long_name"] = "1 - RMSE / RMS"
    out["crps"].attrs["long_name"] = "continuous ranked probability score of the ensemble"
    out["space"].attrs["comment"] = f"transformed = {tf.name} space; physical = data units"
    holdout_name = holdout if isinstance(holdout, str) else "user"
    out.attrs = {"holdout": holdout_name, "fraction": fraction, "seed": seed,
                 "n_samples": n_samples, "transform": tf.name, "variable": str(da.name),
                 "units": str(da.attrs.get("units", "")),
                 "history": history_line(f"xgenfill.validate(models={names!r}, "
                                         f"holdout={holdout_name!r}, fraction={fraction})", None)}
    return out
