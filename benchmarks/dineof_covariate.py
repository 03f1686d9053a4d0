#!/usr/bin/env python
"""The fit recipe with a cross-fitted DINEOF reconstruction as a covariate: does the network
gain from DINEOF's long-range temporal modes, which its window of neighbouring dates cannot
see?

    python benchmarks/dineof_covariate.py --case C [--steps 700] [--block 4]

The covariate is DINEOF of the field without the benchmark's held-out pixels, cross-fitted so
that no observed pixel sees its own value: the observed pixels are split into 5 folds of
``block`` x ``block`` squares drawn at random on every date, and each fold takes the values of
DINEOF run with that fold hidden. Elsewhere (gaps, held-out pixels) it is DINEOF of everything
observed. The pretrained chl network is fine-tuned with guides and this covariate (its channels
start at zero weight, ``NeuralFiller.with_covariates``), beside the recipe as shipped, the same
number of steps, one thread; both are scored alone and through the default's check on the
benchmark's pixels. Writes a Markdown and a JSON table.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xgenfill  # noqa: E402
import xgenfill.models.guard as guard  # noqa: E402
from record import stamp, write_record  # noqa: E402  (same folder)
from recipe_variants import case_data, fit, ratios, score, table  # noqa: E402  (same folder)
from run_benchmarks import CASES  # noqa: E402  (same folder)
from xgenfill.models.registry import get_filler  # noqa: E402

FOLDS = 5


def crossfit_dineof(train_on, mask, block: int, seed: int = 0):
    """DINEOF of ``train_on`` where it is missing, and at each observed pixel DINEOF's value
    with that pixel's fold hidden."""
    obs = np.isfinite(train_on.values)
    nt, ny, nx = obs.shape
    fold = np.random.default_rng(seed).integers(0, FOLDS, (nt, -(-ny // block), -(-nx // block)))
    fold = np.repeat(np.repeat(fold, block, 1), block, 2)[:, :ny, :nx]
    cov = np.where(obs, np.nan, xgenfill.inpaint(train_on, model="dineof", mask=mask).values)
    for k in range(FOLDS):
        part = obs & (fold == k)
        cov[part] = xgenfill.inpaint(train_on.where(~part), model="dineof", mask=mask).values[part]
    return train_on.copy(data=cov.astype(train_on.dtype)).rename(f"dineof_{train_on.name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", choices=list(CASES), default="C")
    p.add_argument("--steps", type=int, default=700)
    p.add_argument("--block", type=int, default=4, help="side of the folds' squares (pixels)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    when = stamp()
    da, holdout, train_on, extra = case_data(args.case)
    t0 = time.perf_counter()
    cov = crossfit_dineof(train_on, extra.get("mask"), args.block)
    cov_s = time.perf_counter() - t0
    plain, plain_s = fit("recipe", train_on, extra, model="diffusion", max_steps=args.steps)
    init = get_filler("diffusion", variable="chl", device="cpu")
    with_cov, cov_fit_s = fit("with DINEOF", train_on, extra, model="diffusion", init=init,
                              guides=True, covariates=cov, max_steps=args.steps)
    rows, preds = [], {}
    for label, spec, more in (
            ("dineof", "dineof", {}), ("anomaly", "anomaly", {}),
            ("network alone", plain, {}),
            ("recipe", guard.Guarded(plain, guard.CLASSICAL), {}),
            ("network + DINEOF covariate alone", with_cov, {"covariates": cov}),
            ("recipe + DINEOF covariate", guard.Guarded(with_cov, guard.CLASSICAL),
             {"covariates": cov})):
        r, pr, truth, blocks = score(da, holdout, {**extra, **more}, {label: spec})
        rows += r
        preds.update(pr)
    ratios(rows, preds, truth, blocks)
    body = (f"Case {args.case}, {args.steps} fit steps per network (fits: recipe {plain_s:.0f} s, "
            f"with the covariate {cov_fit_s:.0f} s; cross-fitted DINEOF {cov_s:.0f} s, "
            f"{FOLDS} folds of {args.block}-px squares)\n\n" + table(rows))
    meta = {"date": when, "machine": platform.platform(), "torch": torch.__version__,
            "torch_threads": 1, "case": args.case, "steps": args.steps, "block": args.block,
            "seconds": {"crossfit_dineof": cov_s, "fit_recipe": plain_s,
                        "fit_with_covariate": cov_fit_s}}
    print(write_record(args.out, f"dineof-covariate-{when}-{args.case}",
                       f"fit recipe with a DINEOF covariate {when}", meta, rows, body))


if __name__ == "__main__":
    main()
