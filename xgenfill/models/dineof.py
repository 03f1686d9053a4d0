"""DINEOF (Beckers & Rixen 2003; Alvera-Azcarate et al. 2005), written in torch.

Iterative truncated SVD of the (space x time) anomaly matrix: missing values start at 0 (the
mean), are replaced by the rank-k reconstruction until they stop changing, for k = 1, 2, ...;
the number of modes is the one with the smallest error on DINEOF-style clustered
cross-validation clouds, and the final field is recomputed with those points put back.

Written from the published method, not from the GPL Fortran code. Runs on CPU or GPU.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from ..device import resolve_device
from ..errors import GenfillError
from ..masks import cluster_clouds, coverage, dineof_cv_count
from .base import Cube, Fill, Filler

__all__ = ["DINEOF", "dineof_guide"]


class DINEOF(Filler):
    """Data Interpolating Empirical Orthogonal Functions.

    Parameters
    ----------
    nev
        Largest number of EOF modes tried (default ``min(30, n_time - 1)``).
    cloud_size
        Size in pixels of each cross-validation cloud (DINEOF's ``cloud_size``).
    n_cv
        Number of cross-validation points (default DINEOF's ``min(0.01 MN + 40, 0.03 MN)``).
    cv_mask
        Optional (T, Y, X) boolean array of user-chosen cross-validation points.
    tol, max_iter
        Convergence of the inner iteration: relative RMS change of the filled values.
    alpha, numit
        Temporal filter: ``numit`` explicit Laplacian-diffusion steps of strength ``alpha``
        applied to the temporal modes (``alpha=0`` disables it). The default (0.1, 3) lowered
        the held-out RMSE on all three benchmark cases (PhytoFit 0.228 -> 0.191 log10, Oahu
        0.176 -> 0.157, Alboran 0.82 -> 0.59 degC).
    min_coverage
        Time steps with less than this fraction of the ocean observed are left out of the SVD
        (DINEOF's FAQ: such images carry no useful information); their temporal mode amplitudes
        are interpolated in time from the other steps.
    patience
        Stop trying more modes once the CV error has not improved for this many modes.
    device, dtype
        Torch device (``"auto"``: GPU when present) and precision.
    seed
        Seed for the cross-validation clouds.
    """

    name = "dineof"
    needs_time = True

    def __init__(self, nev: int | None = None, cloud_size: int = 500, n_cv: int | None = None,
                 cv_mask: np.ndarray | None = None, tol: float = 1e-2, max_iter: int = 300,
                 alpha: float = 0.1, numit: int = 3, min_coverage: float = 0.05,
                 patience: int = 3, device: str = "auto", dtype: str = "float32",
                 seed: int = 243435) -> None:
        if nev is not None and nev < 1:
            raise GenfillError(f"nev must be >= 1, got {nev}")
        if not 0 <= alpha <= 0.5:
            raise GenfillError(f"alpha must lie in [0, 0.5] for a stable filter, got {alpha}")
        self.nev, self.cloud_size, self.n_cv, self.cv_mask = nev, cloud_size, n_cv, cv_mask
        self.tol, self.max_iter, self.alpha, self.numit = tol, max_iter, alpha, numit
        self.min_coverage, self.patience = min_coverage, patience
        self.device, self.dtype, self.seed = device, dtype, seed

    def describe(self) -> str:
        return f"dineof(nev={self.nev}, cloud_size={self.cloud_size}, alpha={self.alpha})"

    # -- linear algebra ---------------------------------------------------------------------
    @staticmethod
    def _topk(x, k: int, v0):
        """Leading k singular triplets of x (N, T), warm-started from the subspace v0."""
        import torch

        n_t = x.shape[1]
        kk = min(k + 6, n_t)
        if kk >= n_t or 4 * kk >= n_t:
            # Few time steps: the exact eigendecomposition of the T x T Gram matrix is cheap.
            evals, evecs = torch.linalg.eigh(x.T @ x)
            v = evecs[:, -k:].flip(1)
            return x @ v, v, evecs.flip(1)
        if v0 is None or v0.shape[1] < kk:
            g = torch.Generator(device="cpu").manual_seed(0)
            v0 = torch.randn(n_t, kk, generator=g, dtype=x.dtype).to(x.device)
        q, _ = torch.linalg.qr(x.T @ (x @ v0[:, :kk]))  # one subspace (power) iteration
        y = x @ q
        _, _, vbt = torch.linalg.svd(y, full_matrices=False)  # Rayleigh-Ritz in the subspace
        v = q @ vbt.T
        return x @ v[:, :k], v[:, :k], v

    def _filter(self, v):
        """Temporal Laplacian diffusion of the temporal modes (Neumann ends)."""
        import torch

        if self.alpha <= 0 or v.shape[0] < 3:
            return v
        for _ in range(self.numit):
            lap = torch.zeros_like(v)
            lap[1:-1] = v[:-2] - 2 * v[1:-1] + v[2:]
            lap[0] = v[1] - v[0]
            lap[-1] = v[-2] - v[-1]
            v = v + self.alpha * lap
        return v

    def _iterate(self, x, missing, k: int, v0):
        """Fill ``missing`` entries of x in place with the rank-k reconstruction until stable."""
        import torch

        n_miss = max(int(missing.sum()), 1)
        it = 0
        for it in range(1, self.max_iter + 1):
            us, v, v0 = self._topk(x, k, v0)
            recon = us @ self._filter(v).T
            new = recon[missing]
            old = x[missing]
            change = torch.sqrt(((new - old) ** 2).sum() / n_miss)
            scale = torch.sqrt((new**2).sum() / n_miss).clamp_min(1e-12)
            x[missing] = new
            if float(change / scale) < self.tol:
                break
        return recon, us, v, v0, it

    # -- public -------------------------------------------------------------------------------
    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        import torch

        if n_samples != 1:
            raise GenfillError("DINEOF is deterministic: n_samples must be 1 (use "
                               "model='diffusion' or 'vae' for ensembles)")
        t0 = time.perf_counter()
        nt, ny, nx = cube.values.shape
        if nt < 3:
            raise GenfillError(f"DINEOF needs at least 3 time steps, got {nt}")
        dev = resolve_device(self.device)
        dtype = torch.float64 if self.dtype == "float64" else torch.float32

        obs = cube.observed & cube.ocean[None]
        cover = coverage(obs, cube.ocean)
        used = cover >= self.min_coverage
        if used.sum() < 3:
            used = cover > 0
        if used.sum() < 3:
            raise GenfillError("DINEOF needs at least 3 time steps with observations")
        sea = cube.ocean.ravel()
        n_sea = int(sea.sum())
        used_idx = np.flatnonzero(used)

        # Cross-validation points: DINEOF-style clouds over the used steps.
        if self.cv_mask is not None:
            cv = np.asarray(self.cv_mask, dtype=bool) & obs
        else:
            n_cv = self.n_cv or dineof_cv_count(n_sea * len(used_idx))
            cv = np.zeros_like(obs)
            cv[used_idx] = cluster_clouds(obs[used_idx], n_cv, self.cloud_size,
                                          np.random.default_rng(self.seed))
        if not cv.any():
            raise GenfillError("no cross-validation points could be chosen")

        def matrix(a: np.ndarray) -> np.ndarray:  # (T, Y, X) -> (sea, used T)
            return a[used_idx].reshape(len(used_idx), -1)[:, sea].T

        data = np.nan_to_num(matrix(cube.values), nan=0.0)
        x_full = torch.as_tensor(data, dtype=dtype, device=dev)
        obs_m = torch.as_tensor(matrix(obs), device=dev)
        cv_m = torch.as_tensor(matrix(cv), device=dev)

        nev = self.nev or min(30, len(used_idx) - 1)
        nev = max(1, min(nev, len(used_idx) - 1))
        x = torch.where(obs_m & ~cv_m, x_full, torch.zeros_like(x_full))
        missing = ~(obs_m & ~cv_m)
        truth = x_full[cv_m]
        curve: list[float] = []
        best = (np.inf, 0, None)
        v0 = None
        iters = 0
        for k in range(1, nev + 1):
            recon, _, _, v0, it = self._iterate(x, missing, k, v0)
            iters += it
            err = float(torch.sqrt(((recon[cv_m] - truth) ** 2).mean()))
            curve.append(err)
            if err < best[0]:
                best = (err, k, x.clone())
            elif k - best[1] >= self.patience:
                break
        cv_rmse, k_best, x_best = best
        # Final reconstruction: cross-validation points put back, best number of modes.
        x = torch.where(obs_m, x_full, x_best)
        recon, us, v, _, it = self._iterate(x, ~obs_m, k_best, None)
        iters += it

        # Temporal amplitudes of the steps left out of the SVD are interpolated in time.
        v = self._filter(v).cpu().numpy()
        t_axis = cube.time_index if cube.time_index is not None else np.arange(nt, dtype=float)
        v_all = np.stack([np.interp(t_axis, t_axis[used_idx], v[:, j]) for j in range(k_best)],
                         axis=1)
        out_sea = us.cpu().numpy().astype(np.float64) @ v_all.T  # (sea, T)
        out = np.full((nt, ny * nx), np.nan, dtype=np.float32)
        out[:, sea] = out_sea.T
        out = out.reshape(nt, ny, nx)
        std = np.where(cube.gaps, np.float32(cv_rmse), np.float32(0.0))
        std[:, ~cube.ocean] = np.nan
        info: dict[str, Any] = {
            "n_modes": k_best, "cv_rmse": cv_rmse, "cv_curve": curve,
            "n_cv_points": int(cv.sum()), "n_steps_used": int(len(used_idx)),
            "iterations": iters, "seconds": time.perf_counter() - t0, "device": str(dev),
            "cv_mask": cv,
        }
        return Fill(samples=out[None], std=std, info=info)


def dineof_guide(cube: Cube, folds: int = 5, block: int | None = None, seed: int = 0
                 ) -> np.ndarray:
    """DINEOF's reconstruction of ``cube`` as an input of a network (``dineof_guide=True``):
    (T, Y, X), in the cube's units, NaN off the ocean.

    Where a value is missing it is DINEOF of everything observed. At an observed pixel it is
    DINEOF's value with that pixel hidden: the observed pixels are split into ``folds`` folds of
    ``block`` x ``block`` squares drawn at random on every date (default: a twelfth of the
    shorter side, 4 to 64 pixels), and DINEOF is run again with each fold hidden. So the network
    sees, next to a gap, how far DINEOF is from the observations, as it would be in the gap;
    and a pixel hidden in training never sees its own value through this input. Deterministic.

    Examples
    --------
    >>> import numpy as np
    >>> from xgenfill.models.base import Cube
    >>> t, y, x = np.meshgrid(np.arange(24), np.arange(12), np.arange(12), indexing="ij")
    >>> v = np.sin(2 * np.pi * t / 12) * np.cos(y / 5.0) + 0.1 * x / 12
    >>> v[3:6, 2:6, 2:6] = np.nan
    >>> g = dineof_guide(Cube(v.astype("float32"), np.ones((12, 12), bool)))
    >>> g.shape, bool(np.isfinite(g).all())
    ((24, 12, 12), True)
    """
    nt, ny, nx = cube.values.shape
    block = block or int(np.clip(min(ny, nx) // 12, 4, 64))
    base = replace(cube, covariates=None, steps=None)  # every gap of every step
    model = DINEOF()
    obs = base.observed & base.ocean[None]
    out = model.fill(base).best()  # NaN at observed pixels: filled below, fold by fold
    fold = np.random.default_rng(seed).integers(0, folds, (nt, -(-ny // block), -(-nx // block)))
    fold = np.repeat(np.repeat(fold, block, 1), block, 2)[:, :ny, :nx]
    for k in range(folds):
        part = obs & (fold == k)
        if part.any():
            hidden = replace(base, values=np.where(part, np.nan, base.values))
            out[part] = model.fill(hidden).best()[part]
    return np.where(base.ocean[None], out, np.nan).astype(np.float32)
