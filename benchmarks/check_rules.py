#!/usr/bin/env python
"""Other rules for the default's check, replayed on the leave-one-dataset-out benchmark.

    python benchmarks/check_rules.py [--datasets modis_2021 nwa_2018 ...]

For every dataset of ``leave_one_out.py`` the default call is run once (one member: the
weights do not depend on the members), keeping what its check saw (every candidate's fill of
the check's hidden pixels, their truth, their dates or clouds) and what every candidate filled
at the benchmark's held-out pixels. Each rule then turns the check into weights, and the
weighted fill is scored against the best classical fill on the same pixels, as the benchmark
does. The shipped rule (``shrunk_weights``) reproduces the benchmark's ratios exactly.

Rules: ``shipped`` (halves of the check's dates, ``MIN_GAIN`` 1 %); ``MIN_GAIN 3 %``;
``leave one date out`` (the share of the stack chosen date by date instead of by halves);
``bagged`` (stacking weights averaged over 64 resamples of the dates); ``z > 1.64`` (the stack
only where its leave-one-date-out gain exceeds 1.64 standard errors of the per-date gains).
Writes a Markdown and a JSON table.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xgenfill  # noqa: E402
import xgenfill.models.guard as guard  # noqa: E402
import leave_one_out as loo  # noqa: E402  (same folder)
from record import stamp, write_record  # noqa: E402  (same folder)
from xgenfill.models.guard import stack_weights  # noqa: E402
from xgenfill.transforms import choose_transform  # noqa: E402

LAMS = np.linspace(0.0, 1.0, 5)


def _best(preds, truth):
    b = np.zeros(preds.shape[0])
    b[int(np.argmin(((preds - truth) ** 2).mean(1)))] = 1.0
    return b


def _blend(lam, full, best):
    w = lam * full + (1 - lam) * best
    return w / w.sum()


def min_gain_rule(gain: float):
    def rule(preds, truth, group):
        old, guard.MIN_GAIN = guard.MIN_GAIN, gain
        try:
            return guard.shrunk_weights(preds, truth, group)[0]
        finally:
            guard.MIN_GAIN = old
    return rule


def _by_date(preds, truth, group):
    """Leave-one-date-out squared errors (dates x LAMS) of the stack shrunk towards the best
    single candidate."""
    keys = np.unique(group)
    se = np.zeros((keys.size, LAMS.size))
    for j, k in enumerate(keys):
        test = group == k
        w, b = stack_weights(preds[:, ~test], truth[~test]), _best(preds[:, ~test], truth[~test])
        for i, lam in enumerate(LAMS):
            se[j, i] = float((((lam * w + (1 - lam) * b) @ preds[:, test] - truth[test]) ** 2)
                             .sum())
    return se


def leave_one_date_out(preds, truth, group):
    full, best = stack_weights(preds, truth), _best(preds, truth)
    if np.unique(group).size < 2:
        return full
    err = _by_date(preds, truth, group).sum(0)
    lam = float(LAMS[int(np.argmin(err))]) if err.min() < (1 - guard.MIN_GAIN) * err[0] else 0.0
    return _blend(lam, full, best)


def bagged(preds, truth, group, n=64):
    keys = np.unique(group)
    if keys.size < 2:
        return stack_weights(preds, truth)
    rng = np.random.default_rng(0)
    where = {k: np.flatnonzero(group == k) for k in keys}
    ws = [stack_weights(preds[:, s], truth[s]) for s in
          (np.concatenate([where[k] for k in rng.choice(keys, keys.size)]) for _ in range(n))]
    return np.mean(ws, 0)


def significant(preds, truth, group, z=1.64):
    full, best = stack_weights(preds, truth), _best(preds, truth)
    if np.unique(group).size < 2:
        return full
    se = _by_date(preds, truth, group)
    i = int(np.argmin(se.sum(0)))
    gain = se[:, 0] - se[:, i]
    lam = LAMS[i] if i > 0 and gain.sum() > z * np.sqrt(gain.size) * gain.std(ddof=1) else 0.0
    return _blend(lam, full, best)


RULES = {"shipped": min_gain_rule(guard.MIN_GAIN), "MIN_GAIN 3 %": min_gain_rule(0.03),
         "leave one date out": leave_one_date_out, "bagged": bagged,
         "z > 1.64": significant}


def replay(name: str) -> dict:
    """What the check saw and what every candidate filled, for one dataset."""
    seen = []
    original = guard.shrunk_weights

    def spy(preds, truth, group):
        seen.append((preds.copy(), truth.copy(), group.copy()))
        return original(preds, truth, group)

    loader, _, spec = loo.DATASETS[name]
    net, _ = loo.network_for(spec, ROOT / "benchmarks" / "folds")
    da, holdout, mask = loader()
    models, classical = loo.models_for(da, net, guard.HOLDOUT)
    kept = []
    check = guard.Guarded.check

    def keep(self, cube, n_samples=1, seed=0):
        out = check(self, cube, n_samples, seed)
        kept.append([m.name for m in out.models])
        return out

    guard.shrunk_weights, guard.Guarded.check = spy, keep
    try:
        res = xgenfill.validate(da, models=models, holdout=holdout, mask=mask, n_samples=1,
                                seed=0)
    finally:
        guard.shrunk_weights, guard.Guarded.check = original, check
    to_t = choose_transform(da, np.empty(0), "auto").forward
    names = ["auto"] + [str(m) for m in res.model.values[1:]]
    return {"check": seen[0], "kept": kept[0], "truth": to_t(res.truth.values),
            "pred": {n: to_t(res.prediction.values[i]) for i, n in enumerate(names)},
            "classical": classical, "network": names[-1]}


def score(run: dict, rule) -> float:
    preds, truth, group = run["check"]
    w = rule(preds, truth, group)
    fills = np.stack([run["pred"][run["network"] if n not in run["classical"] else n]
                      for n in run["kept"]])
    finite = np.isfinite(fills)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = (np.where(finite, fills, 0) * w[:, None]).sum(0) / (finite * w[:, None]).sum(0)
    t = run["truth"]
    rmse = {n: np.sqrt(np.nanmean((run["pred"][n] - t) ** 2)) for n in run["classical"]}
    ref = run["pred"][min(rmse, key=rmse.get)]
    both = np.isfinite(point) & np.isfinite(ref) & np.isfinite(t)
    return float(np.sqrt(np.mean((point[both] - t[both]) ** 2)
                         / np.mean((ref[both] - t[both]) ** 2)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(loo.DATASETS),
                   choices=list(loo.DATASETS))
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    import torch

    when = stamp()
    runs = {}
    for name in args.datasets:
        runs[name] = replay(name)
        print(f"{name}: replayed", flush=True)
    rows = [{"rule": r, **{n: score(runs[n], f) for n in args.datasets}} for r, f in
            RULES.items()]
    lines = ["| rule | " + " | ".join(args.datasets) + " | worst |",
             "|---|" + "---|" * (len(args.datasets) + 1)]
    for r in rows:
        vals = [r[n] for n in args.datasets]
        lines.append(f"| {r['rule']} | " + " | ".join(f"{v:.3f}" for v in vals)
                     + f" | {max(vals):.3f} |")
    meta = {"date": when, "machine": platform.platform(), "torch": torch.__version__,
            "datasets": args.datasets, "min_gain": guard.MIN_GAIN, "holdout": guard.HOLDOUT}
    print(write_record(args.out, f"check-rules-{when}", f"check rules replayed {when}", meta,
                       rows, "RMSE / best classical fill on the same pixels\n\n"
                       + "\n".join(lines)))


if __name__ == "__main__":
    main()
