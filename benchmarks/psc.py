#!/usr/bin/env python
"""Phytoplankton size classes filled with chlorophyll: a semi-synthetic benchmark.

    python benchmarks/psc.py [--fit-steps 600] [--n-samples 8] [--out benchmarks/results]

No gridded size-class product is reachable here, so the fractions are made from real
chlorophyll with the three-component abundance model of Brewin et al. (2010), whose
parameters are modulated by smooth random fields (variability that chlorophyll does not
explain), and given real cloud gaps:

- chlorophyll: ESA OC-CCI v6.0 monthly chl-a around Oahu (the bundled ``oahu`` sample, 300
  months, 17 x 21 at 4 km; its own gaps, about 23 % of the sea pixels);
- the model (Brewin et al. 2010, Remote Sens. Environ. 114, Eq. 1-4 with their Table 2
  parameters): ``C_pn = Cm_pn (1 - exp(-S_pn C))``, ``C_p = Cm_p (1 - exp(-S_p C))`` with
  ``Cm_pn = 1.057``, ``S_pn = 0.851``, ``Cm_p = 0.107``, ``S_p = 6.801``; fractions
  ``pico = C_p / C``, ``nano = (C_pn - C_p) / C``, ``micro = (C - C_pn) / C``;
- modulation: the initial slopes ``D = Cm S`` (the fraction at C -> 0) and the rates ``S``
  of both components vary as ``D_pn = sigmoid(logit(0.9) + 0.3 g1)``, ``D_p = D_pn
  sigmoid(logit(0.81) + 0.3 g2)``, ``S = S0 exp(0.15 g)``, with ``g`` independent Gaussian
  random fields smoothed over 3 months and 4 pixels (unit variance); fractions are then kept
  >= 1e-3 and divided by their sum;
- size-class gaps: chlorophyll's own gaps, plus real MODIS daily cloud masks (PhytoFit 2015
  sample, random 17 x 21 crops of ocean, one date per month) so that about 60 % of the
  size-class sea pixels are missing while chlorophyll keeps only its own gaps.

The truth is known wherever chlorophyll was observed: every method is scored there, on the
size-class gaps. Rows (same run, same pixels): per-fraction spatial and temporal
interpolation, the anomaly fill and DINEOF on the centred log-ratio fields, multivariate
DINEOF (the log-ratio fields and standardised log10 chlorophyll side by side in one EOF
basis), a per-date fit of the abundance model to the observed fractions applied to
chlorophyll (chlorophyll's own gaps filled by the anomaly fill first), that regression plus
its residuals interpolated (anomaly fill and spatial interpolation of the log-ratio
residuals), and the diffusion networks of :func:`xgenfill.train_fractions` without and with
chlorophyll as a covariate. Reported: mean fraction RMSE, per-fraction RMSE, log-ratio RMSE,
CRPS of the members, the largest departure of any member from a sum of 1, whether observed
values are kept bit for bit, seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xgenfill  # noqa: E402
from record import stamp, write_record  # noqa: E402  (same folder)
from xgenfill.fractions import close, from_log_ratios  # noqa: E402
from xgenfill.metrics import crps_ensemble  # noqa: E402

NAMES = ["pico", "nano", "micro"]
BREWIN2010 = {"Cm_pn": 1.057, "S_pn": 0.851, "Cm_p": 0.107, "S_p": 6.801}


def smooth_field(shape: tuple[int, ...], rng: np.random.Generator,
                 sigma: tuple[float, ...]) -> np.ndarray:
    """A Gaussian random field of unit variance, smoothed over ``sigma`` (steps, pixels)."""
    g = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (g - g.mean()) / g.std()


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _logit(p):
    return np.log(p / (1 - p))


def brewin(chl: np.ndarray, d_pn, s_pn, d_p, s_p) -> np.ndarray:
    """Fractions (3, ...) of the three-component model with initial slopes ``d`` and rates
    ``s`` (``Cm = d / s``); kept >= 1e-3 and summing to 1."""
    c_pn = d_pn / s_pn * (1 - np.exp(-s_pn * chl))
    c_p = d_p / s_p * (1 - np.exp(-s_p * chl))
    f = np.stack([c_p / chl, (c_pn - c_p) / chl, (chl - c_pn) / chl])
    f = np.clip(f, 1e-3, None)
    return f / f.sum(0)


def make_case(seed: int = 0, target_missing: float = 0.6) -> dict:
    rng = np.random.default_rng(seed)
    chl = xgenfill.open_sample("oahu").chlor_a.load()
    c = chl.values.astype(np.float64)
    nt, ny, nx = c.shape
    sea = np.isfinite(c).any(0)
    g = [smooth_field(c.shape, rng, (3.0, 4.0, 4.0)) for _ in range(4)]
    b = BREWIN2010
    d_pn = _sigmoid(_logit(b["Cm_pn"] * b["S_pn"]) + 0.3 * g[0])
    d_p = d_pn * _sigmoid(_logit(b["Cm_p"] * b["S_p"] / (b["Cm_pn"] * b["S_pn"])) + 0.3 * g[1])
    s_pn, s_p = b["S_pn"] * np.exp(0.15 * g[2]), b["S_p"] * np.exp(0.15 * g[3])
    with np.errstate(invalid="ignore"):
        truth = brewin(c, d_pn, s_pn, d_p, s_p)  # NaN where chl is missing
    # real clouds: MODIS daily masks of the PhytoFit 2015 sample, crops entirely at sea
    pf = xgenfill.open_sample("phytofit").chl.values
    pf_sea = np.isfinite(pf).any(0)
    pf_obs = np.isfinite(pf)
    corners = [(y, x) for y in range(pf.shape[1] - ny) for x in range(pf.shape[2] - nx)
               if pf_sea[y:y + ny, x:x + nx].all()]
    chl_obs = np.isfinite(c)
    # the size classes keep (1 - target) of the sea: clouds hide target - chl's own share
    want = (target_missing - (1 - chl_obs[:, sea].mean())) / chl_obs[:, sea].mean()
    clouds = np.zeros(c.shape, bool)
    for t in range(nt):
        for _ in range(200):
            d = int(rng.integers(pf.shape[0]))
            y, x = corners[int(rng.integers(len(corners)))]
            cl = ~pf_obs[d, y:y + ny, x:x + nx]
            share = cl.mean()
            if abs(share - want) < 0.35 and 0.02 < share < 0.98:
                break
        clouds[t] = cl
    psc_obs = chl_obs & ~clouds
    ds = xr.Dataset(coords=chl.coords)
    for i, n in enumerate(NAMES):
        ds[n] = (chl.dims, np.where(psc_obs, truth[i], np.nan).astype(np.float32),
                 {"long_name": f"{n}plankton fraction of chlorophyll-a", "units": "1"})
    ds["chl"] = chl
    score = ~psc_obs & chl_obs & sea[None]  # size-class gaps with a known truth
    return {"ds": ds, "truth": truth, "score": score, "sea": sea,
            "missing": float(1 - psc_obs[:, sea].mean()),
            "chl_missing": float(1 - chl_obs[:, sea].mean())}


# -- baselines written for this benchmark (the rest are xgenfill's own models) ---------------
def multivariate_dineof(ds: xr.Dataset) -> list[xr.DataArray]:
    """DINEOF on the log-ratio fields and log10 chlorophyll side by side (one EOF basis for
    all variables, each standardised, as DINEOF does for several variables)."""
    clr = xgenfill.to_log_ratios(ds, NAMES)
    parts = [clr[n] for n in NAMES] + [np.log10(ds.chl)]
    stats = [(float(p.mean()), float(p.std())) for p in parts]
    nx = ds.sizes["longitude"]
    side = xr.concat([((p - m) / s).assign_coords(longitude=np.arange(nx) + k * nx)
                      for k, (p, (m, s)) in enumerate(zip(parts, stats))], "longitude")
    side = side.rename("stack").assign_attrs(units="1")
    side.longitude.attrs = {"units": "degrees_east", "standard_name": "longitude"}
    filled = xgenfill.inpaint(side, model="dineof", transform="identity")
    out = []
    for k, n in enumerate(NAMES):
        part = filled.isel(longitude=slice(k * nx, (k + 1) * nx)) * stats[k][1] + stats[k][0]
        out.append(part.assign_coords(longitude=ds.longitude).rename(n))
    return out


def _fit_brewin(chl: np.ndarray, f: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Least-squares fit of (logit D_pn, log S_pn, logit D_p/D_pn, log S_p) to fractions."""
    def res(p):
        d_pn = _sigmoid(p[0])
        return (brewin(chl, d_pn, np.exp(p[1]), d_pn * _sigmoid(p[2]), np.exp(p[3]))
                - f).ravel()

    return least_squares(res, start, method="trf", max_nfev=200).x


def regression(ds: xr.Dataset, chl_filled: np.ndarray, min_pixels: int = 20) -> np.ndarray:
    """Per date, the abundance model fitted to the observed fractions, applied to the
    (filled) chlorophyll; pooled parameters for dates with fewer than ``min_pixels``."""
    b = BREWIN2010
    f = np.stack([ds[n].values for n in NAMES]).astype(np.float64)
    c = ds.chl.values.astype(np.float64)
    ok = np.isfinite(f).all(0) & np.isfinite(c)
    start = np.array([_logit(b["Cm_pn"] * b["S_pn"]), np.log(b["S_pn"]),
                      _logit(b["Cm_p"] * b["S_p"] / (b["Cm_pn"] * b["S_pn"])), np.log(b["S_p"])])
    pooled = _fit_brewin(c[ok], f[:, ok], start)
    out = np.full(f.shape, np.nan)
    for t in range(c.shape[0]):
        p = _fit_brewin(c[t][ok[t]], f[:, t][:, ok[t]], pooled) \
            if ok[t].sum() >= min_pixels else pooled
        d_pn = _sigmoid(p[0])
        with np.errstate(invalid="ignore"):
            out[:, t] = brewin(chl_filled[t], d_pn, np.exp(p[1]), d_pn * _sigmoid(p[2]),
                               np.exp(p[3]))
    return out


def regression_plus_residuals(ds: xr.Dataset, reg: np.ndarray, model: str
                              ) -> list[xr.DataArray]:
    """The regression's log-ratios plus the observed log-ratio residuals filled by ``model``."""
    clr = xgenfill.to_log_ratios(ds, NAMES)
    ref = xr.Dataset({n: (ds[NAMES[0]].dims, reg[i]) for i, n in enumerate(NAMES)},
                     coords=ds.coords)
    clr_reg = xgenfill.to_log_ratios(ref, NAMES)
    out = []
    for n in NAMES:
        resid = (clr[n] - clr_reg[n]).rename(n).assign_attrs(units="1")
        filled = xgenfill.inpaint(resid, model=model, transform="identity")
        out.append((clr_reg[n] + filled.fillna(0.0)).where(clr_reg[n].notnull()))
    return out


def closed(ds: xr.Dataset, clr_fields: list[xr.DataArray]) -> np.ndarray:
    """Fractions from log-ratio fields, observed values kept (as inpaint_fractions does)."""
    values = close([ds[n] for n in NAMES], from_log_ratios(clr_fields))
    return np.stack([v.transpose(*ds[NAMES[0]].dims).values for v in values])


# -- scoring ----------------------------------------------------------------------------------
def score(case: dict, pred: np.ndarray, members: np.ndarray | None = None) -> dict:
    truth, where = case["truth"], case["score"]
    ok = where & np.isfinite(pred).all(0)
    rm = [float(np.sqrt(np.mean((pred[i][ok] - truth[i][ok]) ** 2))) for i in range(3)]
    lr = np.log(np.clip(pred, 1e-4, 1)) - np.log(np.clip(pred, 1e-4, 1)).mean(0)
    lt = np.log(np.clip(truth, 1e-4, 1)) - np.log(np.clip(truth, 1e-4, 1)).mean(0)
    row = {"n": int(ok.sum()), "share_filled": float(ok.sum() / where.sum()),
           "rmse": float(np.mean(rm)), "rmse_pico": rm[0], "rmse_nano": rm[1],
           "rmse_micro": rm[2], "mae": float(np.mean(np.abs(pred[:, ok] - truth[:, ok]))),
           "clr_rmse": float(np.sqrt(np.mean((lr[:, ok] - lt[:, ok]) ** 2))),
           "sum_dev": float(np.nanmax(np.abs(pred.sum(0)[np.isfinite(pred).all(0)] - 1)))}
    obs = np.isfinite(np.stack([case["ds"][n].values for n in NAMES]))
    kept = np.stack([case["ds"][n].values for n in NAMES])
    row["observed_identical"] = bool(np.array_equal(pred[obs].astype(np.float32), kept[obs]))
    if members is not None:
        okm = ok & np.isfinite(members).all((0, 1))
        row["crps"] = float(np.mean([crps_ensemble(members[:, i][:, okm], truth[i][okm])
                                     for i in range(3)]))
        row["member_sum_dev"] = float(np.nanmax(np.abs(members.sum(1) - 1)))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fit-steps", type=int, default=600)
    p.add_argument("--n-samples", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-networks", action="store_true")
    p.add_argument("--networks", default="plain,chl,joint",
                   help="comma-separated network rows: plain, chl, vae, joint, joint_vae")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    import torch

    case = make_case(args.seed)
    ds = case["ds"]
    print(f"size classes missing {case['missing']:.3f} of the sea, chl {case['chl_missing']:.3f}; "
          f"{int(case['score'].sum())} scored pixels", flush=True)
    rows = []

    def run(name: str, fn, baseline: bool = True) -> None:
        t0 = time.perf_counter()
        out = fn()
        pred, members = out if isinstance(out, tuple) else (out, None)
        row = {"model": name, "baseline": baseline,
               "seconds": round(time.perf_counter() - t0, 1), **score(case, pred, members)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    def frac(ds_out: xr.Dataset) -> np.ndarray:
        return np.stack([ds_out[n].values for n in NAMES]).astype(np.float64)

    for m in ("linear_space", "linear_time", "anomaly", "dineof"):
        run(m, lambda m=m: frac(xgenfill.inpaint_fractions(ds, NAMES, model=m)))
    run("multivariate dineof (clr + log10 chl)", lambda: closed(ds, multivariate_dineof(ds)))
    t0 = time.perf_counter()
    chl_filled = xgenfill.inpaint(ds.chl, model="anomaly").values.astype(np.float64)
    reg = regression(ds, chl_filled)
    reg_s = time.perf_counter() - t0
    run("regression on chl (Brewin 2010 per date)",
        lambda: closed(ds, list(xgenfill.to_log_ratios(xr.Dataset(
            {n: (ds[NAMES[0]].dims, reg[i]) for i, n in enumerate(NAMES)}), NAMES).values())))
    rows[-1]["seconds"] += round(reg_s, 1)
    for m in ("anomaly", "linear_space"):
        run(f"regression + residuals ({m})",
            lambda m=m: closed(ds, regression_plus_residuals(ds, reg, m)))
        rows[-1]["seconds"] += round(reg_s, 1)
    for m in ("anomaly", "dineof"):
        run(f"{m} + chl covariate (inpaint_fractions, covariate_trend)",
            lambda m=m: frac(xgenfill.inpaint_fractions(ds, NAMES, model=m,
                                                        covariates=["chl"])), baseline=False)
    if not args.skip_networks:
        fit = {"max_steps": args.fit_steps, "patch": 16, "batch_size": 16, "seed": 0,
               "device": "cpu"}
        configs = {"plain": ("diffusion (train_fractions)", None, "diffusion"),
                   "chl": ("diffusion + chl covariate (train_fractions)", ["chl"], "diffusion"),
                   "vae": ("VAE + chl covariate (train_fractions)", ["chl"], "vae"),
                   "joint": ("joint diffusion + chl covariate (train_fractions)", ["chl"],
                             "joint"),
                   "joint_vae": ("joint VAE + chl covariate (train_fractions)", ["chl"],
                                 "joint_vae")}
        for key in args.networks.split(","):
            label, cov, kind = configs[key]
            t0 = time.perf_counter()
            models = xgenfill.train_fractions(ds, NAMES, model=kind, covariates=cov, **fit)
            fit_s = time.perf_counter() - t0

            def fill(models=models, cov=cov):
                point = xgenfill.inpaint_fractions(ds, NAMES, model=models, covariates=cov)
                return frac(point), _members(ds, models, cov, args.n_samples)

            run(label, fill, baseline=False)
            rows[-1]["fit_s"] = round(fit_s, 1)
            if kind == "diffusion" and cov is not None:  # the default's check around them
                from xgenfill.models.guard import CLASSICAL, Guarded

                guarded = {v: Guarded(models[v], CLASSICAL) for v in NAMES}
                run(label.replace("diffusion", "auto check: diffusion", 1),
                    lambda g=guarded: frac(xgenfill.inpaint_fractions(
                        ds, NAMES, model=g, covariates=cov)), baseline=False)
                rows[-1]["fit_s"] = round(fit_s, 1)
    best = min((r for r in rows if r["baseline"]), key=lambda r: r["rmse"])
    lines = ["Baselines are marked *; the others are xgenfill's own fills.", "",
             "| model | n | share filled | mean fraction RMSE | / best baseline | pico | nano | "
             "micro | log-ratio RMSE | MAE | CRPS | max member |sum-1| | observed kept | fit s "
             "| fill s |", "|" + "---|" * 16]
    for r in rows:
        lines.append(
            f"| {r['model']}{' *' if r['baseline'] else ''} | {r['n']} | "
            f"{r['share_filled']:.3f} | {r['rmse']:.4f} | "
            f"{r['rmse'] / best['rmse']:.3f} | {r['rmse_pico']:.4f} | {r['rmse_nano']:.4f} | "
            f"{r['rmse_micro']:.4f} | {r['clr_rmse']:.3f} | {r['mae']:.4f} | "
            f"{r.get('crps', float('nan')):.4f} | {r.get('member_sum_dev', r['sum_dev']):.1e} | "
            f"{r['observed_identical']} | {r.get('fit_s', 0):.0f} | {r['seconds']:.1f} |")
    when = stamp()
    meta = {"date": when, "machine": platform.platform(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "fit_steps": args.fit_steps,
            "seed": args.seed, "psc_missing": case["missing"], "chl_missing": case["chl_missing"],
            "scored_pixels": int(case["score"].sum()), "best_baseline": best["model"]}
    print(write_record(args.out, f"psc-{when}", f"size classes {when}", meta, rows,
                       "\n".join(lines)))


def _members(ds: xr.Dataset, models: dict, cov, n: int) -> np.ndarray:
    """Closed ensemble members (K, 3, T, Y, X) of inpaint_fractions."""
    out = xgenfill.inpaint_fractions(ds, NAMES, model=models, covariates=cov, n_samples=n,
                                     keep_members=True)
    return np.stack([out[f"{v}_members"].transpose("member", *ds[NAMES[0]].dims).values
                     for v in NAMES], 1).astype(np.float64)


if __name__ == "__main__":
    main()
