"""Quick-look figures (matplotlib is an optional extra: ``pip install xgenfill[plot]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .axes import find_axes
from .errors import GenfillError
from .post import FILLS


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise GenfillError("plotting needs matplotlib: pip install 'xgenfill[plot]'") from None
    return plt


def plot_fill(original: xr.DataArray, filled: xr.Dataset, path: str | Path | None = None,
              time: int | None = None):
    """Draw maps of the observed field, the filled field and the fill status at one step.

    By default the time step with the most filled pixels is shown. Chlorophyll-like (log10)
    fields get a log colour scale; all panels use the grid's coordinates.

    Parameters
    ----------
    original : xarray.DataArray
        The gappy input of :func:`xgenfill.inpaint`.
    filled : xarray.Dataset
        Its Dataset form (``return_dataset=True``), with ``<var>_filled_flag``.
    path : str or pathlib.Path, optional
        Write the figure there (PNG, PDF...) and close it; otherwise return it open.
    time : int, optional
        Index of the time step to draw.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (closed when it was written to ``path``).

    Raises
    ------
    GenfillError
        If matplotlib is not installed.

    See Also
    --------
    xgenfill.inpaint : Makes ``filled``.
    plot_validation : Figure of a validation.

    Examples
    --------
    >>> import xgenfill
    >>> from xgenfill.plot import plot_fill
    >>> chl = xgenfill.open_sample("oahu").chlor_a
    >>> out = chl.genfill.inpaint(model="linear_time", return_dataset=True)
    >>> fig = plot_fill(chl, out, "oahu_filled.png")
    >>> len(fig.axes) >= 3
    True
    """
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    name = original.name
    axes = find_axes(original)
    flag = filled[f"{name}_filled_flag"]
    if axes.time is not None:
        if time is None:
            other = [d for d in flag.dims if d != axes.time]
            # the step with most of both: a partly cloudy image shows the fill best
            n_fill = flag.isin(FILLS).sum(other).values
            n_obs = (flag == 0).sum(other).values
            time = int(np.argmax(n_fill * n_obs))
        sel = {axes.time: time}
        obs, fil, flg = original.isel(sel), filled[name].isel(sel), flag.isel(sel)
    else:
        obs, fil, flg = original, filled[name], flag
    extra = [d for d in obs.dims if d not in (axes.y, axes.x)]
    if extra:
        obs, fil, flg = (a.isel({d: 0 for d in extra}) for a in (obs, fil, flg))
    log = filled[f"{name}_uncertainty"].attrs.get("transform") == "log10"
    vals = obs.values[np.isfinite(obs.values)]
    if not vals.size:
        vals = fil.values[np.isfinite(fil.values)]
    lo, hi = (np.percentile(vals, [1, 99]) if vals.size else (None, None))
    norm = LogNorm(vmin=max(lo, 1e-3), vmax=hi) if log and vals.size else None
    fig, axs = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    kw = dict(norm=norm) if norm else dict(vmin=lo, vmax=hi)
    # the three panels share the grid's own coordinates (a descending latitude stays the same
    # way up in every panel)
    xy = [obs[d] if d in obs.coords else np.arange(obs.sizes[d]) for d in (axes.x, axes.y)]
    for ax, data, title in ((axs[0], obs, "observed"), (axs[1], fil, "filled")):
        im = ax.pcolormesh(*xy, data.transpose(axes.y, axes.x).values, shading="auto", **kw)
        ax.set_title(f"{name} {title}")
        fig.colorbar(im, ax=ax, label=original.attrs.get("units", ""))
    values = [int(v) for v in np.atleast_1d(flag.attrs["flag_values"])]
    cmap = plt.get_cmap("viridis", len(values))
    im = axs[2].pcolormesh(*xy, flg.transpose(axes.y, axes.x).values, shading="auto", cmap=cmap,
                           vmin=-0.5, vmax=len(values) - 0.5)
    cb = fig.colorbar(im, ax=axs[2], ticks=values)
    cb.ax.set_yticklabels(str(flag.attrs["flag_meanings"]).split())
    axs[2].set_title("status")
    when = str(original[axes.time].values[time])[:10] if axes.time is not None else ""
    fig.suptitle(f"xgenfill: {name} {when}")
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def plot_validation(result: xr.Dataset, original: xr.DataArray, path: str | Path | None = None,
                    model: str | None = None, time: int | None = None):
    """Draw the figure of a :func:`xgenfill.validate` result.

    Maps of the observed field, the held-out pixels, the fill there and its error at one time
    step; the rank (PIT) histogram; the zonal spectra of the observed signal and of each
    model's error; RMSE per model.

    Parameters
    ----------
    result : xarray.Dataset
        What :func:`xgenfill.validate` returned.
    original : xarray.DataArray
        The field it was run on.
    path : str or pathlib.Path, optional
        Write the figure there and close it; otherwise return it open.
    model : str, optional
        The model whose fill is mapped (default: the lowest RMSE).
    time : int, optional
        Index of the time step mapped (default: the one with the most held-out pixels).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (closed when it was written to ``path``).

    Raises
    ------
    GenfillError
        If matplotlib is not installed.

    See Also
    --------
    xgenfill.validate : Makes ``result``.
    plot_fill : Maps of a fill.

    Examples
    --------
    >>> import xgenfill
    >>> from xgenfill.plot import plot_validation
    >>> chl = xgenfill.open_sample("oahu").chlor_a
    >>> result = chl.genfill.validate(models=["linear_time", "climatology"])
    >>> fig = plot_validation(result, chl, "oahu_validation.png")
    >>> len(fig.axes) >= 4
    True
    """
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    model = model or str(result.model.values[int(np.nanargmin(
        result.rmse.sel(space="transformed").values))])
    axes = find_axes(original)
    hold = result.holdout
    pred = result.prediction_map.sel(model=model)
    if axes.time is not None:
        if time is None:
            other = [d for d in hold.dims if d != axes.time]
            time = int(np.argmax(hold.sum(other).values))
        sel = {axes.time: time}
        obs, hold, pred = original.isel(sel), hold.isel(sel), pred.isel(sel)
    extra = [d for d in obs.dims if d not in (axes.y, axes.x)]
    if extra:
        obs, hold, pred = (a.isel({d: 0 for d in extra}) for a in (obs, hold, pred))
    obs, hold, pred = (a.transpose(axes.y, axes.x).values for a in (obs, hold, pred))
    log = result.attrs.get("transform") == "log10"
    vals = obs[np.isfinite(obs)]
    lo, hi = np.percentile(vals, [1, 99]) if vals.size else (0, 1)
    kw = dict(norm=LogNorm(vmin=max(lo, 1e-3), vmax=hi)) if log else dict(vmin=lo, vmax=hi)
    err = (np.log10(pred) - np.log10(obs)) if log else pred - obs
    fig = plt.figure(figsize=(16, 8), constrained_layout=True)
    grid = fig.add_gridspec(2, 4)
    panels = [("observed (held-out pixels included)", obs, kw, None),
              ("held-out pixels", np.where(hold, 1.0, np.nan), dict(vmin=0, vmax=1), "Greys"),
              (f"{model}: fill at held-out pixels", pred, kw, None),
              ("error" + (" (log10)" if log else ""), err,
               dict(vmin=-np.nanmax(np.abs(err)) if np.isfinite(err).any() else -1,
                    vmax=np.nanmax(np.abs(err)) if np.isfinite(err).any() else 1), "RdBu_r")]
    for i, (title, data, style, cmap) in enumerate(panels):
        ax = fig.add_subplot(grid[0, i])
        im = ax.pcolormesh(data, shading="auto", cmap=cmap, **style)
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
    ax = fig.add_subplot(grid[1, 0])
    pit = result.pit.sel(model=model).values
    if pit.sum() > 0:
        ax.bar(np.arange(pit.size), pit / pit.sum(), color="tab:blue")
        ax.axhline(1 / pit.size, color="k", ls="--", lw=1)
        ax.set_title(f"rank (PIT) histogram: {model}")
    else:
        ax.text(0.5, 0.5, f"{model} is deterministic:\nno ensemble", ha="center", va="center")
        ax.set_axis_off()
    ax = fig.add_subplot(grid[1, 1:3])
    wl = result.wavelength.values
    ax.loglog(wl, result.psd_observed.values, "k-", lw=2, label="observed signal")
    for m in result.model.values:
        ax.loglog(wl, result.psd_error.sel(model=m).values, label=f"error {m}")
    ax.set_xlabel("zonal wavelength (pixels)")
    ax.set_ylabel("power")
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    ax.set_title("spectra on held-out steps")
    ax = fig.add_subplot(grid[1, 3])
    r = result.rmse.sel(space="transformed")
    ax.barh([str(m) for m in result.model.values], r.values, color="tab:orange")
    ax.set_xlabel("RMSE" + (" (log10)" if log else f" ({result.attrs.get('units', '')})"))
    if "spread_skill" in result:  # ensemble calibration beside the error: 1 is calibrated
        for i, m in enumerate(result.model.values):
            ratio = float(result.spread_skill.sel(model=m, space="transformed"))
            if np.isfinite(ratio):
                ax.text(float(r.values[i]), i, f" spread/skill {ratio:.2f}", va="center",
                        fontsize=8)
    ax.set_title("RMSE and ensemble spread/skill")
    fig.suptitle(f"xgenfill.validate: {result.attrs.get('variable', '')}, holdout="
                 f"{result.attrs.get('holdout')}")
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
