"""Bad input gets a clear, specific error: one test each."""

import numpy as np
import pytest
import xarray as xr

import xgenfill
from xgenfill.errors import GenfillError

from .conftest import make_chl


def test_no_spatial_axes():
    da = xr.DataArray(np.random.rand(5, 6, 7), dims=("a", "b", "c"), name="v")
    with pytest.raises(GenfillError, match="could not identify the spatial axes"):
        xgenfill.inpaint(da)


def test_too_small_domain():
    with pytest.raises(GenfillError, match="domain too small"):
        xgenfill.inpaint(make_chl(ny=3, nx=10, land=False))


def test_all_nan():
    da = make_chl() * np.nan
    with pytest.raises(GenfillError, match="entirely NaN"):
        xgenfill.inpaint(da)


def test_integer_with_fillvalue_is_decoded():
    da = make_chl()
    raw = np.where(np.isfinite(da.values), np.round(np.log10(da.values) * 1000), -32768)
    enc = da.copy(data=raw.astype(np.int16))
    enc.attrs = {"_FillValue": -32768, "scale_factor": 0.001, "units": "1", "long_name": "x"}
    out = xgenfill.inpaint(enc, model="linear_time")
    assert out.dtype.kind == "f"
    assert np.isfinite(out.values).sum() > np.isfinite(da.values).sum()


def test_integer_without_fillvalue_is_refused():
    da = make_chl().fillna(0).astype(np.int32)
    with pytest.raises(GenfillError, match="integer dtype"):
        xgenfill.inpaint(da)


def test_non_numeric_dtype_is_refused():
    da = make_chl().astype(bool)
    with pytest.raises(GenfillError, match="dtype bool"):
        xgenfill.inpaint(da)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_inf(bad):
    da = make_chl()
    da[0, 10, 10] = bad
    with pytest.raises(GenfillError, match="inf"):
        xgenfill.inpaint(da)


def test_non_positive_in_log_space():
    da = make_chl()
    da[3, 12, 12] = 0.0
    with pytest.raises(GenfillError, match="non-positive"):
        xgenfill.inpaint(da)
    da[3, 12, 12] = -0.1
    with pytest.raises(GenfillError, match="non-positive"):
        xgenfill.inpaint(da)


def test_unknown_model_lists_valid_ones():
    with pytest.raises(GenfillError, match="unknown model 'foo'.*dineof"):
        xgenfill.inpaint(make_chl(), model="foo")


def test_duplicated_coordinates():
    da = make_chl()
    lat = da.lat.values.copy()
    lat[3] = lat[2]
    with pytest.raises(GenfillError, match="duplicated"):
        xgenfill.inpaint(da.assign_coords(lat=lat))


def test_non_monotonic_coordinates():
    da = make_chl()
    with pytest.raises(GenfillError, match="not monotonic"):
        xgenfill.inpaint(da.isel(time=[0, 2, 1, 3, 4, 5, 6, 7]))


def test_single_image_needs_a_mask():
    da = make_chl().isel(time=0)
    with pytest.raises(GenfillError, match="single time step"):
        xgenfill.inpaint(da, model="linear_space")
    mask = np.ones(da.shape, bool)
    mask[:5, :6] = False
    out = xgenfill.inpaint(da, model="linear_space", mask=mask)
    assert np.isfinite(out.values[5:, :]).all() and np.isnan(out.values[:5, :6]).all()


def test_temporal_model_on_single_image():
    da = make_chl().isel(time=0)
    with pytest.raises(GenfillError, match="needs a time axis"):
        xgenfill.inpaint(da, model="dineof", mask=np.ones(da.shape, bool))


def test_mask_on_other_grid():
    da = make_chl()
    with pytest.raises(GenfillError, match="different grid"):
        xgenfill.inpaint(da, mask=xr.DataArray(np.ones((5, 5), bool), dims=("lat", "lon")))


def test_ensemble_from_deterministic_model():
    with pytest.raises(GenfillError, match="deterministic"):
        xgenfill.inpaint(make_chl(), model="dineof", n_samples=4)


def test_not_a_dataarray():
    with pytest.raises(GenfillError, match="expected an xarray.DataArray"):
        xgenfill.inpaint(np.zeros((3, 5, 5)))


def test_bad_model_option():
    with pytest.raises(GenfillError, match="bad option"):
        xgenfill.inpaint(make_chl(), model="dineof", n_eofs=3)


def test_absent_device():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(GenfillError, match="CUDA is not available"):
        xgenfill.inpaint(make_chl(), model="dineof", device="cuda")


def test_one_undecoded_fill_value_is_refused_not_spread():
    # one 1e30 among SST near 15 degC made linear_time fill every gap with 0 and DINEOF with
    # +/-1e28, silently
    from .test_transforms import _sst_cube

    da = _sst_cube()
    da.values[2, 5, 5] = 1e30
    for model in ("linear_time", "anomaly", "dineof"):
        with pytest.raises(GenfillError, match=r"1 value\(s\) of 'analysed_sst'.*fill value"):
            xgenfill.inpaint(da, model=model)
    da.values[2, 5, 5] = -999.0  # a fill value of another convention
    with pytest.raises(GenfillError, match="undecoded fill value"):
        xgenfill.inpaint(da, model="linear_time")
    da.attrs = {}  # no units: the distance from the bulk of the field alone catches 1e30
    da.values[2, 5, 5] = 1e30
    with pytest.raises(GenfillError, match="not plausible data"):
        xgenfill.inpaint(da, model="linear_time")
    da.attrs = {"units": "degC"}
    da.values[2, 5, 5] = 35.0  # a warm pixel is data, not an outlier
    assert np.isfinite(xgenfill.inpaint(da, model="linear_time").values).any()


def test_lazy_inputs_refuse_fill_values_and_broken_compositions_at_compute():
    from .test_fractions import NAMES, brewin_fractions
    from .test_transforms import _sst_cube

    da = _sst_cube()
    da.values[2, 5, 5] = 1e30
    lazy = xgenfill.inpaint(da.chunk({"time": 4}), model="linear_time")  # nothing read yet
    with pytest.raises(GenfillError, match="not plausible data"):
        lazy.compute()
    ds = brewin_fractions() * 0.8
    out = xgenfill.inpaint_fractions(ds.chunk({"time": 10}), NAMES, model="linear_time")
    with pytest.raises(GenfillError, match="do not sum to 1"):
        out.compute()
