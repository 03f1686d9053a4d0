"""Fractions that sum to 1 (phytoplankton size classes) filled together: closure, observed values
kept, partial pixels, ensembles, lazy inputs, bad input.

No real gridded size-class product is available to us: the fractions here are derived from
real MODIS chlorophyll (the bundled PhytoFit sample) with Brewin et al. (2010)'s three-component
model, so they are chl-derived, not independent observations.
"""

import numpy as np
import pytest
import xarray as xr

import xgenfill
from xgenfill.fractions import inpaint_fractions, to_log_ratios

from .conftest import TINY

NAMES = ["pico", "nano", "micro"]


def brewin_fractions(nt: int = 20) -> xr.Dataset:
    """Pico/nano/micro fractions of real chl (Brewin 2010 parameters), with chl's real gaps."""
    c = xgenfill.open_sample("phytofit").chl.isel(time=slice(0, nt), lat=slice(0, 48),
                                                  lon=slice(0, 64)).astype(np.float64)
    pico_nano = 1.057 * (1 - np.exp(-0.851 * c))
    pico = 0.107 * (1 - np.exp(-6.801 * c))
    parts = {"pico": pico / c, "nano": (pico_nano - pico) / c, "micro": (c - pico_nano) / c}
    ds = xr.Dataset({k: v.astype(np.float32) for k, v in parts.items()})
    for name in NAMES:
        ds[name].attrs = {"units": "1", "long_name": f"{name}plankton fraction of chl "
                          "(Brewin et al. 2010, derived from MODIS chl)"}
    return ds


@pytest.fixture(scope="module")
def fractions() -> xr.Dataset:
    return brewin_fractions()


def assert_contract(ds: xr.Dataset, out: xr.Dataset) -> np.ndarray:
    """Observed values bit-identical, dtype and attributes kept, filled pixels summing to 1;
    returns where a value was filled."""
    for name in NAMES:
        obs = np.isfinite(ds[name].values)
        assert out[name].dtype == ds[name].dtype
        assert np.array_equal(out[name].values[obs], ds[name].values[obs])
        assert out[name].attrs["units"] == "1" and "inpaint_fractions" in out.attrs["history"]
        flag = out[f"{name}_filled_flag"].values
        assert np.array_equal(flag == 0, obs)
        fill = np.isin(flag, (1, 4))  # 4: a fill beyond the observed range, kept
        assert np.isfinite(out[name].values[fill]).all()
        assert np.isnan(out[name].values[np.isin(flag, (2, 3))]).all()
    filled = np.isin(out[f"{NAMES[0]}_filled_flag"].values, (1, 4))
    total = sum(out[name].values.astype(np.float64) for name in NAMES)
    np.testing.assert_allclose(total[filled], 1.0, atol=1e-6)
    return filled


def test_filled_fractions_sum_to_one(fractions):
    before = fractions.copy(deep=True)
    out = inpaint_fractions(fractions, NAMES, model="linear_time")
    xr.testing.assert_identical(fractions, before)  # the input is not modified
    filled = assert_contract(fractions, out)
    assert filled.sum() > 1000
    # the reason for this function: filled one by one (logit space), they do not sum to 1
    separate = sum(xgenfill.inpaint(fractions[n], model="linear_time", progress=False).values
                   .astype(np.float64) for n in NAMES)
    assert np.abs(separate[filled] - 1).max() > 1e-2
    # the accessor is the same function
    via = fractions.genfill.inpaint_fractions(NAMES, model="linear_time")
    xr.testing.assert_identical(via.drop_attrs(), out.drop_attrs())


def test_skill_against_separate_fills_on_hidden_pixels(fractions):
    """Hide observed pixels (whole pixels, as a size-class product misses them) and score:
    the closed fill must be at least as close to the hidden values as filling separately."""
    rng = np.random.default_rng(0)
    hide = np.isfinite(fractions.pico.values) & (rng.random(fractions.pico.shape) < 0.2)
    gappy = fractions.copy(deep=True)
    for n in NAMES:
        gappy[n].values[hide] = np.nan
    out = inpaint_fractions(gappy, NAMES, model="linear_time")
    closed = np.stack([out[n].values[hide] for n in NAMES])
    separate = np.stack([xgenfill.inpaint(gappy[n], model="linear_time", progress=False)
                         .values[hide] for n in NAMES])
    truth = np.stack([fractions[n].values[hide] for n in NAMES])
    ok = np.isfinite(closed).all(0) & np.isfinite(separate).all(0)
    assert ok.mean() > 0.95

    def rmse(x):
        return np.sqrt(np.mean((x[:, ok] - truth[:, ok]) ** 2))

    print("RMSE closed", rmse(closed), "separate", rmse(separate))
    assert rmse(closed) <= 1.02 * rmse(separate)


def test_partially_observed_pixels(fractions):
    ds = fractions.copy(deep=True)
    t, y, x = np.argwhere(np.isfinite(ds.pico.values))[:3].T
    ds.nano.values[t[0], y[0], x[0]] = ds.micro.values[t[0], y[0], x[0]] = np.nan  # pico only
    ds.micro.values[t[1], y[1], x[1]] = np.nan  # pico and nano observed: micro is what is left
    ds.micro.values[t[2], y[2], x[2]] = np.nan  # pico + nano > 1: nothing left to share
    ds.nano.values[t[2], y[2], x[2]] = 1.0 - ds.pico.values[t[2], y[2], x[2]] + 0.1
    with pytest.warns(xgenfill.GenfillWarning, match="1 pixels keep their missing fractions"):
        out = inpaint_fractions(ds, NAMES, model="linear_time")
    p = (t[0], y[0], x[0])
    assert out.pico.values[p] == ds.pico.values[p]
    assert out.nano.values[p] > 0 and out.micro.values[p] > 0
    assert abs(out.pico.values[p] + out.nano.values[p] + out.micro.values[p] - 1) < 1e-6
    q = (t[1], y[1], x[1])
    expected = 1 - np.float64(ds.pico.values[q]) - np.float64(ds.nano.values[q])
    assert abs(out.micro.values[q] - expected) < 1e-6
    r = (t[2], y[2], x[2])
    assert np.isnan(out.micro.values[r]) and out.micro_filled_flag.values[r] == 3
    assert out.nano.values[r] == ds.nano.values[r]


def test_land_mask_is_never_filled(fractions):
    mask = xr.ones_like(fractions.pico.isel(time=0), dtype=bool).drop_vars("time")
    mask[:10, :10] = False
    out = inpaint_fractions(fractions, NAMES, model="linear_time", mask=mask)
    land = out.pico_filled_flag.values[:, :10, :10]
    assert (land == 2).all()
    gaps = np.isnan(fractions.pico.values[:, :10, :10])
    assert np.isnan(out.pico.values[:, :10, :10][gaps]).all()
    assert (out.pico_filled_flag.values[:, 10:, 10:] == 1).any()


@pytest.fixture(scope="module")
def clr_models(fractions):
    """One tiny VAE and one tiny diffusion model trained in seconds on the pico log-ratio."""
    clr = to_log_ratios(fractions, NAMES)
    return {kind: xgenfill.train(clr.pico, model=kind, transform="identity", max_steps=60,
                                 patch=24, progress=False, seed=0, **TINY)
            for kind in ("vae", "diffusion")}


@pytest.mark.parametrize("kind", ["vae", "diffusion"])
def test_ensemble_members_close_and_are_seeded(fractions, clr_models, kind):
    model = clr_models[kind]
    out = inpaint_fractions(fractions, NAMES, model=model, n_samples=3, seed=1, progress=False)
    filled = assert_contract(fractions, out)
    unc = out.pico_uncertainty.values
    assert np.isfinite(unc[filled]).all() and (unc[filled] > 0).any()
    assert np.isnan(unc[~filled & np.isfinite(fractions.pico.values)]).all()
    again = inpaint_fractions(fractions, NAMES, model=model, n_samples=3, seed=1, progress=False)
    xr.testing.assert_identical(out.drop_attrs(), again.drop_attrs())
    # the value is the model's own point estimate (its default), as with one sample
    single = inpaint_fractions(fractions, NAMES, model=model, seed=1, progress=False)
    both = filled & np.isin(single.pico_filled_flag.values, (1, 4))
    assert both.sum() > 0.9 * filled.sum()
    np.testing.assert_array_equal(out.pico.values[both], single.pico.values[both])
    # one model per fraction, as a mapping
    per = inpaint_fractions(fractions, NAMES, model={n: model for n in NAMES}, seed=1,
                            progress=False)
    assert_contract(fractions, per)


def test_lazy_input_gives_the_eager_result(fractions):
    eager = inpaint_fractions(fractions, NAMES, model="linear_time")
    lazy = inpaint_fractions(fractions.chunk(time=7), NAMES, model="linear_time")
    assert hasattr(lazy.pico.data, "dask") and hasattr(lazy.pico_filled_flag.data, "dask")
    lazy = lazy.compute()
    for name in NAMES:
        np.testing.assert_allclose(lazy[name].values, eager[name].values, rtol=1e-6)
        np.testing.assert_array_equal(lazy[f"{name}_filled_flag"].values,
                                      eager[f"{name}_filled_flag"].values)
    bad = fractions.assign(nano=fractions.nano * 3).chunk(time=7)
    result = inpaint_fractions(bad, NAMES, model="linear_time")  # lazy: checked when computed
    with pytest.raises(xgenfill.GenfillError, match="outside"):
        result.compute()


def test_bad_input(fractions):
    with pytest.raises(xgenfill.GenfillError, match="two or more"):
        inpaint_fractions(fractions, ["pico"], model="linear_time")
    with pytest.raises(xgenfill.GenfillError, match="not in the dataset"):
        inpaint_fractions(fractions, ["pico", "femto"], model="linear_time")
    with pytest.raises(xgenfill.GenfillError, match="outside"):
        inpaint_fractions(fractions.assign(nano=fractions.nano * 3), NAMES, model="linear_time")
    with pytest.raises(xgenfill.GenfillError, match="inf"):
        inpaint_fractions(fractions.assign(nano=fractions.nano.where(
            fractions.nano.notnull(), np.inf)), NAMES, model="linear_time")
    with pytest.raises(xgenfill.GenfillError, match="dimensions"):
        inpaint_fractions(fractions.assign(nano=fractions.nano.isel(time=0)), NAMES,
                          model="linear_time")
    with pytest.raises(xgenfill.GenfillError, match="floating point"):
        inpaint_fractions(fractions.assign(nano=(fractions.nano.fillna(0) * 100).astype(int)),
                          NAMES, model="linear_time")
    nothing = fractions.assign(micro=fractions.micro.where(np.isnan(fractions.pico)))
    with pytest.raises(xgenfill.GenfillError, match="no pixel has all"):
        inpaint_fractions(nothing, NAMES, model="linear_time")
    with pytest.raises(xgenfill.GenfillError, match="mapping must name"):
        inpaint_fractions(fractions, NAMES, model={"pico": "linear_time"})
    with pytest.raises(xgenfill.GenfillError, match="generative"):
        inpaint_fractions(fractions, NAMES, model="linear_time", n_samples=2)


def test_single_image_with_a_mask(fractions):
    """One time step cannot tell land from clouds: the mask alone says where the sea is."""
    day = fractions.isel(time=int(fractions.pico.notnull().sum(("lat", "lon")).argmax()))
    mask = xr.ones_like(day.pico, dtype=bool)
    mask[:5] = False
    with pytest.raises(xgenfill.GenfillError, match="single time step"):
        inpaint_fractions(day, NAMES, model="linear_space")
    out = inpaint_fractions(day, NAMES, model="linear_space", mask=mask)
    flag = out.pico_filled_flag.values
    assert (flag[:5] == 2).all()  # masked rows: land, observed values kept, gaps not filled
    obs = np.isfinite(day.pico.values)
    assert np.array_equal(out.pico.values[obs], day.pico.values[obs])
    assert np.isnan(out.pico.values[:5][~obs[:5]]).all()
    filled = flag == 1
    assert filled[5:].sum() > 0.9 * (~obs[5:]).sum() > 0
    total = sum(out[n].values.astype(np.float64) for n in NAMES)
    np.testing.assert_allclose(total[filled], 1.0, atol=1e-6)


def test_fractions_that_do_not_sum_to_one_are_refused_or_reported(fractions):
    scaled = fractions.copy()
    for name in NAMES:
        scaled[name] = fractions[name] * 0.8  # sums to 0.80: not one composition
    with pytest.raises(xgenfill.GenfillError, match=r"do not sum to 1.*median sum 0\.8"):
        inpaint_fractions(scaled, NAMES, model="linear_time")
    few = fractions.copy(deep=True)
    obs = np.argwhere(np.isfinite(few.pico.values))[:5]
    for t, y, x in obs:
        few.pico.values[t, y, x] *= 0.5
    with pytest.warns(xgenfill.GenfillWarning, match="5 of .* do not sum to 1"):
        out = inpaint_fractions(few, NAMES, model="linear_time")
    assert_contract(few, out) is not None


@pytest.fixture(scope="module")
def with_chl(fractions):
    """The fractions with extra clouds of their own, beside the chl they come from (which
    keeps only its own gaps)."""
    c = xgenfill.open_sample("phytofit").chl.isel(time=slice(0, 20), lat=slice(0, 48),
                                                  lon=slice(0, 64))
    rng = np.random.default_rng(0)
    extra = rng.random(c.shape) < 0.3
    ds = fractions.copy()
    for n in NAMES:
        ds[n] = ds[n].where(~extra)
    ds["chl"] = c
    return ds


@pytest.fixture(scope="module")
def chl_models(with_chl):
    return xgenfill.train_fractions(with_chl, NAMES, covariates=["chl"], max_steps=30,
                                    patch=24, progress=False, seed=0, **TINY)


def test_train_fractions_with_a_covariate(with_chl, chl_models):
    assert sorted(chl_models) == sorted(NAMES)
    for n, m in chl_models.items():
        assert m.arch["n_covariates"] == 1
        assert m.meta["fractions"] == {"variables": NAMES, "component": n,
                                       "covariates": ["chl"],
                                       "target": "log-ratio minus covariate_trend"}
        assert m.meta["transform"] == "identity"
    before = with_chl.copy(deep=True)
    out = inpaint_fractions(with_chl, NAMES, model=chl_models, covariates=["chl"],
                            n_samples=2, seed=0)
    xr.testing.assert_identical(before, with_chl)  # the input is not modified
    filled = assert_contract(with_chl, out)
    assert filled.sum() > 0.9 * np.isnan(with_chl.pico.values).sum() * 0.5
    assert "covariates=['chl']" in out.attrs["history"]
    xr.testing.assert_identical(out.chl, with_chl.chl)  # other variables kept
    # the covariate is read: another chl gives another fill (observed values still kept;
    # not a factor, which standardisation in log10 would take out)
    other = with_chl.assign(chl=with_chl.chl.copy(data=with_chl.chl.values[:, ::-1]))
    moved = inpaint_fractions(other, NAMES, model=chl_models, covariates=["chl"], seed=0)
    point = inpaint_fractions(with_chl, NAMES, model=chl_models, covariates=["chl"], seed=0)
    both = np.isin(point.pico_filled_flag.values, (1, 4))
    assert np.nanmax(np.abs(moved.pico.values[both] - point.pico.values[both])) > 1e-3
    # a DataArray works as a name does
    same = inpaint_fractions(with_chl, NAMES, model=chl_models, covariates=[with_chl.chl],
                             seed=0)
    np.testing.assert_array_equal(same.pico.values, point.pico.values)


def test_covariates_are_checked(with_chl, chl_models):
    with pytest.raises(xgenfill.GenfillError, match=r"pass covariates=\['chl'\]"):
        inpaint_fractions(with_chl, NAMES, model=chl_models)
    with pytest.raises(xgenfill.GenfillError, match="one of the fractions"):
        inpaint_fractions(with_chl, NAMES, model=chl_models, covariates=["nano"])
    with pytest.raises(xgenfill.GenfillError, match="not in the dataset"):
        inpaint_fractions(with_chl, NAMES, model=chl_models, covariates=["sst"])
    with pytest.raises(xgenfill.GenfillError, match="joint model trains on loaded"):
        xgenfill.train_fractions(with_chl.chunk({"time": 10}), NAMES, model="joint_vae",
                                 covariates=["chl"], max_steps=1)
    with pytest.raises(xgenfill.GenfillError, match="different grid"):
        inpaint_fractions(with_chl, NAMES, covariates=[with_chl.chl.isel(lat=slice(1, None))])


def test_train_fractions_streams_dask_fractions_with_covariates(with_chl):
    """Dask fractions with a covariate: the trend's coefficients are computed first (its
    residuals then equal the eager ones), and each fraction's network trains streamed,
    block by block; the models fill the loaded data."""
    from xgenfill.fractions import _residuals

    lazy = with_chl.chunk({"time": 10})
    eager_t, _ = _residuals(to_log_ratios(with_chl, NAMES), [with_chl.chl])
    with pytest.warns(xgenfill.GenfillWarning, match="Fill it once first"):
        lazy_t, _ = _residuals(to_log_ratios(lazy, NAMES), [lazy.chl],
                               compute_coefficients=True)
    assert hasattr(lazy_t.pico.data, "dask")
    np.testing.assert_allclose(lazy_t.pico.values, eager_t.pico.values, rtol=1e-4, atol=1e-6)
    # a complete covariate (filled once beforehand): a block's trend is elementwise
    filled = lazy.assign(chl=xgenfill.inpaint(with_chl.chl, model="anomaly").chunk(
        {"time": 10}))
    complete_t, _ = _residuals(to_log_ratios(filled, NAMES), [filled.chl],
                               compute_coefficients=True)
    np.testing.assert_allclose(complete_t.pico.values, eager_t.pico.values, rtol=1e-4,
                               atol=1e-6)
    layers = {str(k[0] if isinstance(k, tuple) else k)
              for k in dict(complete_t.pico.data.__dask_graph__())}
    assert not any(n.startswith(("_fill_block", "coefficients", "mean_agg")) for n in layers)
    models = xgenfill.train_fractions(filled, NAMES, model="vae", covariates=["chl"],
                                      max_steps=3, batch_size=2, patch=16, block=(10, 48, 64),
                                      progress=False, **TINY)
    assert models["pico"].meta["training"]["streamed"]
    assert models["pico"].meta["fractions"]["covariates"] == ["chl"]
    out = inpaint_fractions(with_chl, NAMES, model=models, covariates=["chl"])
    assert assert_contract(with_chl, out).sum() > 0


@pytest.mark.parametrize("chunks, networks", [({"time": 10}, True),
                                              ({"time": 7, "lat": 24, "lon": 32}, False)])
def test_covariates_on_dask_give_the_eager_result(with_chl, chl_models, chunks, networks):
    """Dask fractions and covariates: nothing computed until asked, the eager fill whatever
    the chunks (the trend's per-date sums are made chunk by chunk), for a classical model
    and for networks that read the covariates themselves (their spatial halos with lazy
    covariates: test_lazy)."""
    from .test_lazy import raise_if_dask_computes

    lazy_in = with_chl.chunk(chunks)
    for model in ("anomaly", chl_models) if networks else ("anomaly",):
        eager = inpaint_fractions(with_chl, NAMES, model=model, covariates=["chl"])
        with raise_if_dask_computes():
            lazy = inpaint_fractions(lazy_in, NAMES, model=model, covariates=["chl"])
        assert hasattr(lazy.pico.data, "dask")
        lazy = lazy.compute()
        for name in NAMES:
            np.testing.assert_allclose(lazy[name].values, eager[name].values, rtol=1e-4,
                                       atol=1e-6)
            np.testing.assert_array_equal(lazy[f"{name}_filled_flag"].values,
                                          eager[f"{name}_filled_flag"].values)


def test_covariates_help_a_classical_fill(fractions, with_chl):
    """The fractions are a function of chl here (Brewin et al. 2010): their regression on
    chl plus the anomaly fill of its residuals beats the anomaly fill alone on the pixels
    hidden by the extra clouds, whose truth is known."""
    hidden = np.isnan(with_chl.pico.values) & np.isfinite(fractions.pico.values)
    plain = inpaint_fractions(with_chl, NAMES, model="anomaly")
    withc = inpaint_fractions(with_chl, NAMES, model="anomaly", covariates=["chl"])
    assert_contract(with_chl, withc)
    assert "covariates=['chl']" in withc.attrs["history"]

    def rmse(out):
        return np.sqrt(np.nanmean([(out[n].values[hidden] - fractions[n].values[hidden]) ** 2
                                   for n in NAMES]))

    assert rmse(withc) < 0.5 * rmse(plain)
    with pytest.raises(xgenfill.GenfillError, match="names or DataArrays"):
        xgenfill.train_fractions(with_chl, NAMES, covariates=[3], max_steps=1)


def test_validate_fractions_scores_hidden_compositions(fractions, with_chl):
    res = xgenfill.validate_fractions(with_chl, NAMES, models=["linear_time", "anomaly"],
                                      covariates=["chl"])
    assert res.rmse.dims == ("model", "variable") and list(res.variable.values) == NAMES
    assert (res.n > 100).all() and (res.share_filled > 0.95).all()
    assert (res.max_sum_deviation < 1e-6).all() and np.isnan(res.crps).all()
    assert res.attrs["covariates"] == "['chl']"
    plain = xgenfill.validate_fractions(with_chl, NAMES, models=["anomaly"])
    # chl carries the composition here: the covariate must show in the scores
    assert float(res.rmse_mean.sel(model="anomaly")) < 0.5 * float(plain.rmse_mean[0])
    # the accessor is the same function; a generative model is trained without the holdout
    acc = with_chl.genfill.validate_fractions(NAMES, models=["vae", "joint_vae"], n_samples=3,
                                              fit=dict(max_steps=3, patch=16, **TINY))
    assert np.isfinite(acc.crps).all() and int(acc.n[0, 0]) == int(plain.n[0, 0])
    with pytest.raises(xgenfill.GenfillError, match="pass fit="):
        xgenfill.validate_fractions(with_chl, NAMES, models=["diffusion"])
    with pytest.raises(xgenfill.GenfillError, match="time axis"):
        xgenfill.validate_fractions(with_chl.isel(time=0), NAMES)
    with pytest.raises(xgenfill.GenfillError, match="fraction must be"):
        xgenfill.validate_fractions(with_chl, NAMES, fraction=0.9)


@pytest.fixture(scope="module")
def joint_model(with_chl):
    return xgenfill.train_fractions(with_chl, NAMES, model="joint", covariates=["chl"],
                                    max_steps=20, patch=24, progress=False, seed=0, **TINY)


def test_joint_model_fills_the_composition_together(with_chl, joint_model, tmp_path):
    from xgenfill.models.io import load_model
    from xgenfill.models.joint import JointDiffusionFiller

    m = joint_model["pico"]
    assert isinstance(m, JointDiffusionFiller) and all(joint_model[n] is m for n in NAMES)
    assert m.meta["fractions"]["component"] == "all (joint)"
    assert m.meta["training"]["steps"] == 20
    out = inpaint_fractions(with_chl, NAMES, model=joint_model, covariates=["chl"],
                            n_samples=3, seed=2)
    filled = assert_contract(with_chl, out)
    assert filled.sum() > 0 and (out.pico_uncertainty.values[filled] > 0).any()
    # members are drawn jointly: the same seed gives the same fill, from the model saved and
    # loaded too
    m.save(tmp_path / "joint")
    back = load_model(tmp_path / "joint", precision="float32", device="cpu")
    loaded = inpaint_fractions(with_chl, NAMES, model={n: back for n in NAMES},
                               covariates=["chl"], n_samples=3, seed=2)
    np.testing.assert_allclose(loaded.pico.values, out.pico.values, rtol=1e-4)
    # the network's K outputs are the fields: perturbing one field's input moves the others
    import torch

    ctx = torch.zeros(1, m.n_context, 16, 16)
    x = torch.zeros(1, 3, 16, 16)
    vis = torch.zeros(1, 3, 16, 16, dtype=torch.bool)
    base = m.net(m._inputs(x, torch.ones_like(x), vis, ctx), torch.zeros(1))
    x2 = x.clone()
    x2[:, 0] = 1.0
    moved = m.net(m._inputs(x2, torch.ones_like(x), vis, ctx), torch.zeros(1))
    assert base.shape == (1, 3, 16, 16)
    assert float((moved - base)[:, 1:].abs().max()) > 0  # field 0 informs fields 1 and 2


def test_joint_vae_fills_the_composition_together(with_chl, tmp_path):
    """The joint VAE: one latent for the whole composition, members that sum to 1, seeded,
    saved and loaded; the decoder's K means read every field."""
    import torch

    from xgenfill.models.io import load_model
    from xgenfill.models.joint import JointVAEFiller

    models = xgenfill.train_fractions(with_chl, NAMES, model="joint_vae", covariates=["chl"],
                                      max_steps=20, patch=24, progress=False, seed=0, **TINY)
    m = models["pico"]
    assert isinstance(m, JointVAEFiller) and all(models[n] is m for n in NAMES)
    assert m.meta["training"]["steps"] == 20 and m.arch["residual"]
    out = inpaint_fractions(with_chl, NAMES, model=models, covariates=["chl"], n_samples=3,
                            seed=2, keep_members=True)
    filled = assert_contract(with_chl, out)
    assert filled.sum() > 0 and (out.pico_uncertainty.values[filled] > 0).any()
    # every member sums to 1, keeps the observed values, and spreads as the uncertainty says
    kept = np.stack([out[f"{n}_members"].values for n in NAMES]).astype(np.float64)
    assert kept.shape[1] == 3 and out.pico_members.dims[0] == "member"
    assert np.nanmax(np.abs(kept.sum(0) - 1)[:, filled]) < 1e-5
    obs = np.isfinite(with_chl.pico.values)
    assert (kept[0][:, obs] == with_chl.pico.values[obs]).all()
    # (a member the plausibility check refused at a pixel is NaN there, as in inpaint)
    np.testing.assert_allclose(np.nanstd(kept[0], 0, ddof=1)[filled],
                               out.pico_uncertainty.values[filled], rtol=1e-3, atol=1e-6)
    point = inpaint_fractions(with_chl, NAMES, model=models, covariates=["chl"])
    assert np.array_equal(np.isfinite(point.pico.values), np.isfinite(out.pico.values))
    m.save(tmp_path / "jvae")
    back = load_model(tmp_path / "jvae", precision="float32", device="cpu")
    assert isinstance(back, JointVAEFiller)
    loaded = inpaint_fractions(with_chl, NAMES, model={n: back for n in NAMES},
                               covariates=["chl"], n_samples=3, seed=2)
    np.testing.assert_allclose(loaded.pico.values, out.pico.values, rtol=1e-4)
    # with estimate="members" the point is the members' mean: no second, point-only call
    by_members = load_model(tmp_path / "jvae", precision="float32", device="cpu",
                            estimate="members")
    members = inpaint_fractions(with_chl, NAMES, model={n: by_members for n in NAMES},
                                covariates=["chl"], n_samples=3, seed=2)
    assert_contract(with_chl, members)
    # field 0's visible values move the decoder's means of fields 1 and 2
    k, c, lat = 3, m.n_context, int(m.options["latent"])
    x = torch.zeros(1, 2 * k + c + lat, 16, 16)
    with torch.no_grad():
        base = m.net.decode(x)
        x[:, 0], x[:, k] = 1.0, 1.0
        moved = m.net.decode(x)
    assert base.shape == (1, 2 * k, 16, 16)
    assert float((moved - base)[:, 1:k].abs().max()) > 0


def test_joint_model_refusals(with_chl, joint_model, fractions):
    m = joint_model["pico"]
    with pytest.raises(xgenfill.GenfillError, match="pass it for all"):
        inpaint_fractions(with_chl, NAMES, model={"pico": m, "nano": "anomaly",
                                                  "micro": "anomaly"}, covariates=["chl"])
    with pytest.raises(xgenfill.GenfillError, match="train_fractions"):
        xgenfill.train(with_chl.pico, model="joint_diffusion", max_steps=1)
    with pytest.raises(xgenfill.GenfillError, match="inpaint_fractions"):
        xgenfill.inpaint(to_log_ratios(with_chl, NAMES).pico, model=m, transform="identity")
    from xgenfill.models.base import Cube
    from xgenfill.models.joint import JointSource

    a = np.where(np.isfinite(fractions.pico.values), 0.0, np.nan).astype(np.float32)
    b = a.copy()
    b[0, 0, 0] = np.nan if np.isfinite(b[0, 0, 0]) else 0.0
    ocean = np.ones(a.shape[1:], bool)
    with pytest.raises(xgenfill.GenfillError, match="same pixels"):
        JointSource([Cube(a, ocean), Cube(b, ocean), Cube(a, ocean)], m, "cpu",
                    np.random.default_rng(0), 0.1, "auto", None)
