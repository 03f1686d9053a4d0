#!/usr/bin/env python
"""Throughput of the neural fillers on one large field: Mpx/s per model and device.

    python benchmarks/throughput.py --weights weights/diffusion-chl-v1 --size 4320 8640 \
        --members 8 --device cuda
    python benchmarks/throughput.py --weights vae --size 1024 1024 --members 1 --device cpu

``--weights``: a registry name, a kind ("diffusion", "vae": the default model) or a path.

A synthetic log-normal chlorophyll-like field with 10 % cloud gaps and 30 % land on a global
grid (periodic longitude) is filled; the time of ``fill`` (tiling, sampling, device transfers)
is reported, plus peak device memory on CUDA.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_day(ny: int, nx: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normalised field (1, ny, nx) with NaN gaps, and an ocean mask."""
    import torch

    g = torch.Generator().manual_seed(seed)
    low = torch.randn(1, 1, ny // 32 + 1, nx // 32 + 1, generator=g)
    field = torch.nn.functional.interpolate(low, size=(ny, nx), mode="bilinear")[0, 0].numpy()
    clouds = torch.nn.functional.interpolate(torch.randn(1, 1, ny // 16 + 1, nx // 16 + 1,
                                                         generator=g), size=(ny, nx),
                                             mode="bilinear")[0, 0].numpy()
    land = torch.nn.functional.interpolate(torch.randn(1, 1, ny // 64 + 1, nx // 64 + 1,
                                                       generator=g), size=(ny, nx),
                                           mode="bilinear")[0, 0].numpy()
    ocean = land < np.quantile(land, 0.7)
    v = np.where(ocean & (clouds < np.quantile(clouds, 0.9)), field, np.nan).astype(np.float32)
    return v[None], ocean


def main() -> None:
    import torch

    from xgenfill.models.base import Cube
    from xgenfill.models.registry import get_filler

    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True)
    p.add_argument("--size", type=int, nargs=2, default=[4320, 8640])
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. -o steps=3 -o precision=float32")
    args = p.parse_args()
    ny, nx = args.size
    v, ocean = synthetic_day(ny, nx)
    opts = {k: (int(val) if val.isdigit() else val)
            for k, val in (o.split("=", 1) for o in args.option)}
    model = get_filler(args.weights, device=args.device, tile=args.tile,
                       batch_size=args.batch_size, **opts)
    cube = Cube(v, ocean, doy=np.array([150.0], np.float32), periodic_x=True)
    # warm-up on a small crop (kernel selection, allocator)
    model.fill(Cube(v[:, :512, :512], ocean[:512, :512], doy=cube.doy), n_samples=1)
    times = []
    for _ in range(args.repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = model.fill(cube, n_samples=args.members, seed=0)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    sec = min(times)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    row = {"model": model.kind, "options": opts, "device": str(model._device()),
           "precision": model.precision, "ny": ny, "nx": nx,
           "members": args.members, "nfe": model.nfe(), "seconds": round(sec, 2),
           "Mpx_per_s": round(ny * nx * args.members / sec / 1e6, 2),
           "peak_gpu_GiB": None if peak is None else round(peak, 2),
           "filled_fraction": float(np.isfinite(out.samples[:, cube.gaps]).mean())}
    print(json.dumps(row))


if __name__ == "__main__":
    main()
