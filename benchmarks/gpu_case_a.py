#!/usr/bin/env python
"""Case A of the benchmark on a GPU node without a NetCDF stack: the cube and the hold-out mask
come from ``gpu_data/case_a.npz`` (written from run_benchmarks.case_a on a CPU machine).

    python benchmarks/gpu_case_a.py --fit-seconds 240 --device cuda
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xgenfill  # noqa: E402
from xgenfill import metrics  # noqa: E402
from xgenfill.models.registry import get_filler  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=ROOT / "gpu_data" / "case_a.npz")
    p.add_argument("--fit-seconds", type=float, default=240)
    p.add_argument("--device", default="cuda")
    p.add_argument("--n-samples", type=int, default=8)
    args = p.parse_args()
    z = np.load(args.data)
    coords = {"time": z["time"].astype("datetime64[ns]"), "lat": z["lat"], "lon": z["lon"]}
    da = xr.DataArray(z["chl"], dims=("time", "lat", "lon"), coords=coords, name="chl",
                      attrs={"units": "mg m-3"})
    hold = xr.DataArray(z["holdout"], dims=da.dims, coords=coords)
    runs = []
    for label, name, fit in (("diffusion", "diffusion-chl-v1", None),
                             ("diffusion+fit", "diffusion-chl-v1", args.fit_seconds),
                             ("vae", "vae-chl-v1", None),
                             ("vae+fit", "vae-chl-v1", args.fit_seconds / 2)):
        model = get_filler(name, device=args.device)
        t0 = time.perf_counter()
        res = xgenfill.validate(da, models=[model], holdout=hold, n_samples=args.n_samples,
                                fit=None if fit is None else {"max_time": fit,
                                                              "progress": False,
                                                              "batch_size": 32, "patch": 96},
                                keep_members=True)
        r = res.isel(model=0)
        members = r.members.values
        members = members[np.isfinite(members).all(1)]
        truth = r.truth_transformed.values
        det = metrics.deterministic_scores(members.mean(0), truth)
        ens = metrics.ensemble_scores(members, truth)
        runs.append({"case": "A", "model": label, "device": args.device, "n": det["n"],
                     "rmse": round(det["rmse"], 4), "mae": round(det["mae"], 4),
                     "bias": round(det["bias"], 4), "crps": round(ens["crps"], 4),
                     "spread_skill": round(ens["spread_skill"], 3),
                     "fit_s": round(float(r.fit_seconds), 1),
                     "fill_s": round(float(r.fill_seconds), 2),
                     "wall_s": round(time.perf_counter() - t0, 1)})
        print(json.dumps(runs[-1]), flush=True)


if __name__ == "__main__":
    main()
