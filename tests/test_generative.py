"""Diffusion and VAE gap fillers: exact observed pixels, skill on a field with known structure,
seeded reproducibility across tilings, save/load, samplers and budgets."""

import warnings

import numpy as np
import pytest
import xarray as xr
import torch

import xgenfill
from xgenfill.errors import GenfillError, WeightsError
from xgenfill.models.diffusion import DiffusionFiller, edm_sigmas, repaint_schedule
from xgenfill.models.io import load_model
from xgenfill.models.nets import UNet, receptive_radius


from .conftest import TINY, make_chl, make_field

KINDS = ["diffusion", "vae"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_member_reproduces_observed_pixels(tiny_models, kind):
    da = make_chl()
    out = xgenfill.inpaint(da, model=tiny_models[kind], n_samples=3, seed=1)
    assert out.dims == ("member",) + da.dims and out.sizes["member"] == 3
    assert out.member.attrs["standard_name"] == "realization"
    obs = np.isfinite(da.values)
    for k in range(3):
        assert np.array_equal(out.values[k][obs], da.values[obs])
    land = ~obs.any(0)
    assert np.isnan(out.values[:, :, land]).all()
    assert np.isfinite(out.values[:, :, ~land]).all()
    assert not np.array_equal(out.values[0], out.values[1])  # members differ


@pytest.mark.parametrize("kind", KINDS)
def test_beats_mean_fill_on_known_structure(tiny_models, kind):
    da = make_chl(seed=0)
    truth = make_field(seed=0)
    out = xgenfill.inpaint(da, model=tiny_models[kind], n_samples=4, seed=0,
                           return_dataset=True)
    gaps = out.chl_filled_flag.values == 1
    err = np.sqrt(np.mean((np.log10(out.chl.values[gaps]) - truth[gaps]) ** 2))
    mean_err = np.sqrt(np.mean((np.nanmean(np.log10(da.values)) - truth[gaps]) ** 2))
    assert err < 0.6 * mean_err, (err, mean_err)
    unc = out.chl_uncertainty.values[gaps]
    assert (unc > 0).all() and out.chl_uncertainty.attrs["transform"] == "log10"


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_output_whatever_the_tiling(tiny_models, kind):
    da = make_chl(nt=12, ny=40, nx=56)
    model = tiny_models[kind]
    ref = xgenfill.inpaint(da, model=model, n_samples=2, seed=7)
    for tile, batch in ((8, 3), (16, 5), (24, 64)):
        m = model.copy()
        m.tile, m.batch_size, m.time_batch = tile, batch, 5
        other = xgenfill.inpaint(da, model=m, n_samples=2, seed=7)
        np.testing.assert_allclose(other.values, ref.values, rtol=2e-5, atol=1e-6)
    again = xgenfill.inpaint(da, model=model, n_samples=2, seed=7)
    np.testing.assert_array_equal(again.values, ref.values)
    different = xgenfill.inpaint(da, model=model, n_samples=2, seed=8)
    assert not np.allclose(different.values, ref.values, equal_nan=True)


def test_mixed_precision_training_learns_and_keeps_float32_weights():
    """precision="bfloat16": autocast in training (weights, gradients, EMA stay float32)."""
    da = make_chl(nt=60, seed=5)
    kw = {**TINY, "precision": "bfloat16"}
    model = xgenfill.train(da, model="diffusion", max_steps=300, patch=24, progress=False,
                           seed=0, **kw)
    assert all(p.dtype == torch.float32 for p in model.net.parameters())
    assert np.isfinite(model.meta["training"]["final_train_loss"])
    test = make_chl(seed=0)
    truth = make_field(seed=0)
    out = xgenfill.inpaint(test, model=model, n_samples=4, seed=0, return_dataset=True)
    gaps = out.chl_filled_flag.values == 1
    err = np.sqrt(np.mean((np.log10(out.chl.values[gaps]) - truth[gaps]) ** 2))
    mean_err = np.sqrt(np.mean((np.nanmean(np.log10(test.values)) - truth[gaps]) ** 2))
    assert err < 0.6 * mean_err, (err, mean_err)


@pytest.mark.parametrize("kind", KINDS)
def test_bfloat16_close_to_float32_and_stable_across_tilings(tiny_models, kind):
    """bf16 network arithmetic (the CPU default where the CPU has bf16 instructions): the same
    tiling is bit-reproducible, other tilings and float32 agree to bf16 precision."""
    da = make_chl(nt=12, ny=40, nx=56)
    f32 = xgenfill.inpaint(da, model=tiny_models[kind], n_samples=2, seed=7)
    m = tiny_models[kind].copy()
    m.precision = "bfloat16"
    ref = xgenfill.inpaint(da, model=m, n_samples=2, seed=7)
    np.testing.assert_array_equal(xgenfill.inpaint(da, model=m, n_samples=2, seed=7).values,
                                  ref.values)
    filled = np.isnan(da.values) & np.isfinite(ref.values[0])
    assert filled.sum() > 1000
    assert np.abs(np.log10(ref.values) - np.log10(f32.values))[:, filled].max() < 0.02
    m.tile, m.batch_size, m.time_batch = 16, 5, 5
    other = xgenfill.inpaint(da, model=m, n_samples=2, seed=7)
    np.testing.assert_allclose(other.values, ref.values, rtol=1e-2)


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(tiny_models, kind, tmp_path):
    da = make_chl()
    model = tiny_models[kind]
    path = model.copy().save(tmp_path / f"tiny-{kind}")
    assert path.suffix == ".safetensors" and path.with_suffix(".json").exists()
    back = load_model(path, device="cpu", precision="float32")  # runtime choice, not saved
    assert back.meta["variable"] == "chl" and back.meta["transform"] == "log10"
    assert back.meta["normalisation"]["std"][0] > 0
    assert back.meta["training"]["steps"] >= 1
    a = xgenfill.inpaint(da, model=model, n_samples=2, seed=3)
    b = xgenfill.inpaint(da, model=back, n_samples=2, seed=3)
    np.testing.assert_array_equal(a.values, b.values)
    c = xgenfill.inpaint(da, model=str(path), n_samples=2, seed=3,  # model= a local path
                         precision="float32")
    np.testing.assert_array_equal(a.values, c.values)
    assert "sha256:" in c.attrs["history"]


def test_corrupted_and_truncated_weights_are_refused(tiny_models, tmp_path):
    path = tiny_models["diffusion"].copy().save(tmp_path / "m")  # the shared model keeps
    # its in-memory identity (saving sets .source)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="corrupted or truncated"):
        load_model(path)
    path.write_bytes(b"\x80\x04pickle-not-safetensors" + data[30:])
    with pytest.raises(WeightsError):
        load_model(path, expected_sha256=None)
    path.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match="missing"):
        load_model(path)


def test_pickle_is_never_loaded(tmp_path):
    import json

    import torch

    p = tmp_path / "evil.safetensors"
    torch.save({"x": torch.zeros(2)}, p)  # a pickle archive
    cfg = {"kind": "diffusion", "arch": {"window": 2, "widths": [8, 16]}}
    p.with_suffix(".json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="cannot be read"):
        load_model(p)


def test_network_call_budget():
    assert DiffusionFiller(**TINY).nfe() <= 20
    rp = DiffusionFiller(**TINY, sampler="repaint")
    assert rp.nfe() <= 20
    path = repaint_schedule(10, 2, 2)
    ups = sum(1 for a, b in zip(path, path[1:]) if b < a)
    assert path[0] == 0 and path[-1] == 10 and ups == 2 * 4  # 4 jump points, 1 resample each
    sig = edm_sigmas(6)
    assert sig[-1] == 0 and all(a > b for a, b in zip(sig, sig[1:]))


@pytest.mark.parametrize("sampler,steps", [("dpm++", 6), ("dpm++", 3), ("heun", 6),
                                           ("repaint", 6)])
def test_network_calls_counted_match_the_budget(tiny_models, sampler, steps):
    da = make_chl(nt=10)
    m = tiny_models["diffusion"].copy()
    m.options.update(sampler=sampler, steps=steps, estimate="members")  # n_samples=1: a sample
    # one batch of 10 steps x up to 3 members: calls = network evaluations per sample
    m.time_batch, m.batch_size = 10, 30
    calls = []
    handle = m.net.register_forward_hook(lambda *a: calls.append(1))
    try:
        xgenfill.inpaint(da, model=m, n_samples=1, seed=0)
        assert len(calls) == m.nfe() <= 20
        if sampler == "dpm++":
            assert m.nfe() == steps
        # the default point estimate is one call: alone for n_samples=1, beside the members
        m.options["estimate"] = "mean"
        for n_samples, expected in ((1, 1), (3, m.nfe() + 1)):
            calls.clear()
            xgenfill.inpaint(da, model=m, n_samples=n_samples, seed=0)
            assert len(calls) == expected, (n_samples, len(calls))
    finally:
        handle.remove()


def test_dpm_solver_and_heun_solve_the_same_ode(tiny_models):
    """Both samplers integrate the same probability-flow ODE from the same noise: with many
    steps they converge to the same samples (checks the DPM-Solver++ update)."""
    da = make_chl(nt=10)
    outs = {}
    for sampler in ("dpm++", "heun"):
        m = tiny_models["diffusion"].copy()
        m.options.update(sampler=sampler, steps=60)
        outs[sampler] = np.log10(xgenfill.inpaint(da, model=m, n_samples=2, seed=1).values)
    few = tiny_models["diffusion"].copy()
    few.options.update(sampler="dpm++", steps=2)
    coarse = np.log10(xgenfill.inpaint(da, model=few, n_samples=2, seed=1).values)
    gaps = np.isnan(da.values) & np.isfinite(outs["heun"][0])
    diff = np.abs(outs["dpm++"] - outs["heun"])[:, gaps]
    assert np.median(diff) < 0.2 * np.median(np.abs(coarse - outs["heun"])[:, gaps])
    assert np.percentile(diff, 99) < 0.05


def test_repaint_sampler_runs_and_keeps_observations(tiny_models):
    da = make_chl(nt=10)
    m = tiny_models["diffusion"].copy()
    m.options["sampler"] = "repaint"
    out = xgenfill.inpaint(da, model=m, n_samples=2, seed=0, return_dataset=True)
    obs = np.isfinite(da.values)
    assert np.array_equal(out.chl.values[obs], da.values[obs])
    assert int((out.chl_filled_flag == 1).sum()) == int((~obs & obs.any(0)).sum())
    with pytest.raises(GenfillError, match="unknown sampler"):
        m.options["sampler"] = "nope"
        xgenfill.inpaint(da, model=m)


def test_receptive_radius_formula():
    for widths in ((8, 16), (8, 16, 16), (8, 16, 16, 16)):
        net = UNet(3, 1, widths, emb_dim=0)
        for mod in net.modules():
            if isinstance(mod, torch.nn.Conv2d):
                torch.nn.init.normal_(mod.weight, std=0.1)
        model = DiffusionFiller(widths=widths, window=0)
        assert receptive_radius(net, 3) <= model.receptive_radius


def test_training_budgets_and_metadata():
    da = make_chl(nt=30)
    m = xgenfill.train(da, model="vae", max_steps=7, progress=False, **TINY)
    assert m.meta["training"]["steps"] == 7 and m.meta["trained_on"] == "user"
    assert m.meta["training"]["stopped_by"] in ("max_steps", "early_stopping")
    m = xgenfill.train(da, model="diffusion", max_steps=10**6, max_time=2, progress=False, **TINY)
    assert m.meta["training"]["stopped_by"] == "max_time"
    assert m.meta["training"]["seconds"] < 10
    with pytest.raises(GenfillError, match="cannot train"):
        xgenfill.train(da, model="dineof")


def test_val_fraction_zero_trains_on_every_date():
    from xgenfill.models.base import Cube
    from xgenfill.models.training import _Source

    da = make_chl(nt=30)
    cube = Cube(np.log10(da.values), np.isfinite(da.values).any(0))
    held = _Source(cube, 8, torch.device("cpu"), np.random.default_rng(0), 0.1)
    every = _Source(cube, 8, torch.device("cpu"), np.random.default_rng(0), 0.0)
    assert len(held.val_steps) == 3 and len(every.val_steps) == 0
    assert len(every.train_steps) == len(held.train_steps) + 3
    m = xgenfill.train(da, model="vae", max_steps=20, val_fraction=0.0, progress=False, **TINY)
    run = m.meta["training"]
    assert run["best_val_rmse_normalised"] is None and run["best_step"] == 20  # last weights
    for bad in (-0.1, 1.0):
        with pytest.raises(GenfillError, match="val_fraction"):
            xgenfill.train(da, model="vae", max_steps=2, val_fraction=bad, progress=False)


class _StepClock:
    """A clock that advances a fixed tick at every reading: a time-budgeted fit then sees the
    same 'speed' on any machine, however slow or loaded (ours have differed 4x)."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


def test_time_budgeted_fit_is_repeated_by_its_step_horizon(monkeypatch):
    # the schedule runs to a horizon fixed once from the warm-up speed, never to the clock:
    # the recorded horizon repeats the fit exactly without any time budget
    from xgenfill.models import training

    da = make_chl(nt=30)
    small = dict(TINY, batch_size=4, patch=32)
    monkeypatch.setattr(training, "time", _StepClock(0.05))  # about 0.05 s per step
    a = xgenfill.train(da, model="diffusion", max_steps=10**6, max_time=12, progress=False,
                       **small)
    monkeypatch.undo()
    run = a.meta["training"]
    # 100 warm-up steps take ~5 of the 12 s; the rest of 0.95 x 12 s, less the timed
    # evaluations and rounded down to a quarter of an evaluation period, ~100 more
    assert 200 <= run["horizon_steps"] < 250, run
    assert run["steps"] == run["horizon_steps"] and run["stopped_by"] == "max_time"
    assert run["seconds"] < 12
    b = xgenfill.train(da, model="diffusion", max_steps=run["horizon_steps"], progress=False,
                       **small)
    assert b.meta["training"]["warmup_steps"] == run["warmup_steps"] == 100
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = xgenfill.train(da, model="diffusion", max_steps=run["horizon_steps"], seed=1,
                       progress=False, **small)
    assert not all(torch.equal(sa[k], c.net.state_dict()[k]) for k in sa)


def test_accessor_fit_and_fine_tune_from_pretrained():
    da = make_chl(nt=30)
    m = da.genfill.fit(model="diffusion", max_steps=3, progress=False, init="diffusion",
                       device="cpu")
    assert m.kind == "diffusion" and m.meta["training"]["steps"] == 3
    assert "continued" not in m.meta  # fine-tuned copy, the embedded model is untouched
    base = xgenfill.models()
    assert any(r["name"] == "diffusion-chl-v1" for r in base)


def test_embedded_default_fills_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("XGENFILL_OFFLINE", "1")
    monkeypatch.setenv("XGENFILL_CACHE_DIR", str(tmp_path))
    da = make_chl(nt=8)
    out = da.genfill.inpaint(return_dataset=True)  # model="diffusion" by default
    assert "diffusion-chl-v1" in out.attrs["history"] or "sha256:b41b5f" in out.attrs["history"]
    assert int((out.chl_filled_flag == 1).sum()) > 0


def test_ensemble_dataset_form_has_mean_and_spread(tiny_models):
    da = make_chl(nt=10)
    m = tiny_models["vae"].copy()
    m.options["estimate"] = "members"  # the value is the members' mean
    ds = xgenfill.inpaint(da, model=m, n_samples=4, return_dataset=True)
    assert "member" not in ds.dims
    members = xgenfill.inpaint(da, model=m, n_samples=4)
    gaps = ds.chl_filled_flag.values == 1
    logm = np.log10(members.values)
    np.testing.assert_allclose(np.log10(ds.chl.values[gaps]), logm.mean(0)[gaps], rtol=1e-4)
    np.testing.assert_allclose(ds.chl_uncertainty.values[gaps], logm.std(0, ddof=1)[gaps],
                               rtol=1e-3, atol=1e-6)
    # members, point estimate and flags from one call, eagerly and lazily
    both = xgenfill.inpaint(da, model=m, n_samples=4, return_dataset=True, keep_members=True)
    np.testing.assert_array_equal(both.chl_members.values, members.values)
    xr.testing.assert_equal(both.chl, ds.chl)
    assert both.chl_members.dims == ("member",) + da.dims
    assert both.member.attrs["standard_name"] == "realization"
    lazy = xgenfill.inpaint(da.chunk({"time": 5}), model=m, n_samples=4, return_dataset=True,
                            keep_members=True)
    np.testing.assert_allclose(lazy.chl_members.values, members.values, rtol=1e-5)


@pytest.mark.parametrize("kind", ["diffusion", "vae"])
def test_point_estimate_is_the_conditional_mean(tiny_models, kind):
    """estimate="mean": deterministic (diffusion: one network call; VAE: the decoder at the
    prior's mean latent), the value of n_samples=1 and of the Dataset form (beside the
    members' spread), eager or lazy; estimate="members" gives the members' mean instead."""
    da = make_chl(nt=10)
    m = tiny_models[kind].copy()
    assert m.options["estimate"] == "mean"  # the default
    m.precision = "float32"  # eager and lazy agree to float rounding
    one = xgenfill.inpaint(da, model=m, seed=0)
    np.testing.assert_array_equal(one.values, xgenfill.inpaint(da, model=m, seed=7).values)
    ds = xgenfill.inpaint(da, model=m, n_samples=4, seed=3, return_dataset=True)
    gaps = ds.chl_filled_flag.values == 1
    np.testing.assert_allclose(ds.chl.values[gaps], one.values[gaps], rtol=1e-5)
    members = np.log10(xgenfill.inpaint(da, model=m, n_samples=4, seed=3).values)
    assert not np.allclose(np.log10(ds.chl.values[gaps]), members.mean(0)[gaps], atol=1e-3)
    np.testing.assert_allclose(ds.chl_uncertainty.values[gaps], members.std(0, ddof=1)[gaps],
                               rtol=1e-3, atol=1e-6)
    lazy = xgenfill.inpaint(da.chunk(time=5), model=m, n_samples=4, seed=3,
                            return_dataset=True).compute()
    np.testing.assert_allclose(lazy.chl.values, ds.chl.values, rtol=1e-5)
    np.testing.assert_array_equal(lazy.chl_filled_flag.values, ds.chl_filled_flag.values)
    # validate scores the same point estimate with RMSE, the members with CRPS
    # (validate refits a model trained on these data; a short refit serves both calls alike)
    refit = {"max_steps": 30, "progress": False}
    scores = xgenfill.validate(da, models=[m], n_samples=4, keep_members=True, fit=refit)
    mem, truth = scores.members.values[0], scores.truth_transformed.values
    members_rmse = np.sqrt(np.mean((mem.mean(0) - truth) ** 2))
    m.options["estimate"] = "members"
    again = xgenfill.validate(da, models=[m], n_samples=4, fit=refit)
    assert float(again.rmse.sel(space="transformed")[0]) == pytest.approx(members_rmse,
                                                                           rel=1e-6)
    assert float(scores.rmse.sel(space="transformed")[0]) != pytest.approx(members_rmse,
                                                                           rel=1e-3)
    m.options["estimate"] = "median"
    with pytest.raises(GenfillError, match="estimate must be"):
        xgenfill.inpaint(da, model=m)


def test_mean_loss_adds_the_point_estimates_error_on_hidden_pixels():
    m = DiffusionFiller(**TINY, guides=False)
    g = torch.Generator().manual_seed(0)
    b, h, w = 3, 16, 16
    ocean = torch.ones(b, h, w, dtype=torch.bool)
    obs = torch.rand(b, h, w, generator=g) < 0.7
    hidden = obs & (torch.rand(b, h, w, generator=g) < 0.3)
    batch = {"y": torch.randn(b, h, w, generator=g), "obs": obs, "hidden": hidden,
             "ocean": ocean, "ctx": torch.randn(b, 5 + 4 * TINY["window"], h, w, generator=g)}
    losses = []
    for weight in (0.0, 2.0):
        m.options["mean_loss"] = weight
        torch.manual_seed(1)  # the same noise levels and noise for both
        losses.append(float(m.loss(batch)))
    point = m.predict_mean(batch)
    extra = float(((point - batch["y"]) ** 2 * hidden).sum() / hidden.sum())
    assert extra > 0
    assert losses[1] == pytest.approx(losses[0] + 2.0 * extra, rel=1e-5)


def test_absent_gpu_is_a_clear_error(tiny_models):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    m = tiny_models["vae"].copy()
    m.device, m._dev = "cuda", None
    with pytest.raises(GenfillError, match="CUDA is not available"):
        xgenfill.inpaint(make_chl(nt=5), model=m)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu(tiny_models):
    da = make_chl(nt=6)
    cpu = xgenfill.inpaint(da, model=tiny_models["vae"], seed=0)
    gpu = xgenfill.inpaint(da, model=tiny_models["vae"].copy().to("cuda"), seed=0)
    np.testing.assert_allclose(gpu.values, cpu.values, rtol=0.05, equal_nan=True)


def test_training_is_reproducible_whatever_the_global_rng():
    da = make_chl(nt=20)
    torch.manual_seed(123)
    a = xgenfill.train(da, model="diffusion", max_steps=5, progress=False, seed=1, **TINY)
    torch.rand(10)  # disturb the global generator
    b = xgenfill.train(da, model="diffusion", max_steps=5, progress=False, seed=1, **TINY)
    for (ka, va), (kb, vb) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    c = xgenfill.train(da, model="diffusion", max_steps=5, progress=False, seed=2, **TINY)
    assert not all(torch.equal(x, y) for x, y in zip(a.net.state_dict().values(),
                                                      c.net.state_dict().values()))


def _covariate(da, seed):
    cov = 10 ** xr.DataArray(make_field(nt=da.sizes["time"], seed=seed), dims=da.dims,
                             coords=da.coords)
    return cov.rename("proxy").assign_attrs(units="mg m-3", long_name="chl proxy")


def test_covariates_condition_the_model():
    da = make_chl(nt=60, seed=5)
    cov = _covariate(da, 5)  # a gap-free field carrying the truth
    truth = make_field(nt=60, seed=5)
    errs = {}
    for name, c in (("without", None), ("with", cov)):
        # without the guides, which already recover much of this smooth synthetic field
        m = xgenfill.train(da, model="vae", max_steps=300, patch=24, progress=False, seed=0,
                           covariates=c, guides=False, **TINY)
        out = xgenfill.inpaint(da, model=m, n_samples=4, return_dataset=True, covariates=c)
        gaps = out.chl_filled_flag.values == 1
        errs[name] = np.sqrt(np.mean((np.log10(out.chl.values[gaps]) - truth[gaps]) ** 2))
    assert errs["with"] < 0.75 * errs["without"], errs
    assert m.arch["n_covariates"] == 1
    with pytest.raises(GenfillError, match="built for 1 covariate"):
        xgenfill.inpaint(da, model=m)
    with pytest.raises(GenfillError, match="different grid"):
        xgenfill.inpaint(da, model=m, covariates=cov.isel(lat=slice(0, 10)))
    with pytest.raises(GenfillError, match="does not use covariates"):
        xgenfill.inpaint(da, model="dineof", covariates=cov)
    res = xgenfill.validate(da, models=[m], covariates=cov, n_samples=2,
                            fit={"max_steps": 5, "progress": False})
    assert int(res.n[0]) > 0


def test_pixel_validation_split_hides_real_cloud_shapes_from_training():
    """With few dates the validation set is pixels, not dates: observed pixels under another
    date's clouds, removed from the training field (never an input nor a target) and scored
    with their true values; every date still trains."""
    from xgenfill.models.base import Cube
    from xgenfill.models.training import _Source, make_batch, validation_batches
    from xgenfill.models.vae import VAEFiller

    da = make_chl(nt=12, ny=64, nx=96)
    v = np.log10(da.values).astype(np.float32)
    cube = Cube(v, np.isfinite(da.values).any(0))
    model = VAEFiller(**TINY)
    src = _Source(cube, model.multiple, torch.device("cpu"), np.random.default_rng(0), 0.1,
                  val_split="pixels")
    hide = src.val_hide
    assert src.val_split == "pixels" and hide.any() and len(src.train_steps) == 12
    obs = np.isfinite(v) & cube.ocean
    assert not (hide & ~obs).any()  # only observed pixels are held out
    share = hide.sum() / obs.sum()
    assert 0.03 < share < 0.25, share
    assert not (src.obs_np & hide).any() and not src.field.obs.numpy()[hide].any()
    assert (src.field.vals.numpy()[hide] == 0).all()
    for seed in range(3):
        b = make_batch(model, src, src.train_steps, np.random.default_rng(seed), 8, 32)
        for i, (t, y0, x0) in enumerate(b["where"]):
            held = hide[t, y0:y0 + 32, x0:x0 + 32]
            assert not (b["obs"][i].numpy() & held).any()
    vb = validation_batches(model, src, np.random.default_rng(1), 8, 32)
    assert len(vb) == 4
    for b in vb:
        for i, (t, y0, x0) in enumerate(b["where"]):
            held = hide[t, y0:y0 + 32, x0:x0 + 32]
            np.testing.assert_array_equal(b["hidden"][i].numpy(), held)
            assert held.any()
            np.testing.assert_allclose(b["y"][i].numpy()[held], v[t, y0:y0 + 32, x0:x0 + 32][held])
    many = _Source(Cube(np.log10(make_chl(nt=30, ny=64, nx=96).values).astype(np.float32),
                        cube.ocean), 8,
                   torch.device("cpu"), np.random.default_rng(0), 0.1, val_split="auto")
    assert many.val_split == "dates" and many.val_hide is None and len(many.val_steps) == 3
    # "auto": pixels only where too few dates (< 4) leave a date split without validation
    few = _Source(Cube(v[:3], cube.ocean), 8, torch.device("cpu"), np.random.default_rng(0),
                  0.1, val_split="auto")
    assert few.val_split == "pixels" and few.val_hide.any() and len(few.train_steps) == 3
    m = xgenfill.train(da, model="vae", max_steps=5, val_split="pixels", progress=False,
                       **TINY)
    assert m.meta["training"]["val_split"] == ["pixels"]
    assert m.meta["training"]["best_val_rmse_normalised"] is not None
    with pytest.raises(GenfillError, match="val_split"):
        xgenfill.train(da, model="vae", max_steps=2, val_split="time", progress=False)


@pytest.mark.parametrize("kind", ["diffusion", "vae"])
def test_default_dataset_form_has_a_per_pixel_uncertainty(tiny_models, kind):
    # n_samples=1: the value is the point estimate, the uncertainty the spread of
    # uncertainty_members generated members (it was NaN at every filled pixel)
    da = make_chl(nt=10)
    model = tiny_models[kind]
    ds = xgenfill.inpaint(da, model=model, return_dataset=True)
    point = xgenfill.inpaint(da, model=model)
    xr.testing.assert_allclose(ds.chl, point)
    filled = ds.chl_filled_flag.values == 1
    unc = ds.chl_uncertainty.values
    assert np.isfinite(unc[filled]).mean() > 0.99 and (unc[filled] > 0).mean() > 0.99
    assert "4 generated members" in ds.chl_uncertainty.attrs["comment"]
    assert np.isnan(unc[np.isfinite(da.values)]).all()
    assert "uncertainty_members=4" in ds.attrs["history"]
    off = xgenfill.inpaint(da, model=model, return_dataset=True, uncertainty_members=0)
    assert np.isnan(off.chl_uncertainty.values).all()
    xr.testing.assert_allclose(off.chl, point)


def test_an_implausible_member_loses_itself_not_the_pixel():
    from xgenfill.plausible import drop_implausible

    stack = np.array([[0.0, 5.0], [0.1, 0.2], [99.0, 0.3], [0.05, 0.25]])  # 3 members + point
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pixel refused: no warning
        kept = drop_implausible(stack, -1.0, 1.0, point=True)
    assert np.isnan(kept[0, 1]) and np.isnan(kept[2, 0])  # the two bad member values
    assert np.isfinite(kept[-1]).all()  # the point estimate, hence both pixels, kept
    with pytest.warns(xgenfill.GenfillWarning, match="1 of"):
        refused = drop_implausible(stack, -1.0, 0.2, point=True)  # the point of pixel 1 is out
    assert np.isnan(refused[:, 1]).all() and np.isfinite(refused[-1, 0])
    # without a point estimate the value is the members' mean: any bad member refuses it
    with pytest.warns(xgenfill.GenfillWarning):
        plain = drop_implausible(stack[:-1], -1.0, 1.0)
    assert np.isnan(plain).all()
