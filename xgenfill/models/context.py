"""Conditioning inputs shared by the neural models.

For a time step t the network sees: the ocean mask, the day of year (sin, cos), a local
climatology (the mean of the observations within ``CLIM_HALF`` steps of t, t itself excluded, and
how many there were), and for each neighbouring step t+d (|d| <= window) its values (0 where
missing) and its observation mask. The step itself (values, mask, noise level) is added by each
model.
"""

from __future__ import annotations

import math

import torch

__all__ = ["FieldTensors", "context_channels", "n_context_channels", "CLIM_HALF"]

CLIM_HALF = 15  # half-width (in steps) of the local climatology window


def n_context_channels(window: int, n_covariates: int = 0) -> int:
    return 5 + 4 * window + 2 * n_covariates


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
        self.cov = None
        if covariates is not None:
            c = torch.as_tensor(covariates, dtype=torch.float32)  # (C, T, Y, X)
            self.cov = (torch.nan_to_num(c, nan=0.0).to(device), torch.isfinite(c).to(device))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.vals.shape)  # type: ignore[return-value]


def context_channels(f: FieldTensors, ts: torch.Tensor, window: int,
                     ys: slice = slice(None), xs: slice = slice(None),
                     hide: torch.Tensor | None = None) -> torch.Tensor:
    """Context for the steps ``ts`` (B,) over the crop (ys, xs): (B, C, h, w).

    ``hide`` (B, T?, h, w) is not used here; neighbours are always seen as observed.
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
    return torch.cat(chans, dim=1)
