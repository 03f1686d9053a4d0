"""The default model (model='auto'): a network weighed against the classical fills on the
user's own observed pixels."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xgenfill
from xgenfill.models.base import Cube, Fill, Filler
from xgenfill.models.guard import Guarded, shrunk_weights, stack_weights

from .conftest import make_chl, make_field


class Offset(Filler):
    """A stochastic stand-in for a network: the truth (known here) plus an offset and noise.

    ``offset`` large makes it wrong on purpose; 0 makes it an oracle."""

    name = "fake-net"
    stochastic = True

    def __init__(self, truth_norm: np.ndarray, offset: float, noise: float = 0.05) -> None:
        self.truth, self.offset, self.noise = truth_norm, offset, noise
        self.meta = {}

    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        rng = np.random.default_rng(seed)
        base = self.truth + self.offset
        samples = base[None] + self.noise * rng.standard_normal((n_samples,) + base.shape)
        gaps = cube.gaps
        return Fill(samples=np.where(gaps, samples, np.nan).astype(np.float32),
                    mean=np.where(gaps, base, np.nan).astype(np.float32))


def _normalised_truth(da: xr.DataArray, truth: np.ndarray) -> np.ndarray:
    from xgenfill.prepare import prepare

    prep = prepare(da)
    return ((np.log10(truth) - prep.mean[0]) / prep.std[0]).astype(np.float32)


def test_stack_weights_convex_and_never_worse():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal(500)
    preds = np.stack([truth + 0.3 * rng.standard_normal(500),
                      truth + 0.3 * rng.standard_normal(500), truth + 2.0])
    w = stack_weights(preds, truth)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
    assert w[2] < 0.05  # the biased one gets (almost) nothing
    # two independent errors of equal size: half each, and better than either
    assert w[0] == pytest.approx(0.5, abs=0.1)
    blend = ((w @ preds - truth) ** 2).mean()
    assert blend < ((preds[:2] - truth) ** 2).mean(1).min()


def test_stack_is_shrunk_where_it_does_not_hold_across_dates():
    rng = np.random.default_rng(1)
    n = 2000
    truth = rng.standard_normal(n)
    group = np.repeat([0, 1, 2, 3], n // 4)
    sign = np.where(group % 2 == 0, 1.0, -1.0)
    # independent errors everywhere: the stack holds on dates it was not fitted to
    good = np.stack([truth + 0.3 * rng.standard_normal(n), truth + 0.3 * rng.standard_normal(n)])
    w, lam = shrunk_weights(good, truth, group)
    assert lam == 1.0 and w.min() > 0.3
    # a candidate that helps on half the dates and hurts on the others: shrunk to the best
    noise = 0.3 * rng.standard_normal(n)
    tricky = np.stack([truth + noise, truth + noise - 0.5 * sign * np.abs(noise)])
    w, lam = shrunk_weights(tricky, truth, group)
    assert lam <= 0.5
    # a second candidate far worse but independent: stacking gains ~0.25 %, under MIN_GAIN
    faint = np.stack([truth + 0.3 * rng.standard_normal(n), truth + 6.0 * rng.standard_normal(n)])
    assert stack_weights(faint, truth)[1] > 0  # the stack alone would take it
    w, lam = shrunk_weights(faint, truth, group)
    assert lam == 0.0 and w.tolist() == [1.0, 0.0]
    assert ((w @ tricky - truth) ** 2).mean() <= 1.05 * ((tricky[0] - truth) ** 2).mean()


@pytest.mark.parametrize("offset, expect_weight", [(3.0, "none"), (0.0, "most")])
def test_guard_weighs_network_by_its_skill(offset, expect_weight):
    da = make_chl(nt=30, ny=20, nx=24)
    truth = 10 ** make_field(30, 20, 24, 0)
    net = Offset(_normalised_truth(da, truth), offset)
    out = xgenfill.inpaint(da, model=Guarded(net, ("anomaly", "linear_time")),
                           return_dataset=True)
    weights = dict(kv.split(":") for kv in out.attrs["xgenfill_guard_weights"].split(", "))
    w_net = float(weights["fake-net"])
    gaps = np.isnan(da.values) & np.isfinite(out.chl.values)
    err = np.log10(out.chl.values[gaps]) - np.log10(truth[gaps])
    anomaly = xgenfill.inpaint(da, model="anomaly")
    err_anom = np.log10(anomaly.values[gaps]) - np.log10(truth[gaps])
    if expect_weight == "none":  # made wrong on purpose: the fill falls back to the classical
        assert w_net < 0.05
        assert np.sqrt(np.mean(err ** 2)) < 1.1 * np.sqrt(np.mean(err_anom ** 2))
    else:  # the oracle wins the weight and the fill is much better than the classical one
        assert w_net > 0.8
        assert np.sqrt(np.mean(err ** 2)) < 0.5 * np.sqrt(np.mean(err_anom ** 2))
    # what the check decided is on record
    assert "auto check:" in out.attrs["history"] and "fake-net:" in out.attrs["history"]
    assert out.attrs["xgenfill_guard_holdout_pixels"] > 0
    assert "xgenfill_guard_rmse_blend" in out.attrs
    # observed pixels untouched
    obs = np.isfinite(da.values)
    np.testing.assert_array_equal(out.chl.values[obs], da.values[obs])


def test_guard_members_are_calibrated_about_the_blend():
    da = make_chl(nt=30, ny=20, nx=24)
    truth = 10 ** make_field(30, 20, 24, 0)
    net = Offset(_normalised_truth(da, truth), 1.0, noise=0.01)  # far too sure of itself
    g = Guarded(net, ("anomaly",))
    out = xgenfill.inpaint(da, model=g, n_samples=6)
    assert out.sizes["member"] == 6
    # the spread model is on record, its floor in the transformed units (log10 here)
    ds = xgenfill.inpaint(da, model=g, n_samples=6, return_dataset=True)
    scale = ds.attrs["xgenfill_guard_spread_scale"]
    floor = ds.attrs["xgenfill_guard_spread_floor"]
    assert scale >= 0 and 0 <= floor < 10 * ds.attrs["xgenfill_guard_rmse_blend"]
    assert ds.attrs["xgenfill_guard_spread_depth"] >= 0
    spread = out.std("member")
    # the raw members' spread (0.01 std units) was scaled up to the blend's hidden-pixel error
    from xgenfill.prepare import prepare

    raw = 0.01 * prepare(da).std[0]
    gaps = np.isnan(da.values) & (spread.values > 0)
    ratio = np.log10(out).std("member").values[gaps].mean() / raw
    assert ratio > 3


def test_members_take_the_spread_the_check_fitted():
    # the spread is scale * (the network's own spread) + floor + depth * log(1 + distance to
    # the nearest observation), pixel by pixel
    from xgenfill.models.guard import Check

    rng = np.random.default_rng(3)
    values = rng.standard_normal((4, 10, 12)).astype(np.float32)
    values[:, 3:7, 4:9] = np.nan
    cube = Cube(values, np.ones((10, 12), bool))
    own = np.where(np.arange(12) < 6, 0.5, 0.05)[None, None]  # unsure on the left

    class Spread(Filler):
        name = "spread-net"
        stochastic = True

        def fill(self, cube, n_samples=1, seed=0):
            noise = np.random.default_rng(seed).standard_normal((n_samples,) + values.shape)
            samples = np.where(cube.gaps, own * noise, np.nan).astype(np.float32)
            return Fill(samples=samples, mean=np.where(cube.gaps, 0.0, np.nan))

    net = Spread()
    g = Guarded(net, ())
    gaps = np.isnan(values)
    # each pixel's distance to the nearest observed one, by brute force (the gap is 4 x 5)
    yy, xx = np.mgrid[:10, :12]
    oy, ox = np.nonzero(~gaps[0])
    dist = np.sqrt((yy[..., None] - oy) ** 2 + (xx[..., None] - ox) ** 2).min(-1)
    assert dist.max() == 2.0
    for scale, floor, depth in ((1.0, 0.0, 0.0), (0.0, 0.2, 0.0), (2.0, 0.1, 0.0),
                                (0.0, 0.1, 0.3)):
        check = Check([net], np.ones(1), 0.3, scale, {}, floor, depth)
        out = g.combine(cube, check, n_samples=6)
        sd = out.samples.std(0, ddof=1)
        raw = net.fill(cube, n_samples=6, seed=0).samples.std(0, ddof=1)
        want = scale * raw + floor + depth * np.log1p(dist)[None]
        # the network's members are standardised: their spread is exactly the model's
        np.testing.assert_allclose(sd[gaps], want[gaps], rtol=1e-4)
        np.testing.assert_allclose(out.samples.mean(0)[gaps], 0.0, atol=1e-5)


def test_validate_reports_the_guard_weights():
    da = make_chl(nt=30, ny=20, nx=24)
    truth = 10 ** make_field(30, 20, 24, 0)
    g = Guarded(Offset(_normalised_truth(da, truth), 3.0), ("anomaly", "linear_time"))
    res = xgenfill.validate(da, models=[g, "anomaly"], n_samples=4)
    assert "fake-net:" in str(res.guard.sel(model="auto").values)
    assert str(res.guard.sel(model="anomaly").values) == ""
    # never much worse than its best candidate on the same hidden pixels
    rmse = res.rmse.sel(space="transformed")
    assert float(rmse.sel(model="auto")) < 1.05 * float(rmse.sel(model="anomaly"))


def test_auto_is_the_default_and_uses_the_family_network():
    ds = xgenfill.open_sample("oahu")
    chl = ds.chlor_a.isel(time=slice(0, 40))
    out = xgenfill.inpaint(chl, return_dataset=True, uncertainty_members=0)
    assert "model='auto'" in out.attrs["history"]
    assert "diffusion-chl-v1:" in out.attrs["xgenfill_guard_weights"]
    assert out.chlor_a.notnull().sum() > chl.notnull().sum()


def test_auto_on_a_single_image_uses_spatial_candidates():
    da = make_chl(nt=1, ny=30, nx=30, land=False)
    sea = xr.DataArray(np.ones((30, 30), bool), dims=("lat", "lon"))
    from xgenfill.prepare import prepare

    prep = prepare(da, mask=sea)
    truth = ((np.log10(10 ** make_field(1, 30, 30, 0)) - prep.mean[0]) / prep.std[0])
    net = Offset(truth.astype(np.float32), 3.0)
    out = xgenfill.inpaint(da, model=Guarded(net), mask=sea, return_dataset=True)
    weights = out.attrs["xgenfill_guard_weights"]
    assert "linear_space" in weights and "dineof" not in weights  # no time axis for DINEOF
    assert float(dict(kv.split(":") for kv in weights.split(", "))["fake-net"]) < 0.05


def test_auto_without_a_pretrained_family_is_classical():
    da = make_chl(nt=20, ny=16, nx=16)
    frac = (da / (da + 1)).rename("fraction")
    frac.attrs = {"units": "1", "long_name": "fraction of picophytoplankton"}
    out = xgenfill.inpaint(frac, transform="logit", return_dataset=True)
    assert "diffusion" not in out.attrs["xgenfill_guard_weights"]
    assert float(out.fraction.max()) < 1 and float(out.fraction.min()) > 0


def test_auto_lazy_equals_eager():
    pytest.importorskip("dask")
    da = make_chl(nt=24, ny=16, nx=16)
    g = Guarded(None, ("anomaly", "linear_time"))
    eager = xgenfill.inpaint(da, model=g)
    lazy = xgenfill.inpaint(da.chunk({"time": 8, "lat": 8}), model=g)
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-5, equal_nan=True)


def test_mask_defines_the_sea_never_observed_pixels_are_filled_and_flagged():
    da = make_chl(nt=20, ny=20, nx=24)
    da[:, 10:13, 10:14] = np.nan  # a sea patch under cloud on every date
    sea = xr.DataArray(np.ones((20, 24), bool), dims=("lat", "lon"))
    sea[:5, :6] = False  # the land corner
    out = xgenfill.inpaint(da, model="anomaly", mask=sea, return_dataset=True)
    flag, unc = out.chl_filled_flag, out.chl_uncertainty
    assert flag.attrs["flag_meanings"].split()[5] == "filled_never_observed"
    patch = flag[:, 10:13, 10:14]
    assert (patch == 5).all()
    assert out.chl[:, 10:13, 10:14].notnull().all()
    assert (flag[:, :5, :6] == 2).all()  # land stays land
    # the uncertainty grows with the distance from the nearest pixel with a value
    centre, edge = float(unc[0, 11, 12]), float(unc[0, 10, 10])
    assert np.isfinite(edge) and centre > edge > 0
    # without a mask the same pixels are land, as before
    plain = xgenfill.inpaint(da, model="anomaly", return_dataset=True)
    assert (plain.chl_filled_flag[:, 10:13, 10:14] == 2).all()
    # observed pixels untouched, input unmodified
    obs = np.isfinite(da.values)
    np.testing.assert_array_equal(out.chl.values[obs], da.values[obs])


def test_lazy_never_observed_sea_is_not_filled_but_not_land():
    pytest.importorskip("dask")
    da = make_chl(nt=20, ny=16, nx=16)
    da[:, 8:10, 8:10] = np.nan
    sea = xr.DataArray(np.ones((16, 16), bool), dims=("lat", "lon"))
    sea[:5, :6] = False
    out = xgenfill.inpaint(da.chunk({"time": 10}), model="linear_time", mask=sea,
                           return_dataset=True)
    assert (out.chl_filled_flag[:, 8:10, 8:10] == 3).all().compute()


def test_train_defaults_fine_tune_the_family_model_and_auto_checks_it():
    chl = xgenfill.open_sample("oahu").chlor_a.isel(time=slice(0, 24))
    model = xgenfill.train(chl, model="vae", max_steps=2, batch_size=2, patch=16)
    assert model.meta["training"]["init"].startswith("pretrained vae-chl-v1")
    assert model.meta["init_source"] == "vae-chl-v1" and model.arch["guides"]
    out = xgenfill.inpaint(chl, network=model, return_dataset=True, uncertainty_members=0)
    assert "vae" in out.attrs["xgenfill_guard_weights"]
    assert "auto check:" in out.attrs["history"]
    # validate refits it from the same pretrained start, not from scratch
    res = xgenfill.validate(chl, models=[Guarded(model)], n_samples=2,
                            fit={"max_steps": 1, "batch_size": 2, "patch": 16})
    assert float(res.fit_seconds.sel(model="auto")) > 0
    assert "vae" in str(res.guard.sel(model="auto").values)


def test_train_defaults_fine_tune_the_family_model_with_covariates_too():
    chl = xgenfill.open_sample("oahu").chlor_a.isel(time=slice(0, 24))
    other = (chl * 1.5).rename("chl_other_sensor")
    model = xgenfill.train(chl, model="diffusion", covariates=other, max_steps=1, batch_size=2,
                           patch=16)
    assert model.meta["training"]["init"].startswith("pretrained diffusion-chl-v1")
    assert model.arch["n_covariates"] == 1 and model.arch["guides"]
    # validate refits it from the pretrained start with the covariate's channels again
    res = xgenfill.validate(chl, models=[model], n_samples=2, covariates=other,
                            fit={"max_steps": 1, "batch_size": 2, "patch": 16})
    assert float(res.fit_seconds.isel(model=0)) > 0 and int(res.n.isel(model=0).max()) > 0


def test_train_defaults_on_sst_are_a_residual_network_from_scratch():
    # the benchmark's SST case (B) is filled best by a residual network from scratch
    from .test_transforms import _sst_cube

    sst = _sst_cube()
    sst.attrs = {"units": "degree Celsius"}  # identified by its name and units (Alboran's)
    sst = sst.rename("SST")
    model = xgenfill.train(sst, model="diffusion", max_steps=1, batch_size=2, patch=16)
    assert model.arch["residual"] and model.meta["training"]["init"].startswith("scratch")
    assert model.meta["transform"] == "identity"
    # the pretrained SST model is still there to start from when asked for
    tuned = xgenfill.train(sst, model="diffusion", init="diffusion-sst-v1", max_steps=1,
                           batch_size=2, patch=16)
    assert tuned.meta["init_source"] == "diffusion-sst-v1"


def test_train_defaults_from_scratch_are_residual():
    da = make_chl(nt=12, ny=16, nx=16)
    frac = (da / (da + 1)).rename("fraction")
    frac.attrs = {"units": "1", "long_name": "fraction of picophytoplankton"}
    model = xgenfill.train(frac, model="vae", transform="logit", max_steps=1, batch_size=2,
                           patch=16)
    assert model.arch["residual"] and model.meta["training"]["init"].startswith("scratch")
    # an architecture of one's own is trained exactly as asked, as is init=None
    own = xgenfill.train(frac, model="vae", transform="logit", max_steps=1, batch_size=2,
                         patch=16, widths=(8, 16))
    assert not own.arch["residual"] and own.meta["training"]["init"] == "scratch"
    explicit = xgenfill.train(frac, model="vae", transform="logit", max_steps=1, batch_size=2,
                              patch=16, init=None)
    assert not explicit.arch["residual"]


def test_auto_passes_covariates_to_its_network_only():
    da = make_chl(nt=16, ny=16, nx=16)
    cov = (da.fillna(da.mean()) * 1.1).rename("chl_other")
    m = xgenfill.train(da, model="vae", covariates=cov, max_steps=2, batch_size=2, patch=16,
                       widths=(8, 16), window=1)
    out = xgenfill.inpaint(da, network=m, covariates=cov, return_dataset=True,
                           uncertainty_members=0)
    assert "vae" in out.attrs["xgenfill_guard_weights"]
    with pytest.raises(xgenfill.GenfillError, match="covariate"):
        xgenfill.inpaint(da, network=m)  # trained with one covariate: it needs it


def test_the_default_streams_on_dask_archives():
    """model="auto" on a dask array: nothing computed until asked; the check runs once, on a
    window of the archive, and every chunk is filled by the candidates that work chunk by
    chunk with its weights; the result does not depend on the chunks; observed values are
    kept."""
    from .test_lazy import raise_if_dask_computes

    da = make_chl(nt=30)
    with raise_if_dask_computes():
        lazy = xgenfill.inpaint(da.chunk(time=10, lat=16), model="auto", return_dataset=True,
                                n_samples=2)
    a = lazy.compute()
    b = xgenfill.inpaint(da.chunk(time=15), model="auto", return_dataset=True,
                         n_samples=2).compute()
    np.testing.assert_allclose(a.chl.values, b.chl.values, rtol=1e-5)
    np.testing.assert_array_equal(a.chl_filled_flag.values, b.chl_filled_flag.values)
    seen = np.isfinite(da.values)
    np.testing.assert_array_equal(a.chl.values[seen], da.values[seen])
    filled = a.chl_filled_flag.values == 1
    assert filled.sum() > 0 and np.isfinite(a.chl_uncertainty.values[filled]).all()
    with pytest.raises(xgenfill.GenfillError, match="covariates"):
        xgenfill.inpaint(da.chunk(time=10), model="auto", covariates=[da.chunk(time=10)])
    # a guard left with no candidate that works chunk by chunk is refused up front
    with pytest.raises(xgenfill.GenfillError, match="chunk by chunk"):
        Guarded(None, ["dineof", "linear_space"]).streamable()


def test_a_streamed_check_fills_in_spatial_chunks():
    """With parts of small reach (a small network, pixel-wise candidates), the checked
    combination runs in spatial chunks with halos, never the whole field in one block, and
    gives the same fill whatever the chunks."""
    from .conftest import TINY

    da = make_chl(nt=20, ny=48, nx=96)
    net = xgenfill.train(da, model="vae", max_steps=2, init=None, guides=False,
                         progress=False, batch_size=2, patch=16, **TINY)
    guard = Guarded(net, ["linear_time", "climatology", "dineof"])  # DINEOF: left out
    assert guard.radius_for(1) is None and guard.streamable().radius_for(1) < 48
    out = xgenfill.inpaint(da.chunk(time=10, lon=48), model=guard)
    graph = dict(out.data.__dask_graph__())
    fills = {k for k in graph if isinstance(k, tuple) and str(k[0]).startswith("_fill_block")}
    assert len(fills) >= 2  # spatial chunks, each with the whole record (the candidates)
    a = out.compute()
    b = xgenfill.inpaint(da.chunk(time=20, lat=24), model=guard).compute()
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5)
    assert int((a.notnull() & da.isnull()).sum()) > 0



def test_single_image_check_chooses_one_candidate():
    # a network with errors of its own (noise): a stack would mix it with the spatial
    # interpolation; on one image the check picks one of them (weights 0 or 1, and a note)
    da = make_chl(nt=1, ny=40, nx=40, land=False)
    sea = xr.DataArray(np.ones((40, 40), bool), dims=("lat", "lon"))
    from xgenfill.prepare import prepare

    prep = prepare(da, mask=sea)
    truth = (make_field(1, 40, 40, 0) - prep.mean[0]) / prep.std[0]
    noisy = truth + 0.3 * np.random.default_rng(0).standard_normal(truth.shape)
    out = xgenfill.inpaint(da, model=Guarded(Offset(noisy.astype(np.float32), 0.0),
                                             ["linear_space"]),
                           mask=sea, return_dataset=True)
    weights = [float(kv.split(":")[1]) for kv in out.attrs["xgenfill_guard_weights"].split(", ")]
    assert sorted(weights) == [0.0, 1.0]
    assert "single image" in out.attrs["xgenfill_guard_note"]
    assert out.attrs["xgenfill_guard_stack_share"] == 0.0
    # the chosen one is the one with the lower error on the hidden clouds
    rmse = {k[len("xgenfill_guard_rmse_"):]: v for k, v in out.attrs.items()
            if k.startswith("xgenfill_guard_rmse_") and not k.endswith("blend")}
    chosen = [kv.split(":")[0] for kv in out.attrs["xgenfill_guard_weights"].split(", ")
              if kv.endswith("1.000")]
    assert chosen == [min(rmse, key=rmse.get)]


def test_transplant_tries_other_donors_on_a_short_record():
    from xgenfill.masks import transplant_clouds

    obs = np.ones((3, 20, 20), bool)
    obs[0, :, 10:] = False  # step 0's cloud: the right half
    obs[1, :, :10] = False  # step 1's cloud: the left half
    obs[2, :5] = False  # step 2's cloud: the top rows
    ocean = np.ones((20, 20), bool)
    # step 0 seen only on its left half; step 1's cloud covers all of it (would hide the
    # whole image): passed over, step 2's cloud is the one used
    hits = [bool(transplant_clouds(obs, ocean, 0.5, seed, targets=[0], tries=3)[0].any())
            for seed in range(10)]
    assert all(hits)
    once = [bool(transplant_clouds(obs, ocean, 0.5, seed, targets=[0])[0].any())
            for seed in range(10)]
    assert not all(once)  # one draw only: some seeds pick the useless donor
