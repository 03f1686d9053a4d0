"""mask="auto": the sea from the GLOBE 1 km land mask shipped by global-land-mask."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xgenfill
from xgenfill.axes import find_axes
from xgenfill.errors import GenfillError
from xgenfill.landmask import _globe as real_globe
from xgenfill.landmask import auto_sea_mask

pytest.importorskip("global_land_mask")


def _biscay(nt: int = 12) -> xr.DataArray:
    """0.1 degree chl over the Bay of Biscay and western France (45-46 N, 3 W - 1 E):
    sea in the west, land in the east."""
    lat = np.round(np.arange(45.0, 46.0, 0.1), 2)
    lon = np.round(np.arange(-3.0, 1.0, 0.1), 2)
    rng = np.random.default_rng(0)
    ny, nx = lat.size, lon.size
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    field = np.stack([0.4 + 0.2 * np.sin(0.3 * xx + 0.2 * yy + 0.5 * t) for t in range(nt)])
    chl = (field * np.exp(0.05 * rng.standard_normal(field.shape))).astype(np.float32)
    da = xr.DataArray(chl, dims=("time", "lat", "lon"),
                      coords={"time": np.datetime64("2020-01-01") + np.arange(nt),
                              "lat": lat, "lon": lon},
                      name="chl", attrs={"units": "mg m-3", "standard_name":
                                         "mass_concentration_of_chlorophyll_a_in_sea_water"})
    return da


@pytest.fixture(scope="module", autouse=True)
def globe_once():
    """The 1 GB GLOBE array read once for this module (each read takes seconds)."""
    from xgenfill import landmask

    cached = landmask._globe()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(landmask, "_globe", lambda: cached)
        yield


@pytest.fixture(scope="module")
def sea() -> xr.DataArray:
    da = _biscay()
    return auto_sea_mask(da, find_axes(da))


def test_auto_mask_is_sea_west_land_east(sea):
    assert sea.dims == ("lat", "lon")
    assert sea.sel(lon=slice(-3.0, -2.0)).all()  # open Bay of Biscay
    assert not sea.sel(lon=slice(0.0, 1.0)).any()  # inland France (Dordogne)
    # 0-360 longitudes give the same sea
    da = _biscay().assign_coords(lon=(_biscay().lon % 360))
    np.testing.assert_array_equal(auto_sea_mask(da, find_axes(da)).values, sea.values)


def test_auto_mask_fills_never_observed_sea_not_land(sea):
    da = _biscay()
    sea_np = sea.values
    da = da.where(xr.DataArray(sea_np, dims=("lat", "lon")))  # land: never observed
    # a sea pixel under a cloud on every date, and clouds on a few dates
    iy, ix = 5, 3
    assert sea_np[iy, ix]
    da[:, iy, ix] = np.nan
    da[2:5, 2:6, 5:9] = np.nan
    out = xgenfill.inpaint(da, model="anomaly", mask="auto", return_dataset=True)
    flag = out.chl_filled_flag
    meanings = flag.attrs["flag_meanings"].split()
    never = flag.attrs["flag_values"][meanings.index("filled_never_observed")]
    assert (flag.values[:, iy, ix] == never).all()
    assert np.isfinite(out.chl.values[:, iy, ix]).all()
    land = ~sea_np
    assert np.isnan(out.chl.values[:, land]).all()  # land is never filled
    obs = np.isfinite(da.values)
    np.testing.assert_array_equal(out.chl.values[obs], da.values[obs])
    # without a mask the never-observed pixel is land
    plain = xgenfill.inpaint(da, model="anomaly")
    assert np.isnan(plain.values[:, iy, ix]).all()


def test_auto_mask_keeps_observed_water_that_globe_calls_land(sea):
    da = _biscay()
    land = ~sea.values
    iy, ix = np.argwhere(land)[0]
    da = da.where(xr.DataArray(sea.values, dims=("lat", "lon")))
    da[:, iy, ix] = 0.5  # a "lake": observed on every date but one
    da[3, iy, ix] = np.nan
    out = xgenfill.inpaint(da, model="linear_time", mask="auto")
    assert np.isfinite(out.values[3, iy, ix])  # the data say it is water: filled


def test_auto_mask_needs_coordinates():
    da = _biscay().drop_vars(["lat", "lon"])
    with pytest.raises(GenfillError, match="latitude and longitude"):
        xgenfill.inpaint(da, model="linear_time", mask="auto")
    with pytest.raises(GenfillError, match="pass 'auto'"):
        xgenfill.inpaint(_biscay(), model="linear_time", mask="land")


def test_auto_mask_without_the_package_says_what_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(GenfillError, match="pip install global-land-mask"):
        real_globe()


def test_auto_mask_on_dask_marks_never_observed_sea_not_land(sea):
    pytest.importorskip("dask")
    da = _biscay().where(xr.DataArray(sea.values, dims=("lat", "lon")))
    iy, ix = 5, 3
    da[:, iy, ix] = np.nan  # sea, never observed
    land = np.argwhere(~sea.values)[0]
    da[:, land[0], land[1]] = 0.5  # observed water that GLOBE calls land
    da[3, land[0], land[1]] = np.nan
    out = xgenfill.inpaint(da.chunk({"time": 4}), model="linear_time", mask="auto",
                           return_dataset=True).compute()
    flag = out.chl_filled_flag
    meanings = flag.attrs["flag_meanings"].split()
    assert (flag.values[:, iy, ix] == meanings.index("not_filled")).all()
    assert np.isfinite(out.chl.values[3, land[0], land[1]])
    dry = ~sea.values
    dry[land[0], land[1]] = False
    assert (flag.values[:, dry] == meanings.index("land_or_masked")).all()
