"""Lazy (dask) execution of :func:`xgenfill.inpaint`.

A dask-backed input gives a dask-backed result and nothing is computed until the user asks.
Chunks exchange halos with their neighbours (``dask.array.overlap``): in time as deep as the
model's temporal context, in space as deep as its dependency radius (one receptive field per
network call in sequence, see ``NeuralFiller.spatial_radius``; wrapped on global grids), so
that every chunk's core is computed exactly as in the whole field. Spatial chunks are widened
to at least that radius and aligned on the network's down-sampling grid. Models that need the
whole record (DINEOF, the temporal baselines) run on one time chunk; models that need the whole
field (DINEOF, spatial interpolation) on one spatial chunk; pixel-wise ones keep any chunks.

Only a small *spec* of the model goes into the graph when it has one (registry name or file
path, weights hash, options): each worker process loads it once through a cache keyed by that
spec and the device. In-memory models go in once, as a single shared graph key.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import xarray as xr

from .errors import GenfillError
from .models.base import Cube, Filler
from .post import (FILLED, MEMBER, NOT_FILLED, dataset_form, history_line, member_coord,
                   member_spread, range_attrs, spread_comment, status_codes, with_members)
from .prepare import check_structure, descending_axes, time_axis_info
from .transforms import choose_transform

__all__ = ["is_lazy", "inpaint_lazy", "time_depth", "canonical_dask"]

_CACHE: dict[tuple, Filler] = {}
_LOCK = threading.Lock()


def is_lazy(da: xr.DataArray) -> bool:
    return hasattr(da.data, "dask") or type(da.data).__module__.startswith("dask")


def time_depth(filler: Filler) -> int | None:
    """Halo (in steps) a time chunk needs, or None when the model needs the whole record."""
    from .models.context import CLIM_HALF
    from .models.neural import NeuralFiller

    if isinstance(filler, NeuralFiller):  # DINEOF's reconstruction reads the whole record
        return None if filler.arch.get("dineof_guide") else max(filler.window, CLIM_HALF)
    whole = filler.needs_time or getattr(filler, "needs_record", False)
    if not whole and getattr(filler, "parts", None):  # a combination: its deepest part
        depths = [time_depth(p) for p in filler.parts]
        return None if any(d is None for d in depths) else max(depths)
    return None if whole else 0


def space_plan(chunks: tuple[int, ...], n: int, radius: int | None, multiple: int
               ) -> tuple[tuple[int, ...], int]:
    """Chunks along one spatial axis and the halo depth for a model of dependency ``radius``.

    Chunks are made regular, multiples of ``multiple`` (so that every chunk's window starts on
    the network's down-sampling grid) and at least as wide as the halo; too few pixels for
    that gives one chunk (no halo).
    """
    from .tiling import round_up

    if radius is None or len(chunks) == 1:
        return (n,), 0
    if radius == 0:
        return tuple(chunks), 0
    depth = round_up(radius, multiple)
    size = round_up(max(max(chunks), depth), multiple)
    sizes = [min(size, n - s) for s in range(0, n, size)]
    if len(sizes) > 1 and sizes[-1] < depth:
        sizes[-2:] = [sizes[-2] + sizes[-1]]
    if len(sizes) == 1:
        return (n,), 0
    return tuple(sizes), depth


def _window_index(starts: np.ndarray, i: int, depth: int, size: int, n: int,
                  wrap: bool) -> tuple[np.ndarray, int]:
    """Absolute positions of the pixels of block ``i`` with its halo, and where its core
    begins inside the block."""
    lo = depth if (wrap or i > 0) else 0
    idx = starts[i] - lo + np.arange(size)
    return (idx % n if wrap else idx), lo


def model_spec(filler: Filler) -> dict[str, Any] | None:
    """A few strings that rebuild ``filler`` on a worker, or None for in-memory models."""
    source = getattr(filler, "source", None)
    if source is None:
        return None
    return {"source": source, "hash": filler.weights_hash,
            "options": dict(getattr(filler, "options", {})),
            "runtime": {k: getattr(filler, k) for k in ("device", "tile", "halo", "blend",
                                                         "batch_size", "time_batch",
                                                         "precision")}}


def _load_cached(spec: dict[str, Any]) -> Filler:
    from .device import resolve_device
    from .models.registry import get_filler

    device = str(resolve_device(spec["runtime"]["device"]))
    key = (spec["source"], spec["hash"], device, tuple(sorted(spec["options"].items())),
           tuple(sorted((k, str(v)) for k, v in spec["runtime"].items() if k != "device")))
    with _LOCK:
        if key not in _CACHE:
            runtime = {**spec["runtime"], "device": device}
            model = get_filler(spec["source"], **runtime, **spec["options"])
            if spec["hash"] and model.weights_hash != spec["hash"]:
                raise GenfillError(f"model {spec['source']} on this worker has hash "
                                   f"{model.weights_hash}, expected {spec['hash']}")
            _CACHE[key] = model
        return _CACHE[key]


def _torch_threads() -> None:
    """Avoid oversubscription: torch gets the cores left per dask thread, and never more than
    OMP_NUM_THREADS (distributed's nanny sets it to 1 per worker process by default, since
    several worker processes share the machine)."""
    import torch

    cores = os.cpu_count() or 1
    try:
        from distributed import get_worker

        nthreads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        nthreads = 1 if threading.current_thread() is threading.main_thread() else cores
    n = max(1, cores // max(nthreads, 1))
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        n = min(n, int(omp))
    torch.set_num_threads(n)


def _forward_block(block: np.ndarray, transform: str, var_name: str, units: str = ""
                   ) -> np.ndarray:
    """Transform one block, refusing values outside the transform's domain and values that
    are not data (undecoded fill values)."""
    from .plausible import check_physical
    from .transforms import TRANSFORMS

    tf = TRANSFORMS[transform]
    if np.isinf(block).any():
        raise GenfillError(f"{var_name!r} contains +/-inf; replace them with NaN first")
    check_physical(block, var_name, units)
    tf.check(block, var_name)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tf.forward(block)


def _fill_block(values, ocean, mean, std, lowest, highest, *covs, model, spec, n_samples,
                seed, starts, depth, doy, time_index, periodic_x, space, transform, var_name,
                point, block_id=None):
    """Fill one (extra..., T_block, Y_block, X_block) block of transformed values (with its
    halos); returns, in transformed units, (K + 1 [+ 1 with ``point``], extra..., T_core,
    Y_core, X_core): the members, the model's point estimate when it has one of its own
    (``point``), and its own error estimate; NaN where they leave the whole record's plausible
    range [lowest, highest]."""
    from .plausible import drop_implausible
    from .transforms import TRANSFORMS

    filler = _load_cached(spec) if spec is not None else model
    _torch_threads()
    y_abs, y_lo = _window_index(space["y_starts"], block_id[-2], space["y_depth"],
                                values.shape[-2], space["ny"], False)
    wrap = periodic_x and space["x_depth"] > 0
    x_abs, x_lo = _window_index(space["x_starts"], block_id[-1], space["x_depth"],
                                values.shape[-1], space["nx"], wrap)
    y_core = slice(y_lo, y_lo + int(np.diff(space["y_starts"])[block_id[-2]]))
    x_core = slice(x_lo, x_lo + int(np.diff(space["x_starts"])[block_id[-1]]))
    # a field split along longitude gets its wrap from the halo, not from the model
    periodic = periodic_x and len(space["x_starts"]) == 2
    i = block_id[-3]
    core0 = starts[i]
    lo = core0 - (depth if i > 0 else 0)
    n_core = starts[i + 1] - core0
    tb = values.shape[-3]
    extra_shape = values.shape[:-3]
    v = values.reshape((-1,) + values.shape[-3:])
    oc = ocean[..., 0, :, :].reshape((-1,) + ocean.shape[-2:])  # (fields, Y, X)
    m, s = mean.reshape(-1), std.reshape(-1)
    lowest, highest = lowest.reshape(-1), highest.reshape(-1)
    steps = np.zeros(tb, bool)
    steps[core0 - lo:core0 - lo + n_core] = True
    core_shape = (y_core.stop - y_core.start, x_core.stop - x_core.start)
    # members, [point estimate,] the model's own error estimate (DINEOF's CV error; NaN when
    # it has none)
    k = n_samples + int(point)
    out = np.full((k + 1, v.shape[0], n_core) + core_shape, np.nan, np.float32)
    for f in range(v.shape[0]):
        norm = ((v[f] - m[f]) / s[f]).astype(np.float32)
        norm = np.where(oc[f][None], norm, np.nan)
        # covariates: normalised already, with the same halos as the values
        cov = (np.stack([c.reshape(v.shape)[f] for c in covs]).astype(np.float32)
               if covs else None)
        cube = Cube(norm, oc[f], doy=None if doy is None else doy[lo:lo + tb],
                    time_index=None if time_index is None else time_index[lo:lo + tb],
                    periodic_x=periodic, steps=steps, t_offset=lo, y_index=y_abs,
                    x_index=x_abs, covariates=cov)
        gaps = cube.gaps
        if not gaps[:, y_core, x_core].any():
            continue
        fill = filler.fill(cube, n_samples=n_samples, seed=seed)
        stack = fill.samples if not point else np.concatenate([fill.samples, fill.mean[None]])
        out[:k, f] = drop_implausible(
            stack[:, steps][..., y_core, x_core] * s[f] + m[f], lowest[f], highest[f],
            name=repr(var_name), to_physical=TRANSFORMS[transform].inverse, point=point,
            counts=False)
        if fill.std is not None:
            own = np.where(gaps, fill.std, np.nan)[steps][..., y_core, x_core]
            out[k, f] = own * s[f]
    return out.reshape((k + 1,) + extra_shape + (n_core,) + core_shape)


def canonical_dask(da: xr.DataArray, axes, flips: tuple[bool, bool], chunks: Any = "auto"):
    """``da``'s values as a dask array in the canonical (extra..., T, Y, X) layout, rows and
    columns ascending (``flips``: which axes descend, from ``descending_axes``); an in-memory
    ``da`` is wrapped with ``chunks``."""
    import dask.array as dsa

    x = da.transpose(*axes.canonical).data
    if not hasattr(x, "dask"):
        x = dsa.from_array(np.asarray(x), chunks=chunks)
    if flips[0]:
        x = x[..., ::-1, :]
    if flips[1]:
        x = x[..., ::-1]
    return x


def _normalise_block(block: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (block - mean) / std


def _lazy_covariates(covariates, da: xr.DataArray, axes, x, flip_y: bool, flip_x: bool
                     ) -> list:
    """The covariates as dask arrays in the layout and chunks of ``x`` (the canonical
    values), each in its own transform and standardised over the whole record (statistics
    from an independent copy of its graph, as for the values)."""
    import dask.array as dsa
    from dask.graph_manipulation import clone

    from .prepare import decode_input, require_same_grid

    out = []
    ne = len(axes.extra)
    for c in covariates or []:
        c = decode_input(c)
        require_same_grid(c, da, f"covariate {c.name!r}")
        arr = canonical_dask(c, axes, (flip_y, flip_x)).rechunk(x.chunks).astype(np.float64)
        tf = choose_transform(c, np.empty(0), "auto")
        kw = dict(transform=tf.name, var_name=str(c.name), units=str(c.attrs.get("units", "")),
                  dtype=np.float64)
        t = arr.map_blocks(_forward_block, **kw)
        t_stats = clone(arr, seed=f"xgenfill-covariate-{len(out)}").map_blocks(
            _forward_block, **kw)
        axis = (-3, -2, -1)
        mean = dsa.nanmean(t_stats, axis=axis)
        std = dsa.nanstd(t_stats, axis=axis)
        std = dsa.where((std > 0) & dsa.isfinite(std), std, 1.0)
        mean = dsa.where(dsa.isfinite(mean), mean, 0.0)
        shape = (Ellipsis,) + (None,) * 3
        out.append(dsa.map_blocks(_normalise_block, t,
                                  mean.rechunk(t.chunks[:ne])[shape],
                                  std.rechunk(t.chunks[:ne])[shape], dtype=np.float64))
    return out


#: the window of the archive the default's check runs on in a lazy fill: up to this many
#: steps (the middle of the record) and pixels, the most observed of a 3 x 3 grid of them
CHECK_STEPS, CHECK_PIXELS = 120, 192


def _lazy_check(guard, t, ocean, mean, std, doy, time_index, periodic_x: bool, ne: int,
                n_samples: int, seed: int | None):
    """A delayed :class:`~xgenfill.models.guard.Checked`: the guard's check on the most
    observed of nine windows of the (first field of the) archive, normalised as every chunk
    is; bounded memory whatever the archive."""
    from dask import delayed

    nt, ny, nx = t.shape[-3:]
    t0 = max(0, (nt - CHECK_STEPS) // 2)
    ts = slice(t0, min(nt, t0 + CHECK_STEPS))
    first = (0,) * ne
    hy, hx = min(ny, CHECK_PIXELS), min(nx, CHECK_PIXELS)
    corners = sorted({(y, x) for y in np.linspace(0, ny - hy, 3).astype(int)
                      for x in np.linspace(0, nx - hx, 3).astype(int)})

    def one_block(arr):  # the window as one delayed numpy block (dask fuses no better)
        return arr.rechunk(arr.shape).to_delayed(optimize_graph=False).ravel()[0]

    values, oceans = [], []
    for y, x in corners:
        win = first + (ts, slice(y, y + hy), slice(x, x + hx))
        values.append(one_block(((t[win] - mean[first]) / std[first]).astype(np.float32)))
        oceans.append(one_block(ocean[first + win[-2:]]))
    return delayed(_checked_on, pure=True)(
        guard, values, oceans, corners, doy=None if doy is None else doy[ts],
        time_index=None if time_index is None else time_index[ts], t0=t0,
        periodic_x=periodic_x and hx == nx, n_samples=n_samples, seed=seed)


def _checked_on(guard, values, oceans, corners, *, doy, time_index, t0, periodic_x,
                n_samples, seed):
    from .models.guard import Checked

    i = int(np.argmax([np.isfinite(v).sum() for v in values]))
    y, x = corners[i]
    v, oc = values[i], oceans[i]  # float32, NaN off the sea already (as every chunk)
    cube = Cube(v, oc, doy=doy, time_index=time_index,
                periodic_x=periodic_x, t_offset=t0, y_index=np.arange(y, y + v.shape[1]),
                x_index=np.arange(x, x + v.shape[2]))
    return Checked(guard, guard.check(cube, n_samples, seed))


def inpaint_lazy(da: xr.DataArray, filler: Filler, *, n_samples: int, seed: int | None,
                 mask, transform: str, dims, return_dataset: bool, call: str,
                 keep_members: bool = False, obs_error=None, covariates=None):
    import dask.array as dsa
    from dask.array.overlap import overlap

    from .models.guard import Guarded

    da, axes = check_structure(da, dims)
    ny, nx = da.sizes[axes.y], da.sizes[axes.x]
    if axes.time is None:
        raise GenfillError("lazy (dask) filling needs a time axis; load single images first")
    guard = None
    if isinstance(filler, Guarded):
        if covariates is not None:
            raise GenfillError("model='auto' with covariates on a dask array is not supported; "
                               "pass the network itself (model=...) or load the data")
        # chunk by chunk: the candidates that need the whole field are left out
        guard = filler = filler.streamable()
    tf = choose_transform(da, np.empty(0), transform)  # metadata only: nothing is computed
    nt = da.sizes[axes.time]
    extra = axes.extra
    ne = len(extra)
    flip_y, flip_x = descending_axes(da, axes)
    x = canonical_dask(da, axes, (flip_y, flip_x))
    from .axes import is_periodic_longitude

    periodic_x = is_periodic_longitude(da, axes)
    depth = time_depth(filler)
    t_chunks = x.chunks[ne] if depth is not None else (nt,)
    if depth and min(t_chunks) < depth:
        # overlap needs chunks at least as long as the halo: merge short chunks
        size = max(depth, max(t_chunks))
        sizes = [min(size, nt - s) for s in range(0, nt, size)]
        if len(sizes) > 1 and sizes[-1] < depth:
            sizes[-2:] = [sizes[-2] + sizes[-1]]
        t_chunks = tuple(sizes)
    if len(t_chunks) == 1:
        depth = 0  # one chunk holds the whole record: no halo (dask refuses one longer than it)
    radius = filler.radius_for(n_samples)
    multiple = getattr(filler, "multiple", 1)
    y_chunks, y_depth = space_plan(x.chunks[ne + 1], ny, radius, multiple)
    x_chunks, x_depth = space_plan(x.chunks[ne + 2], nx, radius, multiple)
    x = x.rechunk({ne: t_chunks, ne + 1: y_chunks, ne + 2: x_chunks}).astype(np.float64)

    units = str(da.attrs.get("units", ""))
    t = x.map_blocks(_forward_block, transform=tf.name, var_name=str(da.name), units=units,
                     dtype=np.float64)
    # The land mask and the normalisation statistics reduce over the whole record, and every
    # fill task needs them. Sharing blocks between those reductions and the fills would make
    # dask hold every input block until the reductions finish (memory growing with the
    # archive), so the reductions read the input through an independent copy of its graph.
    from dask.graph_manipulation import clone

    x_stats = clone(x, seed="xgenfill-statistics")
    t_stats = x_stats.map_blocks(_forward_block, transform=tf.name, var_name=str(da.name),
                                 units=units, dtype=np.float64)
    observed_ever = dsa.isfinite(x_stats).any(axis=ne)
    ocean = observed_ever
    if mask is not None:
        from .prepare import _user_mask

        user = _user_mask(mask, da, axes).reshape(
            tuple(da.sizes[d] for d in extra) + (ny, nx))
        user = user[..., ::-1, :] if flip_y else user
        user = user[..., ::-1] if flip_x else user
        if not isinstance(mask, str):  # mask="auto" adds sea, never takes an observed pixel
            ocean = ocean & user
        # sea pixels never observed: filled eagerly (xgenfill.extrapolate), not lazily yet
        never_sea = user & ~observed_ever
    t = dsa.where(ocean[..., None, :, :], t, np.nan)
    t_stats = dsa.where(ocean[..., None, :, :], t_stats, np.nan)
    mean = dsa.nanmean(t_stats, axis=(-3, -2, -1))
    std = dsa.nanstd(t_stats, axis=(-3, -2, -1))
    std = dsa.where((std > 0) & dsa.isfinite(std), std, 1.0)
    mean = dsa.where(dsa.isfinite(mean), mean, 0.0)
    from .plausible import bounds, lattice_step, physical_bounds, robust_scale

    seen = dsa.isfinite(t_stats)
    step = lattice_step(t_stats.shape)
    lattice = t_stats[..., ::step, ::step]  # small: one chunk per field for the medians
    lattice = lattice.rechunk({ne: -1, ne + 1: -1, ne + 2: -1})
    scale = lattice.map_blocks(robust_scale, axis=(-3, -2, -1), drop_axis=[ne, ne + 1, ne + 2],
                               dtype=np.float64)
    lo, hi = bounds(dsa.where(seen, t_stats, np.inf).min(axis=(-3, -2, -1)),
                    dsa.where(seen, t_stats, -np.inf).max(axis=(-3, -2, -1)), scale, std)
    p_lo, p_hi = physical_bounds(units, tf)  # as in the eager fill
    lo, hi = dsa.maximum(lo, p_lo), dsa.minimum(hi, p_hi)

    doy, time_index = time_axis_info(da, axes)
    starts = np.concatenate([[0], np.cumsum(t_chunks)]).astype(int)
    d = depth or 0
    spec = model_spec(filler)
    if guard is not None:  # one check, on a window, at compute time; its weights everywhere
        model_arg = _lazy_check(guard, t, ocean, mean, std, doy, time_index, periodic_x, ne,
                                n_samples, seed)
    elif spec is None:
        from dask import delayed

        model_arg = delayed(filler, pure=True)  # one graph key shared by every task
    else:
        model_arg = None
    x_boundary = "periodic" if periodic_x else "none"
    if d or y_depth or x_depth:
        tt = overlap(t, depth={ne: d, ne + 1: y_depth, ne + 2: x_depth},
                     boundary={ne: "none", ne + 1: "none", ne + 2: x_boundary})
    else:
        tt = t
    oc_b = ocean.rechunk(t.chunks[:ne] + t.chunks[-2:])
    if y_depth or x_depth:
        oc_b = overlap(oc_b, depth={ne: y_depth, ne + 1: x_depth},
                       boundary={ne: "none", ne + 1: x_boundary})
    cov_b = [overlap(c, depth={ne: d, ne + 1: y_depth, ne + 2: x_depth},
                     boundary={ne: "none", ne + 1: "none", ne + 2: x_boundary})
             if (d or y_depth or x_depth) else c
             for c in _lazy_covariates(covariates, da, axes, x, flip_y, flip_x)]
    mean_b = mean.rechunk(tt.chunks[:ne])
    std_b = std.rechunk(tt.chunks[:ne])
    lo_b, hi_b = lo.rechunk(tt.chunks[:ne]), hi.rechunk(tt.chunks[:ne])
    # a model with its own point estimate returns it beside the members (n_samples=1: as the
    # member itself, see NeuralFiller.fill)
    point = n_samples > 1 and filler.has_point_estimate
    k = n_samples + int(point)
    out_chunks = ((k + 1,) + tt.chunks[:ne] + (tuple(int(c) for c in t_chunks),)
                  + t.chunks[-2:])
    space = {"ny": ny, "nx": nx, "y_depth": y_depth, "x_depth": x_depth,
             "y_starts": np.concatenate([[0], np.cumsum(y_chunks)]).astype(int),
             "x_starts": np.concatenate([[0], np.cumsum(x_chunks)]).astype(int)}
    members = dsa.map_blocks(
        _fill_block, tt, oc_b[..., None, :, :], mean_b[..., None, None, None],
        std_b[..., None, None, None], lo_b[..., None, None, None], hi_b[..., None, None, None],
        *cov_b, dtype=np.float32, chunks=out_chunks, new_axis=0,
        model=model_arg, spec=spec, n_samples=n_samples, seed=seed, starts=starts, depth=d,
        doy=doy, time_index=time_index, periodic_x=periodic_x, space=space,
        transform=tf.name, var_name=str(da.name), point=point,
        meta=np.empty((0,) * (ne + 4), np.float32))
    own_error = members[k].astype(np.float64)
    best = members[n_samples].astype(np.float64) if point else None
    members = members[:n_samples].astype(np.float64)
    src_t = t  # transformed input (NaN = missing)
    gap = dsa.isnan(src_t) & ocean[..., None, :, :]
    if best is None:
        finite = dsa.isfinite(members).all(axis=0)
        best = members.mean(axis=0) if n_samples > 1 else members[0]
    else:  # the model's own point estimate is the value (a refused member loses only itself)
        finite = dsa.isfinite(best)
    status = status_codes(ocean[..., None, :, :], gap, finite)
    if mask is not None:  # they are sea: not land, but not filled here (load the data)
        status = dsa.where(never_sea[..., None, :, :], NOT_FILLED, status).astype(np.int8)

    def back(arr):
        if flip_y:
            arr = arr[..., ::-1, :]
        if flip_x:
            arr = arr[..., ::-1]
        order = [axes.canonical.index(dim) for dim in da.dims]
        lead = arr.ndim - len(axes.canonical)
        return arr.transpose(tuple(range(lead)) + tuple(lead + o for o in order))

    src = da.data if hasattr(da.data, "dask") else dsa.from_array(da.data)
    src = src.rechunk(back(t).chunks)
    dtype = da.dtype

    in_chunks = da.data.chunks if hasattr(da.data, "dask") else None

    def same_chunks(arr):
        # halos and models (DINEOF needs whole time series) change the chunking; the user's
        # chunks are given back so that writing (to_zarr) and later steps see what they chose
        return arr if in_chunks is None else arr.rechunk(in_chunks)

    def merge(pred_t):
        phys = tf.inverse(back(pred_t)).astype(dtype)
        return same_chunks(dsa.where(back(status) == FILLED, phys, src))

    attrs = range_attrs(dict(da.attrs), None)  # the filled values are not known yet
    attrs["history"] = call_hist = history_line(call, filler.weights_hash) + (
        f"\n{da.attrs['history']}" if da.attrs.get("history") else "")
    name = da.name if da.name is not None else "data"
    if n_samples > 1 and not return_dataset:
        data = dsa.stack([merge(members[k]) for k in range(n_samples)])
        res = xr.DataArray(data, dims=(MEMBER,) + da.dims, coords=da.coords, attrs=attrs,
                           name=name).assign_coords({MEMBER: member_coord(n_samples)})
        return res
    result = xr.DataArray(merge(best), dims=da.dims, coords=da.coords, attrs=attrs, name=name)
    result.encoding = dict(da.encoding)
    if not return_dataset:
        return result
    spread = member_spread(members, dsa) if n_samples > 1 else own_error
    ds = dataset_form(result, same_chunks(back(status)), same_chunks(back(spread)), src=da,
                      transform=tf, history=call_hist.split("\n")[0], obs_error=obs_error,
                      comment=spread_comment(n_samples))
    if keep_members and n_samples > 1:
        ds = with_members(ds, dsa.stack([merge(members[k]) for k in range(n_samples)]), da)
    return ds
