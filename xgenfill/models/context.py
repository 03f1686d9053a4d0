"""Conditioning inputs shared by the neural models.

For a time step t the network sees: the ocean mask, the day of year (sin, cos), a local
climatology (the mean of the observations within ``CLIM_HALF`` steps of t, t itself excluded, and
how many there were), and for each neighbouring step t+d (|d| <= window) its values (0 where
missing) and its observation mask. The step itself (values, mask, noise level) is added by each
model.

Models built with ``guides=True`` also get first guesses that the classical methods would make,
because a small network learns them slowly from few data and they are what beats it on real
cases (linear interpolation in time on case A/C, in space on case B):

* in time: each pixel's linear interpolation between its last observation before t and its
  next one after t (each at most ``CLIM_HALF`` steps away), and the two distances;
* in space: normalised Gaussian convolutions of the visible pixels of t itself at a few scales
  (a smooth spatial interpolation reaching well beyond a cloud's edge), with their weights.
"""

from __future__ import annotations

import math

import torch

__all__ = ["FieldTensors", "context_channels", "n_context_channels", "spatial_guides",
           "CLIM_HALF", "GUIDE_SIGMAS", "GUIDE_RADIUS", "N_GUIDES"]

CLIM_HALF = 15  # half-width (in steps) of the local climatology window
GUIDE_SIGMAS = (2.0, 6.0, 18.0)  # pixels: the scales of the spatial guides
GUIDE_TRUNCATE = 2.5  # Gaussian kernels are cut at this many sigmas
GUIDE_RADIUS = math.ceil(GUIDE_TRUNCATE * max(GUIDE_SIGMAS))  # how far a spatial guide looks
N_TIME_GUIDES = 4
N_GUIDES = N_TIME_GUIDES + 2 * len(GUIDE_SIGMAS)


def n_context_channels(window: int, n_covariates: int = 0, guides: bool = False) -> int:
    return 5 + 4 * window + 2 * n_covariates + (N_GUIDES if guides else 0)


class FieldTensors:
    """One normalised field on a device: values with 0 at missing pixels, masks, day of year."""

    def __init__(self, values, ocean, doy=None, covariates=None, device="cpu") -> None:
        v = torch.as_tensor(values, dtype=torch.float32)
        self.obs = torch.isfinite(v).to(device)
        self.vals = torch.nan_to_num(v, nan=0.0).to(device)
        self.ocean = torch.as_tensor(ocean, dtype=torch.bool).to(device)
        self.obs &= self.ocean[None]
        self.vals = self.vals * self.obs
        nt = v.shape[0]
        d = torch.as_tensor(doy if doy is not None else [math.nan] * nt, dtype=torch.float32)
        ang = 2 * math.pi * d / 365.25
        self.doy = torch.stack([torch.sin(ang), torch.cos(ang)], 1).nan_to_num(0.0).to(device)
        # cumulative sums along time give windowed means in O(1) per step
        zero = torch.zeros((1,) + tuple(self.vals.shape[1:]), device=self.vals.device)
        self.csum = torch.cat([zero, self.vals.cumsum(0)])
        self.ccount = torch.cat([zero, self.obs.float().cumsum(0)])
        self._last_next = None
        self.cov = None
        if covariates is not None:
            c = torch.as_tensor(covariates, dtype=torch.float32)  # (C, T, Y, X)
            self.cov = (torch.nan_to_num(c, nan=0.0).to(device), torch.isfinite(c).to(device))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.vals.shape)  # type: ignore[return-value]

    def last_next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per pixel, the index of the last observed step <= t and of the first one >= t
        (-1 and T where there is none), (T, Y, X) each; computed once, on first use."""
        if self._last_next is None:
            nt = self.obs.shape[0]
            idx = torch.arange(nt, device=self.obs.device, dtype=torch.int32)[:, None, None]
            last = torch.where(self.obs, idx, torch.full_like(idx, -1)).cummax(0).values
            nxt = torch.where(self.obs, idx, torch.full_like(idx, nt)).flip(0).cummin(0).values
            self._last_next = (last, nxt.flip(0))
        return self._last_next


def _time_guides(f: FieldTensors, ts: torch.Tensor, ys: slice, xs: slice) -> torch.Tensor:
    """Linear interpolation in time between each pixel's nearest observations before and after
    the steps ``ts`` (within CLIM_HALF steps; the step itself is left out) and the two
    distances (1 = CLIM_HALF steps; 2 = none): (B, 4, h, w)."""
    nt = f.vals.shape[0]
    last, nxt = (a[:, ys, xs] for a in f.last_next())
    vals = f.vals[:, ys, xs]
    t = ts[:, None, None].to(torch.int32)
    before = last[(ts - 1).clamp(0, nt - 1)]
    after = nxt[(ts + 1).clamp(0, nt - 1)]
    a, b = (t - before).float(), (after - t).float()
    ok_a = (ts[:, None, None] >= 1) & (before >= 0) & (a <= CLIM_HALF)
    ok_b = (ts[:, None, None] < nt - 1) & (after < nt) & (b <= CLIM_HALF)
    v_a = torch.gather(vals, 0, before.clamp(0, nt - 1).long()) * ok_a
    v_b = torch.gather(vals, 0, after.clamp(0, nt - 1).long()) * ok_b
    wa, wb = torch.where(ok_a, 1 / a.clamp_min(1), 0.0), torch.where(ok_b, 1 / b.clamp_min(1), 0.0)
    interp = (wa * v_a + wb * v_b) / (wa + wb).clamp_min(1e-6)  # weight = inverse distance
    age_a = torch.where(ok_a, a / CLIM_HALF, 2.0)
    age_b = torch.where(ok_b, b / CLIM_HALF, 2.0)
    return torch.stack([interp, (ok_a | ok_b).float(), age_a, age_b], 1)


def _gauss_kernel(sigma: float, device) -> torch.Tensor:
    r = math.ceil(GUIDE_TRUNCATE * sigma)
    x = torch.arange(-r, r + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur_padded(xp: torch.Tensor, k: torch.Tensor, dim: int, block: int = 256) -> torch.Tensor:
    """1-D convolution with the symmetric kernel ``k`` along ``dim`` (-1 or -2) of an input
    already padded by r = len(k) // 2 on both sides, as banded matrix products over blocks of
    ``block`` outputs: an order of magnitude faster on CPU than a 1-channel convolution with a
    long kernel, and memory bounded whatever the field's size."""
    r = (k.numel() - 1) // 2
    n = xp.shape[dim] - 2 * r
    b = min(n, block)
    d = torch.arange(b + 2 * r, device=xp.device)[:, None] - torch.arange(b, device=xp.device)
    band = torch.where((d >= 0) & (d <= 2 * r), k[d.clamp(0, 2 * r)], torch.zeros(()).to(k))
    out = []
    for s in range(0, n, b):
        e = min(s + b, n)
        seg = xp.narrow(dim, s, e - s + 2 * r)
        m = band[:seg.shape[dim], :e - s]
        out.append(seg @ m if dim == -1 else m.T @ seg)
    return torch.cat(out, dim)


def spatial_guides(y_vis: torch.Tensor, visible: torch.Tensor,
                   periodic_x: bool = False) -> torch.Tensor:
    """Normalised Gaussian convolution of the visible pixels (B, h, w) at each scale of
    ``GUIDE_SIGMAS``: the estimate (0 where no visible pixel is near) and its weight,
    (B, 2 * scales, h, w). Pixels outside the array count as unobserved; longitudes wrap when
    ``periodic_x``. Nothing reaches further than ``GUIDE_RADIUS``."""
    import torch.nn.functional as F

    from ..tiling import wrap_x

    m = visible.float()
    both = torch.stack([y_vis * m, m], 1)  # numerator and weight, blurred together
    out = []
    for sigma in GUIDE_SIGMAS:
        k = _gauss_kernel(sigma, y_vis.device)
        r = (k.numel() - 1) // 2
        h = wrap_x(both, r, r) if periodic_x else F.pad(both, (r, r))
        h = _blur_padded(F.pad(_blur_padded(h, k, -1), (0, 0, r, r)), k, -2)
        num, den = h[:, 0], h[:, 1]
        est = torch.where(den > 1e-3, num / den.clamp_min(1e-3), torch.zeros_like(num))
        out += [est, den]
    return torch.stack(out, 1)


def context_channels(f: FieldTensors, ts: torch.Tensor, window: int,
                     ys: slice = slice(None), xs: slice = slice(None),
                     space: torch.Tensor | None = None) -> torch.Tensor:
    """Context for the steps ``ts`` (B,) over the crop (ys, xs): (B, C, h, w).

    ``space``: the spatial guides of the steps' visible pixels (see :func:`spatial_guides`);
    given, the time guides are added too (models with ``guides=True``). They are computed by
    the caller, who knows which pixels are visible (training hides some).
    """
    nt = f.vals.shape[0]
    ocean = f.ocean[ys, xs].float()
    b = ts.shape[0]
    h, w = ocean.shape
    lo = (ts - CLIM_HALF).clamp(0, nt)
    hi = (ts + CLIM_HALF + 1).clamp(0, nt)
    # slice space first (views), then gather the steps: never copies the whole field
    vals, obs = f.vals[:, ys, xs], f.obs[:, ys, xs]
    csum, ccount = f.csum[:, ys, xs], f.ccount[:, ys, xs]
    own_v = vals[ts]
    own_n = obs[ts].float()
    s = csum[hi] - csum[lo] - own_v  # leave the step itself out
    n = ccount[hi] - ccount[lo] - own_n
    clim = torch.where(n > 0, s / n.clamp_min(1.0), torch.zeros_like(s))
    chans = [ocean.expand(b, 1, h, w),
             f.doy[ts][:, :, None, None].expand(b, 2, h, w),
             clim[:, None], (n / (2 * CLIM_HALF))[:, None]]
    for d in [o for o in range(-window, window + 1) if o != 0]:
        tt = ts + d
        ok = ((tt >= 0) & (tt < nt)).float()[:, None, None, None]
        tc = tt.clamp(0, nt - 1)
        chans.append(vals[tc][:, None] * ok)
        chans.append(obs[tc][:, None].float() * ok)
    if f.cov is not None:
        cvals, cobs = f.cov
        chans.append(cvals[:, :, ys, xs][:, ts].permute(1, 0, 2, 3))
        chans.append(cobs[:, :, ys, xs][:, ts].permute(1, 0, 2, 3).float())
    if space is not None:
        chans += [_time_guides(f, ts, ys, xs), space]
    return torch.cat(chans, dim=1)
