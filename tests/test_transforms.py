import warnings

import numpy as np
import pandas as pd
import xarray as xr
import pytest

import xgenfill
from xgenfill.errors import GenfillError
from xgenfill.prepare import prepare
from xgenfill.transforms import TRANSFORMS

from .conftest import make_chl


def test_chl_by_standard_name_and_by_units():
    da = make_chl()
    assert prepare(da).transform.name == "log10"
    da2 = da.copy()
    da2.attrs = {"units": "mg m-3"}
    assert prepare(da2).transform.name == "log10"  # name 'chl' + mg m-3
    da3 = da.rename("sst")
    da3.attrs = {"units": "degree_Celsius"}
    assert prepare(da3).transform.name == "identity"


@pytest.mark.parametrize("units", ["degree_Celsius", "degree Celsius", "degrees Celsius",
                                   "degrees C", "deg C", "degC", "K"])
def test_temperature_units_with_spaces_or_underscores_identify_sst(units):
    from xgenfill.transforms import variable_family

    da = make_chl().rename("SST")  # the Alboran AVHRR file: name "SST", units "degree Celsius"
    da.attrs = {"units": units}
    assert variable_family(da, "identity") == "sst"
    da.attrs = {"units": "degree Celsius", "long_name": "wind speed"}  # the units alone: no
    assert variable_family(da.rename("wind"), "identity") is None


def test_fraction_gets_logit_and_override():
    da = make_chl()
    frac = (da / (da + 1)).rename("pico_fraction")
    frac.attrs = {"units": "1", "long_name": "pico fraction"}
    assert prepare(frac).transform.name == "logit"
    assert prepare(frac, transform="identity").transform.name == "identity"
    with pytest.raises(GenfillError, match="unknown transform"):
        prepare(frac, transform="sqrt")


@pytest.mark.parametrize("name", ["log10", "logit", "identity"])
def test_inverse_is_exact(name):
    x = np.array([0.01, 0.2, 0.5, 0.9])
    tf = TRANSFORMS[name]
    np.testing.assert_allclose(tf.inverse(tf.forward(x)), x, rtol=1e-12)


def test_normalised_values_are_standardised():
    p = prepare(make_chl())
    v = p.values[np.isfinite(p.values)]
    assert abs(v.mean()) < 1e-4 and abs(v.std() - 1) < 1e-3
    np.testing.assert_allclose(p.to_physical(p.values)[np.isfinite(p.values)],
                               make_chl().values.reshape(p.values.shape)[np.isfinite(p.values)],
                               rtol=1e-5)


def test_fraction_fill_stays_in_unit_interval():
    da = make_chl()
    frac = (da / (da + 1)).rename("micro")
    frac.attrs = {"units": "1"}
    out = xgenfill.inpaint(frac, model="linear_time")
    v = out.values[np.isfinite(out.values)]
    assert v.min() >= 0 and v.max() <= 1


# -- variable families: the right pretrained model for the variable, or a clear refusal --------

def _sst_cube():
    import xgenfill  # noqa: F401

    from .conftest import make_clouds, make_field

    values = 15.0 + 3.0 * make_field(nt=8, ny=24, nx=32)
    values[make_clouds(values.shape)] = np.nan
    return xr.DataArray(values.astype(np.float32), dims=("time", "lat", "lon"),
                        coords={"time": pd.date_range("2020-01-01", periods=8),
                                "lat": np.linspace(30, 31, 24), "lon": np.linspace(0, 1, 32)},
                        name="analysed_sst", attrs={"standard_name": "sea_surface_temperature",
                                                    "units": "degC"})


def test_sst_fill_offline_uses_the_embedded_sst_weights(monkeypatch, tmp_path):
    import json
    from importlib import resources

    import xgenfill

    monkeypatch.setenv("XGENFILL_OFFLINE", "1")
    monkeypatch.setenv("XGENFILL_CACHE_DIR", str(tmp_path))  # empty cache
    reg = json.loads((resources.files("xgenfill") / "registry.json").read_text())
    sst_hash = reg["models"]["vae-sst-v1"]["files"]["vae-sst-v1.safetensors"]
    chl_hash = reg["models"]["vae-chl-v1"]["files"]["vae-chl-v1.safetensors"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", xgenfill.GenfillWarning)  # identified: no guess to warn
        out = xgenfill.inpaint(_sst_cube(), model="vae", progress=False)
    assert sst_hash[:12] in out.attrs["history"] and chl_hash[:12] not in out.attrs["history"]


def test_pretrained_model_of_another_family_or_transform_is_refused(chl):
    import xgenfill

    sst = _sst_cube()
    with pytest.raises(xgenfill.GenfillError, match="trained on 'chl' in 'log10' space"):
        xgenfill.inpaint(sst, model="vae-chl-v1")
    with pytest.raises(xgenfill.GenfillError, match="transform='identity'"):
        xgenfill.inpaint(chl, model="diffusion-sst-v1")
    # chlorophyll forced into linear space: no pretrained model knows it there
    with pytest.raises(xgenfill.GenfillError, match="work in log10"):
        xgenfill.inpaint(chl, model="vae", transform="identity")
    with pytest.raises(xgenfill.GenfillError, match="work in log10"):
        xgenfill.validate(chl, models=["vae"], transform="identity")
    # the same rule for lazy inputs, before anything is computed
    with pytest.raises(xgenfill.GenfillError, match="trained on 'chl'"):
        xgenfill.inpaint(sst.chunk({"time": 4}), model="vae-chl-v1")


def test_trained_model_is_refused_in_another_transform(chl):
    import xgenfill

    model = xgenfill.train(chl, model="vae", max_steps=2, batch_size=2, patch=16,
                           progress=False, widths=(8, 16))
    assert model.meta["transform"] == "log10"
    with pytest.raises(xgenfill.GenfillError, match="pass transform='log10'"):
        xgenfill.inpaint(chl, model=model, transform="identity")


def test_unidentified_variable_gets_a_warning_naming_transform_and_family():
    import xgenfill

    da = _sst_cube().rename("x")
    da.attrs = {}
    with pytest.warns(xgenfill.GenfillWarning, match=r"transform='identity'.*SST-family"):
        out = xgenfill.inpaint(da, model="vae", progress=False)
    assert np.isfinite(out.values).sum() > np.isfinite(da.values).sum()


def test_chlorophyll_units_without_a_chl_name_are_log10_with_a_warning(chl):
    import xgenfill
    from xgenfill.transforms import choose_transform

    da = chl.rename("concentration")
    da.attrs = {"units": "mg m-3"}
    with pytest.warns(xgenfill.GenfillWarning, match="treated as chlorophyll"):
        assert choose_transform(da, da.values).name == "log10"
