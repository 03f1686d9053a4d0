"""The default model (``model="auto"``): a network checked on the user's own data.

A pretrained network can be worse than a classical fill on data unlike its training data (3x
worse than DINEOF on monthly Oahu chlorophyll, for the chlorophyll model trained on daily NW
Atlantic data). Nobody can know in advance, and there is no truth inside a gap, so the guard
measures it on the data being filled, without any training:

1. observed pixels are hidden under real clouds transplanted from other dates (about 20 % of
   the observations, up to 4 donor clouds tried per date; DINEOF-style clustered clouds for
   a single image);
2. every candidate (the pretrained network of the variable's family and the classical fills:
   ``anomaly``, ``dineof``, ``linear_time``, ``climatology``, ``linear_space``) fills them;
3. the weights of a convex combination of the candidates (non-negative, summing to 1) are fitted
   to the hidden values by least squares, a stacking of the candidates. A network that is wrong
   on these data gets a weight near 0 and the fill is the classical one; where it helps, it
   takes the weight it earns. The stack is then shrunk towards the best single candidate by
   how well it holds up across dates (fitted on half the hidden dates, scored on the other
   half, :func:`shrunk_weights`; kept only where it saves ``MIN_GAIN`` of that error), so
   that weights that only fit the hidden dates do not carry over to the real gaps. On a
   single image the check chooses the best single candidate instead (:func:`choose_one`):
   weights fitted on its nine or ten hidden clouds did not hold up on other clouds;
4. the same candidates fill the real gaps and are combined with these weights. Members (for
   the uncertainty) are the network's members about the combination, standardised pixel by
   pixel and given the spread ``a * s + b + c * log(1 + d)`` (``s``: the network's own
   spread there; ``d``: the distance in pixels to the nearest observation of the same step,
   :func:`gap_depth`), with ``a, b, c >= 0`` fitted to the combination's errors on the hidden
   pixels (the CRPS of that normal spread, :func:`spread_model`): where the network's spread
   says where the fill is uncertain, ``a`` carries it; where it does not (a network that is
   wrong on these data), ``a`` goes to 0; ``c`` carries the error's growth into the gaps over
   to real gaps deeper than the hidden clouds.

The weights, the hidden-pixel errors and the spread model are recorded in the output's
attributes and ``history`` and reported by :func:`xgenfill.validate`.

On a dask array (:func:`xgenfill.lazy.inpaint_lazy`) the check runs once, on a window of the
archive (:meth:`Guarded.check`), and every chunk is combined with its weights
(:class:`Checked`, :meth:`Guarded.combine`) by the candidates that work chunk by chunk
(:meth:`Guarded.streamable`: DINEOF and spatial interpolation need the whole field).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from ..errors import GenfillError
from ..masks import cluster_clouds, transplant_clouds
from .base import Cube, Fill, Filler

__all__ = ["Guarded", "Check", "Checked", "stack_weights", "shrunk_weights", "choose_one",
           "spread_model", "gap_depth", "CLASSICAL"]

CLASSICAL = ("anomaly", "dineof", "linear_time", "climatology", "linear_space")
_MIN_CHECK = 50  # hidden pixels below which the check says nothing
# share of the observed pixels the check hides: 0.2 gave weights that held up better on the
# leave-one-dataset-out benchmark than 0.1 (worst case 1.004 vs 1.018 x the best classical)
HOLDOUT = 0.2
# the least share of the out-of-half squared error the stack must save over the best single
# candidate to be used: below it the gain is noise (the left-out Gulf of California SST image
# gave a network 3.4x worse than spatial interpolation a weight of 0.04, and 1.002x)
MIN_GAIN = 0.01
# pixels beyond which the distance to the nearest observation no longer widens the spread:
# below every network's halo on dask chunks, so that the spread does not depend on them
DEPTH_CAP = 64


def choose_one(preds: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Weight 1 for the candidate with the lowest squared error on these pixels, 0 for the
    others: the best single candidate that :func:`stack_weights` starts from and
    :func:`shrunk_weights` shrinks towards, and the check's rule on a single image.

    On one image the check hides nine or ten clouds. Stacking weights fitted on so few, even
    shrunk by how they hold up cloud by cloud, did not carry over to other clouds of the same
    image: over ten draws of the leave-one-dataset-out benchmark's clouds on its three single
    images, the stack scored above the best classical fill in 7 of 30 runs (up to 1.074x) and
    below it in 2, while choosing one candidate scored exactly 1.000x in all 30
    (``benchmarks/check_rules.py``). A choice among a few candidates needs far less evidence
    than a set of weights.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.array([0.0, 1.0, 2.0, 3.0])
    >>> choose_one(np.stack([truth + 1.0, truth - 1.0, truth + 0.1]), truth).tolist()
    [0.0, 0.0, 1.0]
    """
    preds = np.asarray(preds, np.float64)
    w = np.zeros(preds.shape[0])
    w[int(np.argmin(((preds - np.asarray(truth, np.float64)) ** 2).mean(1)))] = 1.0
    return w


def stack_weights(preds: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Convex weights (>= 0, summing to 1) minimising ``|| w @ preds - truth ||``.

    Parameters
    ----------
    preds : numpy.ndarray
        (K, N) predictions of K candidates at N pixels.
    truth : numpy.ndarray
        (N,) the values they should have been.

    Returns
    -------
    numpy.ndarray
        (K,) weights; never worse on these pixels than the best single candidate.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.array([0.0, 1.0, 2.0, 3.0])
    >>> preds = np.stack([truth + 1.0, truth - 1.0, truth * 0])
    >>> np.round(stack_weights(preds, truth), 3).tolist()
    [0.5, 0.5, 0.0]
    """
    from scipy.optimize import minimize

    preds = np.asarray(preds, np.float64)
    truth = np.asarray(truth, np.float64)
    k = preds.shape[0]
    gram = preds @ preds.T / truth.size
    lin = preds @ truth / truth.size
    best = choose_one(preds, truth)
    if k == 1:
        return best

    def objective(w):
        return w @ gram @ w - 2 * w @ lin, 2 * gram @ w - 2 * lin

    res = minimize(objective, best, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * k,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                 "jac": lambda w: np.ones_like(w)}],
                   options={"ftol": 1e-12, "maxiter": 200})
    w = np.clip(res.x, 0.0, None) if res.success else best
    w = w / w.sum() if w.sum() > 0 else best
    if objective(w)[0] > objective(best)[0]:  # the optimiser must never lose to a single one
        w = best
    w[w < 1e-3] = 0.0
    return w / w.sum()


def shrunk_weights(preds: np.ndarray, truth: np.ndarray, group: np.ndarray
                   ) -> tuple[np.ndarray, float]:
    """Stacking weights shrunk towards the best single candidate by how well stacking holds up
    on data it was not fitted to.

    The hidden pixels are split in two by ``group`` (their time step, or their cloud on a
    single image; alternately); the stack and the best single candidate are chosen on one half
    and scored on the other, both ways. The share ``lam`` of the stack (0, 0.25, ..., 1) with
    the lowest out-of-half error is then applied to the weights fitted on all pixels:
    ``lam * stack + (1 - lam) * best``, unless it lowers that error by less than ``MIN_GAIN``
    (1 %) against ``lam = 0``: then the best single candidate is kept. One group only: no
    split, ``lam = 1``.

    Returns
    -------
    numpy.ndarray, float
        The weights and ``lam``.
    """
    full = stack_weights(preds, truth)
    best = choose_one(preds, truth)
    keys = np.unique(group)
    if keys.size < 2:
        return full, 1.0
    half = np.isin(group, keys[::2])
    lams = np.linspace(0.0, 1.0, 5)
    err = np.zeros(lams.size)
    for fit_on in (half, ~half):
        w = stack_weights(preds[:, fit_on], truth[fit_on])
        b = choose_one(preds[:, fit_on], truth[fit_on])
        test = ~fit_on
        for i, lam in enumerate(lams):
            blend = (lam * w + (1 - lam) * b) @ preds[:, test]
            err[i] += float(((blend - truth[test]) ** 2).sum())
    # the stack must earn its place: a gain over the best single candidate of under
    # MIN_GAIN of the out-of-half squared error is noise, and the simpler fill is kept
    lam = float(lams[int(np.argmin(err))]) if err.min() < (1 - MIN_GAIN) * err[0] else 0.0
    w = lam * full + (1 - lam) * best
    return w / w.sum(), lam


def spread_model(spread: np.ndarray, err: np.ndarray, depth: np.ndarray | None = None
                 ) -> tuple[float, float, float]:
    """``a, b, c >= 0`` of the spread ``a * spread + b + c * depth`` whose normal distribution
    about the fill scores best (mean CRPS) against the fill's errors ``err`` at the same pixels
    (``c`` = 0 without ``depth``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> s = rng.uniform(0.1, 2.0, 20000)
    >>> a, b, c = spread_model(s, 0.5 * s * rng.standard_normal(20000))  # right, 2x wide
    >>> round(a, 1), round(b, 1), c
    (0.5, 0.0, 0.0)
    >>> a, b, c = spread_model(s, 0.3 * rng.standard_normal(20000))  # a spread that says nothing
    >>> round(a, 1), round(b, 1)
    (0.0, 0.3)
    >>> d = np.log1p(rng.uniform(0, 30, 20000))  # errors that grow into the gaps
    >>> a, b, c = spread_model(s, (0.1 + 0.2 * d) * rng.standard_normal(20000), d)
    >>> round(a, 1), round(b, 1), round(c, 1)
    (0.0, 0.1, 0.2)
    """
    from scipy.optimize import minimize
    from scipy.stats import norm

    spread = np.asarray(spread, np.float64)
    err = np.asarray(err, np.float64)
    deep = np.zeros_like(spread) if depth is None else np.asarray(depth, np.float64)
    rmse = float(np.sqrt(np.mean(err ** 2))) or 1e-6

    def crps(p):
        sigma = np.maximum(p[0] * spread + p[1] + p[2] * deep, 1e-9)
        z = err / sigma
        return float(np.mean(sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z)
                                      - 1 / np.sqrt(np.pi))))

    mean_s = float(np.mean(spread)) or 1.0
    starts = [(rmse / mean_s, 0.0, 0.0), (0.0, rmse, 0.0), (0.5 * rmse / mean_s, 0.5 * rmse, 0.0)]
    if depth is not None:
        starts.append((0.0, 0.0, rmse / (float(np.mean(deep)) or 1.0)))
    bounds = [(0, None), (0, None), (0, None if depth is not None else 0)]
    best = min((minimize(crps, x0, method="L-BFGS-B", bounds=bounds) for x0 in starts),
               key=lambda r: r.fun)
    return float(best.x[0]), float(best.x[1]), float(best.x[2])


def gap_depth(observed: np.ndarray) -> np.ndarray:
    """``log(1 + d)`` at every pixel, ``d`` its distance in pixels to the nearest observed
    pixel of the same step (capped at ``DEPTH_CAP``; the cap where a step has none).

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.zeros((1, 1, 6), bool)
    >>> obs[0, 0, 0] = True
    >>> np.round(np.expm1(gap_depth(obs)[0, 0]), 3).tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    """
    from scipy import ndimage

    out = np.full(observed.shape, np.log1p(DEPTH_CAP), np.float32)
    for t in range(observed.shape[0]):
        if observed[t].any():
            d = ndimage.distance_transform_edt(~observed[t])
            out[t] = np.log1p(np.minimum(d, DEPTH_CAP))
    return out


@dataclass
class Check:
    """What the guard's check found: the candidates it kept, their weights, the combination's
    error on the hidden pixels (normalised units), the members' spread model ``scale * s +
    floor + depth * log(1 + d)`` (``s``: the network's own spread, ``d``: the distance to the
    nearest observation, see :func:`spread_model`), and its record (``info``: the
    ``xgenfill_guard_*`` attributes)."""

    models: list
    weights: np.ndarray
    rmse: float
    scale: float
    info: dict
    floor: float = 0.0
    depth: float = 0.0


def _holdout(cube: Cube, fraction: float, seed: int) -> np.ndarray:
    """Observed pixels to hide: transplanted clouds (up to 4 donors tried per step, so that on
    a short record no step is left out by one bad draw), or clustered clouds for a single
    image."""
    obs = cube.observed & cube.ocean[None]
    hold = np.zeros_like(obs)
    if obs.shape[0] >= 2:
        hold = transplant_clouds(obs, cube.ocean, fraction, seed, tries=4)
    if hold.sum() < _MIN_CHECK:
        n = int(fraction * obs.sum())
        if _MIN_CHECK <= n < obs.sum():
            size = int(np.clip(np.sqrt(cube.ocean.sum()), 25, 500))
            hold = cluster_clouds(obs, n, size, seed)
    return hold


class Guarded(Filler):
    """A convex combination of a network and classical fills, weighted by how well each one
    fills observed pixels hidden from it in the data being filled (see the module docstring).

    Parameters
    ----------
    network : Filler, optional
        The pretrained network (None: classical candidates only).
    candidates : sequence of str or Filler
        Classical candidates; those that need a time axis are skipped on fewer than 3 steps.
    holdout_fraction : float
        Share of the observed pixels hidden for the check.
    """

    name = "auto"

    def __init__(self, network: Filler | None = None,
                 candidates: Sequence["str | Filler"] = CLASSICAL,
                 holdout_fraction: float = HOLDOUT) -> None:
        from .registry import get_filler

        if not 0 < holdout_fraction <= 0.5:
            raise GenfillError(f"holdout_fraction must lie in (0, 0.5], got {holdout_fraction}")
        self.network = network
        self.candidates = [c if isinstance(c, Filler) else get_filler(c) for c in candidates]
        if network is None and not self.candidates:
            raise GenfillError("model='auto' needs at least one candidate")
        self.holdout_fraction = float(holdout_fraction)
        self.weights_hash = getattr(network, "weights_hash", None)
        self.meta = getattr(network, "meta", {})

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return self.network is not None and self.network.stochastic

    @property
    def has_point_estimate(self) -> bool:
        return True

    # every block holds the whole record: the check transplants clouds between dates
    needs_record = True
    spatial_radius = None

    @property
    def parts(self) -> list[Filler]:
        return ([] if self.network is None else [self.network]) + list(self.candidates)

    @property
    def multiple(self) -> int:
        return getattr(self.network, "multiple", 1)

    def radius_for(self, n_samples: int) -> int | None:
        """The widest dependency of its parts (None when one needs the whole field, as DINEOF
        and spatial interpolation do), and with members at least ``DEPTH_CAP``: their spread
        reads the distance to the nearest observation up to that far."""
        radii = [p.radius_for(n_samples) for p in self.parts]
        if self.stochastic and n_samples > 1:
            radii.append(DEPTH_CAP)
        return None if any(r is None for r in radii) else max(radii)

    def streamable(self) -> "Guarded":
        """This guard without the candidates that need the whole field (DINEOF, spatial
        interpolation), for lazy fills chunk by chunk."""
        keep = [c for c in self.candidates if c.spatial_radius is not None]
        if self.network is not None and self.network.spatial_radius is None:
            raise GenfillError(f"network {self.network.name!r} needs the whole field (it reads "
                               "DINEOF's reconstruction: dineof_guide); load the data "
                               "(da.load()) to fill it through the check, or pass it as "
                               "model= to fill with the network alone in one chunk")
        if self.network is None and not keep:
            raise GenfillError("model='auto' on a dask array needs a network or a candidate "
                               "that works chunk by chunk ('anomaly', 'linear_time', "
                               "'climatology'); load the data to use the others")
        out = Guarded(self.network, keep, self.holdout_fraction)
        out.meta = self.meta
        return out

    def describe(self) -> str:
        net = self.network.name if self.network is not None else "no network"
        return f"auto ({net} checked against {', '.join(c.name for c in self.candidates)})"

    def _usable(self, cube: Cube) -> list[Filler]:
        nt = cube.values.shape[0]
        out = [] if self.network is None else [self.network]
        out += [c for c in self.candidates if not (c.needs_time and nt < 3)]
        return out

    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        t0 = time.perf_counter()
        fill = self.combine(cube, self.check(cube, n_samples, seed), n_samples, seed)
        fill.info["seconds"] = time.perf_counter() - t0
        return fill

    def check(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Check:
        """The weights of the candidates, from observed pixels of ``cube`` hidden from them
        (steps 1-3 of the module docstring)."""
        seed = 0 if seed is None else int(seed)
        models = self._usable(cube)
        if not models:
            raise GenfillError("model='auto' has no candidate for a single image without a "
                               "network; pass model='linear_space'")
        stochastic = self.stochastic and n_samples > 1
        hold = _holdout(cube, self.holdout_fraction, seed)
        info: dict[str, Any] = {"guard_holdout_pixels": int(hold.sum())}
        truth = cube.values[hold]
        if hold.sum() >= _MIN_CHECK:
            # only the steps with hidden pixels are filled (whatever steps the real fill needs)
            hcube = replace(cube, values=np.where(hold, np.nan, cube.values),
                            steps=hold.any((1, 2)))
            preds, kept, net_members = [], [], None
            for m in models:
                k = n_samples if (stochastic and m is self.network) else 1
                try:
                    f = m.fill(hcube, n_samples=k, seed=seed)
                except GenfillError:
                    continue  # a candidate that cannot fill these data is no candidate
                p = f.best()[hold]
                if np.isfinite(p).mean() < 0.9:
                    continue
                preds.append(p)
                kept.append(m)
                if k > 1:
                    net_members = f.samples[:, hold]
            if not kept:
                raise GenfillError("model='auto': no candidate could fill these data")
            preds = np.stack(preds)
            ok = np.isfinite(preds).all(0)
            if hold.shape[0] == 1:  # one image: too few clouds for weights (choose_one)
                w, lam = choose_one(preds[:, ok], truth[ok]), 0.0
                info["guard_note"] = ("a single image: the candidate with the lowest error on "
                                      "the hidden clouds is used alone")
            else:
                dates = np.nonzero(hold)[0]
                w, lam = shrunk_weights(preds[:, ok], truth[ok], dates[ok])
            info["guard_stack_share"] = lam
            blend = w @ preds[:, ok]
            err = blend - truth[ok]
            rmse = float(np.sqrt(np.mean(err ** 2)))
            for m, p in zip(kept, preds):
                info[f"guard_rmse_{m.name}"] = float(np.sqrt(np.mean((p[ok] - truth[ok]) ** 2)))
            info["guard_rmse_blend"] = rmse
            scale, floor, depth = 1.0, 0.0, 0.0
            if net_members is not None:
                spread = net_members[:, ok].std(0, ddof=1)
                deep = gap_depth(cube.observed & cube.ocean[None] & ~hold)[hold][ok]
                good = np.isfinite(spread)
                # no member anywhere it was checked: the blend's error is the spread
                scale, floor, depth = (spread_model(spread[good], err[good], deep[good])
                                       if good.sum() >= 3 else (0.0, rmse, 0.0))
                info["guard_spread_scale"] = scale
                info["guard_spread_floor"] = floor
                info["guard_spread_depth"] = depth
            models, weights = kept, w
        else:  # too few observations to check anything: the classical first guess, unweighted
            classical = [m for m in models if m is not self.network] or models
            models, weights = classical[:1], np.ones(1)
            rmse, scale, floor, depth = float("nan"), 1.0, 0.0, 0.0
            info["guard_note"] = (f"only {int(hold.sum())} pixels could be hidden: unchecked, "
                                  f"{models[0].name} used alone")
        info["guard_weights"] = ", ".join(f"{m.name}:{w:.3f}" for m, w in zip(models, weights))
        return Check(models, np.asarray(weights, np.float64), rmse, scale, info, floor, depth)

    def combine(self, cube: Cube, check: Check, n_samples: int = 1, seed: int | None = 0
                ) -> Fill:
        """The real fill of ``cube``: the candidates with a weight in ``check``, combined,
        and the network's members about the combination (step 4 of the module docstring)."""
        seed = 0 if seed is None else int(seed)
        stochastic = self.stochastic and n_samples > 1
        rmse, info = check.rmse, dict(check.info)
        use = [(m, w) for m, w in zip(check.models, check.weights) if w > 0]
        if stochastic and all(m is not self.network for m, _ in use):
            use.append((self.network, 0.0))  # its members still give the spread's shape
        parts, members = [], None
        for m, w in use:
            k = n_samples if (stochastic and m is self.network) else 1
            f = m.fill(cube, n_samples=k, seed=seed)
            if w > 0:
                parts.append((f.best(), w))
            if k > 1:
                members = f.samples
        stack = np.stack([p for p, _ in parts])
        wts = np.array([w for _, w in parts], np.float64)[:, None, None, None]
        finite = np.isfinite(stack)
        with np.errstate(invalid="ignore", divide="ignore"):  # renormalised where one is NaN
            point = (np.where(finite, stack, 0.0) * wts).sum(0) / (finite * wts).sum(0)
        point = np.where(cube.gaps, point, np.nan).astype(np.float32)
        if members is not None:
            deep = (gap_depth(cube.observed & cube.ocean[None]) if check.depth > 0
                    else None)
            samples = self._members(members, point, check, seed, deep)
        else:
            samples = point[None]
        std = None if members is not None else np.where(cube.gaps, rmse, np.nan).astype(
            np.float32)
        return Fill(samples=samples, mean=point if members is not None else None, std=std,
                    info=info)

    @staticmethod
    def _members(members: np.ndarray, point: np.ndarray, check: Check, seed: int,
                 depth: np.ndarray | None = None) -> np.ndarray:
        """The network's members standardised pixel by pixel, given the spread ``check.scale
        * s + check.floor + check.depth * depth`` about ``point`` (``s``: their own spread;
        ``depth``: :func:`gap_depth` of the real gaps). Where the network gave no spread (no
        member, or all equal) they are standardised normal draws, so the spread there is the
        floor and the depth term. One member at a time: no temporary the size of the ensemble
        beyond the result."""
        k = members.shape[0]
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: no member there
            z = (members - np.nanmean(members, axis=0)).astype(np.float32, copy=False)
        ss = np.zeros(point.shape, np.float32)
        for i in range(k):
            ss += np.nan_to_num(z[i]) ** 2
        own = np.sqrt(ss / max(k - 1, 1))
        good = np.isfinite(members).all(0) & (own > 0)
        inv = np.where(good, 1.0 / np.where(good, own, 1.0), 0.0).astype(np.float32)
        sigma = check.scale * own + check.floor
        if depth is not None:
            sigma = sigma + check.depth * depth
        sigma = sigma.astype(np.float32)
        need = np.isfinite(point) & ~good
        draws = None
        if need.any():
            draws = np.random.default_rng(seed).standard_normal((k, int(need.sum())))
            draws = ((draws - draws.mean(0)) / draws.std(0, ddof=1)).astype(np.float32)
        for i in range(k):
            zi = np.nan_to_num(z[i]) * inv
            if draws is not None:
                zi[need] = draws[i]
            z[i] = point + sigma * zi  # NaN where the point is
        return z


class Checked(Filler):
    """The guard's combination with the weights of a check made elsewhere: a lazy fill checks
    once, on a window of the archive (:func:`xgenfill.lazy.inpaint_lazy`), and combines every
    chunk with the same weights."""

    name = "auto"

    def __init__(self, guard: Guarded, check: Check) -> None:
        self.guard, self.check = guard, check
        self.weights_hash, self.meta = guard.weights_hash, guard.meta

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return self.guard.stochastic

    @property
    def has_point_estimate(self) -> bool:
        return True

    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        return self.guard.combine(cube, self.check, n_samples, seed)
