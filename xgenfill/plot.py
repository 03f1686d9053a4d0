"""Quick-look figures (matplotlib is an optional extra: ``pip install xgenfill[plot]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .axes import find_axes
from .errors import GenfillError


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
    """Maps of the observed field, the filled field and the fill status at one time step.

    ``filled`` is the Dataset form of :func:`xgenfill.inpaint`. By default the time step with
    the most filled pixels is shown. Chlorophyll-like (log10) fields get a log colour scale.
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
            n_fill, n_obs = (flag == 1).sum(other).values, (flag == 0).sum(other).values
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
    for ax, data, title in ((axs[0], obs, "observed"), (axs[1], fil, "filled")):
        im = ax.pcolormesh(data[axes.x] if axes.x in data.coords else np.arange(data.sizes[axes.x]),
                           data[axes.y] if axes.y in data.coords else np.arange(data.sizes[axes.y]),
                           data.transpose(axes.y, axes.x).values, shading="auto", **kw)
        ax.set_title(f"{name} {title}")
        fig.colorbar(im, ax=ax, label=original.attrs.get("units", ""))
    cmap = plt.get_cmap("viridis", 4)
    im = axs[2].pcolormesh(flg.transpose(axes.y, axes.x).values, cmap=cmap, vmin=-0.5, vmax=3.5)
    cb = fig.colorbar(im, ax=axs[2], ticks=[0, 1, 2, 3])
    cb.ax.set_yticklabels(str(flag.attrs["flag_meanings"]).split())
    axs[2].set_title("status")
    when = str(original[axes.time].values[time])[:10] if axes.time is not None else ""
    fig.suptitle(f"xgenfill: {name} {when}")
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
