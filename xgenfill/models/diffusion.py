"""Conditional diffusion gap filler trained on gappy observations only.

Denoiser in the EDM parametrisation (Karras et al. 2022) with a per-pixel noise level, as in
DINDiff (Barth et al. 2024) and TD-Paint: observed pixels enter clean (noise level 0), gap
pixels carry noise. Training hides observed pixels under transplanted real clouds and computes
the loss only there; pixels that were never observed carry pure noise and no loss (no
pre-filled targets: MissDiff shows that is biased). Sampling: DPM-Solver++(2M) (default; one
network call per step: 6 steps give the same case-A scores as 11-call Heun, and 3 steps stay
close), Heun's 2nd-order ODE solver (``sampler="heun"``, 2*steps-1 calls), or
``sampler="repaint"``: a RePaint-style
resampling schedule (jumps back up the noise ladder, ``n_resample`` times every ``jump_length``
steps), written from the paper's description on the same network. Observed pixels are never
generated: every sample reproduces them exactly.

``residual=True``: the model diffuses the correction to the first guess (the anomaly fill of
the visible pixels, the last context channel) instead of the field itself, so that a gap with
no other information falls back on that fill rather than on the network's unconditional mean.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import GenfillError
from .neural import NeuralFiller

__all__ = ["DiffusionFiller", "repaint_schedule", "edm_sigmas", "dpm_solver_2m"]

SIGMA_MAX = 20.0  # data are standardised, so 20 sigma is pure noise
SIGMA_MIN = 0.002
RHO = 7.0


def edm_sigmas(steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX,
               rho: float = RHO) -> list[float]:
    """Karras et al. noise levels, from sigma_max down to sigma_min, then 0."""
    if steps < 1:
        raise GenfillError(f"steps must be >= 1, got {steps}")
    if steps == 1:
        return [sigma_max, 0.0]
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return [(a + i / (steps - 1) * (b - a)) ** rho for i in range(steps)] + [0.0]


def repaint_schedule(steps: int, jump_length: int, n_resample: int) -> list[int]:
    """Indices into the noise ladder visited by RePaint's resampling schedule.

    Going down one level per transition; after every ``jump_length`` levels, jump back up
    ``jump_length`` levels and come down again, ``n_resample - 1`` times.
    """
    if jump_length < 1 or n_resample < 1:
        raise GenfillError("jump_length and n_resample must be >= 1")
    remaining = {j: n_resample - 1 for j in range(jump_length, steps, jump_length)}
    path, i = [0], 0
    while i < steps:
        i += 1
        path.append(i)
        if remaining.get(i, 0) > 0 and i < steps:
            remaining[i] -= 1
            for _ in range(jump_length):
                i -= 1
                path.append(i)
    return path


def dpm_solver_2m(x, sigmas: list[float], denoise, keep):
    """DPM-Solver++(2M) in data-prediction form (Lu et al. 2022) down the noise ladder
    ``sigmas`` from ``x``: one ``denoise(x, sigma)`` call per level (for the EDM
    parametrisation exp(-h) = s_next / s); ``keep`` puts the observed pixels back after each
    step."""
    prev = h_prev = None
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        den = denoise(x, s)
        if s_next == 0:
            x = den
        else:
            h = math.log(s / s_next)
            d_hat = den
            if prev is not None:
                r = h_prev / h
                d_hat = (1 + 1 / (2 * r)) * den - (1 / (2 * r)) * prev
            x = (s_next / s) * x + (1 - s_next / s) * d_hat
            prev, h_prev = den, h
        x = keep(x)
    return x


class DiffusionFiller(NeuralFiller):
    """``model="diffusion"``. Options: ``steps`` (noise levels, default 6: 6 network calls with
    the default sampler; ``steps=3`` halves the time for slightly under-dispersed ensembles),
    ``sampler`` ("dpm++", "heun" or "repaint"), ``sigma_min``, ``rho`` (Karras noise ladder),
    ``jump_length``, ``n_resample``, ``repaint_steps`` (RePaint), ``p_mean``,
    ``p_std`` (training noise-level distribution), ``estimate``: the point estimate (the fill
    of ``n_samples=1``, the Dataset form's value and what validate scores with RMSE):
    ``"mean"`` (default: the network's conditional mean, one network call; ``n_samples=1``
    then draws no sample) or ``"members"`` (the mean of the members; with ``n_samples=1`` one
    sample); ``mean_loss``: weight of an extra training loss on that conditional mean (default
    1; 0: off, which saves the second network pass per training step)."""

    kind = "diffusion"

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        return {"steps": 6, "sampler": "dpm++", "jump_length": 2, "n_resample": 2,
                "repaint_steps": 10, "p_mean": -0.4, "p_std": 1.6, "sigma_min": SIGMA_MIN,
                "rho": RHO, "estimate": "mean", "mean_loss": 1.0}

    #: the network input is [noisy field, log noise level, visible mask, context...]
    first_context_channel = 3

    def build_net(self):
        from .nets import UNet

        c_in = 3 + self.n_context
        return UNet(c_in, 1, tuple(self.arch["widths"]))

    def nfe(self) -> int:
        o = self.options
        if o["sampler"] == "repaint":
            path = repaint_schedule(o["repaint_steps"], o["jump_length"], o["n_resample"])
            return sum(1 for a, b in zip(path, path[1:]) if b > a)
        if o["sampler"] == "dpm++":
            return o["steps"]
        return 2 * o["steps"] - 1

    # -- the denoiser ---------------------------------------------------------------------------
    @staticmethod
    def _noisy_channels(x, sigma_map):
        """The first two network inputs: the scaled noisy field and the log noise level."""
        import torch

        return x / torch.sqrt(sigma_map**2 + 1.0), torch.log(sigma_map.clamp_min(1e-3)) / 4.0

    @classmethod
    def _inputs(cls, x, sigma_map, visible, ctx):
        import torch

        x_in, log_s = cls._noisy_channels(x, sigma_map)
        return torch.cat([x_in[:, None], log_s[:, None], visible[:, None].float(), ctx], 1)

    def _sigmas(self, steps: int) -> list[float]:
        return edm_sigmas(steps, sigma_min=float(self.options["sigma_min"]),
                          rho=float(self.options["rho"]))

    @staticmethod
    def _precondition(x, sigma_map, raw):
        import torch

        s2 = sigma_map**2
        return x / (s2 + 1.0) + raw * (sigma_map / torch.sqrt(s2 + 1.0))

    def _guess(self, ctx):
        """What the diffused variable is relative to: the first guess (the last context
        channel) of a residual model, else 0."""
        import torch

        return ctx[:, -1] if self.arch.get("residual") else torch.zeros_like(ctx[:, 0])

    def loss(self, batch: dict):
        import torch

        y, obs, hidden, ocean, ctx = (batch[k] for k in ("y", "obs", "hidden", "ocean", "ctx"))
        y = y - self._guess(ctx)  # residual models diffuse the correction to the first guess
        dev = y.device
        # noise drawn for the whole batch, of which this may be one process's part (see
        # training.batch_part): the same draws as one process with the whole batch
        full, part = batch.get("full", y.shape[0]), batch.get("part", slice(None))
        sigma = torch.exp(self.options["p_mean"] + self.options["p_std"]
                          * torch.randn(full, device=dev))[part][:, None, None]
        noise = torch.randn((full,) + tuple(y.shape[1:]), device=dev)[part]
        visible = obs & ~hidden
        unknown = ocean & ~obs  # never observed: no truth, pure noise, no loss
        x = torch.where(visible, y, torch.zeros_like(y))
        x = torch.where(hidden, y + sigma * noise, x)
        x = torch.where(unknown, SIGMA_MAX * noise, x)
        smap = torch.where(hidden, sigma.expand_as(y), torch.zeros_like(y))
        smap = torch.where(unknown, torch.full_like(y, SIGMA_MAX), smap)
        raw = self.net(self._inputs(x, smap, visible, ctx), torch.log(sigma.flatten()) / 4)[:, 0]
        d = self._precondition(x, smap, raw)
        weight = (sigma**2 + 1) / sigma**2
        n = batch.get("norm", hidden.sum().clamp_min(1))
        loss = (weight * (d - y) ** 2 * hidden).sum() / n
        if self.options["mean_loss"] > 0:  # also train the one-call point estimate directly
            point = self.predict_mean(batch)
            loss = loss + self.options["mean_loss"] * ((point - batch["y"]) ** 2
                                                       * hidden).sum() / n
        return loss

    def check_options(self) -> None:
        super().check_options()
        if self.options["sampler"] not in ("dpm++", "heun", "repaint"):
            raise GenfillError(f"unknown sampler {self.options['sampler']!r}; use 'heun', "
                               "'dpm++' or 'repaint'")

    def point_steps(self, field, ts, ctx, apply, draw: dict):
        """The network's conditional mean: the denoiser at the top of the noise ladder, gap
        pixels at their expected value 0 (one network call, deterministic). The mean of a
        few-step ensemble is shrunk towards the climatology (case A: regression slope of the
        truth on it 1.29); this estimate is less so, and scored a lower RMSE than that mean on
        8 of 9 fitted models (3 seeds x benchmark cases A, B, C)."""
        import torch

        visible = field.obs[ts]
        gap = field.ocean[None] & ~visible
        y_obs = field.vals[ts]
        guess = self._guess(ctx)
        x, smap, inp = self._mean_inputs(y_obs - guess, visible, gap, ctx)
        raw = self.tiled(apply, inp, cond_scalar=math.log(SIGMA_MAX) / 4,
                         periodic_x=draw["periodic_x"])
        den = self._precondition(x, smap, raw[:, 0].to(x.dtype))
        return torch.where(gap, den + guess, y_obs)

    @classmethod
    def _mean_inputs(cls, y, visible, gap, ctx):
        """The state of the conditional-mean call: visible pixels clean, gap pixels at their
        expected value 0 with noise level SIGMA_MAX; (x, noise-level map, network input)."""
        import torch

        x = torch.where(visible, y, torch.zeros_like(y))
        smap = gap.float() * SIGMA_MAX
        return x, smap, cls._inputs(x, smap, visible, ctx)

    def predict_mean(self, batch: dict):
        """The conditional mean on a training batch (validation, ``mean_loss``): the same
        call as :meth:`point_steps`, on the untiled network."""
        import torch

        y, obs, hidden, ocean, ctx = (batch[k] for k in ("y", "obs", "hidden", "ocean", "ctx"))
        visible = obs & ~hidden
        guess = self._guess(ctx)
        x, smap, inp = self._mean_inputs(y - guess, visible, ocean & ~visible, ctx)
        cond = torch.full((y.shape[0],), math.log(SIGMA_MAX) / 4, device=y.device)
        return self._precondition(x, smap, self.net(inp, cond)[:, 0]) + guess

    # -- sampling -----------------------------------------------------------------------------
    def sample_steps(self, field, ts, ctx, n_samples: int, seed: int, apply, draw: dict):
        import torch

        # members are sampled in groups small enough that the network input stays ~1 GB
        b, c, ny, nx = ctx.shape
        per_member = b * (c + 3) * ny * nx * 4
        group = max(1, min(n_samples, int(1e9 // max(per_member, 1))))
        parts = [self._sample_members(field, ts, ctx, list(range(m, min(m + group, n_samples))),
                                      seed, apply, draw) for m in range(0, n_samples, group)]
        return torch.cat(parts)

    def _sample_members(self, field, ts, ctx, members: list[int], seed: int, apply,
                        draw: dict):
        import torch

        from ..device import memory_format
        from ..tiling import hash_normal

        o = self.options
        visible = field.obs[ts]  # (B, Y, X)
        gap = field.ocean[None] & ~visible
        y_obs = field.vals[ts]
        guess = self._guess(ctx)
        b, ny, nx = y_obs.shape
        k = len(members)
        vis_k = visible.repeat(k, 1, 1)
        gap_k = gap.repeat(k, 1, 1)
        obs_k = (y_obs - guess).repeat(k, 1, 1)  # what is diffused (see ``_guess``)
        ctx_k = ctx.repeat(k, 1, 1, 1)
        dev = y_obs.device

        def noise(step: int):
            return torch.cat([hash_normal((b, ny, nx), seed=seed, member=m, step=step,
                                          t_index=draw["t_abs"], y_index=draw["y_abs"],
                                          x_index=draw["x_abs"], device=dev)
                              for m in members])

        # the network input is built once; each call rewrites only its first two channels
        inp = self._inputs(torch.zeros_like(obs_k), torch.zeros_like(obs_k), vis_k, ctx_k)
        inp = inp.contiguous(memory_format=memory_format(dev))
        gap_f = gap_k.float()

        def denoise(x, sigma: float):
            smap = gap_f * sigma
            inp[:, 0], inp[:, 1] = self._noisy_channels(x, smap)
            raw = self.tiled(apply, inp, cond_scalar=math.log(max(sigma, 1e-3)) / 4,
                             periodic_x=draw["periodic_x"])[:, 0]
            return self._precondition(x, smap, raw.to(x.dtype))

        def keep(x):
            return torch.where(gap_k, x, obs_k)

        if o["sampler"] == "heun":
            sig = self._sigmas(o["steps"])
            x = keep(sig[0] * noise(0))
            for i, (s, s_next) in enumerate(zip(sig[:-1], sig[1:])):
                d = (x - denoise(x, s)) / s
                x_next = x + (s_next - s) * d
                if s_next > 0:
                    d2 = (x_next - denoise(keep(x_next), s_next)) / s_next
                    x_next = x + (s_next - s) * 0.5 * (d + d2)
                x = keep(x_next)
        elif o["sampler"] == "repaint":
            sig = self._sigmas(o["repaint_steps"])
            path = repaint_schedule(o["repaint_steps"], o["jump_length"], o["n_resample"])
            x = keep(sig[0] * noise(0))
            for n, (i, j) in enumerate(zip(path[:-1], path[1:]), start=1):
                s, s_next = sig[i], sig[j]
                if j > i:  # down: ancestral step (DDPM-like) from s to s_next
                    den = denoise(x, s)
                    if s_next > 0:
                        s_up = math.sqrt(max(s_next**2 * (s**2 - s_next**2) / s**2, 0.0))
                        s_down = math.sqrt(max(s_next**2 - s_up**2, 0.0))
                        x = den + (s_down / s) * (x - den) + s_up * noise(n)
                    else:
                        x = den
                else:  # up: forward-noise the generated region back to s_next
                    x = x + math.sqrt(max(s_next**2 - s**2, 0.0)) * noise(n)
                x = keep(x)
        else:  # "dpm++" (check_options refuses any other sampler before filling starts)
            sig = self._sigmas(o["steps"])
            x = dpm_solver_2m(keep(sig[0] * noise(0)), sig, denoise, keep)
        # observed pixels as they are (x - guess + guess may differ from x in the last bit)
        x = torch.where(gap_k, x + guess.repeat(k, 1, 1), y_obs.repeat(k, 1, 1))
        return x.reshape(k, b, ny, nx)
