"""Conditional VAE for missing data (Collier et al. 2020; VConstruct, Ehrler & Ernst 2020).

The posterior encoder q(z | all observed pixels, context) sees every observed pixel of a training
sample (values and mask); a prior network p(z | visible pixels, context) sees only what is left
after transplanted real clouds hide some of them; the decoder sees the visible pixels, the
context and a spatial latent at 1/4 resolution, and outputs a mean and a log-variance per pixel.
The ELBO's likelihood counts observed pixels only (the hidden ones are what the decoder cannot
copy), and its KL term pulls the posterior towards the conditional prior, which is what is
sampled at inference (a conditional VAE). Ensemble members come from prior draws plus the
decoder's own pixel noise.
"""

from __future__ import annotations

from typing import Any

from .neural import NeuralFiller

__all__ = ["VAEFiller"]

LATENT_FACTOR = 4


def _build(c_ctx: int, widths: tuple[int, ...], z: int, guess: tuple[int, ...] = (),
           n_fields: int = 1):
    """Posterior encoder, conditional-prior encoder and decoder (torch imported lazily) of
    ``n_fields`` fields read and filled together. ``guess``: decoder input channels (the
    fields' first guesses, with ``residual``) added to the decoder's means."""
    import torch
    from torch import nn

    from .nets import UNet

    k = int(n_fields)

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = widths[0] * 2
            self.body = nn.Sequential(
                nn.Conv2d(2 * k + c_ctx, w, 3, padding=1), nn.SiLU(), nn.AvgPool2d(2),
                nn.Conv2d(w, 2 * w, 3, padding=1), nn.SiLU(), nn.AvgPool2d(2),
                nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.SiLU(),
                nn.Conv2d(2 * w, 2 * z, 3, padding=1))

        def forward(self, x):
            return self.body(x)

    class VAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = Encoder()  # posterior: all observed pixels
            self.prior = Encoder()  # conditional prior: visible pixels only
            self.decoder = UNet(2 * k + c_ctx + z, 2 * k, widths, emb_dim=0)

        def decode(self, x):
            out = self.decoder(x)
            if guess:  # input: [values, masks, context (with the first guesses), latent]
                out = torch.cat([out[:, :k] + x[:, list(guess)], out[:, k:]], 1)
            return out

        def forward(self, x, cond=None):  # decoder call used by tiled inference
            return self.decode(x)

    return VAE()


def _chan(a):
    """A single field (B, Y, X) as one channel; K fields (B, K, Y, X) as they are."""
    return a[:, None] if a.ndim == 3 else a


class VAEFiller(NeuralFiller):
    """``model="vae"``. Options: ``latent`` (channels of the 1/4-resolution latent), ``beta``
    (KL weight), ``sample_noise`` (add the decoder's pixel noise to members), ``estimate``:
    the point estimate (the fill of ``n_samples=1``, the Dataset form's value and what
    validate scores with RMSE): ``"mean"`` (default: the decoder's mean at the prior's mean
    latent, deterministic, what early stopping scores) or ``"members"`` (the members' mean;
    with ``n_samples=1`` one draw)."""

    kind = "vae"

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        return {"latent": 8, "beta": 1.0, "sample_noise": True, "estimate": "mean"}

    def radius_for(self, n_samples: int) -> int | None:
        return self.spatial_radius  # the point estimate runs the prior and the decoder too

    #: the network input is [visible values, visible mask, context...]
    first_context_channel = 2

    def build_net(self):
        # with residual, the first guess is the last context channel
        guess = (1 + self.n_context,) if self.arch.get("residual", False) else ()
        return _build(self.n_context, tuple(self.arch["widths"]), int(self.options["latent"]),
                      guess=guess)

    @property
    def receptive_radius(self) -> int:
        return 5 * 2 ** len(self.arch["widths"]) - 1 + LATENT_FACTOR

    @staticmethod
    def _decoder_input(y_vis, visible, ctx, z_up):
        import torch

        return torch.cat([_chan(y_vis), _chan(visible).float(), ctx, z_up], 1)

    @staticmethod
    def _split(out, like):
        """The decoder's means and log-variances, shaped like the values ``like``."""
        k = out.shape[1] // 2
        mean, log_s2 = out[:, :k], out[:, k:]
        return (mean[:, 0], log_s2[:, 0]) if like.ndim == 3 else (mean, log_s2)

    def _decode(self, y_vis, visible, ctx, z):
        import torch.nn.functional as F

        z_up = F.interpolate(z, scale_factor=LATENT_FACTOR, mode="nearest")
        out = self.net.decode(self._decoder_input(y_vis, visible, ctx, z_up))
        mean, log_s2 = self._split(out, y_vis)
        return mean, log_s2.clamp(-10.0, 5.0)

    def loss(self, batch: dict):
        import torch

        y, obs, hidden, ctx = (batch[k] for k in ("y", "obs", "hidden", "ctx"))
        visible = obs & ~hidden
        y_all = torch.where(obs, y, torch.zeros_like(y))
        y_vis = torch.where(visible, y, torch.zeros_like(y))
        mu, logvar = self._stats(self.net.encoder, y_all, obs, ctx)
        mu_p, logvar_p = self._stats(self.net.prior, y_vis, visible, ctx)
        # noise drawn for the whole batch, of which this may be one process's part (see
        # training.batch_part): the same draws as one process with the whole batch
        full, part = batch.get("full", y.shape[0]), batch.get("part", slice(None))

        def draw(like):
            return torch.randn((full,) + tuple(like.shape[1:]), device=like.device)[part]

        z = mu + torch.exp(0.5 * logvar) * draw(mu)
        mean, log_s2 = self._decode(y_vis, visible, ctx, z)
        nll = 0.5 * (log_s2 + (y - mean) ** 2 * torch.exp(-log_s2))
        # likelihood of the hidden observed pixels (the visible ones are given to the decoder)
        n = batch.get("norm", hidden.sum().clamp_min(1))
        rec = (nll * hidden).sum() / n
        kl = 0.5 * (logvar_p - logvar + (logvar.exp() + (mu - mu_p) ** 2) / logvar_p.exp()
                    - 1.0).sum() / n
        # the prior path must predict well on its own (what inference uses): a draw from the
        # conditional prior is decoded and scored too
        z_p = mu_p + torch.exp(0.5 * logvar_p) * draw(mu_p)
        mean_p, log_s2_p = self._decode(y_vis, visible, ctx, z_p)
        nll_p = 0.5 * (log_s2_p + (y - mean_p) ** 2 * torch.exp(-log_s2_p))
        return rec + self.options["beta"] * kl + (nll_p * hidden).sum() / n

    @staticmethod
    def _stats(net, y, mask, ctx):
        import torch

        stats = net(torch.cat([_chan(y), _chan(mask).float(), ctx], 1))
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)

    def predict_mean(self, batch: dict):
        import torch

        y, obs, hidden, ctx = (batch[k] for k in ("y", "obs", "hidden", "ctx"))
        visible = obs & ~hidden
        y_vis = torch.where(visible, y, torch.zeros_like(y))
        mu_p, _ = self._stats(self.net.prior, y_vis, visible, ctx)
        return self._decode(y_vis, visible, ctx, mu_p)[0]

    @property
    def spatial_radius(self) -> int | None:  # type: ignore[override]
        if self.arch.get("dineof_guide"):
            return None  # DINEOF's reconstruction reads the whole field
        # prior network, then the decoder (each radius already counts the latent's 4x4 blocks)
        return 2 * self.receptive_radius + self.guide_radius

    def _prior(self, field, ts, ctx, draw: dict):
        """Visible values and mask of the steps ``ts`` and the conditional prior's mean and
        log-variance, upsampled to the pixel grid (constant over 4x4 blocks)."""
        visible = field.obs[ts]
        y_vis = field.vals[ts] * visible
        return (y_vis, visible) + self._prior_stats(y_vis, visible, ctx, draw)

    def _prior_stats(self, y_vis, visible, ctx, draw: dict):
        import torch
        import torch.nn.functional as F

        prior_in = torch.cat([_chan(y_vis), _chan(visible).float(), ctx], 1)
        prior = self.net.prior

        def run_prior(w, cond=None):
            with torch.inference_mode():
                out = prior(w)
            return F.interpolate(out, scale_factor=LATENT_FACTOR, mode="nearest")

        stats = self.tiled(run_prior, prior_in, periodic_x=draw["periodic_x"])
        lat = int(self.options["latent"])
        return stats[:, :lat], stats[:, lat:].clamp(-10.0, 10.0)

    def point_steps(self, field, ts, ctx, apply, draw: dict):
        """The decoder's mean at the prior's mean latent (no draw): the estimate that early
        stopping scores (:meth:`predict_mean`), deterministic."""
        y_vis, visible, mu_p, _ = self._prior(field, ts, ctx, draw)
        return self._decoded_mean(y_vis, visible, ctx, mu_p, apply, draw)

    def _decoded_mean(self, y_vis, visible, ctx, z_up, apply, draw: dict):
        inp = self._decoder_input(y_vis, visible, ctx, z_up)
        return self._split(self.tiled(apply, inp, periodic_x=draw["periodic_x"]), y_vis)[0]

    def sample_steps(self, field, ts, ctx, n_samples: int, seed: int, apply, draw: dict):
        y_vis, visible, mu_p, logvar_p = self._prior(field, ts, ctx, draw)
        return self._members(y_vis, visible, mu_p, logvar_p, ctx, n_samples, seed, apply, draw)

    def _members(self, y_vis, visible, mu_p, logvar_p, ctx, n_samples: int, seed: int, apply,
                 draw: dict):
        """Members (n, B, Y, X), or (n, B, K, Y, X) for K fields: prior draws decoded, plus
        the decoder's pixel noise (field ``j``'s drawn with ``seed + 7919 j``)."""
        import torch

        from ..tiling import hash_normal

        b, ny, nx = y_vis.shape[0], y_vis.shape[-2], y_vis.shape[-1]
        lat = int(self.options["latent"])
        # the latent's 4x4 blocks on the absolute grid (rows/columns of this cube map onto them)
        yl, y_inv = torch.unique(draw["y_abs"] // LATENT_FACTOR, return_inverse=True)
        xl, x_inv = torch.unique(draw["x_abs"] // LATENT_FACTOR, return_inverse=True)
        dev = y_vis.device
        members = []
        for m in range(n_samples):
            # latent noise constant over the blocks of the absolute 1/4 grid: independent of
            # tiling and of spatial chunking
            eps = torch.stack([hash_normal((b, len(yl), len(xl)), seed=seed, member=m,
                                           step=1000 + c, t_index=draw["t_abs"], y_index=yl,
                                           x_index=xl, device=dev)
                               for c in range(lat)], 1)[:, :, y_inv][:, :, :, x_inv]
            z_up = mu_p + torch.exp(0.5 * logvar_p) * eps
            inp = self._decoder_input(y_vis, visible, ctx, z_up)
            out = self.tiled(apply, inp, periodic_x=draw["periodic_x"])
            k = out.shape[1] // 2
            # pixel noise never wider than the data's own spread (guards against outliers)
            mean, log_s2 = out[:, :k], out[:, k:].clamp(-10.0, 0.0)
            if self.options["sample_noise"] and n_samples > 1:
                eps = torch.stack([hash_normal((b, ny, nx), seed=seed + 7919 * j, member=m,
                                               step=2000, t_index=draw["t_abs"],
                                               y_index=draw["y_abs"], x_index=draw["x_abs"],
                                               device=dev) for j in range(k)], 1)
                mean = mean + torch.exp(0.5 * log_s2) * eps
            members.append(mean[:, 0] if y_vis.ndim == 3 else mean)
        return torch.stack(members)
