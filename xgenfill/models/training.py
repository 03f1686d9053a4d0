"""Self-supervised training on gappy observations: hide observed pixels under real cloud masks
taken from other dates of the same data, learn to predict them, keep a held-out set of dates for
early stopping."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..errors import GenfillError
from ..masks import coverage
from .base import Cube

__all__ = ["train_model", "make_batch", "flip_views"]

_SPATIAL_KEYS = ("y", "obs", "hidden", "ocean", "ctx")


class _Source:
    """One training cube on the device, with its usable target and donor steps."""

    def __init__(self, cube: Cube, multiple: int, device, rng, val_fraction: float,
                 has_library: bool = False) -> None:
        from .context import FieldTensors

        v, ocean, cov = cube.values, cube.ocean, cube.covariates
        # pad Y, X up to a multiple of the network's down-sampling factor (padding is land)
        ny, nx = v.shape[1:]
        py, px = (-ny) % multiple, (-nx) % multiple
        if py or px:
            v = np.pad(v, ((0, 0), (0, py), (0, px)), constant_values=np.nan)
            ocean = np.pad(ocean, ((0, py), (0, px)), constant_values=False)
            if cov is not None:
                cov = np.pad(cov, ((0, 0), (0, 0), (0, py), (0, px)), constant_values=np.nan)
        self.field = FieldTensors(v, ocean, cube.doy, cov, device=device)
        obs = np.isfinite(v) & ocean[None]
        cover = coverage(obs, ocean)
        usable = np.flatnonzero(cover >= 0.05)
        if usable.size == 0 or (usable.size < 2 and not has_library):
            raise GenfillError("training needs at least 2 time steps with >= 5 % of the ocean "
                               "observed")
        # at least one validation date when asked for any (and there are enough dates);
        # val_fraction=0 trains on every date and keeps the last weights
        n_val = 0
        if val_fraction > 0 and usable.size >= 4:
            n_val = max(1, int(round(val_fraction * usable.size)))
        perm = rng.permutation(usable)
        self.val_steps = np.sort(perm[:n_val])
        self.train_steps = np.sort(perm[n_val:])
        donors = np.flatnonzero((cover > 0.05) & (cover < 0.95))
        self.donors = donors if donors.size else np.flatnonzero(cover < 1.0)
        if self.donors.size == 0 and not has_library:
            raise GenfillError("training needs cloud masks: no time step has missing pixels "
                               "(gap-free data: pass cloud_library=)")
        self.obs_np = obs
        self.shape = v.shape


def _library_clouds(library: np.ndarray, shape: tuple[int, int], rng) -> np.ndarray:
    """A random crop (tiled when too small) of a random cloud mask from the library."""
    m = library[int(rng.integers(len(library)))]
    reps = (-(-shape[0] // m.shape[0]), -(-shape[1] // m.shape[1]))
    big = np.tile(m, reps) if reps != (1, 1) else m
    y0 = int(rng.integers(0, big.shape[0] - shape[0] + 1))
    x0 = int(rng.integers(0, big.shape[1] - shape[1] + 1))
    return big[y0:y0 + shape[0], x0:x0 + shape[1]]


def make_batch(model, src: _Source, steps: np.ndarray, rng: np.random.Generator,
               batch_size: int, patch: int, cloud_library: np.ndarray | None = None
               ) -> dict[str, Any]:
    """Random crops at random target steps, each with a transplanted real cloud mask (from
    another date of the same data, or from ``cloud_library``).

    The clouds are drawn over the crop widened by the spatial guides' reach, so that the
    guides see what they would see inside a whole field at inference."""
    import torch

    from .context import Crops, context_channels, spatial_guides

    nt, ny, nx = src.shape
    ph, pw = min(patch, ny), min(patch, nx)
    r = model.guide_radius
    ts, ys, xs, hides = [], [], [], []
    for _ in range(batch_size):
        for _attempt in range(20):
            t = int(rng.choice(steps))
            y0 = int(rng.integers(0, ny - ph + 1)) // model.multiple * model.multiple
            x0 = int(rng.integers(0, nx - pw + 1)) // model.multiple * model.multiple
            wy = slice(max(0, y0 - r), min(ny, y0 + ph + r))  # the widened crop
            wx = slice(max(0, x0 - r), min(nx, x0 + pw + r))
            obs = src.obs_np[t, wy, wx]
            own = src.donors[src.donors != t]
            if cloud_library is not None and (own.size == 0 or rng.random() < 0.5):
                hide = obs & _library_clouds(cloud_library, obs.shape, rng)
            else:
                donor = int(rng.choice(own)) if own.size else t
                hide = obs & ~src.obs_np[donor, wy, wx]
            core = (slice(y0 - wy.start, y0 - wy.start + ph), slice(x0 - wx.start,
                                                                     x0 - wx.start + pw))
            n_obs, n_hide = obs[core].sum(), hide[core].sum()
            if n_hide >= max(8, 0.02 * ph * pw) and n_hide < n_obs:
                break
        ts.append(t), ys.append((wy, core[0])), xs.append((wx, core[1])), hides.append(hide)
    # one gather and one guide computation for the whole batch: every widened crop has the
    # same size once the parts outside the field count as unobserved (as spatial_guides
    # treats them anyway)
    dev = src.field.vals.device
    f = src.field
    t_idx = torch.as_tensor(ts, device=dev)
    core_y = torch.as_tensor([wy.start + cy.start for wy, cy in ys], device=dev)
    core_x = torch.as_tensor([wx.start + cx.start for wx, cx in xs], device=dev)
    crops = Crops(y0=core_y, x0=core_x, h=ph, w=pw)
    y, obs = crops.steps(f.vals, t_idx), crops.steps(f.obs, t_idx)
    hidden_np = np.zeros((batch_size, ph, pw), bool)
    for i, ((_, cy), (_, cx), hide) in enumerate(zip(ys, xs, hides)):
        hidden_np[i] = hide[cy, cx]
    hidden = torch.as_tensor(hidden_np, device=dev) & obs
    space = None
    if model.arch.get("guides"):
        hw, ww = ph + 2 * r, pw + 2 * r
        wide = Crops(y0=core_y - r, x0=core_x - r, h=hw, w=ww)
        inside = ((wide.yy >= 0) & (wide.yy < ny)) & ((wide.xx >= 0) & (wide.xx < nx))
        wide.yy, wide.xx = wide.yy.clamp(0, ny - 1), wide.xx.clamp(0, nx - 1)
        hide_w = np.zeros((batch_size, hw, ww), bool)
        for i, ((wy, cy), (wx, cx), hide) in enumerate(zip(ys, xs, hides)):
            oy, ox = r - cy.start, r - cx.start  # where the clipped widened crop starts
            hide_w[i, oy:oy + hide.shape[0], ox:ox + hide.shape[1]] = hide
        vis_w = wide.steps(f.obs, t_idx) & inside & ~torch.as_tensor(hide_w, device=dev)
        space = spatial_guides(wide.steps(f.vals, t_idx) * vis_w, vis_w, margin=r)
    ocean = crops.space(f.ocean)
    ctx = context_channels(f, t_idx, model.window, space=space, crops=crops)
    where = [(t, int(py), int(px)) for t, py, px in zip(ts, core_y, core_x)]
    return {"y": y, "obs": obs, "hidden": hidden, "ocean": ocean, "ctx": ctx, "where": where}


def flip_views(batch: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Flip each training crop at random along Y and X, and transpose square crops: eight
    views of every sample. The inputs hold no coordinates or directions (values, masks,
    guides, day of year), so a flipped crop is as plausible a field as the original, and a
    model learning from a few hundred gappy images sees eight times as many."""
    import torch

    n, h, w = batch["y"].shape
    ops = rng.random((n, 3)) < 0.5
    ops[:, 2] &= h == w
    out = dict(batch)
    for key in _SPATIAL_KEYS:
        views = []
        for i in range(n):
            a = batch[key][i]
            if ops[i, 0]:
                a = a.flip(-2)
            if ops[i, 1]:
                a = a.flip(-1)
            if ops[i, 2]:
                a = a.transpose(-2, -1)
            views.append(a)
        out[key] = torch.stack(views)
    out["views"] = ops  # per sample: flipped in Y, flipped in X, transposed (in that order)
    return out


def train_model(model, cubes: list[Cube], *, max_steps: int = 2000,
                max_time: float | None = None, batch_size: int = 16, patch: int = 64,
                lr: float = 2e-3, val_fraction: float = 0.1, eval_every: int = 100,
                patience: int = 10, seed: int = 0, progress: bool = True,
                ema_decay: float = 0.998, cloud_library: np.ndarray | None = None,
                augment: bool = False) -> dict[str, Any]:
    """Train ``model`` in place; returns a summary (steps, losses, best validation RMSE).

    Parameters
    ----------
    max_steps, max_time
        Budgets: optimiser steps and wall-clock seconds (whichever comes first).
    patch
        Training crop size (pixels); rounded to the network's down-sampling factor.
    val_fraction
        Fraction of usable dates kept out of training (at least one, from 4 usable dates):
        their hidden pixels are scored every ``eval_every`` steps, and training stops after
        ``patience`` evaluations without improvement; the best (EMA) weights are kept. ``0``
        trains on every date, runs the whole budget and keeps the last (EMA) weights.
    cloud_library
        Optional (N, h, w) boolean cloud masks (True = cloud) from other data, used besides
        the data's own masks (and instead of them for gap-free data).
    augment
        Flip and transpose training crops at random (see :func:`flip_views`). Off by default:
        on the three benchmark cases it did not improve the held-out scores at equal budgets.
    """
    import torch

    if max_steps < 1:
        raise GenfillError(f"max_steps must be >= 1, got {max_steps}")
    if not 0 <= val_fraction < 1:
        raise GenfillError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if not isinstance(augment, (bool, np.bool_)):
        raise GenfillError(f"augment must be True or False, got {augment!r}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = model._device()
    patch = max(model.multiple, patch // model.multiple * model.multiple)
    if cloud_library is not None:
        cloud_library = np.asarray(cloud_library, dtype=bool)
        if cloud_library.ndim != 3 or not cloud_library.any():
            raise GenfillError("cloud_library must be a non-empty (N, h, w) boolean array")
    sources = [_Source(c, model.multiple, dev, rng, val_fraction, cloud_library is not None)
               for c in cubes]
    weights = np.array([len(s.train_steps) for s in sources], float)
    if weights.sum() == 0:
        raise GenfillError("no time step left for training after the validation split")
    weights /= weights.sum()

    vrng = np.random.default_rng(seed + 12345)
    val_batches = [make_batch(model, s, s.val_steps, vrng, batch_size, patch, cloud_library)
                   for s in sources if len(s.val_steps) for _ in range(4)]

    net = model.net
    # bf16 autocast only when asked for (precision="bfloat16"; weights, gradients, optimiser
    # and EMA stay float32): 1.5x faster on bf16 CPUs, but in one benchmark run its fine-tunes
    # were worse on case B (SST), so "auto" trains in float32
    from ..device import autocast

    explicit = getattr(model, "precision", "auto") == "bfloat16"
    dtype = torch.bfloat16 if explicit else torch.float32

    ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)

    # Schedule: linear warm-up, then cosine decay to a fixed step horizon. The schedule never
    # reads the clock, so a seeded fit is reproducible: with ``max_time`` the horizon is
    # estimated once, from the speed of the warm-up steps, rounded down to whole evaluation
    # periods (timing jitter rarely moves it) and recorded; ``max_steps=horizon`` repeats it.
    warmup = min(100, max(1, max_steps // 2))
    horizon = max_steps if not max_time else None

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, (horizon or max_steps) - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    def fix_horizon(elapsed: float, t_measure: tuple[int, float]) -> int:
        t_eval = time.perf_counter()
        evaluate()  # timed only: evaluations are part of the budget
        t_eval = time.perf_counter() - t_eval
        s0, e0 = t_measure
        per_step = (elapsed - e0) / max(1, step - s0) + t_eval / eval_every
        left = 0.95 * max_time - (time.perf_counter() - t0)
        n = step + int(max(0.0, left) / per_step)
        if n >= step + eval_every:
            n = n // eval_every * eval_every
        return int(min(max_steps, max(step + 1, n)))

    def evaluate() -> float:
        if not val_batches:
            return float("nan")
        backup = {k: v.detach().clone() for k, v in net.state_dict().items()}
        net.load_state_dict(ema)
        net.eval()
        se = n = 0.0
        with torch.no_grad():
            for b in val_batches:
                with autocast(dev, dtype):
                    pred = model.predict_mean(b).float()
                se += float((((pred - b["y"]) ** 2) * b["hidden"]).sum())
                n += float(b["hidden"].sum())
        net.load_state_dict(backup)
        net.train()
        return math.sqrt(se / max(n, 1.0))

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, desc=f"train {model.kind}", unit="step")
    t0 = time.perf_counter()
    best = (float("inf"), 0, {k: v.clone() for k, v in ema.items()})
    losses: list[float] = []
    step = bad = 0
    net.train()
    stop = "max_steps"
    t_measure = (0, 0.0)  # (step, seconds) where the speed measurement starts
    while step < (horizon or max_steps):
        src = sources[int(rng.choice(len(sources), p=weights))]
        batch = make_batch(model, src, src.train_steps, rng, batch_size, patch, cloud_library)
        if augment:
            batch = flip_views(batch, rng)
        for group in opt.param_groups:
            group["lr"] = lr * lr_factor(step)
        with autocast(dev, dtype):
            loss = model.loss(batch).float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in net.state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
                else:
                    ema[k].copy_(v)
        losses.append(float(loss.detach()))
        if bar is not None:
            bar.update(1)
        elapsed = time.perf_counter() - t0
        if step == min(10, warmup // 2):
            t_measure = (step, elapsed)  # skip the slow first steps (allocation, caches)
        if horizon is None and step == warmup and not elapsed > max_time:
            horizon = fix_horizon(elapsed, t_measure)
        last = step == (horizon or max_steps)
        if step % eval_every == 0 or last or (max_time and elapsed > max_time):
            val = evaluate()
            if bar is not None:
                bar.set_postfix(loss=f"{np.mean(losses[-eval_every:]):.3f}", val=f"{val:.3f}")
            if not val_batches or val < best[0]:
                best, bad = (val, step, {k: v.clone() for k, v in ema.items()}), 0
            else:
                bad += 1
                if bad >= patience:
                    stop = "early_stopping"
                    break
        if max_time and elapsed > max_time:
            stop = "max_time"  # the clock still bounds a fit whose machine slowed down
            break
        if last and horizon is not None and horizon < max_steps:
            stop = "max_time"  # the horizon set by the time budget was reached
    if bar is not None:
        bar.close()
    net.load_state_dict(best[2])
    net.eval()
    return {"steps": step, "seconds": round(time.perf_counter() - t0, 1), "stopped_by": stop,
            "best_val_rmse_normalised": None if not val_batches else round(best[0], 5),
            "best_step": best[1], "final_train_loss": round(float(np.mean(losses[-50:])), 5),
            "horizon_steps": horizon, "warmup_steps": warmup,
            "batch_size": batch_size, "patch": patch, "lr": lr, "seed": seed,
            "augment": bool(augment),
            "device": str(dev)}
