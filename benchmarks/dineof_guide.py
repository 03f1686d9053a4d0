#!/usr/bin/env python
"""The fit recipe with and without DINEOF's reconstruction as an input of the network
(``train(da, dineof_guide=True)``): does the network gain from DINEOF's long-range temporal
modes, which its window of neighbouring dates cannot see?

    python benchmarks/dineof_guide.py --case C [--steps 700] [--seed 0]

Both networks are fine-tuned from the pretrained chl model with guides (``train``'s default),
the same number of steps and seed, one thread, on the case without the benchmark's held-out
pixels; both are scored alone and through the default's check on those pixels, beside DINEOF
and the anomaly fill. The guide is cross-fitted at observed pixels
(:func:`xgenfill.models.dineof.dineof_guide`), in training and at every fill. Writes a
Markdown and a JSON table.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xgenfill.models.guard as guard  # noqa: E402
from record import write_record  # noqa: E402  (same folder)
from recipe_variants import fit, ratios, score, start, table  # noqa: E402  (same folder)
from run_benchmarks import CASES  # noqa: E402  (same folder)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", choices=list(CASES), default="C")
    p.add_argument("--steps", type=int, default=700)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only-guide", action="store_true",
                   help="fit only the network with the guide (the recipe's row from a record)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    import torch

    when, da, holdout, train_on, extra = start(args.case)
    specs, fit_s = {"dineof": "dineof", "anomaly": "anomaly"}, {}
    for label, guide in (("", False), (" + DINEOF guide", True)):
        if args.only_guide and not guide:
            continue
        net, fit_s[f"network{label}"] = fit(f"network{label}", train_on, extra,
                                            model="diffusion", max_steps=args.steps,
                                            seed=args.seed, dineof_guide=guide)
        specs[f"network{label} alone"] = net
        specs[f"recipe{label}"] = guard.Guarded(net, guard.CLASSICAL)
    rows, preds, truth, blocks = score(da, holdout, extra, specs)
    ratios(rows, preds, truth, blocks)
    body = (f"Case {args.case}, {args.steps} fit steps per network, seed {args.seed} (fits: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in fit_s.items()) + ")\n\n" + table(rows))
    meta = {"date": when, "machine": platform.platform(), "torch": torch.__version__,
            "torch_threads": 1, "case": args.case, "steps": args.steps, "seed": args.seed,
            "fit_seconds": fit_s}
    print(write_record(args.out, f"dineof-guide-{when}-{args.case}",
                       f"fit recipe with DINEOF's reconstruction as input {when}", meta, rows,
                       body))


if __name__ == "__main__":
    main()
