"""The bad-input matrix: each case gives one clear GenfillError that says what to do, or a
correct result (with a warning where something was assumed); never an obscure traceback from
numpy, xarray or torch, never a silently degraded result."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xgenfill
from xgenfill import GenfillError


def base(nt: int = 6) -> xr.DataArray:
    """A small cut of the bundled real MODIS chl, with its real clouds."""
    return xgenfill.open_sample("phytofit").chl.isel(time=slice(30, 30 + nt), lat=slice(0, 32),
                                                      lon=slice(0, 40))


def _nat():
    da = base()
    t = da.time.values.copy()
    t[2] = np.datetime64("NaT")
    return da.assign_coords(time=t)


def _lon_across_360():
    lon = np.r_[np.linspace(354, 359.5, 20), np.linspace(0, 5.5, 20)]
    return base().assign_coords(lon=lon)


def _one_e30():
    da = base().copy()
    da.values[2, 5, 5] = 1e30
    return da


def _truncated(tmp_path):
    from xgenfill import zoo

    src = zoo._embedded_dir() / "vae-chl-v1"
    (tmp_path / "tr.json").write_text(src.with_suffix(".json").read_text())
    (tmp_path / "tr.safetensors").write_bytes(src.with_suffix(".safetensors").read_bytes()[:999])
    return str(tmp_path / "tr")


REFUSED = {
    "complex": (lambda p: xgenfill.inpaint(base().astype(np.complex64), model="linear_time"),
                "dtype complex64; xgenfill fills floating-point"),
    "bool": (lambda p: xgenfill.inpaint(base().notnull(), model="linear_time"), "dtype bool"),
    "dataset without the variable": (
        lambda p: xgenfill.inpaint_dataset(base().to_dataset(), ["sst"], model="linear_time"),
        r"variables \['sst'\] not in the dataset \(has \['chl'\]\)"),
    "NaT in time": (lambda p: xgenfill.inpaint(_nat(), model="linear_time"),
                    "missing value.*NaT.*drop those steps"),
    "single step without a mask": (lambda p: xgenfill.inpaint(base(1), model="linear_space"),
                                   "single time step cannot tell land from clouds.*pass mask="),
    "zero-length time": (lambda p: xgenfill.inpaint(base().isel(time=slice(0, 0)),
                                                    model="linear_time"), "has no steps"),
    "longitudes across 0/360": (lambda p: xgenfill.inpaint(_lon_across_360(),
                                                           model="linear_time"),
                                "convert it to -180..180"),
    "mask all False": (lambda p: xgenfill.inpaint(base(), model="linear_time",
                                                  mask=xr.zeros_like(base().isel(time=0),
                                                                     dtype=bool)),
                       "False everywhere.*~mask"),
    "n_samples 0": (lambda p: xgenfill.inpaint(base(), model="vae", n_samples=0),
                    "n_samples must be a positive integer"),
    "n_samples negative": (lambda p: xgenfill.inpaint(base(), model="vae", n_samples=-2),
                           "n_samples must be a positive integer"),
    "seed of the wrong type": (lambda p: xgenfill.inpaint(base(), model="vae", seed="abc"),
                               "seed must be an integer or None, got 'abc'"),
    "seed of the wrong type (train)": (lambda p: xgenfill.train(base(), model="vae", seed=1.5),
                                       "seed must be an integer, got 1.5"),
    "weights path that does not exist": (
        lambda p: xgenfill.inpaint(base(), model=str(p / "nope" / "weights")),
        "weights path .* does not exist"),
    "truncated weights file": (lambda p: xgenfill.inpaint(base(), model=_truncated(p)),
                               "corrupted or truncated"),
    "1e30 (undecoded fill value)": (lambda p: xgenfill.inpaint(_one_e30(), model="anomaly"),
                                    "not plausible data.*undecoded fill value"),
    "fractions outside [0, 1]": (
        lambda p: xgenfill.inpaint_fractions(xr.Dataset({"a": base() / base().max() * 1.5,
                                                         "b": 1 - base() / base().max()}),
                                             ["a", "b"]),
        r"outside \[0, 1\]"),
    "fractions that do not sum to 1": (
        lambda p: xgenfill.inpaint_fractions(
            xr.Dataset({"a": (base() / base().max()).clip(0.1, 0.9) * 0.8,
                        "b": (1 - (base() / base().max()).clip(0.1, 0.9)) * 0.8}), ["a", "b"]),
        "do not sum to 1"),
    "validate on gap-free data": (
        lambda p: xgenfill.validate(base().fillna(0.5), models=["linear_time"]),
        "holdout='clouds'"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
@pytest.mark.filterwarnings("ignore::xgenfill.GenfillWarning")  # gap-free data warn first
def test_bad_input_is_refused_with_a_clear_message(case, tmp_path):
    call, message = REFUSED[case]
    with pytest.raises(GenfillError, match=message):
        call(tmp_path)


def test_offline_with_an_empty_cache_for_a_downloadable_model(monkeypatch, tmp_path):
    from xgenfill import zoo

    reg = zoo._registry()
    reg = {**reg, "models": {**reg["models"], "big-v9": {
        "kind": "vae", "variable": "chl", "files": {"big-v9.safetensors": "0" * 64,
                                                    "big-v9.json": "1" * 64},
        "size": 10, "embedded": False, "card": {}}}}
    monkeypatch.setattr(zoo, "_registry", lambda: reg)
    monkeypatch.setenv("XGENFILL_OFFLINE", "1")
    monkeypatch.setenv("XGENFILL_CACHE_DIR", str(tmp_path))
    with pytest.raises(xgenfill.OfflineError, match="not in the cache.*models download"):
        xgenfill.inpaint(base(), model="big-v9")


@pytest.mark.parametrize("case", ["float16", "dims x/y without attributes",
                                  "curvilinear crossing the antimeridian",
                                  "int16 with _FillValue in encoding only"])
def test_unusual_input_gives_a_correct_result(case):
    da = base()
    if case == "float16":
        da = da.astype(np.float16)
    elif case == "dims x/y without attributes":
        da = da.rename({"lat": "y", "lon": "x"}).drop_vars(["y", "x"])
    elif case == "curvilinear crossing the antimeridian":
        ny, nx = da.sizes["lat"], da.sizes["lon"]
        lon2d = (170 + np.linspace(0, 20, nx)[None, :] + 0.1 * np.arange(ny)[:, None] + 180) \
            % 360 - 180
        lat2d = np.linspace(40, 45, ny)[:, None] + 0 * lon2d
        da = da.rename({"lat": "eta", "lon": "xi"}).drop_vars(["eta", "xi"]).assign_coords(
            lat=(("eta", "xi"), lat2d, {"standard_name": "latitude", "units": "degrees_north"}),
            lon=(("eta", "xi"), lon2d, {"standard_name": "longitude",
                                        "units": "degrees_east"}))
    else:
        packed = (da.fillna(-1) * 100).astype(np.int16)
        packed.encoding["_FillValue"] = np.int16(-100)
        da = packed
    out = xgenfill.inpaint(da, model="linear_time")
    ref = xgenfill.inpaint(base(), model="linear_time")
    assert out.dims == da.dims
    observed = np.isfinite(np.asarray(da.values, dtype=float)) & (np.asarray(da.values) != -100)
    assert np.isfinite(np.asarray(out.values, dtype=float)).sum() > observed.sum()
    if case != "int16 with _FillValue in encoding only":
        np.testing.assert_allclose(np.asarray(out.values, float), ref.values, rtol=2e-3)
