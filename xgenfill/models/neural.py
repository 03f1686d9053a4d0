"""Common machinery of the neural models: configuration, device handling, tiled batched
inference over a cube, training entry point, and safetensors save/load."""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..device import resolve_device
from ..errors import GenfillError
from .base import Cube, Fill, Filler

__all__ = ["NeuralFiller", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_MOVE_LOCK = threading.RLock()


class NeuralFiller(Filler):
    """Base class of the diffusion and VAE models.

    Parameters
    ----------
    window
        Neighbouring time steps on each side given to the network as context.
    widths
        Channels per U-Net level (each level halves the resolution).
    n_covariates
        Number of extra conditioning variables.
    guides
        Also give the network classical first guesses (linear interpolation in time, smooth
        spatial interpolation at three scales; see :mod:`xgenfill.models.context`).
    dineof_guide
        Also give the network DINEOF's reconstruction of the field
        (:func:`xgenfill.models.dineof.dineof_guide`: cross-fitted at observed pixels), computed
        on the whole field at every fill and fit: the long-range temporal modes that its window
        of neighbouring dates cannot see. Such a model needs the whole field (a dask input is
        filled as one chunk) and at least 3 time steps.
    residual
        The network predicts a correction to the anomaly fill of the visible pixels
        (:func:`xgenfill.models.context.first_guess`, also given as an input), instead of
        the value itself (the diffusion model diffuses that correction; widens the spatial
        dependency to 203 pixels).
    first_guess
        Version of that first guess: ``2`` (default) trusts each smoothing scale by the
        share of its kernel inside the array that holds observations (as the anomaly fill's
        mirrored edges do); ``1``, of the whole kernel (models saved before version 2 were
        trained with it and keep it).
    device
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``...
    tile, halo, blend
        Tiled inference: core tile size, context on each side, and the width over which
        neighbouring tiles are blended with smooth weights (default halo: the network's
        receptive-field radius plus ``blend // 2``, so that every blended pixel saw its whole
        receptive field and results do not depend on the tiling; a smaller halo is cheaper
        and the blending hides the seams).
    batch_size
        Tiles per network call (bounds memory).
    time_batch
        Time steps sampled together.
    progress
        Show a tqdm bar over time batches.
    precision
        ``"auto"`` (bfloat16 on CUDA and on CPUs with native bf16 instructions, float32
        otherwise), ``"float32"`` or ``"bfloat16"``. Training runs in float32 unless
        ``"bfloat16"`` is asked for (autocast; weights, gradients and optimiser state stay
        float32; 1.5x faster on bf16 CPUs).
    """

    kind = "neural"
    stochastic = True

    def __init__(self, window: int = 5, widths: tuple[int, ...] = (16, 32, 64, 128),
                 n_covariates: int = 0, guides: bool = True, residual: bool = False,
                 first_guess: int = 2, dineof_guide: bool = False, device: str = "auto",
                 tile: int = 512,
                 halo: int | None = None, blend: int = 16, batch_size: int = 8,
                 time_batch: int = 8,
                 progress: bool = False, precision: str = "auto", **options: Any) -> None:
        from ..device import check_precision

        check_precision(precision)
        if window < 0:
            raise GenfillError(f"window must be >= 0, got {window}")
        if first_guess not in (1, 2):
            raise GenfillError(f"first_guess must be 1 or 2, got {first_guess!r}")
        self.arch = {"window": int(window), "widths": [int(w) for w in widths],
                     "n_covariates": int(n_covariates), "guides": bool(guides),
                     "residual": bool(residual), "first_guess": int(first_guess),
                     "dineof_guide": bool(dineof_guide)}
        self.options = self.default_options() | options
        unknown = set(options) - set(self.default_options())
        if unknown:
            raise GenfillError(f"unknown option(s) {sorted(unknown)} for model {self.kind!r}; "
                               f"valid: {sorted(self.default_options())}")
        self.init_kwargs = {"window": window, "widths": tuple(widths),
                            "n_covariates": n_covariates, "guides": guides,
                            "residual": residual, "first_guess": first_guess,
                            "dineof_guide": dineof_guide,
                            "device": device, "tile": tile,
                            "halo": halo, "blend": blend, "batch_size": batch_size,
                            "time_batch": time_batch, "progress": progress,
                            "precision": precision, **options}
        self.device = device
        self.tile, self.batch_size, self.time_batch = tile, batch_size, time_batch
        self.halo, self.blend = halo, int(blend)
        self.progress = progress
        self.precision = precision
        self.meta: dict[str, Any] = {}
        self.weights_hash: str | None = None
        self.source: str | None = None  # registry name or file it was loaded from
        self.net = self._seeded_build()
        self._dev = None

    def _seeded_build(self):
        """Build the network with a fixed initialisation, whatever the global RNG state (so
        that training is reproducible), without touching the caller's RNG."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return self.build_net()

    # -- to be provided by subclasses ---------------------------------------------------------
    @classmethod
    def default_options(cls) -> dict[str, Any]:
        return {}

    def build_net(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, batch: dict) -> "torch.Tensor":  # noqa: F821  # pragma: no cover
        raise NotImplementedError

    def predict_mean(self, batch: dict) -> "torch.Tensor":  # noqa: F821  # pragma: no cover
        """Deterministic best estimate at the batch's pixels (for validation)."""
        raise NotImplementedError

    def sample_steps(self, field, ts, ctx, n_samples: int, seed: int, apply, draw: dict
                     ):  # pragma: no cover
        """Members (K, B, Y, X) for the steps ``ts``; ``draw`` holds ``t_abs`` (absolute step
        indices, for the counter-based noise) and ``periodic_x``."""
        raise NotImplementedError

    # -- properties ---------------------------------------------------------------------------
    @property
    def name(self) -> str:  # type: ignore[override]
        return self.meta.get("name", self.kind)

    @property
    def window(self) -> int:
        return self.arch["window"]

    @property
    def guide_radius(self) -> int:
        """How far (pixels) the spatial guides and the first guess (``residual``) look (0
        without either)."""
        from .context import FIRST_GUESS_RADIUS, GUIDE_RADIUS

        if self.arch.get("residual"):
            return max(FIRST_GUESS_RADIUS, GUIDE_RADIUS)
        return GUIDE_RADIUS if self.arch.get("guides") else 0

    @property
    def n_context(self) -> int:
        """Context channels the network reads (see :mod:`xgenfill.models.context`)."""
        from .context import n_context_channels

        return n_context_channels(self.arch["window"], self.n_input_covariates,
                                  self.arch["guides"], self.arch.get("residual", False))

    @property
    def n_input_covariates(self) -> int:
        """Covariates the network reads: the user's, then DINEOF's reconstruction
        (``dineof_guide``)."""
        return self.arch["n_covariates"] + int(self.arch.get("dineof_guide", False))

    def with_dineof(self, cube: Cube) -> Cube:
        """``cube`` with DINEOF's reconstruction appended to its covariates when the model
        reads it (``dineof_guide``); unchanged otherwise."""
        if not self.arch.get("dineof_guide"):
            return cube
        from dataclasses import replace

        from .dineof import dineof_guide

        if cube.values.shape[0] < 3:
            raise GenfillError(f"model {self.name!r} reads DINEOF's reconstruction "
                               "(dineof_guide), which needs at least 3 time steps; use a model "
                               "without it for single images")
        guide = dineof_guide(cube)[None]
        cov = guide if cube.covariates is None else np.concatenate([cube.covariates, guide])
        return replace(cube, covariates=cov)

    def context(self, field, ts, periodic_x: bool = False):
        """Context channels of the steps ``ts`` over the whole field (inference: all observed
        pixels of the steps are visible)."""
        import torch

        from .context import Crops, context_channels, first_guess, spatial_guides

        space = None
        if self.arch.get("guides"):
            space = spatial_guides(field.vals[ts], field.obs[ts], periodic_x=periodic_x)
        ctx = context_channels(field, ts, self.window, space=space)
        if self.arch.get("residual"):  # the last context channel
            g = first_guess(field, ts, Crops(), field.obs[ts], periodic_x=periodic_x,
                            inside=self.inside(field.ocean.shape, field.ocean.device))
            ctx = torch.cat([ctx, g[:, None]], 1)
        return ctx

    def inside(self, shape: tuple[int, ...], device, ny: int | None = None,
               nx: int | None = None):
        """The pixels of a (Y, X) array inside the field, (1, Y, X), for the first guess of
        version 2 (the first ``ny`` rows and ``nx`` columns: training pads the field); None
        for version 1."""
        import torch

        if self.arch.get("first_guess", 1) < 2:
            return None
        ins = torch.zeros((1,) + tuple(shape), dtype=torch.bool, device=device)
        ins[:, :ny, :nx] = True
        return ins

    @property
    def receptive_radius(self) -> int:
        """Receptive-field radius of the U-Net: 5 * 2**levels - 1 pixels (checked in tests)."""
        return 5 * 2 ** len(self.arch["widths"]) - 1

    @property
    def multiple(self) -> int:
        return max(2 ** (len(self.arch["widths"]) - 1), 8)

    def _device(self):
        # dask threads may share this model: move/convert the weights once, under a lock,
        # never while another thread runs the network
        with _MOVE_LOCK:
            if self._dev is None:
                from ..device import memory_format

                dev = resolve_device(self.device)
                self.net.to(dev).to(memory_format=memory_format(dev))
                self._dev = dev
        return self._dev

    def to(self, device: str) -> "NeuralFiller":
        self.device, self._dev = device, None
        self._device()
        return self

    def apply_fn(self):
        """The network call used for tiled inference: autocast to ``precision`` (see
        :func:`xgenfill.device.compute_dtype`), channels-last on CPU (oneDNN's fast layout)."""
        import torch

        from ..device import autocast, compute_dtype, memory_format

        dev = self._device()
        dtype, layout = compute_dtype(dev, self.precision), memory_format(dev)

        def run(x, cond):
            x = x.contiguous(memory_format=layout)
            with torch.inference_mode(), autocast(dev, dtype):
                return self.net(x, cond).float()

        return run

    def tiled(self, fn, x, cond_scalar: float | None = None, periodic_x: bool = False):
        """Run ``fn(windows, cond)`` over x (B, C, Y, X) tile by tile."""
        import torch

        from ..tiling import tiled_apply

        def call(w):
            c = None if cond_scalar is None else torch.full((w.shape[0],), float(cond_scalar),
                                                            device=w.device)
            return fn(w, c)

        halo = self.receptive_radius + self.blend // 2 if self.halo is None else self.halo
        return tiled_apply(call, x, tile=self.tile, halo=halo, multiple=self.multiple,
                           periodic_x=periodic_x, batch_size=self.batch_size, blend=self.blend)

    # -- public -------------------------------------------------------------------------------
    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        import torch

        from .context import FieldTensors

        self.check_options()  # before any work, whatever path the options take
        t0 = time.perf_counter()
        cube = self.with_dineof(cube)
        dev = self._device()
        self.net.eval()
        seed = 0 if seed is None else int(seed)
        field = FieldTensors(cube.values, cube.ocean, cube.doy, cube.covariates, device=dev)
        gaps = cube.gaps
        todo = np.flatnonzero(gaps.reshape(gaps.shape[0], -1).any(1))
        # a model with its own point estimate gives it as the single member of n_samples=1
        # (no sampling at all), and beside the members otherwise
        point_only = n_samples == 1 and self.has_point_estimate
        mean = (np.full(cube.values.shape, np.nan, dtype=np.float32)
                if self.has_point_estimate and not point_only else None)
        out = np.full((n_samples,) + cube.values.shape, np.nan, dtype=np.float32)
        batches = [todo[i:i + self.time_batch] for i in range(0, len(todo), self.time_batch)]
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=f"xgenfill {self.kind}", unit="step")
        apply = self.apply_fn()
        ny, nx = cube.values.shape[-2:]
        yx_abs = [torch.as_tensor(np.arange(n) if idx is None else np.asarray(idx), device=dev)
                  for idx, n in ((cube.y_index, ny), (cube.x_index, nx))]
        for ts in batches:
            ts_t = torch.as_tensor(ts, device=dev)
            ctx = self.context(field, ts_t, periodic_x=cube.periodic_x)
            # the model holds no per-call state: dask threads may share it
            draw = {"t_abs": ts_t + int(cube.t_offset), "periodic_x": cube.periodic_x,
                    "y_abs": yx_abs[0], "x_abs": yx_abs[1]}
            if mean is not None or point_only:
                best = self.point_steps(field, ts_t, ctx, apply, draw).float().cpu().numpy()
                if point_only:
                    out[0, ts] = best
                else:
                    mean[ts] = best
            if not point_only:
                res = self.sample_steps(field, ts_t, ctx, n_samples, seed, apply, draw)
                out[:, ts] = res.float().cpu().numpy()  # (K, B, Y, X)
            if bar is not None:
                bar.update(len(ts))
        if bar is not None:
            bar.close()
        out = np.where(gaps[None], out, np.nan)
        if mean is not None:
            mean = np.where(gaps, mean, np.nan)
        return Fill(samples=out, mean=mean,
                    info={"seconds": time.perf_counter() - t0, "device": str(dev),
                          "nfe": 1 if point_only else self.nfe()})

    def nfe(self) -> int:
        """Network evaluations per sample."""
        return 1

    def check_options(self) -> None:
        """Raise a GenfillError for an invalid option value (names are checked when built)."""
        if self.options.get("estimate", "mean") not in ("mean", "members"):
            raise GenfillError(f"estimate must be 'mean' or 'members', got "
                               f"{self.options['estimate']!r}")

    @property
    def has_point_estimate(self) -> bool:
        """Models with an ``estimate`` option give their own point estimate when it is
        ``"mean"`` (:meth:`point_steps`)."""
        return self.options.get("estimate") == "mean"

    def point_steps(self, field, ts, ctx, apply, draw: dict):  # pragma: no cover - abstract
        """The point estimate (B, Y, X) for the steps ``ts``, observed pixels included."""
        raise NotImplementedError

    @property
    def spatial_radius(self) -> int | None:  # type: ignore[override]
        """How far (pixels) an input can influence an output through the whole fill: one
        receptive field per network call in sequence, after the spatial guides. A spatial chunk
        with a halo this wide gives exactly the result of the whole field (see
        :mod:`xgenfill.lazy`)."""
        if self.arch.get("dineof_guide"):
            return None  # DINEOF's reconstruction reads the whole field
        return self.nfe() * self.receptive_radius + self.guide_radius

    def radius_for(self, n_samples: int) -> int | None:
        """One network call's worth (plus the guides) when only the point estimate is computed
        (``n_samples=1``, see :meth:`point_steps`); None with ``dineof_guide``."""
        if self.arch.get("dineof_guide"):
            return None
        if n_samples == 1 and self.has_point_estimate:
            return self.receptive_radius + self.guide_radius
        return self.spatial_radius

    def fit(self, cubes: list[Cube], **kwargs: Any) -> "NeuralFiller":
        """Train on gappy cubes (see :func:`xgenfill.models.training.train_model`)."""
        from .training import train_model

        history = train_model(self, [self.with_dineof(c) for c in cubes], **kwargs)
        self.meta.setdefault("training", {}).update(history)
        self.meta["training_kwargs"] = {k: v for k, v in kwargs.items()
                                        if k not in ("progress", "stream")}
        self.weights_hash = None  # weights changed: the saved hash no longer applies
        self.source = None
        return self

    def with_guides(self) -> "NeuralFiller":
        """This model with guide channels added (see ``guides``), computing exactly what it
        computed before: the new input channels enter with zero weights, so fine-tuning starts
        from the pretrained function and learns to use them."""
        if self.arch.get("guides"):
            return self.copy()
        from .context import N_GUIDES, n_context_channels

        # the guides follow the context (and its covariates); the VAE latent, if any, after
        at = self.first_context_channel + n_context_channels(self.window,
                                                             self.n_input_covariates)
        return self._with_inputs({"guides": True}, [(at, N_GUIDES)])

    def with_covariates(self, n: int) -> "NeuralFiller":
        """This model reading ``n`` covariates, computing exactly what it computed before:
        their input channels (values and masks) enter with zero weights, so that fine-tuning a
        pretrained model with a covariate starts from the pretrained function.

        Examples
        --------
        >>> from xgenfill.models.registry import get_filler
        >>> m = get_filler("diffusion", variable="chl").with_covariates(1)
        >>> m.arch["n_covariates"]
        1
        """
        have = self.arch["n_covariates"]
        if n == have:
            return self.copy()
        if have:
            raise GenfillError(f"this model was trained with {have} covariate(s) and cannot "
                               f"take {n}; train one from scratch (init=None) instead")
        # the user's covariates come first in both halves of the covariate block (values,
        # then masks; DINEOF's reconstruction last in each), before the guides
        at = self._covariate_channel
        d = int(self.arch.get("dineof_guide", False))
        return self._with_inputs({"n_covariates": int(n)}, [(at, n), (at + d, n)])

    def with_dineof_guide(self) -> "NeuralFiller":
        """This model reading DINEOF's reconstruction too (``dineof_guide``), computing exactly
        what it computed before (zero weights on its two input channels)."""
        if self.arch.get("dineof_guide"):
            return self.copy()
        at, n = self._covariate_channel, self.arch["n_covariates"]
        return self._with_inputs({"dineof_guide": True}, [(at + n, 1), (at + 2 * n, 1)])

    @property
    def _covariate_channel(self) -> int:
        """Input channel where the covariates start (after the neighbouring steps)."""
        from .context import n_context_channels

        return self.first_context_channel + n_context_channels(self.window)

    def _with_inputs(self, changes: dict[str, Any], inserts: list[tuple[int, int]]
                     ) -> "NeuralFiller":
        """A copy built with ``changes`` whose input convolutions have, for each ``(at,
        count)`` of ``inserts``, ``count`` zero columns inserted before the old input channel
        ``at``, and the old weights everywhere else."""
        import torch

        new = type(self)(**(self._build_kwargs() | changes))
        new.meta = copy.deepcopy(self.meta)
        old_state, state = self.net.state_dict(), new.net.state_dict()
        with torch.no_grad():
            for k, v in old_state.items():
                w = state[k]
                if w.shape == v.shape:
                    w.copy_(v)
                    continue
                cols = torch.arange(v.shape[1])
                shift = sum((cols >= at).long() * count for at, count in inserts)
                w.zero_()
                w[:, cols + shift] = v
        new.net.load_state_dict(state)
        return new

    @property
    def first_context_channel(self) -> int:
        """Input channel where the context starts (after the model's own channels)."""
        raise NotImplementedError

    def _build_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of a model like this one, with its options as they are now
        (they may have been changed since it was built, e.g. ``train(init=..., steps=3)``)."""
        return self.init_kwargs | self.options

    def fresh(self) -> "NeuralFiller":
        """An untrained model with the same architecture and options."""
        new = type(self)(**self._build_kwargs())
        new.meta = {k: v for k, v in self.meta.items() if k in ("training_kwargs", "variable")}
        return new

    # -- persistence --------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "kind": self.kind, "arch": self.arch,
                "options": self.options, "meta": self.meta}

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.safetensors`` and ``<path>.json``; returns the weights path."""
        from safetensors.torch import save_file

        from ..hashing import sha256_file

        path = Path(path)
        stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
        stem.parent.mkdir(parents=True, exist_ok=True)
        weights = stem.with_suffix(".safetensors")
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(weights), metadata={"kind": self.kind})
        cfg = self.config()
        cfg["weights_sha256"] = sha256_file(weights)
        stem.with_suffix(".json").write_text(json.dumps(cfg, indent=1, default=_jsonable))
        self.weights_hash = "sha256:" + cfg["weights_sha256"]
        self.source = str(stem)
        return weights

    def copy(self) -> "NeuralFiller":
        return copy.deepcopy(self)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
