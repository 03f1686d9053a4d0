"""One diffusion network over several fields at once: the K centred log-ratio fields of a
composition (size classes), filled jointly.

The network reads the context of every field (its neighbouring dates, climatology, guides
and first guess, as :mod:`xgenfill.models.context` builds it for one field) and the
covariates once, and denoises the K fields together (K input and K output channels), so
its members are draws of the whole composition, not of each fraction on its own. The
training is that of the single-field model (:mod:`xgenfill.models.training`): the same real
clouds hide the same pixels of every field (a retrieval loses a composition whole), the loss
is summed over the fields. Fields must be observed at the same pixels (log-ratios of one
composition are).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import GenfillError
from .base import Cube, Fill
from .diffusion import SIGMA_MAX, DiffusionFiller, dpm_solver_2m
from .vae import VAEFiller

__all__ = ["JointModel", "JointDiffusionFiller", "JointVAEFiller", "JointSource"]


class JointSource:
    """The training sources of K fields observed at the same pixels, drawn from together:
    one set of crops and hidden pixels for all (see :func:`training.pick_crops`)."""

    def __init__(self, cubes: list[Cube], model, device, rng, val_fraction: float,
                 val_split: str, cloud_library) -> None:
        from .training import _Source

        if len(cubes) != model.n_fields:
            raise GenfillError(f"model {model.name!r} fills {model.n_fields} fields together, "
                               f"got {len(cubes)}")
        seen = [np.isfinite(c.values) & c.ocean[None] for c in cubes]
        if any(not np.array_equal(s, seen[0]) for s in seen[1:]):
            raise GenfillError("a joint model needs fields observed at the same pixels (the "
                               "log-ratios of one composition are); these differ")
        state = rng.bit_generator.state
        self.parts = []
        for c in cubes:  # the same draws for each: the same validation dates or pixels
            rng.bit_generator.state = state
            self.parts.append(_Source(c, model.multiple, device, rng, val_fraction, val_split,
                                      cloud_library))
        p0 = self.parts[0]
        self.train_steps, self.val_steps, self.val_split = (p0.train_steps, p0.val_steps,
                                                             p0.val_split)
        self.val_hide = p0.val_hide

    def _joined(self, batches: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        out = dict(batches[0])
        for key in ("y", "obs", "hidden"):
            out[key] = torch.stack([b[key] for b in batches], 1)  # (B, K, h, w)
        out["ctx"] = torch.cat([b["ctx"] for b in batches], 1)
        return out

    def make_batch(self, model, steps, rng, batch_size: int, patch: int, cloud_library=None):
        from .training import _assemble, pick_crops

        ts, picked, ph, pw = pick_crops(model, self.parts[0], steps, rng, batch_size, patch,
                                        cloud_library)
        return self._joined([_assemble(model, p, ts, picked, ph, pw) for p in self.parts])

    def validation_batches(self, model, rng, batch_size: int, patch: int,
                           cloud_library=None, n_batches: int = 4):
        from .training import _assemble, held_out_crops

        if not len(self.val_steps):
            return []
        if self.val_hide is None:
            return [self.make_batch(model, self.val_steps, rng, batch_size, patch,
                                    cloud_library) for _ in range(n_batches)]
        return [self._joined([_assemble(model, p, *crops, truth=True) for p in self.parts])
                for crops in held_out_crops(model, self.parts[0], rng, batch_size, patch,
                                            n_batches)]


class JointModel:
    """What the joint models share (mixed in before their single-field class): K fields of
    one composition read and filled together, trained on shared crops and clouds, their
    context blocks one after the other (the covariates once, in the first)."""

    #: input channels per field before the context (values, masks...)
    own_channels = 1

    @property
    def n_fields(self) -> int:
        return int(self.options["n_fields"])

    @property
    def _block(self) -> int:
        """Context channels of one field without covariates."""
        from .context import n_context_channels

        return n_context_channels(self.arch["window"], 0, self.arch["guides"],
                                  self.arch.get("residual", False))

    @property
    def n_context(self) -> int:
        # every field's context; the covariates once, in the first field's
        return self.n_fields * self._block + 2 * self.arch["n_covariates"]

    @property
    def first_context_channel(self) -> int:
        return self.own_channels * self.n_fields

    def _check_fields(self) -> int:
        k = int(self.options["n_fields"])
        if k < 2:
            raise GenfillError(f"n_fields must be >= 2, got {k}")
        return k

    def with_guides(self):
        raise GenfillError("a joint model cannot gain guide channels; build it with "
                           "guides=True")

    def training_source(self, cube, device, rng, val_fraction, val_split, cloud_library):
        return JointSource(cube, self, device, rng, val_fraction, val_split, cloud_library)

    def _guess_channels(self) -> list[int]:
        """Context channels of each field's first guess (the last of its block; the first
        block also holds the covariates); none without ``residual``."""
        if not self.arch.get("residual"):
            return []
        first = self._block + 2 * self.arch["n_covariates"]
        return [first + k * self._block - 1 for k in range(self.n_fields)]

    def _guess(self, ctx):
        """The first guess of each field, (B, K, h, w); zeros without ``residual``."""
        import torch

        b, _, h, w = ctx.shape
        if not self.arch.get("residual"):
            return torch.zeros((b, self.n_fields, h, w), dtype=ctx.dtype, device=ctx.device)
        return ctx[:, self._guess_channels()]

    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        raise GenfillError("a joint model fills several fields together: use "
                           "xgenfill.inpaint_fractions (or fill_joint)")

    def fill_joint(self, cubes: list[Cube], n_samples: int = 1, seed: int | None = 0
                   ) -> list[Fill]:
        """Fill K cubes of one composition together: one :class:`Fill` per field, members
        (n_samples, T, Y, X) drawn jointly, and the point estimate (``mean``; None when the
        model has none, ``estimate="members"``)."""
        import torch

        from .context import FieldTensors

        self.check_options()
        if len(cubes) != self.n_fields:
            raise GenfillError(f"model {self.name!r} fills {self.n_fields} fields together, "
                               f"got {len(cubes)}")
        dev = self._device()
        self.net.eval()
        seed = 0 if seed is None else int(seed)
        fields = [FieldTensors(c.values, c.ocean, c.doy, c.covariates if k == 0 else None,
                               device=dev) for k, c in enumerate(cubes)]
        gaps = np.stack([c.gaps for c in cubes])  # (K, T, Y, X)
        todo = np.flatnonzero(gaps.any((0, 2, 3)))
        shape = cubes[0].values.shape
        k = self.n_fields
        point = self.has_point_estimate
        mean = np.full((k,) + shape, np.nan, np.float32)
        out = np.full((n_samples, k) + shape, np.nan, np.float32)
        apply = self.apply_fn()
        ny, nx = shape[-2:]
        c0 = cubes[0]
        yx_abs = [torch.as_tensor(np.arange(n) if idx is None else np.asarray(idx), device=dev)
                  for idx, n in ((c0.y_index, ny), (c0.x_index, nx))]
        point_only = n_samples == 1 and point
        for i in range(0, len(todo), self.time_batch):
            ts = todo[i:i + self.time_batch]
            ts_t = torch.as_tensor(ts, device=dev)
            ctx = torch.cat([self.context(f, ts_t, periodic_x=c0.periodic_x) for f in fields],
                            1)
            draw = {"t_abs": ts_t + int(c0.t_offset), "periodic_x": c0.periodic_x,
                    "y_abs": yx_abs[0], "x_abs": yx_abs[1]}
            if point:
                mean[:, ts] = self._point(fields, ts_t, ctx, apply, draw).cpu().numpy() \
                    .transpose(1, 0, 2, 3)
            if not point_only:
                res = self._sample(fields, ts_t, ctx, n_samples, seed, apply, draw)
                out[:, :, ts] = res.cpu().numpy().transpose(0, 2, 1, 3, 4)
        if point_only:
            out[0] = mean
        fills = []
        for j in range(k):
            fills.append(Fill(samples=np.where(gaps[j][None], out[:, j], np.nan),
                              mean=(np.where(gaps[j], mean[j], np.nan)
                                    if point and not point_only else None),
                              info={"nfe": 1 if point_only else self.nfe(), "joint": k}))
        return fills

    def _state(self, fields, ts):
        import torch

        visible = torch.stack([f.obs[ts] for f in fields], 1)  # (B, K, Y, X)
        gap = fields[0].ocean[None, None] & ~visible
        y_obs = torch.stack([f.vals[ts] for f in fields], 1)
        return visible, gap, y_obs


class JointDiffusionFiller(JointModel, DiffusionFiller):
    """``JointDiffusionFiller(n_fields=K, ...)``: the conditional diffusion model of
    :class:`~xgenfill.models.diffusion.DiffusionFiller` over K fields at once (options as
    there, plus ``n_fields``). Fill with :meth:`fill_joint` (``inpaint_fractions`` does)."""

    kind = "joint_diffusion"
    own_channels = 3  # noisy values, noise level, visible mask

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        return DiffusionFiller.default_options() | {"n_fields": 3}

    def build_net(self):
        from .nets import UNet

        k = self._check_fields()
        return UNet(self.first_context_channel + self.n_context, k,
                    tuple(self.arch["widths"]))

    @classmethod
    def _inputs(cls, x, sigma_map, visible, ctx):
        import torch

        x_in, log_s = cls._noisy_channels(x, sigma_map)
        return torch.cat([x_in, log_s, visible.float(), ctx], 1)

    def loss(self, batch: dict):
        import torch

        y, obs, hidden, ocean, ctx = (batch[k] for k in ("y", "obs", "hidden", "ocean", "ctx"))
        y = y - self._guess(ctx)
        dev = y.device
        full, part = batch.get("full", y.shape[0]), batch.get("part", slice(None))
        sigma = torch.exp(self.options["p_mean"] + self.options["p_std"]
                          * torch.randn(full, device=dev))[part][:, None, None, None]
        noise = torch.randn((full,) + tuple(y.shape[1:]), device=dev)[part]
        ocean = ocean[:, None].expand_as(obs)
        visible = obs & ~hidden
        unknown = ocean & ~obs
        x = torch.where(visible, y, torch.zeros_like(y))
        x = torch.where(hidden, y + sigma * noise, x)
        x = torch.where(unknown, SIGMA_MAX * noise, x)
        smap = torch.where(hidden, sigma.expand_as(y), torch.zeros_like(y))
        smap = torch.where(unknown, torch.full_like(y, SIGMA_MAX), smap)
        raw = self.net(self._inputs(x, smap, visible, ctx), torch.log(sigma.flatten()) / 4)
        d = self._precondition(x, smap, raw)
        weight = (sigma**2 + 1) / sigma**2
        n = batch.get("norm", hidden.sum().clamp_min(1))
        loss = (weight * (d - y) ** 2 * hidden).sum() / n
        if self.options["mean_loss"] > 0:
            point = self.predict_mean(batch)
            loss = loss + self.options["mean_loss"] * ((point - batch["y"]) ** 2
                                                       * hidden).sum() / n
        return loss

    def predict_mean(self, batch: dict):
        import torch

        y, obs, hidden, ocean, ctx = (batch[k] for k in ("y", "obs", "hidden", "ocean", "ctx"))
        visible = obs & ~hidden
        guess = self._guess(ctx)
        gap = ocean[:, None].expand_as(obs) & ~visible
        x, smap, inp = self._mean_inputs(y - guess, visible, gap, ctx)
        cond = torch.full((y.shape[0],), math.log(SIGMA_MAX) / 4, device=y.device)
        return self._precondition(x, smap, self.net(inp, cond)) + guess

    # -- inference ----------------------------------------------------------------------------
    def _point(self, fields, ts, ctx, apply, draw):
        import torch

        visible, gap, y_obs = self._state(fields, ts)
        guess = self._guess(ctx)
        x, smap, inp = self._mean_inputs(y_obs - guess, visible, gap, ctx)
        raw = self.tiled(apply, inp, cond_scalar=math.log(SIGMA_MAX) / 4,
                         periodic_x=draw["periodic_x"])
        den = self._precondition(x, smap, raw.to(x.dtype))
        return torch.where(gap, den + guess, y_obs)

    def _sample(self, fields, ts, ctx, n_samples: int, seed: int, apply, draw):
        """Members (n, B, K, Y, X) with DPM-Solver++(2M) (the default sampler; the joint
        model has no other)."""
        import torch

        from ..tiling import hash_normal

        visible, gap, y_obs = self._state(fields, ts)
        guess = self._guess(ctx)
        b, k, ny, nx = y_obs.shape
        dev = y_obs.device
        members = []
        for m in range(n_samples):
            def noise(step: int):  # one independent normal field per member, field and level
                return torch.stack([hash_normal((b, ny, nx), seed=seed + 7919 * j, member=m,
                                                step=step, t_index=draw["t_abs"],
                                                y_index=draw["y_abs"], x_index=draw["x_abs"],
                                                device=dev) for j in range(k)], 1)

            obs = y_obs - guess
            inp = self._inputs(torch.zeros_like(obs), torch.zeros_like(obs), visible, ctx)
            gap_f = gap.float()

            def denoise(x, sigma: float):
                smap = gap_f * sigma
                x_in, log_s = self._noisy_channels(x, smap)
                inp[:, :k], inp[:, k:2 * k] = x_in, log_s
                raw = self.tiled(apply, inp, cond_scalar=math.log(max(sigma, 1e-3)) / 4,
                                 periodic_x=draw["periodic_x"])
                return self._precondition(x, smap, raw.to(x.dtype))

            def keep(x):
                return torch.where(gap, x, obs)

            sig = self._sigmas(self.options["steps"])
            x = dpm_solver_2m(keep(sig[0] * noise(0)), sig, denoise, keep)
            members.append(torch.where(gap, x + guess, y_obs))
        return torch.stack(members)

    def check_options(self) -> None:
        super().check_options()
        if self.options["sampler"] != "dpm++":
            raise GenfillError("the joint model samples with sampler='dpm++' only")


class JointVAEFiller(JointModel, VAEFiller):
    """``JointVAEFiller(n_fields=K, ...)``: the missing-data VAE of
    :class:`~xgenfill.models.vae.VAEFiller` over K fields at once (options as there, plus
    ``n_fields``): one posterior and one prior latent for the whole composition, a decoder
    with K means and K log-variances. Fill with :meth:`fill_joint` (``inpaint_fractions``
    does)."""

    kind = "joint_vae"
    own_channels = 2  # visible values, visible mask

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        return VAEFiller.default_options() | {"n_fields": 3}

    def build_net(self):
        from .vae import _build

        k = self._check_fields()
        guess = tuple(2 * k + c for c in self._guess_channels())
        return _build(self.n_context, tuple(self.arch["widths"]), int(self.options["latent"]),
                      guess=guess, n_fields=k)

    def _visible(self, fields, ts):
        import torch

        visible, gap, y_obs = self._state(fields, ts)
        return torch.where(visible, y_obs, torch.zeros_like(y_obs)), visible, gap, y_obs

    def _point(self, fields, ts, ctx, apply, draw):
        import torch

        y_vis, visible, gap, y_obs = self._visible(fields, ts)
        mu_p, _ = self._prior_stats(y_vis, visible, ctx, draw)
        return torch.where(gap, self._decoded_mean(y_vis, visible, ctx, mu_p, apply, draw),
                           y_obs)

    def _sample(self, fields, ts, ctx, n_samples: int, seed: int, apply, draw):
        """Members (n, B, K, Y, X): one latent draw per member for the whole composition."""
        import torch

        y_vis, visible, gap, y_obs = self._visible(fields, ts)
        mu_p, logvar_p = self._prior_stats(y_vis, visible, ctx, draw)
        members = self._members(y_vis, visible, mu_p, logvar_p, ctx, n_samples, seed, apply,
                                draw)
        return torch.where(gap[None], members, y_obs[None])
