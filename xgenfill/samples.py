"""Small real data samples shipped inside the package (see ``xgenfill/data/README.md``)."""

from __future__ import annotations

from importlib import resources

import xarray as xr

from .errors import GenfillError

SAMPLES = {
    "phytofit": ("phytofit_nwa_2015_amj.nc",
                 "MODIS-Aqua daily chl, NW Atlantic, Apr-Jun 2015, 91 x 96 x 160 (MIT, BIO-RSG)"),
    "oahu": ("occci_oahu_monthly.nc",
             "ESA OC-CCI v6 monthly chl around Oahu, 1998-2022, 300 x 17 x 21 (ESA CCI open)"),
}


def open_sample(name: str = "phytofit") -> xr.Dataset:
    """Open a bundled real sample (loaded in memory; no network needed).

    Parameters
    ----------
    name
        ``"phytofit"`` (daily MODIS chl with real clouds) or ``"oahu"`` (monthly OC-CCI chl).
    """
    if name not in SAMPLES:
        raise GenfillError(f"unknown sample {name!r}; available: {sorted(SAMPLES)}")
    path = resources.files("xgenfill") / "data" / SAMPLES[name][0]
    with resources.as_file(path) as p, xr.open_dataset(p) as ds:
        return ds.load()
