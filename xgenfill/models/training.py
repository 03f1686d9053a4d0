"""Self-supervised training on gappy observations: hide observed pixels under real cloud masks
taken from other dates of the same data, learn to predict them, keep a held-out set of dates for
early stopping."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from ..errors import GenfillError
from ..masks import coverage
from .base import Cube

log = logging.getLogger(__name__)

__all__ = ["train_model", "make_batch", "pick_crops", "validation_batches", "flip_views",
           "batch_part",
           "distributed_world"]

_SPATIAL_KEYS = ("y", "obs", "hidden", "ocean", "ctx")


# A date split needs this many usable dates; val_split="auto" holds out pixels only below it.
# On 10 days of SST (case B, VAE, 240 s, seeds 0-2) dates 0.384/0.377/0.381, pixels
# 0.399/0.376/0.371, no validation 0.359/0.374/0.390: no split was better beyond seed noise.
MIN_DATES_FOR_DATE_SPLIT = 4
_VAL_BLOCK = 32  # pixels: side of the blocks in which validation clouds are kept
# guides of a field smaller than a widened crop are computed over the whole field (see
# _assemble); False: always over the widened crops (the tests compare the two)
WHOLE_FIELD_GUIDES = True


class _Source:
    """One training cube on the device, with its usable target and donor steps.

    Validation data are whole dates (``val_split="dates"``), or pixels hidden under real
    clouds of other dates inside random blocks of every date (``"pixels"``): removed from the
    training field, so the network never sees them, and scored as the validation set."""

    def __init__(self, cube: Cube, multiple: int, device, rng, val_fraction: float,
                 val_split: str = "dates", cloud_library: np.ndarray | None = None) -> None:
        import torch

        from .context import FieldTensors

        has_library = cloud_library is not None

        v, ocean, cov = cube.values, cube.ocean, cube.covariates
        # pad Y, X up to a multiple of the network's down-sampling factor (padding is land)
        ny, nx = v.shape[1:]
        self.extent = (ny, nx)  # the field's own rows and columns (the rest is padding)
        py, px = (-ny) % multiple, (-nx) % multiple
        if py or px:
            v = np.pad(v, ((0, 0), (0, py), (0, px)), constant_values=np.nan)
            ocean = np.pad(ocean, ((0, py), (0, px)), constant_values=False)
            if cov is not None:
                cov = np.pad(cov, ((0, 0), (0, 0), (0, py), (0, px)), constant_values=np.nan)
        obs = np.isfinite(v) & ocean[None]
        cover = coverage(obs, ocean)
        usable = np.flatnonzero(cover >= 0.05)
        if usable.size == 0 or (usable.size < 2 and not has_library):
            raise GenfillError("training needs at least 2 time steps with >= 5 % of the ocean "
                               "observed")
        donors = np.flatnonzero((cover > 0.05) & (cover < 0.95))
        self.donors = donors if donors.size else np.flatnonzero(cover < 1.0)
        if self.donors.size == 0 and not has_library:
            raise GenfillError("training needs cloud masks: no time step has missing pixels "
                               "(gap-free data: pass cloud_library=)")
        if val_split == "auto":
            val_split = "pixels" if usable.size < MIN_DATES_FOR_DATE_SPLIT else "dates"
        self.val_split = val_split
        self.val_hide = self.val_truth = None
        if val_split == "pixels" and val_fraction > 0:
            hide = self._pixel_holdout(obs, usable, rng, val_fraction, cloud_library)
            self.val_steps = np.flatnonzero(hide.any((1, 2)))
            self.train_steps = usable
            self.val_hide = hide
            self.val_truth = torch.as_tensor(np.where(hide, v, 0.0).astype(np.float32),
                                             device=device)
            v = np.where(hide, np.nan, v)  # the network never sees them
            obs &= ~hide
        else:
            # at least one validation date when asked for any (and there are enough dates);
            # val_fraction=0 trains on every date and keeps the last weights
            n_val = 0
            if val_fraction > 0 and usable.size >= MIN_DATES_FOR_DATE_SPLIT:
                n_val = max(1, int(round(val_fraction * usable.size)))
            perm = rng.permutation(usable)
            self.val_steps = np.sort(perm[:n_val])
            self.train_steps = np.sort(perm[n_val:])
        self.field = FieldTensors(v, ocean, cube.doy, cov, device=device)
        self.obs_np = obs
        self.shape = v.shape

    def _pixel_holdout(self, obs: np.ndarray, usable: np.ndarray, rng, val_fraction: float,
                       cloud_library: np.ndarray | None) -> np.ndarray:
        """Per usable date, the observed pixels under the clouds of another date, kept inside
        random blocks so that about ``val_fraction`` of the date's observations are held."""
        nt, ny, nx = obs.shape
        hide = np.zeros_like(obs)
        by, bx = -(-ny // _VAL_BLOCK), -(-nx // _VAL_BLOCK)
        for t in usable:
            own = self.donors[self.donors != t]
            if own.size:
                cloud = ~obs[int(rng.choice(own))]
            elif cloud_library is not None:
                cloud = _library_clouds(cloud_library, (ny, nx), rng)
            else:
                continue  # no other date's clouds to hide this one under
            under = obs[t] & cloud
            share = under.sum() / max(obs[t].sum(), 1)
            if share == 0:
                continue
            pick = rng.random((by, bx)) < min(1.0, val_fraction / share)
            blocks = np.kron(pick, np.ones((_VAL_BLOCK, _VAL_BLOCK), bool))[:ny, :nx]
            hide[t] = under & blocks
        return hide


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
    ts, picked, ph, pw = pick_crops(model, src, steps, rng, batch_size, patch, cloud_library)
    return _assemble(model, src, ts, picked, ph, pw)


def pick_crops(model, src: _Source, steps: np.ndarray, rng: np.random.Generator,
               batch_size: int, patch: int, cloud_library: np.ndarray | None = None
               ) -> tuple[list[int], list[tuple], int, int]:
    """Where the crops of :func:`make_batch` are and which pixels each hides: (steps,
    [(y0, x0, wy, wx, hidden)], crop height, crop width)."""
    nt, ny, nx = src.shape
    ph, pw = min(patch, ny), min(patch, nx)
    r = model.guide_radius
    ts, picked = [], []
    for _ in range(batch_size):
        for _attempt in range(20):
            t = int(rng.choice(steps))
            y0 = int(rng.integers(0, ny - ph + 1)) // model.multiple * model.multiple
            x0 = int(rng.integers(0, nx - pw + 1)) // model.multiple * model.multiple
            wy, wx = _widened(y0, x0, ph, pw, r, ny, nx)
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
        ts.append(t), picked.append((y0, x0, wy, wx, hide))
    return ts, picked, ph, pw


def _widened(y0: int, x0: int, ph: int, pw: int, r: int, ny: int, nx: int
             ) -> tuple[slice, slice]:
    """The crop at (y0, x0) widened by the guides' reach ``r``, clipped to the field."""
    return (slice(max(0, y0 - r), min(ny, y0 + ph + r)),
            slice(max(0, x0 - r), min(nx, x0 + pw + r)))


def _unclipped(picked: list[tuple], ph: int, pw: int, r: int) -> np.ndarray:
    """Masks over clipped widened crops, ``picked`` = [(y0, x0, wy, wx, mask)], placed in
    full-size widened crops (B, ph + 2 r, pw + 2 r), False outside the field."""
    out = np.zeros((len(picked), ph + 2 * r, pw + 2 * r), bool)
    for i, (y0, x0, wy, wx, m) in enumerate(picked):
        oy, ox = wy.start - (y0 - r), wx.start - (x0 - r)  # where the clipped crop starts
        out[i, oy:oy + m.shape[0], ox:ox + m.shape[1]] = m
    return out


def _assemble(model, src: _Source, ts: list[int], picked: list[tuple], ph: int, pw: int,
              truth: bool = False) -> dict[str, Any]:
    """The tensors of a batch of crops (B, ph, pw) at steps ``ts``, ``picked`` = [(y0, x0,
    wy, wx, hidden)] per crop: its top-left corner, its widened crop clipped to the field and
    the pixels hidden there (see :func:`_unclipped`). ``truth``: the hidden pixels are
    validation pixels, whose values are kept apart from the training field.

    One gather and one guide computation for the whole batch: every widened crop has the same
    size once the parts outside the field count as unobserved (as spatial_guides treats them
    anyway)."""
    import torch

    from .context import Crops, context_channels, first_guess, spatial_guides

    _, ny, nx = src.shape
    r = model.guide_radius
    dev = src.field.vals.device
    f = src.field
    core_y, core_x = [p[0] for p in picked], [p[1] for p in picked]
    hide_w = _unclipped(picked, ph, pw, r)
    t_idx = torch.as_tensor(ts, device=dev)
    cy, cx = torch.as_tensor(core_y, device=dev), torch.as_tensor(core_x, device=dev)
    crops = Crops(y0=cy, x0=cx, h=ph, w=pw)
    hide_w = torch.as_tensor(hide_w, device=dev)
    y, obs = crops.steps(f.vals, t_idx), crops.steps(f.obs, t_idx)
    hidden = hide_w[:, r:r + ph, r:r + pw]
    if truth:
        y = y + crops.steps(src.val_truth, t_idx)
        obs = obs | hidden
    hidden = hidden & obs
    space = guess = None
    if (model.arch.get("guides") or model.arch.get("residual")) and WHOLE_FIELD_GUIDES and \
            ny * nx < (ph + 2 * r) * (pw + 2 * r):
        # a field smaller than a widened crop (the first guess reaches 203 pixels): the
        # guides over the whole field, then the crops (the same values: what lies beyond a
        # crop's reach does not change it; 6x faster on a 17 x 21 field)
        space, guess = _whole_field_guides(model, f, t_idx, picked, crops, ny, nx,
                                           src.extent)
    elif model.arch.get("guides") or model.arch.get("residual"):
        wide = Crops(y0=cy - r, x0=cx - r, h=ph + 2 * r, w=pw + 2 * r)
        inside = ((wide.yy >= 0) & (wide.yy < ny)) & ((wide.xx >= 0) & (wide.xx < nx))
        wide.yy, wide.xx = wide.yy.clamp(0, ny - 1), wide.xx.clamp(0, nx - 1)
        vis_w = wide.steps(f.obs, t_idx) & inside & ~hide_w
        if model.arch.get("guides"):
            space = spatial_guides(wide.steps(f.vals, t_idx) * vis_w, vis_w, margin=r)
        if model.arch.get("residual"):
            ins = None
            if model.arch.get("first_guess", 1) >= 2:  # inside the field, not its padding
                ins = inside & (wide.yy < src.extent[0]) & (wide.xx < src.extent[1])
            guess = first_guess(f, t_idx, wide, vis_w, margin=r, inside=ins)
    ocean = crops.space(f.ocean)
    ctx = context_channels(f, t_idx, model.window, space=space, crops=crops)
    if guess is not None:  # the last context channel, as at inference
        ctx = torch.cat([ctx, guess[:, None]], 1)
    where = [(int(t), int(py), int(px)) for t, py, px in zip(ts, core_y, core_x)]
    return {"y": y, "obs": obs, "hidden": hidden, "ocean": ocean, "ctx": ctx, "where": where}


def _whole_field_guides(model, f, t_idx, picked: list[tuple], crops, ny: int, nx: int,
                        extent: tuple[int, int]):
    """Spatial guides and first guess of each sample over the whole field (its hidden pixels
    taken out), cropped to the sample: (B, C, ph, pw) and (B, ph, pw), None where the model
    has none."""
    import torch

    from .context import Crops, first_guess, spatial_guides

    dev = f.vals.device
    hide = np.zeros((len(picked), ny, nx), bool)
    for i, (_y0, _x0, wy, wx, m) in enumerate(picked):
        hide[i, wy, wx] = m
    vis = f.obs[t_idx] & ~torch.as_tensor(hide, device=dev)
    b = torch.arange(len(picked), device=dev)[:, None, None]
    space = guess = None
    if model.arch.get("guides"):
        full = spatial_guides(f.vals[t_idx] * vis, vis)
        space = full[b, :, crops.yy, crops.xx].permute(0, 3, 1, 2)
    if model.arch.get("residual"):
        ins = model.inside((ny, nx), dev, *extent)  # the field, not its padding
        guess = first_guess(f, t_idx, Crops(), vis, inside=ins)[b, crops.yy, crops.xx]
    return space, guess


def validation_batches(model, src: _Source, rng: np.random.Generator, batch_size: int,
                       patch: int, cloud_library: np.ndarray | None = None,
                       n_batches: int = 4) -> list[dict[str, Any]]:
    """Fixed validation batches of a source: crops of its validation dates under transplanted
    clouds (date split), or crops around its held-out pixels (pixel split)."""
    if not len(src.val_steps):
        return []
    if src.val_hide is None:
        return [make_batch(model, src, src.val_steps, rng, batch_size, patch, cloud_library)
                for _ in range(n_batches)]
    return [_assemble(model, src, *crops, truth=True)
            for crops in held_out_crops(model, src, rng, batch_size, patch, n_batches)]


def held_out_crops(model, src, rng: np.random.Generator, batch_size: int, patch: int,
                   n_batches: int) -> list[tuple[list[int], list[tuple], int, int]]:
    """Crops around random held-out pixels of a pixel split (``src.val_hide``), as
    :func:`pick_crops` gives them: (steps, [(y0, x0, wy, wx, hidden)], height, width) per
    batch."""
    _, ny, nx = src.shape
    ph, pw, r, mult = min(patch, ny), min(patch, nx), model.guide_radius, model.multiple
    held = np.argwhere(src.val_hide)  # (t, y, x) of every held-out pixel
    out = []
    for _ in range(n_batches):
        ts, picked = [], []
        for t, py, px in held[rng.integers(0, len(held), batch_size)]:
            y0 = int(min(max(0, py - ph // 2), ny - ph)) // mult * mult  # around the pixel
            x0 = int(min(max(0, px - pw // 2), nx - pw)) // mult * mult
            wy, wx = _widened(y0, x0, ph, pw, r, ny, nx)
            ts.append(int(t)), picked.append((y0, x0, wy, wx, src.val_hide[t, wy, wx]))
        out.append((ts, picked, ph, pw))
    return out


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
        a = batch[key]
        on = [torch.as_tensor(ops[:, j], device=a.device).view((n,) + (1,) * (a.dim() - 1))
              for j in range(3)]
        a = torch.where(on[0], a.flip(-2), a)
        a = torch.where(on[1], a.flip(-1), a)
        if h == w:
            a = torch.where(on[2], a.transpose(-2, -1), a)
        out[key] = a
    out["views"] = ops  # per sample: flipped in Y, flipped in X, transposed (in that order)
    return out


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of an initialised ``torch.distributed`` process group, else (0, 1).

    Data-parallel training needs nothing else: start one process per device (``torchrun
    --nproc_per_node=N script.py``, or ``torch.distributed.init_process_group`` yourself) and
    call :func:`xgenfill.train` in each; every process then trains on its share of each
    batch and the gradients are averaged across processes."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def batch_part(batch: dict[str, Any], rank: int, world: int) -> dict[str, Any]:
    """This process's share of a batch that every process built alike (the same seed): its
    samples, plus what the losses need to draw the whole batch's noise and normalise by the
    whole batch's hidden pixels (``full``, ``part``, ``norm``), so that the averaged
    gradient is the one-process gradient of the whole batch."""
    n = batch["y"].shape[0]
    if n % world:
        raise GenfillError(f"batch_size={n} must be a multiple of the {world} processes "
                           "training together")
    part = slice(rank * n // world, (rank + 1) * n // world)
    out = {k: (v[part] if k in _SPATIAL_KEYS or k == "ctx" or k == "where" or k == "views"
               else v) for k, v in batch.items()}
    out.update(full=n, part=part, norm=batch["hidden"].sum().clamp_min(1))
    return out


def _sum_gradients(params: list) -> None:
    """All-reduce (sum) the gradients of ``params`` across processes, in one flat buffer."""
    import torch
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    i = 0
    for g in grads:
        g.copy_(flat[i:i + g.numel()].view_as(g))
        i += g.numel()


def _source_weights(sources: list[_Source]) -> np.ndarray:
    weights = np.array([len(s.train_steps) for s in sources], float)
    if weights.sum() == 0:
        raise GenfillError("no time step left for training after the validation split")
    return weights / weights.sum()


def _stream_source(stream, model, dev, rng, cloud_library, validation: bool = False
                   ) -> _Source:
    """A training source of a block read from ``stream``; blocks without enough usable dates
    (a polar winter, a block of land) are drawn again."""
    last = None
    for _attempt in range(20):
        try:
            return _Source(stream.block(validation=validation), model.multiple, dev, rng,
                           0.0, "dates", cloud_library)
        except GenfillError as err:
            last = err
            if validation:
                break
    raise GenfillError(f"no streamed block of the archive could be trained on: {last}")


def _from_rank0(value: Any) -> Any:
    """Process 0's ``value`` in every process (a clock reading, a step horizon)."""
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def train_model(model, cubes: list[Cube], *, max_steps: int = 2000,
                max_time: float | None = None, batch_size: int = 16, patch: int = 64,
                lr: float = 2e-3, val_fraction: float = 0.1, eval_every: int = 100,
                patience: int = 10, seed: int = 0, progress: bool = True,
                ema_decay: float = 0.998, cloud_library: np.ndarray | None = None,
                augment: bool = False, val_split: str = "auto", stream: Any = None,
                refresh: int = 50, cache: int = 2) -> dict[str, Any]:
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
    val_split
        ``"dates"``: hold out whole dates (``val_fraction`` of them); ``"pixels"``: hold out,
        on every date, the observed pixels under another date's clouds inside random blocks
        (about ``val_fraction`` of the observations), so that no date is lost to validation;
        ``"auto"`` (default): dates, or pixels where there are too few usable dates (under 4)
        to hold one out.
    augment
        Flip and transpose training crops at random (see :func:`flip_views`). Off by default:
        on the three benchmark cases it did not improve the held-out scores at equal budgets.
    stream, refresh, cache
        An :class:`xgenfill.streaming.ArchiveSampler` instead of ``cubes``: training reads a
        new block from it every ``refresh`` steps and draws each batch from one of the last
        ``cache`` blocks; validation is its held-out stretch of the record.
    """
    import torch

    if max_steps < 1:
        raise GenfillError(f"max_steps must be >= 1, got {max_steps}")
    if not 0 <= val_fraction < 1:
        raise GenfillError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if not isinstance(augment, (bool, np.bool_)):
        raise GenfillError(f"augment must be True or False, got {augment!r}")
    rank, world = distributed_world()
    # every process draws the same batches (same seeds) and trains on its part of each
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = model._device()
    patch = max(model.multiple, patch // model.multiple * model.multiple)
    if cloud_library is not None:
        cloud_library = np.asarray(cloud_library, dtype=bool)
        if cloud_library.ndim != 3 or not cloud_library.any():
            raise GenfillError("cloud_library must be a non-empty (N, h, w) boolean array")
    if val_split not in ("auto", "dates", "pixels"):
        raise GenfillError(f"val_split must be 'auto', 'dates' or 'pixels', got {val_split!r}")
    vrng = np.random.default_rng(seed + 12345)
    if stream is None:
        # a model over several fields at once (models.joint) has sources of its own
        own = getattr(model, "training_source", None)
        sources = [own(c, dev, rng, val_fraction, val_split, cloud_library) if own else
                   _Source(c, model.multiple, dev, rng, val_fraction, val_split, cloud_library)
                   for c in cubes]
        val_batches = [b for src in sources for b in (
            src.validation_batches(model, vrng, batch_size, patch, cloud_library)
            if own else validation_batches(model, src, vrng, batch_size, patch,
                                           cloud_library))]
    else:
        sources = [_stream_source(stream, model, dev, rng, cloud_library)]
        val_batches = []
        if val_fraction > 0 and stream.val_start is not None:
            held = _stream_source(stream, model, dev, rng, cloud_library, validation=True)
            held.val_steps = held.train_steps  # the whole held-out stretch
            val_batches = validation_batches(model, held, vrng, batch_size, patch,
                                             cloud_library)
            del held
    weights = _source_weights(sources)

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
    # estimated once, from the speed of the warm-up steps, rounded down to a quarter of an
    # evaluation period (timing jitter rarely moves it) and recorded; ``max_steps=horizon``
    # repeats it.
    warmup = min(100, max(1, max_steps // 2))
    horizon = max_steps if not max_time else None

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, (horizon or max_steps) - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    def fix_horizon(elapsed: float, t_measure: tuple[int, float]) -> tuple[int, float]:
        """The horizon, and the validation score at this step (an evaluation is timed: they
        are part of the budget; the loop reuses its score when this step evaluates anyway)."""
        t_eval = time.perf_counter()
        val = evaluate()
        t_eval = time.perf_counter() - t_eval
        s0, e0 = t_measure
        per_step = (elapsed - e0) / max(1, step - s0) + t_eval / eval_every
        left = 0.95 * max_time - (time.perf_counter() - t0)
        n = step + int(max(0.0, left) / per_step)
        grid = max(1, eval_every // 4)
        if n >= step + grid:
            n = n // grid * grid
        return int(min(max_steps, max(step + 1, n))), val

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
    if progress and rank == 0:
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
        if stream is not None and step and step % refresh == 0:
            sources = sources[-(cache - 1):] if cache > 1 else []
            sources.append(_stream_source(stream, model, dev, rng, cloud_library))
            weights = _source_weights(sources)
        src = sources[int(rng.choice(len(sources), p=weights))]
        batch = (src.make_batch(model, src.train_steps, rng, batch_size, patch, cloud_library)
                 if hasattr(src, "make_batch") else
                 make_batch(model, src, src.train_steps, rng, batch_size, patch, cloud_library))
        if augment:
            batch = flip_views(batch, rng)
        for group in opt.param_groups:
            group["lr"] = lr * lr_factor(step)
        if world > 1:
            batch = batch_part(batch, rank, world)
        with autocast(dev, dtype):
            loss = model.loss(batch).float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if world > 1:  # each part's loss is normalised by the whole batch: sum = the loss
            _sum_gradients(list(net.parameters()))
            loss = loss.detach().clone()
            torch.distributed.all_reduce(loss)
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
        if world > 1 and max_time:  # one clock for all processes: they stop together
            elapsed = _from_rank0(elapsed)
        if step == min(10, warmup // 2):
            t_measure = (step, elapsed)  # skip the slow first steps (allocation, caches)
        val = None  # the validation score of this step, once computed
        if horizon is None and step == warmup and not elapsed > max_time:
            horizon, val = fix_horizon(elapsed, t_measure)
            if world > 1:
                horizon = _from_rank0(horizon)
            if bar is not None:
                bar.total = horizon  # the bar now ends where the fit will
                bar.refresh()
        last = step == (horizon or max_steps)
        if step % eval_every == 0 or last or (max_time and elapsed > max_time):
            val = evaluate() if val is None else val
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
    log.info("trained %s for %d steps (%s) in %.1f s; best validation RMSE %s at step %d",
             type(model).__name__, step, stop, time.perf_counter() - t0,
             "n/a" if not val_batches else f"{best[0]:.4f}", best[1])
    return {"steps": step, "seconds": round(time.perf_counter() - t0, 1), "stopped_by": stop,
            "best_val_rmse_normalised": None if not val_batches else round(best[0], 5),
            "best_step": best[1], "final_train_loss": round(float(np.mean(losses[-50:])), 5),
            "horizon_steps": horizon, "warmup_steps": warmup,
            "batch_size": batch_size, "patch": patch, "lr": lr, "seed": seed,
            "augment": bool(augment), "val_split": [src.val_split for src in sources],
            "device": str(dev), "processes": world,
            "streamed": None if stream is None else {
                "block": list(stream.block_shape), "refresh": refresh, "cache": cache,
                "blocks_read": int(step // refresh) + 1}}
