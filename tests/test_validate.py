"""validate(): hold-out masks, scores checked against an independent implementation, ensemble
calibration, truth-free diagnostics, no leakage, clear errors."""

import json

import numpy as np
import pytest
import xarray as xr

import xgenfill
from xgenfill import metrics
from xgenfill.errors import GenfillError

from .conftest import make_chl


def test_crps_matches_properscoring():
    ps = pytest.importorskip("properscoring")
    rng = np.random.default_rng(0)
    members = rng.normal(size=(9, 500))
    truth = rng.normal(size=500)
    ours = metrics.crps_ensemble(members, truth)
    ref = ps.crps_ensemble(truth, members.T).mean()
    assert ours == pytest.approx(ref, rel=1e-10)


def test_rmse_ratio_interval_resamples_whole_groups():
    rng = np.random.default_rng(3)
    truth = rng.normal(size=(30, 50))
    # errors shared by every pixel of a group: the interval must see 30 draws, not 1500
    pred = truth + rng.normal(size=(30, 1)) * 0.8 + 0.1 * rng.normal(size=(30, 50))
    ref = truth + rng.normal(size=(30, 1)) * 1.0 + 0.1 * rng.normal(size=(30, 50))
    groups = np.repeat(np.arange(30), 50)
    ratio, lo, hi = metrics.rmse_ratio_interval(pred.ravel(), ref.ravel(), truth.ravel(),
                                                groups)
    by_hand = np.sqrt(np.mean((pred - truth) ** 2) / np.mean((ref - truth) ** 2))
    assert ratio == pytest.approx(by_hand)
    assert lo < ratio < hi
    # the same pixels with every pixel its own group: a much narrower (overconfident) interval
    _, lo1, hi1 = metrics.rmse_ratio_interval(pred.ravel(), ref.ravel(), truth.ravel(),
                                              np.arange(1500))
    assert hi1 - lo1 < 0.5 * (hi - lo)
    # one group: no interval
    _, a, b = metrics.rmse_ratio_interval(pred.ravel(), ref.ravel(), truth.ravel(),
                                          np.zeros(1500))
    assert np.isnan(a) and np.isnan(b)


def test_deterministic_and_ensemble_scores_by_hand():
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.5, 2.0, 2.0, 5.0])
    s = metrics.deterministic_scores(pred, truth)
    assert s["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 1 + 1) / 4))
    assert s["mae"] == pytest.approx(0.625) and s["bias"] == pytest.approx(0.125)
    assert s["corr"] == pytest.approx(np.corrcoef(pred, truth)[0, 1])
    rng = np.random.default_rng(1)
    n = 20000
    truth = rng.normal(size=n)
    calibrated = rng.normal(size=(20, n))  # truth and members from the same distribution
    assert metrics.spread_skill(calibrated, truth) == pytest.approx(1.0, abs=0.03)
    assert metrics.interval_coverage(calibrated, truth, 0.9) == pytest.approx(0.9 * 19 / 21 +
                                                                             0.1, abs=0.1)
    hist = metrics.rank_histogram(calibrated, truth)
    assert hist.sum() == n and hist.size == 21 and hist.min() > 0.7 * n / 21
    too_narrow = 0.2 * calibrated
    assert metrics.spread_skill(too_narrow, truth) < 0.5


def test_effective_resolution_of_known_spectra():
    sig = np.r_[0, 1 / np.arange(1, 17) ** 2]  # red signal
    err = np.r_[0, np.full(16, 0.02)]  # white error
    res = metrics.effective_resolution(err, sig, 32)
    k_cross = np.sqrt(0.5 / 0.02)  # 0.02 / (1/k^2) = 0.5 at k = 5
    assert res == pytest.approx(32 / k_cross, rel=0.05)
    assert metrics.effective_resolution(err * 0, sig, 32) == 2.0  # resolved to the grid scale


@pytest.mark.parametrize("holdout", ["transplant", "clouds", "random"])
def test_validate_structure(holdout):
    da = make_chl(nt=40)
    res = da.genfill.validate(models=["dineof", "linear_time", "climatology"], holdout=holdout,
                              fraction=0.1, seed=3, cloud_size=40, by_time=True)
    assert list(res.model.values) == ["dineof", "linear_time", "climatology"]
    assert list(res.space.values) == ["transformed", "physical"]
    for v in ("n", "rms", "rmse", "mae", "bias", "corr", "skill", "crps", "spread_skill",
              "coverage_50", "coverage_90", "pit", "holdout", "effective_resolution",
              "psd_error", "psd_observed", "filled_quantiles", "observed_quantiles",
              "rmse_by_time", "prediction", "truth"):
        assert v in res, v
    hold = res.holdout
    assert hold.dims == da.dims and hold.dtype == bool
    obs = np.isfinite(da.values)
    assert not (hold.values & ~obs).any()  # only observed pixels are hidden
    n = int(hold.sum())
    assert (res.n.values == n).all()
    assert 0.05 * obs.sum() <= n <= 0.2 * obs.sum()
    # the scores are exactly those of the returned predictions
    truth = res.truth.values
    np.testing.assert_allclose(np.sort(truth), np.sort(da.values[hold.values]), rtol=1e-6)
    pred = res.prediction.sel(model="dineof").values
    rmse_log = np.sqrt(np.mean((np.log10(pred) - np.log10(truth)) ** 2))
    assert res.rmse.sel(model="dineof", space="transformed") == pytest.approx(rmse_log, rel=1e-6)
    rmse_phys = np.sqrt(np.mean((pred - truth) ** 2))
    assert res.rmse.sel(model="dineof", space="physical") == pytest.approx(rmse_phys, rel=1e-6)
    assert (res.skill.sel(space="transformed") > 0).all()
    assert res.attrs["holdout"] == holdout
    # value distributions per held-out step are in physical units
    step = res.holdout_step.values[0]
    obs_step = da.sel(time=step).values
    np.testing.assert_allclose(res.observed_quantiles.values[0],
                               np.quantile(obs_step[np.isfinite(obs_step)], res["quantile"]),
                               rtol=1e-5)
    assert res.observed_quantiles.attrs["units"] == "mg m-3"


def test_random_holdout_is_optimistic():
    da = make_chl(nt=40)
    kw = dict(models=["linear_space"], fraction=0.1, seed=0)
    r_random = xgenfill.validate(da, holdout="random", **kw)
    r_clouds = xgenfill.validate(da, holdout="transplant", **kw)
    assert float(r_random.rmse[0, 0]) < float(r_clouds.rmse[0, 0])


def test_user_holdout_mask_is_used_exactly():
    da = make_chl(nt=30)
    mask = xr.zeros_like(da, dtype=bool)
    mask[5:8, 10:15, 12:20] = True
    mask = mask & da.notnull()
    res = xgenfill.validate(da, models=["linear_time"], holdout=mask)
    np.testing.assert_array_equal(res.holdout.values, mask.values)
    assert res.attrs["holdout"] == "user"
    # each held-out pixel's block is its time step (points in time, y, x order)
    np.testing.assert_array_equal(res.point_block.values, np.nonzero(mask.values)[0])


def test_point_blocks_of_a_single_image_are_its_clouds():
    from xgenfill.validation import _point_blocks

    hide = np.zeros((1, 1, 8, 10), bool)
    hide[0, 0, 1:3, 1:3] = True  # one cloud
    hide[0, 0, 5:7, 6:9] = True  # another
    blocks = _point_blocks(hide)
    assert blocks.shape == (10,) and np.unique(blocks).size == 2
    np.testing.assert_array_equal(blocks, np.repeat(blocks[[0, -1]], [4, 6]))
    # the same clouds on one date of a record: still its clouds
    record = np.zeros((1, 5, 8, 10), bool)
    record[0, 3] = hide[0, 0]
    np.testing.assert_array_equal(_point_blocks(record), blocks)
    # held-out pixels on two dates (or two fields): the dates are the blocks
    record[0, 1, 0, 0] = True
    np.testing.assert_array_equal(_point_blocks(record), [1] + [3] * 10)
    two = np.concatenate([hide, hide])
    np.testing.assert_array_equal(_point_blocks(two), [0] * 10 + [1] * 10)


def test_ensemble_scores_for_generative_models(tiny_models):
    da = make_chl(nt=40)
    res = xgenfill.validate(da, models=[tiny_models["vae"], "dineof"], n_samples=6,
                            fit={"max_steps": 40, "progress": False})
    vae = res.sel(model=res.model.values[0])
    assert np.isfinite(vae.crps).all() and (vae.crps > 0).all()
    assert 0 < float(vae.spread_skill[0]) < 5
    assert 0 <= float(vae.coverage_90) <= 1
    assert int(vae.pit.sum()) == int(vae.n) and vae.pit.size == 7
    assert np.isnan(res.sel(model="dineof").crps).all()  # deterministic: no ensemble score
    assert float(vae.fit_seconds) > 0  # it was refitted without the held-out pixels
    run = json.loads(str(vae.training.values))  # the fit's record, to repeat it
    assert run["steps"] == run["horizon_steps"] == 40 and run["seed"] == 0
    assert str(res.sel(model="dineof").training.values) == ""


def test_no_leakage_poisoned_holdout_does_not_change_the_fit():
    """Replace the held-out values by garbage: if a held-out pixel reached training, the
    predictions would change. They must be bit-identical; only the truth changes."""
    da = make_chl(nt=30)
    mask = xr.zeros_like(da, dtype=bool)
    mask[3:25:3, 8:16, 10:22] = True
    mask = mask & da.notnull()
    poisoned = da.where(~mask, 50.0)
    vae = xgenfill.train(da, model="vae", max_steps=15, progress=False, widths=(8, 16),
                         window=1, device="cpu")
    kw = dict(models=["dineof", "climatology", vae], holdout=mask, n_samples=3,
              fit={"max_steps": 15, "progress": False})
    clean = xgenfill.validate(da, **kw)
    dirty = xgenfill.validate(poisoned, **kw)
    np.testing.assert_array_equal(clean.prediction.values, dirty.prediction.values)
    assert not np.allclose(clean.truth.values, dirty.truth.values)


def test_validate_bad_input():
    da = make_chl(nt=20)
    for frac in (0.0, -0.1, 0.6):
        with pytest.raises(GenfillError, match=r"fraction must lie in \(0, 0.5\]"):
            xgenfill.validate(da, fraction=frac)
    empty = xr.zeros_like(da, dtype=bool)
    with pytest.raises(GenfillError, match="nothing left to hide"):
        xgenfill.validate(da, holdout=empty)
    other = xr.zeros_like(da.isel(lat=slice(0, 10)), dtype=bool)
    with pytest.raises(GenfillError, match="different grid"):
        xgenfill.validate(da, holdout=other)
    shifted = xr.zeros_like(da, dtype=bool).assign_coords(lat=da.lat + 1)
    with pytest.raises(GenfillError, match="different grid"):
        xgenfill.validate(da, holdout=shifted)
    with pytest.raises(GenfillError, match="unknown holdout"):
        xgenfill.validate(da, holdout="everything")


def test_validation_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from xgenfill.plot import plot_validation

    da = make_chl(nt=30)
    res = xgenfill.validate(da, models=["dineof", "linear_time"])
    path = tmp_path / "v.png"
    plot_validation(res, da, path)
    assert path.stat().st_size > 20_000
