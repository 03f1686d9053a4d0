import numpy as np
import pytest
import xarray as xr

import xgenfill
from xgenfill.axes import find_axes
from xgenfill.errors import GenfillError

from .conftest import make_chl


def _rename(da, mapping):
    return da.rename(mapping)


@pytest.mark.parametrize("names", [("time", "lat", "lon"), ("t", "latitude", "longitude"),
                                   ("date", "y", "x")])
def test_axes_found_whatever_the_names(names):
    da = make_chl().rename(dict(zip(("time", "lat", "lon"), names)))
    ax = find_axes(da)
    assert (ax.time, ax.y, ax.x) == names


def test_axes_from_attributes_only():
    da = make_chl().rename(time="a", lat="b", lon="c")
    da.b.attrs = {"axis": "Y"}
    da.c.attrs = {"axis": "X"}
    da.a.attrs = {"axis": "T"}
    ax = find_axes(da)
    assert (ax.time, ax.y, ax.x) == ("a", "b", "c")


def test_curvilinear_2d_coordinates():
    da = make_chl().rename(lat="j", lon="i")
    lat2d, lon2d = np.meshgrid(np.linspace(40, 45, da.sizes["j"]),
                               np.linspace(-60, -52, da.sizes["i"]),
                               indexing="ij")
    da = da.drop_vars(["j", "i"]).rename(j="eta", i="xi")
    da = da.assign_coords(nav_lat=(("eta", "xi"), lat2d, {"standard_name": "latitude"}),
                          nav_lon=(("eta", "xi"), lon2d, {"standard_name": "longitude"}))
    ax = find_axes(da)
    assert (ax.y, ax.x, ax.lat) == ("eta", "xi", "nav_lat")
    out = xgenfill.inpaint(da, model="linear_time")
    assert out.dims == da.dims


def test_any_dimension_order_gives_same_result():
    da = make_chl()
    a = xgenfill.inpaint(da, model="dineof")
    b = xgenfill.inpaint(da.transpose("lon", "time", "lat"), model="dineof")
    assert b.dims == ("lon", "time", "lat")
    np.testing.assert_allclose(a.values, b.transpose(*a.dims).values, rtol=1e-5)


def test_descending_latitude_and_0_360_longitude():
    da = make_chl()
    a = xgenfill.inpaint(da, model="dineof")
    flipped = da.isel(lat=slice(None, None, -1)).assign_coords(lon=da.lon + 360)
    b = xgenfill.inpaint(flipped, model="dineof")
    np.testing.assert_array_equal(b.lat.values, flipped.lat.values)
    np.testing.assert_allclose(b.isel(lat=slice(None, None, -1)).values, a.values, rtol=1e-5)


def test_extra_dimension_is_independent():
    da = make_chl()
    stacked = xr.concat([da, da * 2], dim="sensor").assign_coords(sensor=["modis", "viirs"])
    out = xgenfill.inpaint(stacked, model="linear_time")
    assert out.dims == stacked.dims
    np.testing.assert_allclose(out.sel(sensor="viirs").values,
                               2 * out.sel(sensor="modis").values, rtol=1e-5)


def test_explicit_dims_override_and_errors():
    da = make_chl().rename(time="a", lat="b", lon="c")
    for c in ("a", "b", "c"):
        da[c].attrs = {}
    with pytest.raises(GenfillError, match="spatial axes"):
        find_axes(da)
    ax = find_axes(da, dims={"T": "a", "Y": "b", "X": "c"})
    assert (ax.time, ax.y, ax.x) == ("a", "b", "c")
    with pytest.raises(GenfillError, match="not a dimension"):
        find_axes(da, dims={"Y": "nope"})


@pytest.mark.parametrize("calendar", ["noleap", "360_day", "julian"])
def test_cftime_axis_keeps_the_real_spacing(calendar):
    # days 0, 1, 2, 3, 10 with day 3 missing: linear in time gives 3.0 (was 6.0: the steps
    # were taken as equally spaced)
    import cftime

    import xgenfill

    times = [cftime.datetime(2001, 1, 1 + d, calendar=calendar) for d in (0, 1, 2, 3, 10)]
    vals = np.zeros((5, 4, 4), np.float32) + np.array([0, 1, 2, np.nan, 10],
                                                      np.float32)[:, None, None]
    da = xr.DataArray(vals, dims=("time", "lat", "lon"), name="x",
                      coords={"time": times, "lat": np.arange(4.0), "lon": np.arange(4.0)})
    da[:, 0, 0] = [0, 1, 2, 3, 10]
    out = xgenfill.inpaint(da, model="linear_time")
    np.testing.assert_allclose(out.values[3, 1:, 1:], 3.0)
    lazy = xgenfill.inpaint(da.chunk({"time": 5, "lat": 2}), model="linear_time")
    np.testing.assert_allclose(lazy.values[3, 1:, 1:], 3.0)
