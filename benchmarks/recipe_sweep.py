#!/usr/bin/env python
"""The fit recipe's training options swept on one benchmark case, the same held-out pixels
for every fit: learning rate, steps, batch size, share of validation dates and seeds of
``train(da)`` (fine-tuned from the pretrained weights where the recipe does that), each scored
inside the recipe's check.

    python benchmarks/recipe_sweep.py --case C --lr 5e-4 1e-3 2e-3 --steps 700 --seeds 0 1
    python benchmarks/recipe_sweep.py --case C --batch-sizes 16 48 --val-fractions 0.1 0.02

Writes a Markdown and a JSON table (see ``recipe_variants.py`` for the columns).
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import write_record  # noqa: E402  (same folder)
from recipe_variants import fit, ratios, score, start, table  # noqa: E402  (same folder)
from run_benchmarks import CASES  # noqa: E402  (same folder)
from xgenfill.models.guard import CLASSICAL, Guarded  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", choices=list(CASES), default="C")
    p.add_argument("--lr", type=float, nargs="+", default=[2e-3])
    p.add_argument("--steps", type=int, nargs="+", default=[700])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16])
    p.add_argument("--val-fractions", type=float, nargs="+", default=[0.1])
    p.add_argument("--inits", nargs="+", choices=["auto", "scratch"], default=["auto"],
                   help="auto: train()'s default start; scratch: a residual network from "
                        "scratch (what the default does for a variable with no pretrained "
                        "family)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    import torch

    when, da, holdout, train_on, extra = start(args.case)
    specs, fit_s = {"dineof": "dineof", "anomaly": "anomaly"}, {}
    for init, lr, steps, bs, vf, seed in itertools.product(
            args.inits, args.lr, args.steps, args.batch_sizes, args.val_fractions, args.seeds):
        label = f"lr {lr:g}, {steps} steps, seed {seed}"
        if args.batch_sizes != [16] or args.val_fractions != [0.1]:
            label = f"lr {lr:g}, {steps} steps, batch {bs}, validation {vf:g}, seed {seed}"
        start_from = {} if init == "auto" else {"init": None, "residual": True}
        if len(args.inits) > 1 or init != "auto":
            label = f"{init}, {label}"
        net, fit_s[label] = fit(label, train_on, extra, max_steps=steps, lr=lr, seed=seed,
                                batch_size=bs, val_fraction=vf, **start_from)
        specs[label] = Guarded(net, CLASSICAL)
    rows, preds, truth, blocks = score(da, holdout, extra, specs)
    ratios(rows, preds, truth, blocks)
    for r in rows:
        r["fit_s"] = fit_s.get(r["variant"], 0.0)
    meta = {"date": when, "machine": platform.platform(), "torch": torch.__version__,
            "torch_threads": 1, "case": args.case, "lr": args.lr, "steps": args.steps,
            "seeds": args.seeds, "inits": args.inits, "batch_sizes": args.batch_sizes,
            "val_fractions": args.val_fractions}
    print(write_record(args.out, f"recipe-sweep-{when}-{args.case}",
                       f"fit recipe sweep {when}", meta, rows,
                       f"Case {args.case}, the recipe (`train(da, lr=..., max_steps=..., "
                       f"seed=...)` + the check)\n\n" + table(rows)))


if __name__ == "__main__":
    main()
