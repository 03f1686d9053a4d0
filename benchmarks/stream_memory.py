#!/usr/bin/env python
"""Peak memory of training from an archive 1x and 10x larger (same steps): streamed from Zarr.

    python benchmarks/stream_memory.py [--steps 100] [--out benchmarks/results]

The archive is the real PhytoFit 2015 MODIS daily chl (365 x 96 x 160, NW Atlantic) tiled
2 x 2 in space (365 x 192 x 320, 90 MB in float32); the 10x archive repeats it ten times in
time (3650 steps, 900 MB). Both are written to Zarr (chunks 30 x 192 x 320) and opened lazily.
Each training runs in its own process (peak RSS: ``VmHWM`` of /proc/self/status): ``xgenfill.train``
on the lazy archive (streamed blocks of 64 x 128 x 128), and for reference the eager
``train`` on the 1x archive loaded in memory. Same model, steps, batch and seed.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import stamp, write_record  # noqa: E402  (same folder)

CHILD = r"""
import json, sys, time
import xarray as xr
import xgenfill
path, mode, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
chl = xr.open_zarr(path).chl
if mode == "eager":
    chl = chl.load()
t0 = time.perf_counter()
m = xgenfill.train(chl, model="diffusion", init=None, max_steps=steps, batch_size=8, patch=64,
                   block=(64, 128, 128), device="cpu", seed=0, progress=False)
# VmHWM: this process's own high-water mark (ru_maxrss survives exec: it would report the
# parent's peak when that is higher)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss_mb": int(hwm) / 1024,
                  "val": m.meta["training"]["best_val_rmse_normalised"],
                  "steps": m.meta["training"]["steps"]}))
"""


def build(tmp: Path) -> dict[str, Path]:
    import numpy as np
    import xarray as xr

    src = (ROOT.parent / "shared" / "realdata" / "phytofit_nwa_modis2015" /
           "phytofit_testregion_modis_ocx_2015_daily_grid.nc")
    chl = xr.open_dataset(src).chl.load()
    big = xr.concat([chl, chl.assign_coords(lon=chl.lon + 10)], "lon")
    big = xr.concat([big, big.assign_coords(lat=big.lat + 4)], "lat")
    paths = {}
    for k in (1, 10):
        arch = xr.concat([big.assign_coords(time=big.time + np.timedelta64(365 * i, "D"))
                          for i in range(k)], "time")
        p = tmp / f"chl_x{k}.zarr"
        arch.to_dataset(name="chl").chunk({"time": 30, "lat": -1, "lon": -1}).to_zarr(p)
        paths[f"x{k}"] = p
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(Path(tmp))
        for label, path, mode in (("streamed, 1x archive", paths["x1"], "lazy"),
                                  ("streamed, 10x archive", paths["x10"], "lazy"),
                                  ("in memory, 1x archive", paths["x1"], "eager")):
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), mode, str(args.steps)],
                                 capture_output=True, text=True, cwd=ROOT, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res.update(run=label, wall=time.perf_counter() - t0)
            rows.append(res)
            print(json.dumps(res), flush=True)
    ratio = rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    lines = ["| run | steps | peak RSS (MB) | train s | best val RMSE (normalised) |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['steps']} | {r['peak_rss_mb']:.0f} | {r['seconds']:.0f} | "
              f"{r['val']} |" for r in rows]
    lines.append(f"\npeak RSS 10x / 1x (streamed): **{ratio:.2f}** (target <= 1.3)")
    when = stamp()
    meta = {"date": when, "machine": platform.platform(), "steps": args.steps}
    print(write_record(args.out, f"stream-memory-{when}", f"streamed training memory {when}",
                       meta, rows, "\n".join(lines)))


if __name__ == "__main__":
    main()
