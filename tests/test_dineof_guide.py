"""DINEOF's reconstruction as an input of the networks (``dineof_guide=True``): cross-fitted so
that no observed pixel sees its own value, added to a pretrained model at zero weight, kept by
save/load and refits, and refused where the whole field is not at hand."""

from __future__ import annotations

import numpy as np
import pytest

import xgenfill
from xgenfill.errors import GenfillError
from xgenfill.models.base import Cube
from xgenfill.models.context import n_context_channels
from xgenfill.models.dineof import dineof_guide
from xgenfill.models.guard import Guarded
from xgenfill.models.io import load_model

from .conftest import TINY, make_chl, make_clouds, make_field


def test_the_guide_never_sees_an_observed_pixels_own_value():
    v = make_field(nt=24, ny=20, nx=20, seed=3).astype(np.float32)
    v[make_clouds(v.shape, 4, 0.3)] = np.nan
    ocean = np.ones((20, 20), bool)
    ocean[:3, :3] = False
    cube = Cube(np.where(ocean[None], v, np.nan), ocean)
    g = dineof_guide(cube)
    assert np.isfinite(g[:, ocean]).all() and np.isnan(g[:, ~ocean]).all()
    np.testing.assert_array_equal(g, dineof_guide(cube))  # deterministic
    t, y, x = 10, 12, 9
    assert np.isfinite(cube.values[t, y, x])
    changed = cube.values.copy()
    changed[t, y, x] += 5.0  # a wild value at one observed pixel
    g2 = dineof_guide(Cube(changed, ocean))
    assert g2[t, y, x] == pytest.approx(g[t, y, x], abs=1e-6)  # its own guide does not move
    assert np.nanmax(np.abs(g2 - g)) > 1e-3  # (other pixels' guides see it)
    # at observed pixels the guide is DINEOF's estimate, close to but not the observation
    obs = np.isfinite(cube.values)
    err = np.sqrt(np.mean((g[obs] - cube.values[obs]) ** 2))
    assert 0 < err < 0.5 * np.nanstd(cube.values)


@pytest.mark.parametrize("kind", ["diffusion", "vae"])
def test_adding_the_guide_keeps_what_a_model_computes_and_training_learns_it(kind, tmp_path):
    da = make_chl(nt=20, seed=2)
    cov = (da * 1.3 + 0.1).rename("other")
    base = xgenfill.train(da, model=kind, max_steps=10, patch=24, progress=False, **TINY)
    before = xgenfill.inpaint(da, model=base, n_samples=2, seed=4)
    for widened, extra in ((base.with_dineof_guide(), {}),
                           (base.with_dineof_guide().with_covariates(1), {"covariates": cov}),
                           (base.with_covariates(1).with_dineof_guide(), {"covariates": cov})):
        assert widened.arch["dineof_guide"]
        after = xgenfill.inpaint(da, model=widened, n_samples=2, seed=4, **extra)
        np.testing.assert_allclose(after.values, before.values, rtol=1e-5)
    tuned = xgenfill.train(da, model=kind, init=base, dineof_guide=True, max_steps=10,
                           patch=24, progress=False)
    first = tuned.net.inp if kind == "diffusion" else tuned.net.decoder.inp
    c0 = tuned.first_context_channel + n_context_channels(2, 0)
    assert first.weight[:, c0:c0 + 2].abs().sum() > 0  # the guide's value and mask channels
    tuned.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", precision="float32")  # as TINY's
    assert loaded.arch["dineof_guide"]
    np.testing.assert_array_equal(xgenfill.inpaint(da, model=loaded).values,
                                  xgenfill.inpaint(da, model=tuned).values)
    with pytest.raises(GenfillError, match="cannot remove the DINEOF guide"):
        xgenfill.train(da, model=kind, init=tuned, dineof_guide=False, max_steps=1)


def test_validate_refits_a_guided_fine_tune_from_the_same_start():
    chl = xgenfill.open_sample("oahu").chlor_a.isel(time=slice(0, 24))
    model = xgenfill.train(chl, model="diffusion", dineof_guide=True, max_steps=1, batch_size=2,
                           patch=16)
    assert model.meta["training"]["init"].startswith("pretrained diffusion-chl-v1")
    assert model.arch["dineof_guide"] and model.arch["guides"]
    res = xgenfill.validate(chl, models=[Guarded(model)], n_samples=1,
                            fit={"max_steps": 1, "batch_size": 2, "patch": 16})
    assert float(res.fit_seconds.sel(model="auto")) > 0
    assert "diffusion" in str(res.guard.sel(model="auto").values)


def test_a_guided_model_needs_the_whole_field():
    pytest.importorskip("dask")
    da = make_chl(nt=20, seed=2)
    m = xgenfill.train(da, model="diffusion", dineof_guide=True, max_steps=2, patch=24,
                       progress=False, **TINY)
    assert m.spatial_radius is None
    # alone on a dask array: one chunk, the in-memory fill (to float rounding)
    lazy = xgenfill.inpaint(da.chunk(time=5, lat=12), model=m)
    eager = xgenfill.inpaint(da, model=m)
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-6)
    obs = np.isfinite(da.values)
    np.testing.assert_array_equal(eager.values[obs], da.values[obs])  # observed kept
    assert np.isnan(eager.values[:, :5, :6]).all()  # land (never observed) not filled
    assert np.isfinite(eager.values[:, 10:, 10:]).all()  # the sea's gaps filled
    with pytest.raises(GenfillError, match="load the data"):
        xgenfill.inpaint(da.chunk(time=5), network=m)
    with pytest.raises(GenfillError, match="cannot stream its training"):
        xgenfill.train(da.chunk(time=5), model=m, max_steps=1)
    with pytest.raises(GenfillError, match="at least 3 time steps"):
        xgenfill.inpaint(da.isel(time=[0, 1]), model=m)


def test_the_default_fine_tune_reads_dineof_where_the_field_allows_it(monkeypatch):
    import xgenfill.api as api

    chl = xgenfill.open_sample("oahu").chlor_a.isel(time=slice(0, 12))
    model = xgenfill.train(chl, model="vae", max_steps=1, batch_size=2, patch=16)
    assert model.arch["dineof_guide"] and "with the DINEOF guide" in \
        model.meta["training"]["init"]
    assert not api._dineof_guide_default(chl.isel(time=[0, 1]), None)  # too few steps
    monkeypatch.setattr(api, "DINEOF_GUIDE_MAX", chl.size - 1)
    assert not api._dineof_guide_default(chl, None)  # too large
    # an explicit choice wins
    plain = xgenfill.train(chl, model="vae", dineof_guide=False, max_steps=1, batch_size=2,
                           patch=16)
    assert not plain.arch["dineof_guide"]


def test_the_default_fine_tune_of_a_dask_array_streams_without_it():
    pytest.importorskip("dask")
    import xgenfill.api as api

    chl = xgenfill.open_sample("oahu").chlor_a.isel(time=slice(0, 12))
    assert not api._dineof_guide_default(chl.chunk(time=6), None)
