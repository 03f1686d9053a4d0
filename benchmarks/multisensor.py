#!/usr/bin/env python
"""Multi-sensor chlorophyll: MODIS-Aqua filled with VIIRS-SNPP of the same days as a covariate.

    python benchmarks/multisensor.py [--fit-steps 400] [--out benchmarks/results]

PhytoFit 2021 (``../shared/realdata/phytofit_atlantic_2021/``: MODIS and VIIRS daily L3b chl on
one grid, 2021-01-01..02-27), the 192 x 192 crop (39-47 N, 54-42 W) with the most MODIS
observations, ``mask=in_region``. MODIS pixels are hidden under transplanted real clouds
(``validate``, fraction 0.1, seed 0) and scored there; VIIRS keeps all its own values, gaps
included, as the covariate. Rows, all on the same hidden pixels:

- every classical method on MODIS alone;
- the default call (``model="auto"``, shipped weights, MODIS alone);
- a diffusion network trained on the case (hidden pixels removed) on MODIS alone, and the
  same with VIIRS as a covariate (same steps, from scratch, residual), each alone and through
  the default's check (``network=``);
- the pretrained chl network fine-tuned with guides (``train``'s default) on MODIS alone, and
  with VIIRS as a covariate (its channels start at zero weight:
  ``NeuralFiller.with_covariates``), each alone and through the check.

``--only LABEL ...`` runs only the rows whose label starts with one of these (the best
classical method is then taken from the rows run: include "classical").

The sensors differ by about 0.38 log10 on the same day; the covariate is standardised on its
own statistics, and the network must learn the rest of the offset, not copy VIIRS.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xgenfill  # noqa: E402
from record import stamp, write_record  # noqa: E402  (same folder)
from xgenfill.models.guard import CLASSICAL, Guarded  # noqa: E402
from xgenfill.models.io import model_classes  # noqa: E402

REAL = ROOT.parent / "shared" / "realdata" / "phytofit_atlantic_2021"


def load() -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    out = []
    for sensor in ("modis", "viirs"):
        ds = xr.open_dataset(REAL / f"phytofit_atlantic_{sensor}_ocx_20210101-0227_daily_grid.nc")
        out.append(ds.isel(lat=slice(0, 192), lon=slice(272, 464)))
    modis, viirs = out
    return modis.chl.load(), viirs.chl.load().rename("chl_viirs"), modis.in_region.load() == 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fit-steps", type=int, default=400)
    p.add_argument("--n-samples", type=int, default=8)
    p.add_argument("--only", nargs="+", help="only the runs whose label starts with these")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    import torch

    modis, viirs, sea = load()
    both = np.isfinite(modis.values) & np.isfinite(viirs.values)
    offset = float(np.mean(np.log10(viirs.values[both]) - np.log10(modis.values[both])))
    fit = {"max_steps": args.fit_steps, "progress": False}
    diff = model_classes()["diffusion"]
    alone = diff(device="cpu", residual=True)
    with_viirs = diff(device="cpu", residual=True, n_covariates=1)
    from xgenfill.models.registry import get_filler

    tuned_alone = get_filler("diffusion", variable="chl", device="cpu").with_guides()
    tuned = tuned_alone.with_covariates(1)
    runs = [("classical", list(CLASSICAL), None, None),
            ("auto", ["auto"], None, None),
            ("diffusion fit, MODIS alone", [alone], fit, None),
            ("auto + diffusion fit, MODIS alone", [Guarded(alone.copy(), CLASSICAL)], fit, None),
            ("diffusion fit + VIIRS covariate", [with_viirs], fit, viirs),
            ("auto + diffusion fit + VIIRS", [Guarded(with_viirs.copy(), CLASSICAL)], fit, viirs),
            ("fine-tuned, MODIS alone", [tuned_alone], fit, None),
            ("auto + fine-tuned, MODIS alone", [Guarded(tuned_alone.copy(), CLASSICAL)], fit,
             None),
            ("fine-tuned + VIIRS covariate", [tuned], fit, viirs),
            ("auto + fine-tuned + VIIRS", [Guarded(tuned.copy(), CLASSICAL)], fit, viirs)]
    if args.only:
        runs = [r for r in runs if r[0].startswith(tuple(args.only))]
    rows = []
    for label, models, f, cov in runs:
        t0 = time.perf_counter()
        res = xgenfill.validate(modis, models=models, mask=sea, n_samples=args.n_samples,
                                seed=0, fit=f, covariates=cov)
        wall = time.perf_counter() - t0
        for i, m in enumerate(res.model.values):
            sel = res.isel(model=i).sel(space="transformed")
            name = str(m) if label == "classical" else label
            rows.append({"model": name, "n": int(sel.n), "rmse": float(sel.rmse),
                         "mae": float(sel.mae), "bias": float(sel.bias),
                         "crps": float(sel.crps), "fit_s": float(sel.fit_seconds),
                         "fill_s": float(sel.fill_seconds), "guard": str(sel.guard.values)})
        print(f"{label}: {wall:.0f} s", flush=True)
    best = min((r for r in rows if r["model"] in CLASSICAL), key=lambda r: r["rmse"])
    lines = [f"VIIRS - MODIS on the same pixels: {offset:+.3f} log10 (mean)", "",
             "| model | n | RMSE (log10) | MAE | bias | CRPS | RMSE / best classical | fit s "
             "| fill s | weights |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['n']} | {r['rmse']:.4f} | {r['mae']:.4f} | "
                     f"{r['bias']:+.4f} | {r['crps']:.4f} | {r['rmse'] / best['rmse']:.3f} | "
                     f"{r['fit_s']:.0f} | {r['fill_s']:.1f} | {r['guard']} |")
    when = stamp()
    meta = {"date": when, "machine": platform.platform(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "fit_steps": args.fit_steps,
            "best_classical": best["model"], "viirs_minus_modis_log10": offset}
    print(write_record(args.out, f"multisensor-{when}", f"multi-sensor {when}", meta, rows,
                       "\n".join(lines)))


if __name__ == "__main__":
    main()
