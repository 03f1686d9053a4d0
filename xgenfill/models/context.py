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

__all__ = ["FieldTensors", "Crops", "context_channels", "n_context_channels", "spatial_guides",
           "first_guess", "time_guides", "CLIM_HALF", "GUIDE_SIGMAS", "GUIDE_RADIUS", "N_GUIDES",
           "FIRST_GUESS_SIGMAS", "FIRST_GUESS_RADIUS"]

CLIM_HALF = 15  # half-width (in steps) of the local climatology window
GUIDE_SIGMAS = (2.0, 6.0, 18.0)  # pixels: the scales of the spatial guides
GUIDE_TRUNCATE = 2.5  # Gaussian kernels are cut at this many sigmas
GUIDE_RADIUS = math.ceil(GUIDE_TRUNCATE * max(GUIDE_SIGMAS))  # how far a spatial guide looks
N_TIME_GUIDES = 4
N_GUIDES = N_TIME_GUIDES + 2 * len(GUIDE_SIGMAS)
# the anomaly fill's scales (as baselines.AnomalyInterp): a step's departure from its
# neighbouring dates is smooth over much larger scales than the field itself
FIRST_GUESS_SIGMAS = (3.0, 9.0, 27.0, 81.0)
FIRST_GUESS_RADIUS = math.ceil(GUIDE_TRUNCATE * max(FIRST_GUESS_SIGMAS))


def n_context_channels(window: int, n_covariates: int = 0, guides: bool = False,
                       first_guess: bool = False) -> int:
    return (5 + 4 * window + 2 * n_covariates + (N_GUIDES if guides else 0)
            + (1 if first_guess else 0))


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


class Crops:
    """Where context is read from a (T, Y, X) field: the same slices of it for every step
    (``ys``, ``xs``: inference on a tile), or one ``h`` x ``w`` crop per step with top-left
    corners ``y0``, ``x0`` (B,) (training batches: one gather instead of a loop)."""

    def __init__(self, ys: slice = slice(None), xs: slice = slice(None),
                 y0: torch.Tensor | None = None, x0: torch.Tensor | None = None,
                 h: int = 0, w: int = 0) -> None:
        self.ys, self.xs = ys, xs
        self.yy = self.xx = None
        if y0 is not None and x0 is not None:
            dev = y0.device
            self.yy = y0[:, None, None] + torch.arange(h, device=dev)[None, :, None]
            self.xx = x0[:, None, None] + torch.arange(w, device=dev)[None, None, :]

    def space(self, a: torch.Tensor) -> torch.Tensor:
        """(Y, X) -> (1 or B, h, w)."""
        return a[self.ys, self.xs][None] if self.yy is None else a[self.yy, self.xx]

    def steps(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(..., T, Y, X) at the steps t (B,) -> (..., B, h, w)."""
        if self.yy is None:  # slice space first (a view), then gather: never copies the field
            return a[..., self.ys, self.xs][..., t, :, :]
        return a[..., t[:, None, None], self.yy, self.xx]

    def pixels(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(T, Y, X) at a step per pixel, t (B, h, w) -> (B, h, w)."""
        if self.yy is None:
            return torch.gather(a[:, self.ys, self.xs], 0, t)
        return a[t, self.yy, self.xx]


def time_guides(f: FieldTensors, ts: torch.Tensor, where: Crops) -> torch.Tensor:
    """Linear interpolation in time between each pixel's nearest observations before and after
    the steps ``ts`` (within CLIM_HALF steps; the step itself is left out) and the two
    distances (1 = CLIM_HALF steps; 2 = none): (B, 4, h, w)."""
    nt = f.vals.shape[0]
    last, nxt = f.last_next()
    t = ts[:, None, None].to(torch.int32)
    before = where.steps(last, (ts - 1).clamp(0, nt - 1))
    after = where.steps(nxt, (ts + 1).clamp(0, nt - 1))
    a, b = (t - before).float(), (after - t).float()
    ok_a = (ts[:, None, None] >= 1) & (before >= 0) & (a <= CLIM_HALF)
    ok_b = (ts[:, None, None] < nt - 1) & (after < nt) & (b <= CLIM_HALF)
    v_a = where.pixels(f.vals, before.clamp(0, nt - 1).long()) * ok_a
    v_b = where.pixels(f.vals, after.clamp(0, nt - 1).long()) * ok_b
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
                   periodic_x: bool = False, margin: int = 0,
                   sigmas: tuple[float, ...] = GUIDE_SIGMAS) -> torch.Tensor:
    """Normalised Gaussian convolution of the visible pixels (B, h, w) at each scale of
    ``sigmas``: the estimate (0 where no visible pixel is near) and its weight,
    (B, 2 * scales, h, w). Pixels outside the array count as unobserved; longitudes wrap when
    ``periodic_x``. Nothing reaches further than ``GUIDE_TRUNCATE * max(sigmas)``
    (``GUIDE_RADIUS`` for the guides' scales).

    ``margin`` (at least that reach): the input is a crop widened by this many pixels on each
    side, and only the guides of the inner crop are wanted, (B, 2 * scales, h - 2 margin,
    w - 2 margin); each scale then reads just the pixels it reaches (training batches)."""
    import torch.nn.functional as F

    from ..tiling import wrap_x

    reach = math.ceil(GUIDE_TRUNCATE * max(sigmas))
    if margin and (margin < reach or periodic_x):
        raise ValueError(f"margin must be >= {reach} and without periodic_x")
    m = visible.float()
    both = torch.stack([y_vis * m, m], 1)  # numerator and weight, blurred together
    out = []
    for sigma in sigmas:
        k = _gauss_kernel(sigma, y_vis.device)
        r = (k.numel() - 1) // 2
        if margin:
            c = margin - r
            h = both[..., c:both.shape[-2] - c, c:both.shape[-1] - c]
            h = _blur_padded(_blur_padded(h, k, -1), k, -2)
        else:
            h = wrap_x(both, r, r) if periodic_x else F.pad(both, (r, r))
            h = _blur_padded(F.pad(_blur_padded(h, k, -1), (0, 0, r, r)), k, -2)
        num, den = h[:, 0], h[:, 1]
        est = torch.where(den > 1e-3, num / den.clamp_min(1e-3), torch.zeros_like(num))
        out += [est, den]
    return torch.stack(out, 1)


def first_guess(f: FieldTensors, ts: torch.Tensor, where: Crops, visible: torch.Tensor,
                periodic_x: bool = False, margin: int = 0,
                inside: torch.Tensor | None = None) -> torch.Tensor:
    """The anomaly fill of the steps ``ts`` from their visible pixels (B, h, w) over ``where``
    (see :class:`xgenfill.models.baselines.AnomalyInterp`): each pixel's interpolation in time
    (the step itself left out) plus the visible pixels' departure from theirs, smoothed at
    ``FIRST_GUESS_SIGMAS``, finest first; 0 (the normalised mean) where no other step is
    near in time. Outside the array counts as unobserved. (B, h', w'), ``margin`` as in
    :func:`spatial_guides`.

    ``inside`` (1 or B, h, w; models with ``first_guess=2``): the pixels inside the array. A
    scale is then trusted by the share of its kernel *inside the array* that holds
    observations, as the anomaly fill's mirrored edges do, instead of the share of the whole
    kernel: near an edge the fine scales were distrusted for want of pixels beyond it (on a
    17 x 21 field every pixel is near one; the size-class benchmark's first guess: 0.0152
    mean fraction RMSE, 0.0135 with it, the anomaly fill 0.0134)."""
    tg = time_guides(f, ts, where)
    interp, known = tg[:, 0], tg[:, 1] > 0
    vis = visible & known
    departure = (where.steps(f.vals, ts) - interp) * vis
    g = spatial_guides(departure, vis, periodic_x=periodic_x, margin=margin,
                       sigmas=FIRST_GUESS_SIGMAS)
    mass = None
    if inside is not None:
        mass = spatial_guides(inside.float(), inside, periodic_x=periodic_x, margin=margin,
                              sigmas=FIRST_GUESS_SIGMAS)[:, 1::2].clamp_min(1e-6)
    est = torch.zeros_like(g[:, 0])
    taken = torch.zeros_like(est)
    for k in range(len(FIRST_GUESS_SIGMAS)):
        # a scale is trusted fully once a quarter of its kernel holds observations
        share = g[:, 2 * k + 1] if mass is None else g[:, 2 * k + 1] / mass[:, k]
        w = (4.0 * share).clamp(0.0, 1.0) * (1.0 - taken)
        est, taken = est + w * g[:, 2 * k], taken + w
    if margin:
        interp = interp[:, margin:-margin, margin:-margin]
        known = known[:, margin:-margin, margin:-margin]
    return torch.where(known, interp + est, torch.zeros_like(est))


def context_channels(f: FieldTensors, ts: torch.Tensor, window: int,
                     ys: slice = slice(None), xs: slice = slice(None),
                     space: torch.Tensor | None = None, crops: Crops | None = None
                     ) -> torch.Tensor:
    """Context for the steps ``ts`` (B,) over the crop (ys, xs), or over one crop per step
    (``crops``): (B, C, h, w).

    ``space``: the spatial guides of the steps' visible pixels (see :func:`spatial_guides`);
    given, the time guides are added too (models with ``guides=True``). They are computed by
    the caller, who knows which pixels are visible (training hides some).
    """
    where = crops if crops is not None else Crops(ys, xs)
    nt = f.vals.shape[0]
    b = ts.shape[0]
    ocean = where.space(f.ocean).float()
    h, w = ocean.shape[-2:]
    lo = (ts - CLIM_HALF).clamp(0, nt)
    hi = (ts + CLIM_HALF + 1).clamp(0, nt)
    own_v = where.steps(f.vals, ts)
    own_n = where.steps(f.obs, ts).float()
    s = where.steps(f.csum, hi) - where.steps(f.csum, lo) - own_v  # leave the step itself out
    n = where.steps(f.ccount, hi) - where.steps(f.ccount, lo) - own_n
    clim = torch.where(n > 0, s / n.clamp_min(1.0), torch.zeros_like(s))
    chans = [ocean[:, None].expand(b, 1, h, w),
             f.doy[ts][:, :, None, None].expand(b, 2, h, w),
             clim[:, None], (n / (2 * CLIM_HALF))[:, None]]
    for d in [o for o in range(-window, window + 1) if o != 0]:
        tt = ts + d
        ok = ((tt >= 0) & (tt < nt)).float()[:, None, None, None]
        tc = tt.clamp(0, nt - 1)
        chans.append(where.steps(f.vals, tc)[:, None] * ok)
        chans.append(where.steps(f.obs, tc)[:, None].float() * ok)
    if f.cov is not None:
        cvals, cobs = f.cov  # (C, T, Y, X)
        chans.append(where.steps(cvals, ts).permute(1, 0, 2, 3))
        chans.append(where.steps(cobs, ts).permute(1, 0, 2, 3).float())
    if space is not None:
        chans += [time_guides(f, ts, where), space]
    return torch.cat(chans, dim=1)
