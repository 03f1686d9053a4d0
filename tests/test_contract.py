"""The output contract: same structure, observed pixels bit-identical, input never modified,
land never filled, CF flags and uncertainty in the Dataset form."""

import copy

import numpy as np
import pytest
import xarray as xr

import xgenfill
from xgenfill.post import FLAG_MEANINGS

from .conftest import make_chl

MODELS = ["dineof", "linear_time", "climatology", "linear_space", "anomaly"]


@pytest.mark.parametrize("model", MODELS)
def test_structure_and_observed_pixels(model):
    da = make_chl()
    before = da.copy(deep=True)
    attrs_before = copy.deepcopy(da.attrs)
    out = xgenfill.inpaint(da, model=model)
    # input untouched
    xr.testing.assert_identical(da, before)
    assert da.attrs == attrs_before
    # same structure
    assert out.dims == da.dims and out.dtype == da.dtype and out.name == da.name
    for c in da.coords:
        xr.testing.assert_identical(out[c], da[c])
    for k, v in da.attrs.items():
        assert out.attrs[k] == v
    assert "xgenfill.inpaint(model=" in out.attrs["history"]
    assert "xgenfill 0." in out.attrs["history"]
    # observed pixels bit-identical
    obs = np.isfinite(da.values)
    assert np.array_equal(out.values[obs].view(np.uint32), da.values[obs].view(np.uint32))
    # land (never observed) is never filled; clouds over the sea are
    land = ~obs.any(axis=0)
    assert land.any() and np.isnan(out.values[:, land]).all()
    assert np.isfinite(out.values[:, ~land]).all()


def test_user_mask_is_never_filled():
    da = make_chl()
    mask = xr.DataArray(np.ones((da.sizes["lat"], da.sizes["lon"]), bool),
                        dims=("lat", "lon"), coords={"lat": da.lat, "lon": da.lon})
    mask[10:14, 10:20] = False
    out = xgenfill.inpaint(da, model="dineof", mask=mask, return_dataset=True)
    sub_in = da.values[:, 10:14, 10:20]
    sub_out = out.chl.values[:, 10:14, 10:20]
    np.testing.assert_array_equal(np.isnan(sub_out), np.isnan(sub_in))
    assert (out.chl_filled_flag.values[:, 10:14, 10:20][np.isnan(sub_in)] == 2).all()


def test_dataset_form_flags_and_uncertainty():
    da = make_chl()
    ds = xgenfill.inpaint(da, model="dineof", return_dataset=True)
    flag, unc = ds["chl_filled_flag"], ds["chl_uncertainty"]
    assert ds.chl.attrs["ancillary_variables"] == "chl_filled_flag chl_uncertainty"
    assert flag.dtype == np.int8
    assert list(flag.attrs["flag_values"]) == [0, 1, 2, 3, 4, 5]
    assert flag.attrs["flag_meanings"] == FLAG_MEANINGS
    assert flag.attrs["standard_name"] == "status_flag"  # the modifier form is deprecated
    obs = np.isfinite(da.values)
    assert (flag.values[obs] == 0).all()
    assert ((flag.values == 1) == (~obs & np.isfinite(ds.chl.values))).all()
    assert (unc.values[flag.values == 1] > 0).all()
    assert np.isnan(unc.values[obs]).all()  # an observation is not claimed error-free
    with_error = xgenfill.inpaint(da, model="dineof", return_dataset=True, obs_error=0.05)
    np.testing.assert_allclose(with_error.chl_uncertainty.values[obs], 0.05)
    assert "observation error" in with_error.chl_uncertainty.attrs["long_name"]
    assert np.isnan(unc.values[flag.values == 2]).all()
    # cf-xarray understands the flags
    import cf_xarray  # noqa: F401

    assert int((ds.chl_filled_flag.cf == "filled").sum()) == int((flag == 1).sum())
    assert ds.attrs["xgenfill_n_modes"] >= 1


def test_dataset_accessor_fills_several_variables():
    da = make_chl()
    ds = xr.Dataset({"chl": da, "chl2": (da * 3).assign_attrs(da.attrs)})
    out = ds.genfill.inpaint(model="linear_time")
    assert {"chl", "chl_filled_flag", "chl_uncertainty", "chl2_filled_flag"} <= set(out)
    assert np.isfinite(out.chl.values).sum() > np.isfinite(ds.chl.values).sum()
    xr.testing.assert_identical(ds.chl, da)


def test_nothing_missing_warns_and_returns_copy():
    da = make_chl(land=False)
    full = da.fillna(1.0)
    with pytest.warns(xgenfill.GenfillWarning, match="nothing to fill"):
        out = xgenfill.inpaint(full, model="dineof")
    np.testing.assert_array_equal(out.values, full.values)
    assert out is not full


def test_netcdf_roundtrip(tmp_path):
    ds = xgenfill.inpaint(make_chl(), model="dineof", return_dataset=True)
    ds.to_netcdf(tmp_path / "f.nc")
    back = xr.open_dataset(tmp_path / "f.nc")
    assert back.chl_filled_flag.attrs["flag_meanings"] == FLAG_MEANINGS
    np.testing.assert_array_equal(back.chl.values, ds.chl.values)


def test_max_gap_leaves_longer_gaps_alone():
    # one pixel's series: gaps of 1, 2 and 4 steps; max_gap=2 fills the first two only
    da = make_chl(nt=20)
    series = np.full(20, 0.5, np.float32)
    series[[3, 7, 8, 12, 13, 14, 15]] = np.nan
    da.values[:, 5, 5] = series
    for form in ("eager", "lazy"):
        src = da if form == "eager" else da.chunk({"time": 7})
        out = xgenfill.inpaint(src, model="linear_time", max_gap=2, return_dataset=True)
        flag = out.chl_filled_flag.values[:, 5, 5]
        assert (flag[[3, 7, 8]] == 1).all() and (flag[[12, 13, 14, 15]] == 3).all(), form
        assert np.isnan(out.chl.values[[12, 13, 14, 15], 5, 5]).all()
        assert np.isfinite(out.chl.values[[3, 7, 8], 5, 5]).all()
        obs = np.isfinite(da.values)
        np.testing.assert_array_equal(out.chl.values[obs], da.values[obs])
    plain = xgenfill.inpaint(da, model="linear_time", max_gap=2)
    assert np.isnan(plain.values[12:16, 5, 5]).all() and "history" in plain.attrs
    with pytest.raises(xgenfill.GenfillError, match="max_gap must be a positive"):
        xgenfill.inpaint(da, model="linear_time", max_gap=0)
