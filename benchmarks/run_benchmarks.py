#!/usr/bin/env python
"""Held-out benchmark on real data (../shared/realdata), every model in the same run.

    python benchmarks/run_benchmarks.py [--cases A B C dineof] [--fit-seconds 240 | --fit-steps N]
        [--quick]

Cases (scores only on observed pixels hidden from the models):

- A: PhytoFit MODIS 2015 daily chl; the 21 clearest days hidden under the real cloud masks of
  other 2015 days; log10 space.
- B: Alboran AVHRR SST (DINEOF's SmallExample) with transplanted clouds; degC.
- C: OC-CCI monthly chl around Oahu with transplanted clouds; log10 space.
- dineof: DINEOF's reference checks (Alboran CV error with nev=5, cloud_size=500; time to fill
  the full PhytoFit year).

Baselines (linear in time, day-of-year climatology, spatial linear, and the anomaly fill: linear
in time plus the step's own smoothed departure from it) and DINEOF run beside the
pretrained generative models (zero-shot) and the same models trained on the case's own data
with the held-out pixels removed ("+fit", the same CPU budget ``--fit-seconds`` for both models,
guide channels added; ``--augment`` flips the training crops at random):
fine-tuned from the pretrained weights where they come from the same kind of product (chl:
cases A and C), trained from scratch where they do not (case B: the SST weights were trained
on OSTIA L4 at 0.25 deg, case B is AVHRR L3 at 0.02 deg; fine-tuning them gave worse fills than
starting afresh; from scratch both models are built with ``residual=True``: they learn a
correction to the anomaly fill of what they see). Writes a Markdown and a JSON table to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xgenfill  # noqa: E402
from xgenfill import metrics  # noqa: E402
from xgenfill.masks import coverage  # noqa: E402
from xgenfill.api import _adapt_init, _auto_init  # noqa: E402
from xgenfill.models.guard import CLASSICAL, Guarded  # noqa: E402
from xgenfill.models.io import model_classes  # noqa: E402
from xgenfill.models.registry import get_filler  # noqa: E402
from xgenfill.transforms import TRANSFORMS  # noqa: E402
from record import free_stem, stamp  # noqa: E402  (same folder)

REAL = ROOT.parent / "shared" / "realdata"
BASELINES = ["linear_time", "climatology", "linear_space", "anomaly"]


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 20 ms)."""

    def __enter__(self):
        self.peak = self._rss()
        self._stop = False
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) * 1024
        return 0

    def _watch(self):
        while not self._stop:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop = True
        self._t.join()


def case_a() -> tuple[xr.DataArray, xr.DataArray, dict]:
    ds = xr.open_dataset(REAL / "phytofit_nwa_modis2015/"
                         "phytofit_testregion_modis_ocx_2015_daily_grid.nc")
    da = ds.chl.load()
    obs = np.isfinite(da.values)
    ocean = obs.any(0)
    cov = coverage(obs, ocean)
    targets = np.argsort(-cov, kind="stable")[:21]
    donors = np.setdiff1d(np.flatnonzero(cov > 0), targets)
    rng = np.random.default_rng(2015)
    hide = np.zeros_like(obs)
    for t in targets:
        hide[t] = obs[t] & ~obs[rng.choice(donors)]
    return da, xr.DataArray(hide, dims=da.dims, coords=da.coords), {}


def case_b() -> tuple[xr.DataArray, str, dict]:
    ds = xr.open_dataset(REAL / "dineof_alboran/alboranSST_small.nc")
    return ds.SST.load(), "transplant", {"mask": ds.mask.load()}


def case_c() -> tuple[xr.DataArray, str, dict]:
    ds = xr.open_dataset(REAL / "coastwatch_occci_oahu/2c1e3d2b4bc26bc8a3eaa28c30e6ce7e.nc")
    return ds.chlor_a.load(), "transplant", {}


CASES = {"A": case_a, "B": case_b, "C": case_c}
PRETRAINED = {"A": ("diffusion-chl-v1", "vae-chl-v1"), "C": ("diffusion-chl-v1", "vae-chl-v1"),
              "B": ("diffusion-sst-v1", "vae-sst-v1")}
FIT_FROM_SCRATCH = {"B"}  # see the module docstring


def run_case(name: str, fit_seconds: float, n_samples: int, quick: bool,
             only: list[str] | None = None, guides: bool = True,
             augment: bool = False, fit_steps: int | None = None) -> list[dict]:
    da, holdout, extra = CASES[name]()
    rows = []
    specs: list[tuple[str, object, dict | None]] = [(m, m, None) for m in BASELINES + ["dineof"]]
    dif, vae = PRETRAINED[name]
    for label, path in (("diffusion", dif), ("vae", vae)):
        model = get_filler(path, device="cpu")
        specs.append((label, model, None))
        if fit_seconds > 0 or fit_steps:  # fit on the case's own data (held-out pixels removed)
            # with guide channels added to the pretrained network (zero weights at first)
            if name in FIT_FROM_SCRATCH:
                # from scratch, the models correct the anomaly fill of what they see
                start = type(model)(device="cpu", guides=guides, residual=guides)
            else:
                start = model.with_guides() if guides else model
            # a step budget repeats a fit on any machine; a time budget is what a user has
            budget = {"max_steps": fit_steps} if fit_steps else {"max_time": fit_seconds}
            specs.append((f"{label}+fit", start,
                          {**budget, "progress": False, "augment": augment}))
    # the default call (model="auto": the pretrained diffusion model checked against the
    # classical fills on the case's own observed pixels), zero-shot
    specs.append(("auto", Guarded(get_filler(dif, device="cpu"), CLASSICAL), None))
    if fit_seconds > 0 or fit_steps:
        # the fit recipe a user gets: xgenfill.train(da) with its defaults (init="auto"),
        # then inpaint(da, network=model): the same check weighs the fitted network
        start, arch, how = _auto_init("diffusion", da, "auto", {}, "cpu")
        net = (_adapt_init(start, arch) if start is not None
               else model_classes()["diffusion"](device="cpu", **arch))
        budget = {"max_steps": fit_steps} if fit_steps else {"max_time": fit_seconds}
        specs.append(("recipe", Guarded(net, CLASSICAL), {**budget, "progress": False}))
        print(f"  {name} recipe starts from: {how}", flush=True)
    if quick:
        specs = [s for s in specs if s[0] in ("linear_time", "dineof", "vae")]
    if only:
        specs = [s for s in specs if s[0] in only]
    runs = []
    for label, spec, fit in specs:
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            res = xgenfill.validate(da, models=[spec], holdout=holdout, fraction=0.1, seed=0,
                                    n_samples=n_samples, fit=fit, keep_members=True, **extra)
            wall = time.perf_counter() - t0
        runs.append((label, res, wall, mem.peak))
        print(f"  {name} {label}: {wall:.1f} s", flush=True)
    # every model is scored on the same pixels: those that all of them could fill
    common = np.all([np.isfinite(r.members.isel(model=0)).any("member").values
                     & np.isfinite(r.prediction.isel(model=0)).values
                     for _, r, _, _ in runs], axis=0)
    for label, res, wall, peak in runs:
        r = res.isel(model=0)
        members = r.members.values[:, common]
        kept = np.isfinite(members).any(1)
        members = members[kept]  # the members this model drew (K of n_samples)
        # CRPS where every member has a value (a member refused as implausible at a pixel
        # takes that pixel out of the ensemble scores only, not the whole member)
        ens_ok = np.isfinite(members).all(0)
        truth = r.truth_transformed.values[common]
        # the point estimate inpaint returns (diffusion: the network's conditional mean)
        with np.errstate(invalid="ignore", divide="ignore"):
            best = TRANSFORMS[res.attrs["transform"]].forward(r.prediction.values[common])
        det = metrics.deterministic_scores(best, truth)
        ens = metrics.ensemble_scores(members[:, ens_ok], truth[ens_ok])
        steps = int(res.holdout.any([d for d in res.holdout.dims if d != da.dims[0]]).sum())
        ny, nx = [da.sizes[d] for d in da.dims[1:]]
        k = n_samples if label.startswith(("diffusion", "vae", "auto", "recipe")) else 1
        fill_s = float(r.fill_seconds)
        rows.append({
            "case": name, "model": label, "n": det["n"], "rmse": det["rmse"], "mae": det["mae"],
            "bias": det["bias"], "crps": ens["crps"], "spread_skill": ens["spread_skill"],
            "coverage_90": ens["coverage_90"],
            "rmse_own_pixels": float(r.rmse.sel(space="transformed")), "n_own": int(r.n),
            "rmse_physical_own_pixels": float(r.rmse.sel(space="physical")),
            "fit_s": float(r.fit_seconds), "fill_s": fill_s, "wall_s": wall,
            # the fit's record: train(max_steps=horizon_steps, seed=...) repeats it
            "training": json.loads(str(r.training.values) or "{}"),
            "mpx_s": steps * ny * nx * k / fill_s / 1e6 if fill_s > 0 else float("nan"),
            "peak_mem_gb": peak / 2**30, "n_not_filled": int(r.n_not_filled),
            "guard": str(r.guard.values), "n_ensemble": int(ens_ok.sum()),
            "units": "log10" if res.attrs["transform"] == "log10" else res.attrs["units"],
        })
        print(_fmt_row(rows[-1]), flush=True)
    return rows


def dineof_reference() -> list[dict]:
    from xgenfill.models.base import Cube
    from xgenfill.models.dineof import DINEOF
    from xgenfill.prepare import prepare

    rows = []
    ds = xr.open_dataset(REAL / "dineof_alboran/alboranSST_small.nc")
    p = prepare(ds.SST, mask=ds.mask)
    cube = Cube(p.values[0], p.ocean[0], p.doy, p.time_index)
    errs = []
    for seed in [243435, 0, 1, 2, 3, 4, 5, 6, 7, 8]:
        f = DINEOF(nev=5, cloud_size=500, alpha=0.01, numit=3, seed=seed).fill(cube)
        errs.append(f.info["cv_rmse"] * p.std[0])
    rows.append({"check": "Alboran CV error (degC), nev=5 cloud_size=500, 10 cloud draws",
                 "ours": f"mean {np.mean(errs):.4f}, median {np.median(errs):.4f}, "
                         f"range {min(errs):.4f}-{max(errs):.4f}; reference seed "
                         f"{errs[0]:.4f}", "reference": "0.4445 (Fortran DINEOF)"})
    pf = xr.open_dataset(REAL / "phytofit_nwa_modis2015/"
                         "phytofit_testregion_modis_ocx_2015_daily_grid.nc").chl.load()
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        out = xgenfill.inpaint(pf, model="dineof", return_dataset=True)
        sec = time.perf_counter() - t0
    rows.append({"check": "PhytoFit 2015 full fill (96x160x365), CPU",
                 "ours": f"{sec:.1f} s, {out.attrs['xgenfill_n_modes']} modes, peak "
                         f"{mem.peak / 2**30:.2f} GiB",
                 "reference": "93 s (Fortran DINEOF + OpenBLAS)"})
    for r in rows:
        print(r, flush=True)
    return rows


def _fmt_row(r: dict) -> str:
    return (f"| {r['case']} | {r['model']} | {r['n']} | {r['rmse']:.4f} | {r['mae']:.4f} | "
            f"{r['bias']:+.4f} | {r['crps']:.4f} | {r['spread_skill']:.2f} | {r['fit_s']:.1f} | "
            f"{r['fill_s']:.1f} | {r['mpx_s']:.3f} | {r['peak_mem_gb']:.2f} |")


HEADER = ("| case | model | n | RMSE | MAE | bias | CRPS | spread/skill | fit s | fill s | "
          "Mpx/s | peak GiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=["dineof", "A", "B", "C"])
    p.add_argument("--fit-seconds", type=float, default=240)
    p.add_argument("--fit-steps", type=int,
                   help="fit for this many steps instead of --fit-seconds (machine-independent: "
                        "a time-budgeted fit's record gives its steps as horizon_steps)")
    p.add_argument("--n-samples", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="a few models only (smoke test)")
    p.add_argument("--models", nargs="+", help="only these rows (e.g. linear_time dineof)")
    p.add_argument("--no-guides", action="store_true",
                   help="fine-tune without adding guide channels (the pre-guides protocol)")
    p.add_argument("--augment", action="store_true",
                   help="flip and transpose the training crops at random")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    if not REAL.exists():
        sys.exit(f"real data not found at {REAL}")
    import torch

    torch.manual_seed(0)
    print(HEADER, flush=True)
    table, ref = [], []
    for case in args.cases:
        if case == "dineof":
            ref = dineof_reference()
        else:
            table += run_case(case, args.fit_seconds, args.n_samples, args.quick, args.models,
                              not args.no_guides, args.augment, args.fit_steps)
    args.out.mkdir(parents=True, exist_ok=True)
    when = stamp()
    meta = {"date": when, "machine": platform.platform(), "cpu_threads": torch.get_num_threads(),
            "torch": torch.__version__, "xgenfill": xgenfill.__version__,
            "fit_seconds": None if args.fit_steps else args.fit_seconds,
            "fit_steps": args.fit_steps, "n_samples": args.n_samples,
            "guides": not args.no_guides, "augment": args.augment}
    # two runs ending in the same minute (one per core) must not overwrite each other
    base = free_stem(args.out, f"bench-{when}")
    base.with_suffix(".json").write_text(json.dumps(
        {"meta": meta, "rows": table, "dineof": ref}, indent=1))
    lines = [f"# xgenfill benchmark {when}", "", "```", json.dumps(meta), "```", "", HEADER]
    lines += [_fmt_row(r) for r in table]
    lines += ["", "| DINEOF check | ours | reference |", "|---|---|---|"]
    lines += [f"| {r['check']} | {r['ours']} | {r['reference']} |" for r in ref]
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
