#!/usr/bin/env python
"""Other rules for the default's check, replayed on the leave-one-dataset-out benchmark.

    python benchmarks/check_rules.py [--datasets modis_2021 nwa_2018 ...] [--seeds 0 1 2]

For every dataset of ``leave_one_out.py`` the default call is run once (one member: the
weights do not depend on the members), keeping what its check saw (every candidate's fill of
the check's hidden pixels, their truth, their dates or clouds) and what every candidate filled
at the benchmark's held-out pixels. Each rule then turns the check into weights, and the
weighted fill is scored against the best classical fill on the same pixels, as the benchmark
does. The shipped rule reproduces the benchmark's ratios exactly: ``shrunk_weights`` on
several dates, ``choose_one`` (the best single candidate) on a single image.

Rules applied to every dataset: ``stacked on single images too`` (the rule shipped before
2026-12-08: ``shrunk_weights`` everywhere, a single image split by cloud); ``MIN_GAIN 3 %``;
``leave one date out`` (the share of the stack chosen date by date instead of by halves);
``bagged`` (stacking weights averaged over 64 resamples of the dates); ``z > 1.64`` (the stack
only where its leave-one-date-out gain exceeds 1.64 standard errors of the per-date gains);
``candidates within 1.25x`` and ``1.5x`` (the shipped rule on the candidates whose hidden-pixel
RMSE is within that factor of the best one's).

Rules that see more than the shipped check sees: ``3 draws pooled`` (the stack fitted on
three independent draws of the check's hidden clouds together); ``by distance`` (weights of
their own for the pixels within 4 pixels of an observation and for those further in, where
that holds up across the halves of the dates); both together. Rules for single images only
(the shipped rule elsewhere): ``single: z > 1.64``, ``single: 3 draws pooled`` and both.

``--seeds`` replays ``leave_one_out.py --seed`` for each seed: a rule that wins with one draw
of the scored clouds and loses with another is not a better rule. The record has a table per
seed and a summary: each rule's ratio pooled over the seeds (squared errors summed) and how
many runs it scored above 1.00. Writes a Markdown and a JSON table.
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
        w = stack_weights(preds[:, ~test], truth[~test])
        b = guard.choose_one(preds[:, ~test], truth[~test])
        for i, lam in enumerate(LAMS):
            se[j, i] = float((((lam * w + (1 - lam) * b) @ preds[:, test] - truth[test]) ** 2)
                             .sum())
    return se


def leave_one_date_out(preds, truth, group):
    full, best = stack_weights(preds, truth), guard.choose_one(preds, truth)
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
    full, best = stack_weights(preds, truth), guard.choose_one(preds, truth)
    if np.unique(group).size < 2:
        return full
    se = _by_date(preds, truth, group)
    i = int(np.argmin(se.sum(0)))
    gain = se[:, 0] - se[:, i]
    lam = LAMS[i] if i > 0 and gain.sum() > z * np.sqrt(gain.size) * gain.std(ddof=1) else 0.0
    return _blend(lam, full, best)


def within(ratio: float):
    """The shipped rule on the candidates whose hidden-pixel RMSE is within ``ratio`` of the
    best one's (a candidate far behind gets no weight however it correlates)."""
    def rule(preds, truth, group):
        rmse = np.sqrt(((preds - truth) ** 2).mean(1))
        keep = rmse <= ratio * rmse.min()
        w = np.zeros(preds.shape[0])
        w[keep] = guard.shrunk_weights(preds[keep], truth, group)[0]
        return w
    return rule


RULES = {"stacked on single images too": min_gain_rule(guard.MIN_GAIN),
         "MIN_GAIN 3 %": min_gain_rule(0.03),
         "leave one date out": leave_one_date_out, "bagged": bagged,
         "z > 1.64": significant, "candidates within 1.25x": within(1.25),
         "candidates within 1.5x": within(1.5)}
NEAR = 4.0  # pixels: a hidden or scored pixel closer than this to an observation is "near"
DRAWS = 3  # draws of the check's hidden clouds pooled by the rules that pool them


def near_observations(observed: np.ndarray) -> np.ndarray:
    """(T, Y, X): True where an observation of the same step lies closer than NEAR pixels."""
    from scipy import ndimage

    out = np.zeros(observed.shape, bool)
    for t in range(observed.shape[0]):
        if observed[t].any():
            out[t] = ndimage.distance_transform_edt(~observed[t]) < NEAR
    return out


def _pool(run: dict, draws: int):
    """The check's hidden pixels of the first ``draws`` draws together (clouds of a single
    image numbered apart per draw)."""
    parts = run["draws"][:draws]
    group, offset = [], 0
    for d in parts:
        group.append(d["group"] + offset if d["single"] else d["group"])
        offset += int(d["group"].max()) + 1 if d["single"] else 0
    return (np.concatenate([d["preds"] for d in parts], 1),
            np.concatenate([d["truth"] for d in parts]), np.concatenate(group),
            np.concatenate([d["near"] for d in parts]))


def by_distance(preds, truth, group, near, gain=0.01, min_n=200):
    """Weights fitted apart near observations and further in, kept where that lowers the
    out-of-half error by ``gain`` (the halves of shrunk_weights): (2, K)."""
    full = guard.shrunk_weights(preds, truth, group)[0]
    keys = np.unique(group)
    if keys.size < 2 or min(near.sum(), (~near).sum()) < min_n:
        return np.stack([full, full])
    half = np.isin(group, keys[::2])
    err_all = err_split = 0.0
    for fit_on in (half, ~half):
        test = ~fit_on
        w_all = guard.shrunk_weights(preds[:, fit_on], truth[fit_on], group[fit_on])[0]
        err_all += float(((w_all @ preds[:, test] - truth[test]) ** 2).sum())
        for part in (near, ~near):
            f, t = fit_on & part, test & part
            w = guard.shrunk_weights(preds[:, f], truth[f], group[f])[0] if f.sum() >= 20 \
                else w_all
            err_split += float(((w @ preds[:, t] - truth[t]) ** 2).sum())
    if err_split >= (1 - gain) * err_all:
        return np.stack([full, full])
    return np.stack([guard.shrunk_weights(preds[:, p], truth[p], group[p])[0]
                     for p in (near, ~near)])


# rules that see more than the check's first draw, or know whether it saw one image:
# (run) -> (2, K) weights (near, further)
POOLED_RULES = {
    "shipped": lambda run: np.stack([_single_or_shipped(
        run, lambda p, t, g: guard.choose_one(p, t))] * 2),
    f"{DRAWS} draws pooled": lambda run: np.stack([guard.shrunk_weights(
        *_pool(run, DRAWS)[:3])[0]] * 2),
    f"by distance ({NEAR:g} px)": lambda run: by_distance(*_pool(run, 1)),
    f"{DRAWS} draws, by distance": lambda run: by_distance(*_pool(run, DRAWS)),
    # single images only (nine or ten clouds decide the weights); the shipped rule elsewhere
    "single: z > 1.64": lambda run: np.stack([_single_or_shipped(run, significant)] * 2),
    f"single: {DRAWS} draws pooled": lambda run: np.stack([_single_or_shipped(
        run, lambda *a: guard.shrunk_weights(*a)[0], DRAWS)] * 2),
    f"single: {DRAWS} draws, z > 1.64": lambda run: np.stack([_single_or_shipped(
        run, significant, DRAWS)] * 2),
}


def _single_or_shipped(run: dict, rule, draws: int = 1) -> np.ndarray:
    """``rule`` on the first ``draws`` draws pooled where the check saw a single image,
    ``shrunk_weights`` on what the check saw elsewhere."""
    if not run["draws"][0]["single"]:
        return guard.shrunk_weights(*run["check"])[0]
    return rule(*(_pool(run, draws)[:3] if draws > 1 else run["check"]))


def _groups(hold: np.ndarray) -> np.ndarray:
    """Each hidden pixel's group for ``shrunk_weights``: its time step, or its cloud on a
    single image (how the rule before 2026-12-08 split a single image)."""
    from scipy import ndimage

    if hold.shape[0] == 1:
        labels, _ = ndimage.label(hold[0])
        return labels[hold[0]]
    return np.nonzero(hold)[0]


def _draw(check_cube, models, seed: int) -> dict:
    """One draw of the check's hidden clouds on ``check_cube``, filled by ``models`` as the
    check fills it: predictions, truth, groups and nearness of the pixels all of them
    filled."""
    from dataclasses import replace

    hold = guard._holdout(check_cube, guard.HOLDOUT, seed)
    hcube = replace(check_cube, values=np.where(hold, np.nan, check_cube.values),
                    steps=hold.any((1, 2)))
    preds = np.stack([m.fill(hcube, n_samples=1, seed=seed).best()[hold] for m in models])
    ok = np.isfinite(preds).all(0)
    obs = check_cube.observed & check_cube.ocean[None]
    return {"preds": preds[:, ok], "truth": check_cube.values[hold][ok],
            "group": _groups(hold)[ok], "near": near_observations(obs & ~hold)[hold][ok],
            "single": hold.shape[0] == 1}


def replay(name: str, seed: int = 0) -> dict:
    """What the check saw (its draw of hidden clouds, and ``DRAWS - 1`` further draws) and
    what every candidate filled, for one dataset."""
    loader, _, spec = loo.DATASETS[name]
    net, _ = loo.network_for(spec, ROOT / "benchmarks" / "folds")
    da, holdout, mask = loader()
    models, classical = loo.models_for(da, net, guard.HOLDOUT)
    kept = []
    check = guard.Guarded.check

    def keep(self, cube, n_samples=1, seed=0):
        out = check(self, cube, n_samples, seed)
        kept.append([m.name for m in out.models])
        # draw 0 has the check's seed: the very pixels and fills the check weighed
        draws.extend(_draw(cube, out.models, seed + d) for d in range(DRAWS))
        return out

    draws: list[dict] = []

    guard.Guarded.check = keep
    try:
        res = xgenfill.validate(da, models=models, holdout=holdout, mask=mask, n_samples=1,
                                seed=seed)
    finally:
        guard.Guarded.check = check
    to_t = choose_transform(da, np.empty(0), "auto").forward
    names = ["auto"] + [str(m) for m in res.model.values[1:]]
    held = res.holdout.values
    obs = np.isfinite(da.values) & ~held
    if obs.ndim == 2:
        obs, held = obs[None], held[None]
    first = draws[0]
    return {"check": (first["preds"], first["truth"], first["group"]), "kept": kept[0],
            "truth": to_t(res.truth.values), "draws": draws,
            "near": near_observations(obs)[held],
            "pred": {n: to_t(res.prediction.values[i]) for i, n in enumerate(names)},
            "classical": classical, "network": names[-1]}


def _squared_errors(run: dict, point: np.ndarray) -> tuple[float, float]:
    """Summed squared errors of ``point`` and of the best classical fill, on the pixels both
    filled."""
    t = run["truth"]
    rmse = {n: np.sqrt(np.nanmean((run["pred"][n] - t) ** 2)) for n in run["classical"]}
    ref = run["pred"][min(rmse, key=rmse.get)]
    both = np.isfinite(point) & np.isfinite(ref) & np.isfinite(t)
    return (float(np.sum((point[both] - t[both]) ** 2)),
            float(np.sum((ref[both] - t[both]) ** 2)))


def score(run: dict, rule, pooled: bool = False) -> tuple[float, float]:
    """The rule's weighted fill: its summed squared error and the best classical fill's."""
    if pooled:
        w2 = rule(run)
    else:
        w2 = np.stack([rule(*run["check"])] * 2)
    w = np.where(run["near"][None], w2[0][:, None], w2[1][:, None])  # (K, pixels)
    fills = np.stack([run["pred"][run["network"] if n not in run["classical"] else n]
                      for n in run["kept"]])
    finite = np.isfinite(fills)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = (np.where(finite, fills, 0) * w).sum(0) / (finite * w).sum(0)
    return _squared_errors(run, point)


def _table(datasets: list[str], rows: list[dict]) -> str:
    lines = ["| rule | " + " | ".join(datasets) + " | worst |",
             "|---|" + "---|" * (len(datasets) + 1)]
    for r in rows:
        vals = [r[n] for n in datasets]
        lines.append(f"| {r['rule']} | " + " | ".join(f"{v:.3f}" for v in vals)
                     + f" | {max(vals):.3f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(loo.DATASETS),
                   choices=list(loo.DATASETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="leave_one_out.py's --seed: the scored clouds and the check's draws")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    import torch

    when = stamp()
    rules = [(r, f, False) for r, f in RULES.items()]
    rules += [(r, f, True) for r, f in POOLED_RULES.items()]
    sse: dict = {}  # (rule, dataset, seed) -> (rule's, best classical's) squared errors
    body = []
    for seed in args.seeds:
        for name in args.datasets:
            run = replay(name, seed)
            for r, f, pooled in rules:
                sse[r, name, seed] = score(run, f, pooled)
            # the shipped rule must give what the default call gave
            auto = _squared_errors(run, run["pred"]["auto"])
            if abs(auto[0] / auto[1] - sse["shipped", name, seed][0] / auto[1]) > 1e-6:
                print(f"warning: {name} seed {seed}: the replay of the shipped rule differs "
                      "from the default call", flush=True)
            print(f"{name} seed {seed}: replayed", flush=True)
        rows = [{"rule": r, **{n: np.sqrt(sse[r, n, seed][0] / sse[r, n, seed][1])
                               for n in args.datasets}} for r, _, _ in rules]
        body.append(f"### seed {seed}\n\n" + _table(args.datasets, rows))
    summary = []
    for r, _, _ in rules:
        row = {"rule": r}
        for n in args.datasets:
            a, b = (sum(sse[r, n, s][i] for s in args.seeds) for i in (0, 1))
            row[n] = float(np.sqrt(a / b))
            row[f"{n} above 1.00"] = sum(int(sse[r, n, s][0] > sse[r, n, s][1] * (1 + 1e-9))
                                         for s in args.seeds)
        summary.append(row)
    lines = ["| rule | " + " | ".join(args.datasets) + " | runs above 1.00 |",
             "|---|" + "---|" * (len(args.datasets) + 1)]
    for row in summary:
        above = sum(row[f"{n} above 1.00"] for n in args.datasets)
        lines.append(f"| {row['rule']} | " + " | ".join(f"{row[n]:.3f}" for n in args.datasets)
                     + f" | {above} of {len(args.datasets) * len(args.seeds)} |")
    text = (f"RMSE / best classical fill on the same pixels; seeds {args.seeds}\n\n"
            "## Pooled over the seeds\n\n" + "\n".join(lines) + "\n\n" + "\n\n".join(body))
    per_seed = [{"rule": r, "dataset": n, "seed": s, "sse": v[0], "sse_best_classical": v[1],
                 "ratio": float(np.sqrt(v[0] / v[1]))} for (r, n, s), v in sse.items()]
    meta = {"date": when, "machine": platform.platform(), "torch": torch.__version__,
            "datasets": args.datasets, "min_gain": guard.MIN_GAIN, "holdout": guard.HOLDOUT,
            "seeds": args.seeds, "near_px": NEAR, "draws": DRAWS}
    print(write_record(args.out, f"check-rules-{when}", f"check rules replayed {when}", meta,
                       summary + per_seed, text))


if __name__ == "__main__":
    main()
