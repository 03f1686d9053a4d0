#!/usr/bin/env python
"""Reproducible training of xgenfill's pretrained weights from ../shared/realdata.

Two steps, so that the heavy one can run on a GPU node that has no NetCDF stack:

    python scripts/train_pretrained.py prepare --realdata ../shared/realdata --out gpu_data
    python scripts/train_pretrained.py train --data gpu_data --kind diffusion --var chl \
        --max-time 480 --seed 0 --out weights/

``prepare`` writes normalised training cubes (log10 chl, standardised SST) and a library of
real cloud masks to ``<out>/<var>.npz``. Held-out benchmark data are never used for training:
the 21 clearest PhytoFit days (benchmark case A), the Alboran SST file (case B) and the Oahu
OC-CCI file (case C) are excluded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

CHL_SOURCES = {
    "phytofit_2015": "MODIS-Aqua daily L3b OCx chl, NW Atlantic 2015 (BIO-RSG/PhytoFit, MIT; "
                     "NASA OB.DAAC), 21 clearest days excluded",
    "olci_northsea": "Sentinel-3 OLCI C2RCC chl, Southern North Sea, Jan 2017 (xcube demo cube, "
                     "MIT, Brockmann Consult; Copernicus)",
    "modis_nwa_20180909": "MODIS-Aqua daily L3b POLY4 chl, NW Atlantic 2018-09-09 "
                          "(BIO-RSG/oceancolouR, GPL-3; NASA OB.DAAC)",
    "modis_gulfcal_8day": "MODIS-Aqua 8-day chl, Gulf of California, 2013-03-30 (hvillalo/satin, "
                          "GPL-3; NASA OB.DAAC)",
}
SST_SOURCES = {
    "ostia_20170605_07": "OSTIA L4 foundation SST, global 0.25 deg, 2017-06-05..07 (UK Met "
                         "Office, GMES free data policy; via xcube-dev/xcube, MIT), gap-free: "
                         "trained with transplanted real cloud masks",
    "modis_gulfcal_sst4_8day": "MODIS-Aqua 8-day 4 um night SST, Gulf of California, "
                               "2013-03-29 (hvillalo/satin, GPL-3; NASA OB.DAAC)",
}


def _normalise(v: np.ndarray, ocean: np.ndarray, log: bool) -> tuple[np.ndarray, float, float]:
    v = np.where(ocean[None], v, np.nan).astype(np.float64)
    if log:
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.log10(np.where(v > 0.01, v, np.nan))  # C2RCC reports absurd lows
    m, s = np.nanmean(v), np.nanstd(v)
    return ((v - m) / s).astype(np.float16), float(m), float(s)


def clearest_days(obs: np.ndarray, ocean: np.ndarray, n: int = 21) -> np.ndarray:
    """Indices of the n clearest steps (benchmark case A targets)."""
    cover = (obs & ocean[None]).reshape(obs.shape[0], -1).sum(1) / ocean.sum()
    return np.sort(np.argsort(-cover, kind="stable")[:n])


def prepare(realdata: Path, out: Path) -> None:
    import xarray as xr

    out.mkdir(parents=True, exist_ok=True)
    # -- cloud library: real daily masks of PhytoFit 2015 (non-target days) --------------------
    pf = xr.open_dataset(realdata / "phytofit_nwa_modis2015/"
                         "phytofit_testregion_modis_ocx_2015_daily_grid.nc")
    chl = pf.chl.values
    obs = np.isfinite(chl)
    ocean = obs.any(0)
    targets = clearest_days(obs, ocean)
    cover = (obs & ocean[None]).reshape(len(chl), -1).sum(1) / ocean.sum()
    lib_days = [t for t in range(len(chl)) if 0.1 < cover[t] < 0.9 and t not in targets]
    library = np.stack([~obs[t] & ocean for t in lib_days])
    doy_pf = pf.time.dt.dayofyear.values.astype(np.float32)

    cubes: dict[str, dict] = {"chl": {}, "sst": {}}
    v = chl.copy()
    v[targets] = np.nan  # benchmark case A targets never enter training
    cubes["chl"]["phytofit_2015"] = (v, ocean, doy_pf)
    olci = xr.open_zarr(realdata / "xcube_olci_northsea/cube-1-250-250.zarr")
    c = olci.conc_chl.values
    cubes["chl"]["olci_northsea"] = (c, np.isfinite(c).any(0),
                                     olci.time.dt.dayofyear.values.astype(np.float32))
    nwa = xr.open_dataset(realdata / "oceancolour_nwa_single_day/"
                          "oceancolouR_A2018252_NWA_chl_poly4_grid.nc")
    cubes["chl"]["modis_nwa_20180909"] = (nwa.chlor_a.values[None], nwa.in_region.values == 1,
                                          np.array([252.0], np.float32))
    sat = xr.open_dataset(realdata / "satin_gulfcal/satin_modisa_8day_chl_sst4_20130330.nc")
    sat_ocean = np.isfinite(sat.chlor_a.values) | np.isfinite(sat.sst4.values)
    cubes["chl"]["modis_gulfcal_8day"] = (sat.chlor_a.values[None], sat_ocean,
                                          np.array([93.0], np.float32))
    files = sorted((realdata / "xcube_ostia_sst").glob("*.nc"))
    ost = xr.open_mfdataset(files).analysed_sst.load()
    cubes["sst"]["ostia_20170605_07"] = (ost.values, np.isfinite(ost.values).all(0),
                                         ost.time.dt.dayofyear.values.astype(np.float32))
    cubes["sst"]["modis_gulfcal_sst4_8day"] = (sat.sst4.values[None], sat_ocean,
                                               np.array([93.0], np.float32))
    for var, items in cubes.items():
        arrays, stats = {"cloud_library": library}, {}
        for name, (vals, oc, doy) in items.items():
            norm, m, s = _normalise(vals, oc, log=(var == "chl"))
            arrays[f"{name}__values"] = norm
            arrays[f"{name}__ocean"] = oc
            arrays[f"{name}__doy"] = doy
            stats[name] = {"mean": m, "std": s, "shape": list(norm.shape)}
        np.savez_compressed(out / f"{var}.npz", **arrays)
        meta = {"sources": stats, "descriptions": CHL_SOURCES if var == "chl" else SST_SOURCES,
                "excluded": {"phytofit_2015_days": [str(d)[:10] for d in
                                                    pf.time.values[targets]],
                             "files": ["dineof_alboran (case B)",
                                       "coastwatch_occci_oahu (case C)"]},
                "cloud_library": f"{len(library)} PhytoFit 2015 daily cloud masks (10-90 % cloud)"}
        (out / f"{var}.json").write_text(json.dumps(meta, indent=1))
        print(f"wrote {out / f'{var}.npz'}: {list(items)}")


def train(data: Path, kind: str, var: str, max_time: float, max_steps: int, seed: int,
          out: Path, name: str, device: str, batch_size: int, patch: int,
          widths: tuple[int, ...], init: Path | None = None,
          exclude: tuple[str, ...] = (), library_file: Path | None = None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch

    from xgenfill.models.base import Cube
    from xgenfill.models.io import model_classes

    arrays = np.load(data / f"{var}.npz")
    meta = json.loads((data / f"{var}.json").read_text())
    unknown = sorted(set(exclude) - set(meta["sources"]))
    if unknown:
        raise SystemExit(f"--exclude {unknown}: not among the sources {list(meta['sources'])}")
    # leave-one-dataset-out folds (benchmarks/leave_one_out.py) train without whole sources
    meta["sources"] = {k: v for k, v in meta["sources"].items() if k not in exclude}
    meta["descriptions"] = {k: v for k, v in meta["descriptions"].items() if k not in exclude}
    if exclude:
        meta["excluded"]["sources"] = list(exclude)
    cubes = []
    for src in meta["sources"]:
        v = arrays[f"{src}__values"].astype(np.float32)
        cubes.append(Cube(v, arrays[f"{src}__ocean"], doy=arrays[f"{src}__doy"],
                          time_index=np.arange(len(v), dtype=float)))
    if init is not None:  # continue training from earlier weights
        from xgenfill.models.io import load_model

        model = load_model(init, device=device)
        previous = model.meta.get("training", {})
    else:
        model = model_classes()[kind](device=device, widths=widths)
        previous = {}
    library = arrays["cloud_library"]
    if library_file is not None:  # another cloud library (a fold without PhytoFit 2015)
        library = np.load(library_file)
        meta["cloud_library"] = f"{len(library)} masks from {library_file.name}"
    t0 = time.time()
    model.fit(cubes, max_steps=max_steps, max_time=max_time, seed=seed, batch_size=batch_size,
              patch=patch, cloud_library=library,
              progress=False,
              eval_every=250, patience=40)
    cmd = " ".join(["python", "scripts/train_pretrained.py"] + sys.argv[1:])
    model.meta.update({
        "name": name, "trained_on": "pretrained", "variable": var,
        "transform": "log10" if var == "chl" else "identity",
        "units": "mg m-3" if var == "chl" else "K (standardised per input: unit-free)",
        "training_data": meta, "training_command": cmd,
        "torch": torch.__version__, "train_seconds": round(time.time() - t0, 1),
    })
    if previous:
        model.meta["continued_from"] = {"init": str(init), "training": previous}
    model.meta.pop("training_kwargs", None)
    path = model.save(out / name)
    print(json.dumps(model.meta["training"]), f"\nsaved {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare")
    a.add_argument("--realdata", type=Path, default=Path("../shared/realdata"))
    a.add_argument("--out", type=Path, default=Path("gpu_data"))
    b = sub.add_parser("train")
    b.add_argument("--data", type=Path, default=Path("gpu_data"))
    b.add_argument("--kind", choices=["diffusion", "vae"], required=True)
    b.add_argument("--var", choices=["chl", "sst"], required=True)
    b.add_argument("--max-time", type=float, default=480)
    b.add_argument("--max-steps", type=int, default=200_000)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument("--patch", type=int, default=96)
    b.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128])
    b.add_argument("--device", default="auto")
    b.add_argument("--out", type=Path, default=Path("weights"))
    b.add_argument("--name")
    b.add_argument("--init", type=Path, help="continue from these weights")
    b.add_argument("--exclude", nargs="+", default=[],
                   help="leave these sources out (leave-one-dataset-out folds)")
    b.add_argument("--cloud-library", type=Path,
                   help="(N, Y, X) boolean .npy of cloud masks to use instead of PhytoFit "
                        "2015's (a fold without PhytoFit 2015 must not see its cloud shapes)")
    args = p.parse_args()
    if args.cmd == "prepare":
        prepare(args.realdata, args.out)
    else:
        train(args.data, args.kind, args.var, args.max_time, args.max_steps, args.seed,
              args.out, args.name or f"{args.kind}-{args.var}-v1", args.device,
              args.batch_size, args.patch, tuple(args.widths), args.init,
              tuple(args.exclude), args.cloud_library)


if __name__ == "__main__":
    main()
