"""Dask inputs: lazy results, equality with the eager path across chunkings, small graphs,
dask.distributed with worker processes (and a worker killed mid-computation)."""

import os

import cloudpickle
import dask
import numpy as np
import pytest

import xgenfill
from xgenfill import lazy

from .conftest import TINY, make_chl


class CountingScheduler:
    """A dask scheduler that raises once more than ``max_computes`` computes happen
    (the cf-xarray / xarray ``raise_if_dask_computes`` pattern)."""

    def __init__(self, max_computes=0):
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk, keys, **kwargs):
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(f"too many computes: {self.total_computes}")
        return dask.get(dsk, keys, **kwargs)


def raise_if_dask_computes(max_computes=0):
    return dask.config.set(scheduler=CountingScheduler(max_computes))


@pytest.mark.parametrize("model", ["vae", "diffusion", "dineof", "linear_time"])
def test_inpaint_on_dask_is_lazy(model):
    da = make_chl(nt=40).chunk(time=10)
    with raise_if_dask_computes():
        out = xgenfill.inpaint(da, model=model, return_dataset=True)
    for v in out.data_vars.values():
        assert hasattr(v.data, "dask")
    assert out.chl.dims == da.dims


F32 = dict(precision="float32")
# bf16 network arithmetic: kernels chosen per batch shape round differently, so chunkings
# agree to bf16 precision only (~1e-3 relative), far below the fill error
BF16 = dict(precision="bfloat16")


@pytest.mark.parametrize("model,kw,rtol", [("vae", dict(n_samples=3, seed=2, **F32), 2e-5),
                                           ("diffusion", dict(seed=4, **F32), 2e-5),
                                           ("vae", dict(n_samples=2, seed=2, **BF16), 1e-2),
                                           ("diffusion", dict(seed=4, **BF16), 1e-2),
                                           # iterative SVD: last-bit differences of the
                                           # lazily reduced statistics are amplified a little
                                           ("dineof", {}, 2e-3),
                                           ("anomaly", {}, 1e-6)])
def test_same_result_across_chunkings_and_eager(model, kw, rtol):
    da = make_chl(nt=36)
    eager = xgenfill.inpaint(da, model=model, return_dataset=True, **kw)
    for chunks in ({"time": 12}, {"time": 20, "lat": 8}, {"time": -1}):
        lazy_in = da.chunk(chunks)
        lazy_out = xgenfill.inpaint(lazy_in, model=model, return_dataset=True, **kw)
        for name in ("chl", "chl_filled_flag", "chl_uncertainty"):  # the user's chunks back
            assert lazy_out[name].chunks == lazy_in.chunks, (name, chunks)
        lazy_out = lazy_out.compute()
        np.testing.assert_allclose(lazy_out.chl.values, eager.chl.values, rtol=rtol)
        np.testing.assert_array_equal(lazy_out.chl_filled_flag.values,
                                      eager.chl_filled_flag.values)
        # uncertainty: ensemble spread, or the model's own estimate (DINEOF's CV error)
        unc, ref = lazy_out.chl_uncertainty.values, eager.chl_uncertainty.values
        filled = eager.chl_filled_flag.values == 1
        if model in ("dineof", "vae", "diffusion"):  # generative models at n_samples=1 give
            # the spread of uncertainty_members members, lazily and eagerly alike
            assert np.isfinite(ref[filled]).all() and np.isfinite(unc[filled]).all()
        else:  # a classical fill has no error estimate of its own
            assert np.isnan(ref[filled]).all() and np.isnan(unc[filled]).all()
        np.testing.assert_allclose(unc[filled], ref[filled], rtol=max(rtol, 1e-4) * 50,
                                   atol=1e-2 * np.nanmedian(ref[filled])
                                   if rtol > 1e-3 and np.isfinite(ref[filled]).any() else 1e-6,
                                   equal_nan=True)
        obs = np.isfinite(da.values)
        assert np.array_equal(lazy_out.chl.values[obs], da.values[obs])


def test_members_along_sample_dim_lazily():
    da = make_chl(nt=24)
    eager = xgenfill.inpaint(da, model="vae", n_samples=2, seed=5, **F32)
    out = xgenfill.inpaint(da.chunk(time=12), model="vae", n_samples=2, seed=5, **F32)
    assert out.dims == ("member",) + da.dims and hasattr(out.data, "dask")
    np.testing.assert_allclose(out.values, eager.values, rtol=2e-5)


def test_no_weights_in_the_graph_and_one_load_per_worker():
    da = make_chl(nt=40).chunk(time=10)
    out = xgenfill.inpaint(da, model="vae")
    graph = dict(out.data.__dask_graph__())
    size = len(cloudpickle.dumps(graph))
    weights = os.path.getsize(
        os.path.join(os.path.dirname(xgenfill.__file__), "models/weights/vae-chl-v1.safetensors"))
    assert size < weights / 4, (size, weights)
    lazy._CACHE.clear()
    out.compute(scheduler="threads")
    assert len(lazy._CACHE) == 1


def test_bad_values_raise_at_compute():
    da = make_chl(nt=20)
    da[2, 10, 10] = -1.0
    out = xgenfill.inpaint(da.chunk(time=10), model="vae")
    with pytest.raises(xgenfill.GenfillError, match="non-positive"):
        out.compute()


def test_distributed_two_worker_processes_and_a_killed_worker():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    da = make_chl(nt=48)
    expected = xgenfill.inpaint(da, model="vae", n_samples=2, seed=1, **F32)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        lazy_out = xgenfill.inpaint(da.chunk(time=12), model="vae", n_samples=2, seed=1,
                                    **F32)
        result = lazy_out.compute()
        np.testing.assert_allclose(result.values, expected.values, rtol=2e-5)
        # kill one worker while the graph runs: the nanny restarts it, tasks are retried
        future = client.compute(lazy_out.data, retries=3)
        workers = list(client.scheduler_info()["workers"])
        try:
            client.run(os._exit, 1, workers=[workers[0]], wait=False)
        except Exception:
            pass
        values = future.result(timeout=120)
        np.testing.assert_allclose(values, expected.values, rtol=2e-5)


def test_space_plan_widens_aligns_and_merges_chunks():
    assert lazy.space_plan((48, 48), 96, None, 8) == ((96,), 0)  # whole field (DINEOF)
    assert lazy.space_plan((30, 30, 36), 96, 0, 8) == ((30, 30, 36), 0)  # pixel-wise
    assert lazy.space_plan((96,), 96, 40, 8) == ((96,), 0)  # one chunk: no halo
    assert lazy.space_plan((20, 20, 20, 20, 20), 100, 38, 8) == ((40, 60), 40)
    assert lazy.space_plan((50, 50), 100, 100, 8) == ((100,), 0)  # halo wider than the field
    sizes, depth = lazy.space_plan((1000,) * 9, 8640, 474, 16)
    assert depth == 480 and all(s % 16 == 0 for s in sizes[:-1]) and sum(sizes) == 8640


@pytest.mark.parametrize("kind,n_samples", [("diffusion", 2), ("vae", 2), ("diffusion", 1),
                                             ("vae", 1)])
@pytest.mark.parametrize("periodic", [False, True])
def test_spatial_chunks_exchange_halos_and_match_the_eager_result(tiny_models, kind, periodic,
                                                                   n_samples, monkeypatch):
    da = make_chl(nt=16, ny=192, nx=224, seed=3)
    if periodic:  # a global longitude axis: chunks wrap around through their halos
        da = da.assign_coords(lon=np.arange(224) * 360.0 / 224)
        da.lon.attrs.update(standard_name="longitude", units="degrees_east")
    model = tiny_models[kind].copy()
    if kind == "diffusion" and n_samples > 1:
        model.options["steps"] = 1  # dependency radius 19 + 45 (guides): halos of 64 pixels
    # (n_samples=1: the default 6-step model computes only its one-call conditional mean,
    # whose radius is that of one call too)
    eager = xgenfill.inpaint(da, model=model, n_samples=n_samples, seed=5)
    chunks = {"time": 8, "lat": 96, "lon": 112}
    with raise_if_dask_computes():
        out = xgenfill.inpaint(da.chunk(chunks), model=model, n_samples=n_samples, seed=5)
    assert len(out.chunks[-2]) == 2 and len(out.chunks[-1]) == 2  # space stays chunked
    np.testing.assert_allclose(out.values, eager.values, rtol=2e-5)
    # the same chunks without halos differ near the chunk edges: the halos are what works
    plan = lazy.space_plan
    monkeypatch.setattr(lazy, "space_plan", lambda *a: (plan(*a)[0], 0))
    bare = xgenfill.inpaint(da.chunk(chunks), model=model, n_samples=n_samples, seed=5)
    assert not np.allclose(bare.values, eager.values, rtol=1e-3, equal_nan=True)


@pytest.mark.parametrize("kind", ["diffusion", "vae"])
def test_record_shorter_than_the_time_halo(tiny_models, kind):
    # five one-step chunks against a time halo of 15 steps (dask's overlap refuses a halo
    # longer than the array): the record is filled as one chunk, equal to the eager result
    da = make_chl(nt=5, seed=2)
    model = tiny_models[kind]
    assert lazy.time_depth(model) > da.sizes["time"]
    eager = xgenfill.inpaint(da, model=model, n_samples=2, seed=1)
    out = xgenfill.inpaint(da.chunk(time=1), model=model, n_samples=2, seed=1)
    assert hasattr(out.data, "dask")
    np.testing.assert_allclose(out.values, eager.values, rtol=2e-5)


@pytest.mark.parametrize("periodic", [False, True])
def test_anomaly_fill_in_spatial_chunks_matches_the_eager_result(periodic, monkeypatch):
    from xgenfill.models.baselines import AnomalyInterp

    da = make_chl(nt=10, ny=96, nx=224, seed=4)
    if periodic:
        da = da.assign_coords(lon=np.arange(224) * 360.0 / 224)
        da.lon.attrs.update(standard_name="longitude", units="degrees_east")
    model = AnomalyInterp(sigmas=(2.0, 6.0))  # reach 15 pixels
    eager = xgenfill.inpaint(da, model=model)
    chunks = {"time": -1, "lat": 48, "lon": 112}
    with raise_if_dask_computes():
        out = xgenfill.inpaint(da.chunk(chunks), model=model)
    assert len(out.chunks[-1]) == 2
    np.testing.assert_allclose(out.values, eager.values, rtol=1e-6)
    plan = lazy.space_plan
    monkeypatch.setattr(lazy, "space_plan", lambda *a: (plan(*a)[0], 0))
    bare = xgenfill.inpaint(da.chunk(chunks), model=model)
    assert not np.allclose(bare.values, eager.values, rtol=1e-3, equal_nan=True)


@pytest.mark.parametrize("kind", ["vae", "diffusion"])
def test_residual_models_in_spatial_chunks_match_the_eager_result(monkeypatch, kind):
    """A residual model's first guess reaches 203 pixels: its halos carry that reach too."""
    da = make_chl(nt=6, ny=48, nx=640, seed=6)
    model = xgenfill.train(da, model=kind, max_steps=3, patch=24, progress=False,
                           residual=True, **TINY)
    assert model.spatial_radius > 203
    eager = xgenfill.inpaint(da, model=model, seed=1)
    out = xgenfill.inpaint(da.chunk({"time": -1, "lon": 320}), model=model, seed=1)
    assert len(out.chunks[-1]) == 2
    np.testing.assert_allclose(out.values, eager.values, rtol=2e-5)
    plan = lazy.space_plan
    monkeypatch.setattr(lazy, "space_plan", lambda *a: (plan(*a)[0], 0))
    bare = xgenfill.inpaint(da.chunk({"time": -1, "lon": 320}), model=model, seed=1)
    assert not np.allclose(bare.values, eager.values, rtol=1e-3, equal_nan=True)


@pytest.mark.parametrize("kind", ["vae", "diffusion"])
def test_covariates_on_dask_inputs_lazily(kind):
    """Covariates with gaps of their own, on dask inputs: halos in time and space as for the
    target, nothing computed before asked, and the eager result whatever the chunks."""
    import xarray as xr

    from .conftest import make_field

    da = make_chl(nt=20, ny=96, nx=112, seed=4)
    cov = 10 ** xr.DataArray(make_field(nt=20, ny=96, nx=112, seed=9), dims=da.dims,
                             coords=da.coords)
    cov = cov.where(np.random.default_rng(1).random(cov.shape) > 0.1)  # its own gaps
    cov = cov.rename("proxy").assign_attrs(units="mg m-3", long_name="chl proxy")
    m = xgenfill.train(da, model=kind, max_steps=3, patch=32, progress=False, seed=0,
                       covariates=cov, init=None, **TINY)
    if kind == "diffusion":
        m.options["steps"] = 1  # a small dependency radius: halos narrower than the chunks
    eager = xgenfill.inpaint(da, model=m, covariates=cov, n_samples=2, seed=3)
    for chunks in ({"time": 10}, {"time": 7, "lat": 48, "lon": 56}):
        with raise_if_dask_computes():
            out = xgenfill.inpaint(da.chunk(chunks), model=m, covariates=cov.chunk(chunks),
                                   n_samples=2, seed=3)
        np.testing.assert_allclose(out.values, eager.values, rtol=2e-5, atol=1e-7)
    # an eager covariate beside a dask input works too; the wrong count is refused at once
    out = xgenfill.inpaint(da.chunk({"time": 10}), model=m, covariates=cov, n_samples=2,
                           seed=3)
    np.testing.assert_allclose(out.values, eager.values, rtol=2e-5, atol=1e-7)
    with pytest.raises(xgenfill.GenfillError, match="built for 1 covariate"):
        xgenfill.inpaint(da.chunk({"time": 10}), model=m)
    # the covariate is read: another covariate gives another fill
    other = xgenfill.inpaint(da.chunk({"time": 10}), model=m, covariates=cov[::-1].assign_coords(
        time=cov.time), n_samples=2, seed=3)
    assert not np.allclose(other.values, eager.values, equal_nan=True)
