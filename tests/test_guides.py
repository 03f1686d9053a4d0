"""Guide channels: classical first guesses given to the networks (interpolation in time, smooth
interpolation in space), their reach, and adding them to a pretrained model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import xgenfill
from xgenfill.errors import GenfillError
from xgenfill.models.context import (CLIM_HALF, GUIDE_RADIUS, N_GUIDES, Crops, FieldTensors,
                                     context_channels, n_context_channels, spatial_guides)
from xgenfill.models.io import load_model

from .conftest import TINY, make_chl


def _time_guides(values: np.ndarray, t: int) -> np.ndarray:
    nt = values.shape[0]
    f = FieldTensors(values, np.ones(values.shape[1:], bool), np.arange(nt))
    space = torch.zeros((1, N_GUIDES - 4) + values.shape[1:])
    ctx = context_channels(f, torch.tensor([t]), 0, space=space)
    return ctx[0, -N_GUIDES:-N_GUIDES + 4].numpy()  # interp, any, age before, age after


def test_time_guides_interpolate_between_the_nearest_observations():
    nt = 40
    v = np.full((nt, 1, 3), np.nan, np.float32)
    v[10, 0, 0], v[14, 0, 0], v[12, 0, 0] = 1.0, 3.0, 99.0  # pixel 0: t=12 itself is left out
    v[5, 0, 1] = 2.0  # pixel 1: only an observation before, 7 steps back
    v[12 - CLIM_HALF - 1, 0, 2] = 5.0  # pixel 2: only one, too far back
    interp, anyobs, age_b, age_a = _time_guides(v, 12)[:, 0]
    assert interp[0] == pytest.approx(2.0)  # halfway between 1 and 3
    assert (age_b[0], age_a[0]) == pytest.approx((2 / CLIM_HALF, 2 / CLIM_HALF))
    assert interp[1] == pytest.approx(2.0) and age_b[1] == pytest.approx(7 / CLIM_HALF)
    assert age_a[1] == 2.0 and anyobs[1] == 1.0
    assert interp[2] == 0.0 and anyobs[2] == 0.0 and age_b[2] == 2.0
    # nearer observations weigh more: 1 step before (value 0), 3 steps after (value 4)
    v = np.full((nt, 1, 1), np.nan, np.float32)
    v[19], v[23] = 0.0, 4.0
    assert _time_guides(v, 20)[0, 0, 0] == pytest.approx(4.0 * (1 / 3) / (1 + 1 / 3))


def test_spatial_guides_reproduce_a_constant_and_reach_no_further_than_the_radius():
    ny, nx = 40, 200
    y = torch.full((1, ny, nx), 0.7)
    vis = torch.rand(1, ny, nx, generator=torch.Generator().manual_seed(0)) > 0.6
    out = spatial_guides(y * vis, vis)
    est, wgt = out[:, 0::2], out[:, 1::2]
    assert torch.allclose(est[wgt > 1e-3], torch.tensor(0.7), atol=1e-5)
    # one visible pixel: its influence stops at GUIDE_RADIUS
    vis = torch.zeros(1, ny, nx, dtype=torch.bool)
    vis[0, 20, 100] = True
    w = spatial_guides(vis.float(), vis)[0, -1]
    cols = torch.nonzero(w[20] > 0).flatten()
    assert cols.min() == 100 - GUIDE_RADIUS and cols.max() == 100 + GUIDE_RADIUS
    # longitudes wrap when periodic: a pixel at the east edge informs the west edge
    vis = torch.zeros(1, ny, nx, dtype=torch.bool)
    vis[0, 20, nx - 1] = True
    assert spatial_guides(vis.float(), vis)[0, -1, 20, 0] == 0
    assert spatial_guides(vis.float(), vis, periodic_x=True)[0, -1, 20, 0] > 0


def test_guides_are_in_the_architecture_and_in_the_dependency_radius():
    a = xgenfill.train(make_chl(nt=12), model="diffusion", max_steps=2, progress=False, **TINY)
    b = xgenfill.train(make_chl(nt=12), model="diffusion", max_steps=2, progress=False,
                       guides=False, **TINY)
    assert a.arch["guides"] and not b.arch["guides"]
    assert a.net.inp.in_channels == b.net.inp.in_channels + N_GUIDES
    assert a.net.inp.in_channels == 3 + n_context_channels(2, 0, True)
    assert a.spatial_radius == b.spatial_radius + GUIDE_RADIUS


@pytest.mark.parametrize("kind", ["diffusion", "vae"])
def test_adding_guides_to_a_trained_model_keeps_what_it_computes(kind, tmp_path):
    da = make_chl(nt=20, seed=2)
    plain = xgenfill.train(da, model=kind, max_steps=30, patch=24, progress=False,
                           guides=False, **TINY)
    plain.save(tmp_path / "plain")
    loaded = load_model(tmp_path / "plain")  # saved without guides: loads without them
    assert not loaded.arch["guides"]
    widened = loaded.with_guides()
    assert widened.arch["guides"]
    before = xgenfill.inpaint(da, model=loaded, n_samples=2, seed=4)
    after = xgenfill.inpaint(da, model=widened, n_samples=2, seed=4)
    np.testing.assert_allclose(after.values, before.values, rtol=1e-5)
    # and fine-tuning from it learns to use them (the new weights move off zero)
    tuned = xgenfill.train(da, model=kind, init=loaded, guides=True, max_steps=20, patch=24,
                           progress=False)
    first = tuned.net.inp if kind == "diffusion" else tuned.net.decoder.inp
    c0 = tuned.first_context_channel + n_context_channels(2, 0)
    assert first.weight[:, c0:c0 + N_GUIDES].abs().sum() > 0


@pytest.mark.parametrize("kind", ["diffusion", "vae"])
def test_adding_a_covariate_to_a_trained_model_keeps_what_it_computes(kind):
    """Fine-tuning a pretrained model with a covariate starts from the pretrained function:
    the covariate's channels enter with zero weights, and training moves them off zero."""
    da = make_chl(nt=20, seed=2)
    cov = (da * 1.3 + 0.1).rename("other")
    base = xgenfill.train(da, model=kind, max_steps=20, patch=24, progress=False, **TINY)
    widened = base.with_covariates(1)
    assert widened.arch["n_covariates"] == 1 and widened.arch["guides"]
    before = xgenfill.inpaint(da, model=base, n_samples=2, seed=4)
    after = xgenfill.inpaint(da, model=widened, n_samples=2, seed=4, covariates=cov)
    np.testing.assert_allclose(after.values, before.values, rtol=1e-5)
    tuned = xgenfill.train(da, model=kind, init=base, covariates=cov, max_steps=20, patch=24,
                           progress=False)
    first = tuned.net.inp if kind == "diffusion" else tuned.net.decoder.inp
    c0 = tuned.first_context_channel + n_context_channels(2, 0)
    assert tuned.arch["n_covariates"] == 1
    assert first.weight[:, c0:c0 + 2].abs().sum() > 0
    with pytest.raises(GenfillError, match="cannot take 2"):
        tuned.with_covariates(2)


def test_init_architecture_cannot_be_changed():
    da = make_chl(nt=12)
    m = xgenfill.train(da, model="vae", max_steps=2, progress=False, **TINY)
    with pytest.raises(GenfillError, match="cannot change"):
        xgenfill.train(da, model="vae", init=m, window=3, max_steps=2, progress=False)
    with pytest.raises(GenfillError, match="cannot remove the guides"):
        xgenfill.train(da, model="vae", init=m, guides=False, max_steps=2, progress=False)
    # options (not architecture) may change
    d = xgenfill.train(da, model="diffusion", max_steps=2, progress=False, guides=False, **TINY)
    d2 = xgenfill.train(da, model="diffusion", init=d, steps=3, max_steps=2, progress=False)
    assert d2.options["steps"] == 3
    # and stay changed when validate() retrains it afresh, or guides are added
    assert d2.fresh().options["steps"] == 3 and d2.with_guides().options["steps"] == 3


def test_training_crops_see_the_guides_of_the_whole_field():
    """The clouds of a training sample are drawn over the crop widened by the guides' reach,
    so its spatial guides equal those of the whole field under the same clouds."""
    from xgenfill.models.base import Cube
    from xgenfill.models.diffusion import DiffusionFiller
    from xgenfill.models.training import _Source, make_batch

    rng = np.random.default_rng(0)
    ny, nx = 40, 240
    v = rng.standard_normal((2, ny, nx)).astype(np.float32)
    yy, xx = np.mgrid[0:ny, 0:nx]
    v[0, (xx // 20) % 3 == 0] = np.nan  # two steps with different cloud stripes: each is the
    v[1, (yy // 8) % 2 == 0] = np.nan  # other's only donor, so each hide is known
    cube = Cube(v, np.ones((ny, nx), bool), np.arange(2), np.arange(2))
    model = DiffusionFiller(widths=(8, 16), window=1, device="cpu")
    src = _Source(cube, model.multiple, torch.device("cpu"), rng, 0.0)
    batch = make_batch(model, src, src.train_steps, rng, 6, 32)
    obs = np.isfinite(v)
    for i, (t, y0, x0) in enumerate(batch["where"]):
        visible = obs[t] & ~(obs[t] & ~obs[1 - t])  # hidden: observed at t, cloudy at 1 - t
        full = spatial_guides(torch.as_tensor(np.where(visible, v[t], 0))[None],
                              torch.as_tensor(visible)[None])[0, :, y0:y0 + 32, x0:x0 + 32]
        np.testing.assert_allclose(batch["ctx"][i, -full.shape[0]:].numpy(), full.numpy(),
                                   atol=1e-5)
        assert batch["hidden"][i].numpy().sum() > 0


def test_batched_training_context_equals_the_context_of_each_crop():
    """make_batch reads every crop's context in one gather (Crops); it must equal the context
    read crop by crop with slices, as inference does: all channels, covariates included."""
    from xgenfill.models.base import Cube
    from xgenfill.models.context import Crops
    from xgenfill.models.diffusion import DiffusionFiller
    from xgenfill.models.training import _Source, make_batch

    rng = np.random.default_rng(1)
    nt, ny, nx = 12, 70, 90
    v = rng.standard_normal((nt, ny, nx)).astype(np.float32)
    v[rng.random(v.shape) < 0.4] = np.nan
    cov = rng.standard_normal((2, nt, ny, nx)).astype(np.float32)
    cov[0, 3, :10] = np.nan
    cube = Cube(v, np.ones((ny, nx), bool), np.arange(nt) * 30, np.arange(nt), covariates=cov)
    model = DiffusionFiller(widths=(8, 16), window=2, n_covariates=2, guides=True, device="cpu")
    src = _Source(cube, model.multiple, torch.device("cpu"), rng, 0.0)
    batch = make_batch(model, src, src.train_steps, rng, 8, 32)
    space = batch["ctx"][:, -(N_GUIDES - 4):]
    for i, (t, y0, x0) in enumerate(batch["where"]):
        one = context_channels(src.field, torch.tensor([t]), 2, slice(y0, y0 + 32),
                               slice(x0, x0 + 32), space=space[i:i + 1])
        np.testing.assert_array_equal(batch["ctx"][i].numpy(), one[0].numpy())
        np.testing.assert_array_equal(batch["y"][i].numpy(),
                                      src.field.vals[t, y0:y0 + 32, x0:x0 + 32].numpy())
    # crops at the corners of the field
    _, py, px = src.field.shape
    crops = Crops(y0=torch.tensor([0, py - 8]), x0=torch.tensor([px - 8, 0]), h=8, w=8)
    got = crops.steps(src.field.vals, torch.tensor([1, 2]))
    np.testing.assert_array_equal(got[0].numpy(), src.field.vals[1, :8, px - 8:].numpy())
    np.testing.assert_array_equal(got[1].numpy(), src.field.vals[2, py - 8:, :8].numpy())


def _cold_step(nx: int = 300):
    """Five steps of a fixed pattern, step 2 colder by 1 everywhere and clouded but for its
    first 20 columns."""
    ny = 30
    yy, xx = np.mgrid[0:ny, 0:nx]
    v = (np.sin(yy / 5.0) + np.cos(xx / 17.0))[None] + np.array([0, 0, -1.0, 0, 0])[:, None, None]
    truth = v.astype(np.float32)
    v = truth.copy()
    v[2, :, 20:] = np.nan
    return v, truth


def test_first_guess_carries_a_cold_step_into_its_cloud():
    from xgenfill.models.context import FIRST_GUESS_RADIUS, first_guess

    v, truth = _cold_step()
    f = FieldTensors(v, np.ones(v.shape[1:], bool), np.arange(5))
    g = first_guess(f, torch.tensor([2]), Crops(), f.obs[2][None])[0].numpy()
    interp = context_channels(f, torch.tensor([2]), 0, space=torch.zeros(1, 0, 30, 300))[0, -4]
    np.testing.assert_allclose(interp.numpy()[:, 20:] - truth[2][:, 20:], 1.0, atol=1e-5)
    # exact next to the observed columns (away from the array's edges, outside of which
    # nothing is observed), then less and less, then not at all beyond the reach
    np.testing.assert_allclose(g[8:22, 20:23], truth[2][8:22, 20:23], atol=1e-5)
    fix = (interp.numpy() - g)[15]
    assert np.all(np.diff(fix[20:20 + FIRST_GUESS_RADIUS]) <= 1e-6)
    np.testing.assert_allclose(fix[20 + FIRST_GUESS_RADIUS:], 0.0, atol=1e-6)
    # where the step is observed, its own value does not enter its first guess
    np.testing.assert_allclose(g[8:22, 5:20], truth[2][8:22, 5:20], atol=1e-5)


def test_training_crops_see_the_first_guess_of_the_whole_field():
    """As the guides: a training crop's first guess (computed on the crop widened by its
    reach, hidden pixels removed) equals the whole field's under the same clouds."""
    from xgenfill.models.base import Cube
    from xgenfill.models.context import first_guess
    from xgenfill.models.training import _Source, make_batch
    from xgenfill.models.vae import VAEFiller

    rng = np.random.default_rng(0)
    ny, nx = 40, 260
    v = rng.standard_normal((3, ny, nx)).astype(np.float32)
    yy, xx = np.mgrid[0:ny, 0:nx]
    v[0, (xx // 20) % 3 == 0] = np.nan  # steps 0 and 1: each is the other's only cloud donor
    v[1, (yy // 8) % 2 == 0] = np.nan
    # step 2 is clear: every pixel of steps 0 and 1 has an interpolation in time, so a hidden
    # pixel's departure from it would leak into the first guess if it were not removed
    cube = Cube(v, np.ones((ny, nx), bool), np.arange(3), np.arange(3))
    model = VAEFiller(widths=(8, 16), window=1, residual=True, device="cpu")
    src = _Source(cube, model.multiple, torch.device("cpu"), rng, 0.0)
    batch = make_batch(model, src, [0, 1], rng, 6, 32)
    obs = np.isfinite(v)
    for i, (t, y0, x0) in enumerate(batch["where"]):
        visible = obs[t] & ~(obs[t] & ~obs[1 - t])  # hidden: observed at t, cloudy at 1 - t
        padded = np.zeros(src.field.shape[1:], bool)  # the source pads to the net's multiple
        padded[:ny, :nx] = visible
        inside = model.inside(padded.shape, "cpu", ny, nx)  # the padding is not the field
        full = first_guess(src.field, torch.tensor([t]), Crops(), torch.as_tensor(padded)[None],
                           inside=inside)[0, y0:y0 + 32, x0:x0 + 32]
        np.testing.assert_allclose(batch["ctx"][i, -1].numpy(), full.numpy(), atol=1e-5)
        assert np.abs(full.numpy()).max() > 0


def _residual_model_correcting_nothing(kind: str):
    """The cold-step field and a residual model on it whose output layer is zero: a network
    that corrects nothing, so that its fill is the first guess."""
    v, _ = _cold_step(nx=120)
    da = make_chl(nt=5, ny=30, nx=120).copy(data=v.astype(np.float32))
    m = xgenfill.train(da, model=kind, max_steps=3, progress=False, residual=True,
                       transform="identity", **TINY)
    out_layer = m.net.decoder.out if kind == "vae" else m.net.out
    with torch.no_grad():
        out_layer.weight.zero_()
        out_layer.bias.zero_()
    return v, da, m


@pytest.mark.parametrize("kind", ["vae", "diffusion"])
def test_residual_models_correct_their_first_guess(tmp_path, kind):
    from xgenfill.models.context import first_guess

    v, da, m = _residual_model_correcting_nothing(kind)
    assert m.arch["residual"] and m.spatial_radius > m.receptive_radius + GUIDE_RADIUS
    out = xgenfill.inpaint(da, model=m, transform="identity")
    from xgenfill.prepare import prepare

    p = prepare(da, transform="identity")
    f = FieldTensors(p.values[0], p.ocean[0], p.doy)
    g = first_guess(f, torch.tensor([2]), Crops(), f.obs[2][None],
                    inside=m.inside(f.ocean.shape, "cpu"))[0].numpy()
    gap = np.isnan(v[2])
    np.testing.assert_allclose(out.values[2][gap], g[gap] * p.std[0] + p.mean[0], rtol=1e-4)
    with warnings.catch_warnings():  # an untrained network's members may stray (flagged)
        warnings.simplefilter("ignore", xgenfill.GenfillWarning)
        members = xgenfill.inpaint(da, model=m, transform="identity", n_samples=2, seed=1)
    seen = ~np.isnan(v)
    for k in range(2):  # members reproduce the observations exactly
        np.testing.assert_array_equal(members.isel(member=k).values[seen], v[seen])
    # and scatter around the first guess (the untrained network adds noise only)
    spread = members.values[:, 2][:, gap] - out.values[2][gap]
    assert abs(np.nanmean(spread)) < 0.1 < np.nanstd(spread)
    m.save(tmp_path / "r")
    loaded = load_model(tmp_path / "r")
    assert loaded.arch["residual"]
    np.testing.assert_array_equal(xgenfill.inpaint(da, model=loaded, transform="identity"),
                                  out.values)


@pytest.mark.parametrize("sampler", ["heun", "repaint"])
def test_residual_diffusion_samplers_keep_observations_and_the_first_guess(sampler):
    """Every sampler diffuses the departure from the first guess and adds it back: members
    reproduce the observations exactly and, from a network that corrects nothing, scatter
    around the first guess (the default sampler is checked above)."""
    v, da, m = _residual_model_correcting_nothing("diffusion")
    guess = xgenfill.inpaint(da, model=m, transform="identity").values
    m.options.update(sampler=sampler, steps=4, repaint_steps=6, jump_length=2, n_resample=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xgenfill.GenfillWarning)
        members = xgenfill.inpaint(da, model=m, transform="identity", n_samples=2, seed=3)
    seen, gap = ~np.isnan(v), np.isnan(v) & ~np.isnan(guess)
    for k in range(2):
        np.testing.assert_array_equal(members.isel(member=k).values[seen], v[seen])
    spread = members.values[:, gap] - guess[gap]
    assert abs(np.nanmean(spread)) < 0.1 < np.nanstd(spread)


def test_residual_diffusion_scores_its_point_estimate_on_the_field_itself():
    """The extra loss on the one-call estimate compares it with the values, not with their
    departure from the first guess (what the denoiser diffuses)."""
    from xgenfill.models.base import Cube
    from xgenfill.models.diffusion import DiffusionFiller
    from xgenfill.models.training import _Source, make_batch

    v, _ = _cold_step(nx=120)
    cube = Cube(v.astype(np.float32), np.ones(v.shape[1:], bool), np.arange(5), np.arange(5))
    rng = np.random.default_rng(0)
    m = DiffusionFiller(widths=(8, 16), window=1, residual=True, device="cpu")  # output 0
    src = _Source(cube, m.multiple, torch.device("cpu"), rng, 0.0)
    batch = make_batch(m, src, [1, 2, 3], rng, 4, 32)
    losses = []
    for weight in (0.0, 1.0):
        m.options["mean_loss"] = weight
        torch.manual_seed(0)
        with torch.no_grad():
            losses.append(float(m.loss(batch)))
    guess, y, hidden = batch["ctx"][:, -1], batch["y"], batch["hidden"]
    assert hidden.any()
    expected = float(((guess - y) ** 2 * hidden).sum() / hidden.sum())
    assert losses[1] - losses[0] == pytest.approx(expected, rel=1e-4)
    assert expected > 0.01


def test_models_saved_before_the_residual_option_load_as_before(tmp_path):
    import json

    da = make_chl(nt=12)
    m = xgenfill.train(da, model="vae", max_steps=2, progress=False, **TINY)
    m.save(tmp_path / "old")
    cfg = json.loads((tmp_path / "old.json").read_text())
    del cfg["arch"]["residual"]  # as xgenfill wrote it before the option existed
    (tmp_path / "old.json").write_text(json.dumps(cfg))
    loaded = load_model(tmp_path / "old", precision="float32")
    assert not loaded.arch["residual"]
    np.testing.assert_array_equal(xgenfill.inpaint(da, model=loaded, seed=0).values,
                                  xgenfill.inpaint(da, model=m, seed=0).values)


@pytest.mark.parametrize("arch", [{"residual": True}, {"guides": True}])
def test_whole_field_guides_equal_widened_crops(arch, monkeypatch):
    """On a field smaller than a widened crop, training batches take their guides from the
    whole field: the same values as from the widened crops, and the same batch."""
    import torch

    import xgenfill.models.training as tr
    from xgenfill.models.base import Cube
    from xgenfill.models.io import model_classes

    from .conftest import make_clouds, make_field

    v = make_field(nt=12, ny=40, nx=48).astype(np.float32)
    v[make_clouds(v.shape, frac=0.35)] = np.nan
    ocean = np.ones((40, 48), bool)
    ocean[:5, :7] = False
    cube = Cube(values=v, ocean=ocean, doy=np.arange(12.0))
    m = model_classes()["diffusion"](device="cpu", widths=(8, 16), **arch)
    src = tr._Source(cube, m.multiple, torch.device("cpu"), np.random.default_rng(0), 0.0)
    batches = []
    for whole in (True, False):
        monkeypatch.setattr(tr, "WHOLE_FIELD_GUIDES", whole)
        batches.append(tr.make_batch(m, src, src.train_steps, np.random.default_rng(5), 6, 16))
    a, b = batches
    assert a["where"] == b["where"] and torch.equal(a["hidden"], b["hidden"])
    assert (a["hidden"].sum() > 0)
    torch.testing.assert_close(a["ctx"], b["ctx"], rtol=1e-4, atol=1e-5)


def test_first_guess_trusts_observations_near_the_edges():
    """Version 2 of the first guess weighs each scale by the share of its kernel inside the
    array that is observed: a step whose every observed pixel departs by +1 from the time
    interpolation gives +1 in its gaps, corner included. Version 1 counted the kernel beyond
    the edges as unobserved and shrank the departure towards 0 near them."""
    from xgenfill.models.context import first_guess
    from xgenfill.models.vae import VAEFiller

    ny, nx = 12, 14
    v = np.zeros((3, ny, nx), np.float32)
    v[1] = 1.0  # +1 against the interpolation of steps 0 and 2
    v[1, :3, :3] = np.nan  # a gap in the corner
    f = FieldTensors(v, np.ones((ny, nx), bool), np.arange(3))
    t = torch.tensor([1])
    new = VAEFiller(widths=(8, 16), window=1, residual=True, device="cpu")
    assert new.arch["first_guess"] == 2
    g2 = first_guess(f, t, Crops(), f.obs[t], inside=new.inside((ny, nx), "cpu"))[0]
    g1 = first_guess(f, t, Crops(), f.obs[t])[0]
    np.testing.assert_allclose(g2[:3, :3].numpy(), 1.0, atol=1e-5)
    assert float(g1[0, 0]) < 0.95
    old = VAEFiller(widths=(8, 16), window=1, residual=True, device="cpu", first_guess=1)
    assert old.inside((ny, nx), "cpu") is None
    with pytest.raises(GenfillError, match="first_guess"):
        VAEFiller(widths=(8, 16), first_guess=3)


def test_models_saved_before_first_guess_versions_load_as_version_1(tmp_path):
    import json

    from xgenfill.models.vae import VAEFiller

    m = VAEFiller(widths=(8, 16), window=1, residual=True, device="cpu")
    m.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m.json").read_text())
    del cfg["arch"]["first_guess"]  # as written before it existed
    (tmp_path / "m.json").write_text(json.dumps(cfg))
    assert load_model(tmp_path / "m").arch["first_guess"] == 1
