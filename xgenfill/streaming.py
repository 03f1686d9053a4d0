"""Training from an archive larger than memory: blocks streamed from a dask- or zarr-backed
field.

:func:`xgenfill.train` on a dask-backed DataArray never loads the whole field. Two lazy passes
compute what needs the whole record (the sea: pixels ever observed, or ``mask=``; then the
normalisation mean and standard deviation), chunk by chunk; training then draws its crops and
their transplanted clouds from blocks of ``block`` (time, y, x) read at random places of the
archive, a few at a time (a cache of ``cache`` blocks, one new block every ``refresh`` steps),
in float32. Peak memory is set by the block, the cache and the batch, not by the archive.

Validation is a held-out stretch of the record (its last ``block[0]`` steps, when the record is
at least two blocks long): training blocks never reach into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .errors import GenfillError
from .models.base import Cube

__all__ = ["ArchiveSampler", "DEFAULT_BLOCK"]

DEFAULT_BLOCK = (64, 256, 256)  # steps, rows, columns of one streamed block (64 MB float32)


@dataclass
class _Lazy:
    """One field of the archive in canonical (T, Y, X) orientation, transformed, lazily."""

    t: Any  # dask array, transformed, NaN off the sea
    mean: float
    std: float


class ArchiveSampler:
    """Random training blocks of a dask-backed field (and its covariates), normalised.

    What :func:`xgenfill.train` reads a dask- or zarr-backed archive through: normalisation
    statistics computed lazily, then blocks drawn at random so that memory is set by the block
    and the cache, not by the archive.

    Parameters
    ----------
    da : xarray.DataArray
        Dask-backed field with a time axis and two spatial axes (no other dimension).
    mask : xarray.DataArray, numpy.ndarray or "auto", optional
        Boolean land/sea mask (True = sea) or ``"auto"``, as in :func:`xgenfill.train`.
    transform : {"auto", "log10", "logit", "identity"}, default "auto"
        Transform of the values, as in :func:`xgenfill.train`.
    dims : dict, optional
        Explicit axis names, as in :func:`xgenfill.train`.
    covariates : list of xarray.DataArray, optional
        Conditioning fields on the same grid (dask-backed or not), each standardised in its
        own transform over the whole record.
    block : (int, int, int)
        Steps, rows and columns of a streamed block (clipped to the archive).
    seed : int
        Seed of the block positions.

    See Also
    --------
    xgenfill.train : Streams from this when given a dask-backed field.

    Examples
    --------
    >>> import dask.array as dsa
    >>> import xgenfill
    >>> chl = xgenfill.open_sample("phytofit").chl.chunk({"time": 30})
    >>> from xgenfill.streaming import ArchiveSampler
    >>> s = ArchiveSampler(chl, block=(40, 48, 64))
    >>> cube = s.block()
    >>> cube.values.shape, cube.values.dtype.name
    ((40, 48, 64), 'float32')
    """

    def __init__(self, da: xr.DataArray, *, mask=None, transform: str = "auto",
                 dims: dict[str, str] | None = None,
                 covariates: list[xr.DataArray] | None = None,
                 block: tuple[int, int, int] = DEFAULT_BLOCK, seed: int = 0) -> None:
        import dask
        import dask.array as dsa

        from .lazy import _forward_block, canonical_dask
        from .prepare import (_user_mask, check_structure, decode_input, descending_axes,
                              require_same_grid, time_axis_info)
        from .transforms import choose_transform

        da = decode_input(da)
        da, axes = check_structure(da, dims)
        if axes.time is None or axes.extra:
            raise GenfillError("streamed training needs a (time, y, x) field; select or stack "
                               f"the other dimensions {list(axes.extra)} first")
        self.axes = axes
        tf = choose_transform(da, np.empty(0), transform)  # from metadata: nothing computed
        self.transform = tf
        flips = descending_axes(da, axes)

        def canonical(arr: xr.DataArray, name: str, tf_name: str, units: str):
            x = canonical_dask(arr, axes, flips, chunks=(block[0], -1, -1)).astype(np.float32)
            return x.map_blocks(_forward_block, transform=tf_name, var_name=name, units=units,
                                dtype=np.float32)

        x = canonical(da, str(da.name), tf.name, str(da.attrs.get("units", "")))
        ever = dsa.isfinite(x).any(axis=0)
        user = None
        if mask is not None and not (isinstance(mask, str) and mask == "auto"):
            # (mask="auto" adds sea that was never observed: nothing to train on there)
            user = _user_mask(mask, da, axes).reshape(ever.shape)
            user = user[::-1] if flips[0] else user
            user = user[:, ::-1] if flips[1] else user
        covs = []
        for c in covariates or []:
            c = decode_input(c)
            require_same_grid(c, da, f"covariate {c.name!r}")
            ctf = choose_transform(c, np.empty(0), "auto")
            covs.append(canonical(c, str(c.name), ctf.name, str(c.attrs.get("units", ""))))
        # two passes over the archive for what needs the whole record: the sea, then the
        # moments on it (in one pass, dask would keep every block read for the sea until the
        # moments reach it: memory growing with the archive)
        sea = np.asarray((ever if user is None else ever & user).compute(), bool)
        if not sea.any():
            raise GenfillError(f"{da.name!r} is entirely NaN over the sea: nothing to learn")
        on_sea = dsa.where(sea[None], x, np.nan)
        stats = [dsa.nanmean(on_sea), dsa.nanstd(on_sea)]
        for c in covs:
            stats += [dsa.nanmean(c), dsa.nanstd(c)]
        with np.errstate(invalid="ignore"):
            moments = dask.compute(*stats)
        moments = [float(m) for m in moments]

        def std(s: float) -> float:
            return s if np.isfinite(s) and s > 0 else 1.0

        self.field = _Lazy(on_sea, moments[0], std(moments[1]))
        # the normalisation, (1,) each, as Prepared holds it
        self.mean, self.std = np.array([self.field.mean]), np.array([self.field.std])
        self.covs = [_Lazy(c, moments[2 + 2 * i], std(moments[3 + 2 * i]))
                     for i, c in enumerate(covs)]
        self.ocean = sea
        self.doy, _ = time_axis_info(da, axes)
        nt, ny, nx = x.shape
        self.shape = (nt, ny, nx)
        self.block_shape = (min(block[0], nt), min(block[1], ny), min(block[2], nx))
        bt = self.block_shape[0]
        # the last block of the record is kept for validation when the record holds two
        self.val_start = nt - bt if nt >= 2 * bt else None
        self.rng = np.random.default_rng(seed)

    def block(self, validation: bool = False) -> Cube:
        """One block read from the archive, as a normalised float32 cube.

        Parameters
        ----------
        validation : bool, default False
            The block of the held-out stretch at the end of the record instead of a random
            training block (training blocks never overlap it).

        Returns
        -------
        xgenfill.models.base.Cube
            Values (T, Y, X) standardised, the sea of the block, day of year, covariates
            (C, T, Y, X) and the absolute index of its first step.

        Raises
        ------
        GenfillError
            For ``validation=True`` when the record is shorter than two blocks.

        See Also
        --------
        xgenfill.models.training.train_model : Draws its crops from these blocks.

        Examples
        --------
        >>> import xgenfill
        >>> from xgenfill.streaming import ArchiveSampler
        >>> s = ArchiveSampler(xgenfill.open_sample("phytofit").chl.chunk({"time": 30}),
        ...                    block=(30, 48, 64))
        >>> s.block(validation=True).t_offset == s.val_start
        True
        """
        nt, ny, nx = self.shape
        bt, by, bx = self.block_shape
        if validation:
            if self.val_start is None:
                raise GenfillError("the record is shorter than two blocks: no validation block")
            t0 = self.val_start
        else:
            last = (self.val_start if self.val_start is not None else nt) - bt
            t0 = int(self.rng.integers(0, last + 1))
        for _attempt in range(50):  # a block with some sea
            y0 = int(self.rng.integers(0, ny - by + 1))
            x0 = int(self.rng.integers(0, nx - bx + 1))
            if self.ocean[y0:y0 + by, x0:x0 + bx].mean() > 0.05:
                break
        window = (slice(t0, t0 + bt), slice(y0, y0 + by), slice(x0, x0 + bx))
        import dask

        arrays = dask.compute(self.field.t[window], *[c.t[window] for c in self.covs])
        values = ((arrays[0] - self.field.mean) / self.field.std).astype(np.float32)
        cov = None
        if self.covs:
            cov = np.stack([((a - c.mean) / c.std).astype(np.float32)
                            for a, c in zip(arrays[1:], self.covs)])
        return Cube(values=values, ocean=self.ocean[window[1:]].copy(),
                    doy=None if self.doy is None else self.doy[window[0]],
                    covariates=cov, t_offset=t0)
