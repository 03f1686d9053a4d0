#!/usr/bin/env python
"""Variants of the fit recipe (``train(da)`` + ``inpaint(da, network=model)``) on the same
held-out pixels, to see which lever could take it from 0.93x to 0.90x of the best classical
fill on cases A and C.

    python benchmarks/recipe_variants.py --case C [--steps 700] [--out benchmarks/results]

Every network is trained once on the case's data with the held-out pixels removed (so
``validate`` need not refit it) and scored inside the recipe's check (``Guarded``) on the
benchmark's pixels, beside DINEOF and the anomaly fill:

- ``recipe``: the recipe as shipped (seed 0), and ``recipe seed 1``;
- ``mean of 2 seeds``: the mean of the two fitted networks' point estimates (a deep ensemble);
- ``flips``: the seed-0 network's point estimate averaged over the four flips of the field
  (test-time augmentation), and the same for a network trained with ``augment=True``;
- ``+ fitted VAE``: a VAE fitted the same way, as one more candidate of the check;
- ``check on validation dates``: the check hides pixels only on the dates the network was not
  trained on (is the check fooled by a network that has seen its pixels?);
- ``mean of N seeds`` (``--seeds N``, N > 2): a deeper ensemble of the recipe's network;
- ``window 12, residual, from scratch``: a network that sees twelve dates on each side (a year
  of a monthly record) and corrects the anomaly fill, trained from scratch with the guides and
  DINEOF's reconstruction;
- ``ceiling: weights fitted on the scored pixels``: not a method (it sees the truth it is
  scored on) but the best any check's weights could do with the recipe's network and the
  classical fills, and with every fitted diffusion network besides: where it is above a
  target, no rule for the check reaches it and only better candidates can.

Writes a Markdown and a JSON table (RMSE, ratio to the best classical fill with its 90 %
interval over resampled dates, the check's weights).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xgenfill  # noqa: E402
import xgenfill.models.guard as guard  # noqa: E402
import xgenfill.models.training as training  # noqa: E402
from record import stamp, write_record  # noqa: E402  (same folder)
from run_benchmarks import CASES  # noqa: E402  (same folder)
from xgenfill.masks import coverage, transplant_clouds  # noqa: E402
from xgenfill.metrics import rmse_ratio_interval  # noqa: E402
from xgenfill.models.base import Fill, Filler  # noqa: E402
from xgenfill.transforms import TRANSFORMS  # noqa: E402


class MeanOf(Filler):
    """The mean of several fitted networks' point estimates."""

    name = "mean_of_networks"

    def __init__(self, models: list[Filler]) -> None:
        self.models = models
        self.weights_hash, self.meta = models[0].weights_hash, models[0].meta

    @property
    def has_point_estimate(self) -> bool:
        return True

    def fill(self, cube, n_samples=1, seed=0):
        best = np.mean([m.fill(cube, n_samples=1, seed=seed).best() for m in self.models], 0)
        return Fill(samples=best[None], mean=best)


class Flipped(Filler):
    """A network's point estimate averaged over the four flips of the field."""

    name = "flipped"

    def __init__(self, model: Filler) -> None:
        self.model = model
        self.weights_hash, self.meta = model.weights_hash, model.meta

    @property
    def has_point_estimate(self) -> bool:
        return True

    def fill(self, cube, n_samples=1, seed=0):
        total = 0.0
        for axes in ((), (-2,), (-1,), (-2, -1)):
            def flip(a, axes=axes):
                return None if a is None else np.ascontiguousarray(np.flip(a, axes) if axes
                                                                   else a)
            flipped = replace(cube, values=flip(cube.values), ocean=flip(cube.ocean),
                              covariates=flip(cube.covariates))
            total = total + flip(self.model.fill(flipped, n_samples=1, seed=seed).best())
        best = total / 4
        return Fill(samples=best[None], mean=best)


def case_data(case: str):
    """A benchmark case: the field, the benchmark's held-out pixels (the same draw as
    run_benchmarks: transplanted clouds, fraction 0.1, seed 0), the field without them (what
    the networks train on) and validate's extra arguments."""
    da, holdout, extra = CASES[case]()
    if isinstance(holdout, str):
        holdout = xgenfill.validate(da, models=["linear_time"], holdout=holdout, fraction=0.1,
                                    seed=0, **extra).holdout
        holdout = holdout.isel(model=0) if "model" in holdout.dims else holdout
    holdout = holdout.astype(bool)
    return da, holdout, da.where(~holdout), extra


def start(case: str):
    """One torch thread (the records compare fits on one core), the run's stamp, and the
    case's data as :func:`case_data` gives them."""
    import torch

    torch.set_num_threads(1)
    return (stamp(),) + case_data(case)


def fit(label: str, train_on, extra: dict, **options) -> tuple[Filler, float]:
    """``xgenfill.train`` on the field without the held-out pixels (with the case's mask), and
    its seconds. The model is marked as trained without them, so validate() does not refit
    it."""
    t0 = time.perf_counter()
    net = xgenfill.train(train_on, device="cpu", mask=extra.get("mask"), **options)
    net.meta = {**net.meta, "trained_on": "data without the held-out pixels"}
    seconds = time.perf_counter() - t0
    print(f"fit {label}: {seconds:.0f} s", flush=True)
    return net, seconds


def score(da, holdout, extra, specs: dict) -> tuple[list[dict], dict, np.ndarray, np.ndarray]:
    """Every spec on the held-out pixels: rows, predictions and truth (transformed units),
    and each pixel's block."""
    preds, rows = {}, []
    for label, spec in specs.items():
        t0 = time.perf_counter()
        res = xgenfill.validate(da, models=[spec], holdout=holdout, n_samples=1, seed=0, **extra)
        r = res.isel(model=0)
        tf = TRANSFORMS[res.attrs["transform"]]
        with np.errstate(invalid="ignore", divide="ignore"):
            preds[label] = tf.forward(r.prediction.values)
            truth = tf.forward(res.truth.values)
        rows.append({"variant": label, "guard": str(r.guard.values),
                     "fill_s": time.perf_counter() - t0})
        print(f"{label}: {float(r.rmse.sel(space='transformed')):.4f}", flush=True)
    return rows, preds, truth, res.point_block.values


def ratios(rows: list[dict], preds: dict, truth: np.ndarray, blocks: np.ndarray) -> None:
    """Each row's RMSE and ratio to the best classical fill among the specs, on the pixels
    every spec filled, with a 90 % interval over resampled dates."""
    common = np.isfinite(truth) & np.all([np.isfinite(v) for v in preds.values()], axis=0)
    err = {k: float(np.sqrt(np.mean((v[common] - truth[common]) ** 2)))
           for k, v in preds.items()}
    ref = min((n for n in preds if n in guard.CLASSICAL), key=err.get)
    for row in rows:
        ratio, lo, hi = rmse_ratio_interval(preds[row["variant"]][common], preds[ref][common],
                                            truth[common], blocks[common])
        row.update(n=int(common.sum()), rmse=err[row["variant"]], ratio=ratio,
                   ratio_90=[lo, hi], reference=ref)


def ceilings(preds: dict, truth: np.ndarray) -> list[dict]:
    """The convex weights fitted on the scored pixels themselves (see the module docstring),
    of the recipe's network and the classical fills, then of every fitted diffusion network
    and the classical fills; their fills are added to ``preds``."""
    from xgenfill.models.guard import stack_weights

    classical = [n for n in preds if n in guard.CLASSICAL]
    networks = [n for n in preds if n.endswith("network alone")]
    sets = {"ceiling: weights fitted on the scored pixels (seed 0 network)":
            ["seed 0 network alone", *classical],
            "ceiling: the same, every diffusion network": [*networks, *classical]}
    common = np.isfinite(truth) & np.all([np.isfinite(v) for v in preds.values()], axis=0)
    rows = []
    for label, names in sets.items():
        stack = np.stack([preds[n][common] for n in names])
        w = stack_weights(stack, truth[common])
        fill = np.full(truth.shape, np.nan)
        fill[common] = w @ stack
        preds[label] = fill
        rows.append({"variant": label, "guard": ", ".join(
            f"{n}:{x:.3f}" for n, x in zip(names, w)), "fill_s": 0.0})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| variant | n | RMSE | / best classical | 90 % interval (dates resampled) | "
             "check's weights |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['n']} | {r['rmse']:.4f} | {r['ratio']:.3f} | "
                     f"{r['ratio_90'][0]:.3f}-{r['ratio_90'][1]:.3f} | {r['guard']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", choices=list(CASES), default="C")
    p.add_argument("--steps", type=int, default=700)
    p.add_argument("--seeds", type=int, default=2,
                   help="recipe networks fitted with seeds 0, 1, ... for the deep ensemble")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    import torch

    when, da, holdout, train_on, extra = start(args.case)

    val_steps = []  # the validation dates of each fit, in order
    init = training._Source.__init__

    def spy(self, *a, **k):
        init(self, *a, **k)
        val_steps.append(self.val_steps.copy())

    training._Source.__init__ = spy
    nets, fit_s = {}, {}
    for label, model, seed, aug in (("diffusion seed 0", "diffusion", 0, False),
                                    ("diffusion seed 1", "diffusion", 1, False),
                                    ("diffusion augment", "diffusion", 0, True),
                                    ("vae", "vae", 0, False)):
        nets[label], fit_s[label] = fit(label, train_on, extra, model=model,
                                        max_steps=args.steps, seed=seed, augment=aug)
    for seed in range(2, args.seeds):
        nets[f"diffusion seed {seed}"], fit_s[f"diffusion seed {seed}"] = fit(
            f"diffusion seed {seed}", train_on, extra, model="diffusion", max_steps=args.steps,
            seed=seed)
    label = "window 12, residual, from scratch"
    nets[label], fit_s[label] = fit(label, train_on, extra, model="diffusion",
                                    max_steps=args.steps, seed=0, init=None, window=12,
                                    residual=True, guides=True, dineof_guide=True)
    training._Source.__init__ = init
    d0, d1 = nets["diffusion seed 0"], nets["diffusion seed 1"]
    recipes = [nets[f"diffusion seed {seed}"] for seed in range(args.seeds)]
    specs = {
        "dineof": "dineof", "anomaly": "anomaly",
        "recipe": guard.Guarded(d0, guard.CLASSICAL),
        "recipe seed 1": guard.Guarded(d1, guard.CLASSICAL),
        "mean of 2 seeds": guard.Guarded(MeanOf([d0, d1]), guard.CLASSICAL),
        "flips": guard.Guarded(Flipped(d0), guard.CLASSICAL),
        "augment + flips": guard.Guarded(Flipped(nets["diffusion augment"]),
                                         guard.CLASSICAL),
        "+ fitted VAE": guard.Guarded(d0, [nets["vae"], *guard.CLASSICAL]),
        "check on validation dates": guard.Guarded(d0, guard.CLASSICAL),
        label: guard.Guarded(nets[label], guard.CLASSICAL),
        **{f"seed {seed} network alone": net for seed, net in enumerate(recipes)},
        f"{label}: network alone": nets[label],
        **{name: name for name in guard.CLASSICAL if name not in ("dineof", "anomaly")},
    }
    if args.seeds > 2:
        specs[f"mean of {args.seeds} seeds"] = guard.Guarded(MeanOf(recipes), guard.CLASSICAL)
    orig_holdout = guard._holdout

    def on_validation_dates(cube, fraction, seed):
        obs = cube.observed & cube.ocean[None]
        steps = val_steps[0]
        targets = steps[np.argsort(-coverage(obs, cube.ocean)[steps], kind="stable")]
        return transplant_clouds(obs, cube.ocean, fraction, seed, targets=targets, tries=4)

    rows, preds = [], {}
    for label, spec in specs.items():  # one at a time: the last one checks differently
        guard._holdout = on_validation_dates if label.startswith("check on") else orig_holdout
        r, p, truth, blocks = score(da, holdout, extra, {label: spec})
        rows += r
        preds.update(p)
    guard._holdout = orig_holdout
    rows += ceilings(preds, truth)
    ratios(rows, preds, truth, blocks)
    body = (f"Case {args.case}, {args.steps} fit steps per network (fits: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in fit_s.items()) + ")\n\n" + table(rows))
    meta = {"date": when, "machine": platform.platform(), "torch": torch.__version__,
            "torch_threads": 1, "case": args.case, "steps": args.steps,
            "fit_seconds": fit_s}
    print(write_record(args.out, f"recipe-variants-{when}-{args.case}",
                       f"fit recipe variants {when}", meta, rows, body))


if __name__ == "__main__":
    main()
