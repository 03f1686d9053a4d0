"""Training streamed from a dask-backed archive (xgenfill.streaming)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xgenfill
from xgenfill.streaming import ArchiveSampler

from .conftest import TINY

pytest.importorskip("dask")


@pytest.fixture(scope="module")
def archive() -> xr.DataArray:
    return xgenfill.open_sample("phytofit").chl.chunk({"time": 20})


def test_statistics_are_the_eager_ones(archive):
    s = ArchiveSampler(archive, block=(30, 48, 64))
    eager = xgenfill.train(archive.compute(), model="vae", init=None, max_steps=1, batch_size=2,
                           patch=16, progress=False, **TINY)
    np.testing.assert_allclose(s.mean, eager.meta["normalisation"]["mean"], rtol=1e-5)
    np.testing.assert_allclose(s.std, eager.meta["normalisation"]["std"], rtol=1e-5)
    np.testing.assert_array_equal(s.ocean, np.isfinite(archive.values).any(0))


def test_blocks_stay_out_of_the_validation_stretch(archive):
    s = ArchiveSampler(archive, block=(30, 48, 64), seed=1)
    nt = archive.sizes["time"]
    assert s.val_start == nt - 30
    for _ in range(20):
        cube = s.block()
        assert cube.values.shape == (30, 48, 64) and cube.values.dtype == np.float32
        assert cube.t_offset + 30 <= s.val_start
    val = s.block(validation=True)
    assert val.t_offset == s.val_start


def test_a_block_is_the_archive_normalised(archive):
    s = ArchiveSampler(archive, block=(30, 96, 160), seed=1)  # the whole grid: no offset
    cube = s.block()
    t0 = cube.t_offset
    raw = np.log10(archive.values[t0:t0 + 30].astype(np.float32))
    expect = (raw - s.mean[0]) / s.std[0]
    np.testing.assert_allclose(cube.values, expect, rtol=1e-4, atol=1e-5)


def test_streamed_training_gives_a_model(archive):
    before = archive.copy()
    m = xgenfill.train(archive, model="diffusion", init=None, max_steps=12, batch_size=4,
                       patch=32, block=(30, 48, 64), progress=False, seed=0, **TINY)
    xr.testing.assert_identical(before, archive)
    info = m.meta["training"]["streamed"]
    assert info["block"] == [30, 48, 64] and info["blocks_read"] == 1
    assert m.meta["training_data"]["streamed"] and m.meta["transform"] == "log10"
    assert m.meta["training"]["best_val_rmse_normalised"] is not None
    filled = xgenfill.inpaint(archive.compute(), model=m)
    assert int(filled.notnull().sum()) > int(archive.notnull().sum())
    # a fit streams new blocks as it goes
    m2 = xgenfill.train(archive, model="vae", init=None, max_steps=6, batch_size=2, patch=16,
                        block=(30, 48, 64), progress=False, **TINY)
    assert m2.meta["training"]["streamed"]["refresh"] == 50


def test_streamed_with_a_lazy_covariate(archive):
    cov = (archive * 0 + 1).fillna(1.0).rename("other")  # lazy, gap-free
    m = xgenfill.train(archive, model="vae", init=None, max_steps=2, batch_size=2, patch=16,
                       block=(30, 48, 64), covariates=[cov], progress=False, **TINY)
    assert m.arch["n_covariates"] == 1
    with pytest.raises(xgenfill.GenfillError, match="built for 1 covariate"):
        xgenfill.train(archive, model=m, max_steps=1, block=(30, 48, 64))


def test_streamed_refusals(archive):
    two = xr.concat([archive, archive], "band")
    with pytest.raises(xgenfill.GenfillError, match="select or stack"):
        ArchiveSampler(two.chunk({"band": 1}))
    with pytest.raises(xgenfill.GenfillError, match="three positive sizes"):
        xgenfill.train(archive, model="vae", init=None, max_steps=1, block=(0, 8, 8), **TINY)
