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

    The samples are small cuts of real third-party satellite products with their real gaps;
    their licences and attributions are in the dataset attributes and in
    ``xgenfill/data/README.md``.

    Parameters
    ----------
    name : {"phytofit", "oahu"}, default "phytofit"
        ``"phytofit"``: daily MODIS-Aqua chlorophyll, NW Atlantic, April-June 2015 (BIO-RSG
        PhytoFit, MIT); ``"oahu"``: monthly ESA OC-CCI chlorophyll around Oahu, 1998-2022.

    Returns
    -------
    xarray.Dataset
        The sample: chlorophyll-a in mg m-3 as ``chl`` (phytofit) or ``chlor_a`` (oahu,
        the OC-CCI name), with the product's own attributes.

    Raises
    ------
    GenfillError
        If ``name`` is not a bundled sample.

    See Also
    --------
    inpaint : Fill its gaps.

    Examples
    --------
    >>> import xgenfill
    >>> ds = xgenfill.open_sample("phytofit")
    >>> dict(ds.chl.sizes)
    {'time': 91, 'lat': 96, 'lon': 160}
    """
    if name not in SAMPLES:
        raise GenfillError(f"unknown sample {name!r}; available: {sorted(SAMPLES)}")
    path = resources.files("xgenfill") / "data" / SAMPLES[name][0]
    with resources.as_file(path) as p, xr.open_dataset(p) as ds:
        return ds.load()
