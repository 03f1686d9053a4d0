"""``xgenfill.show_versions()``: what a bug report needs."""

from __future__ import annotations

import importlib
import platform
import sys

from ._version import __version__

_PACKAGES = ("numpy", "xarray", "dask", "cf_xarray", "pooch", "netCDF4", "scipy", "torch",
             "safetensors", "tqdm", "distributed", "matplotlib")


def versions() -> dict[str, str]:
    out = {"xgenfill": __version__, "python": sys.version.split()[0],
           "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            mod = importlib.import_module(name)
            out[name] = getattr(mod, "__version__", "installed")
        except ImportError:
            out[name] = "not installed"
    if out["torch"] != "not installed":
        import torch

        out["cuda"] = torch.version.cuda or "none"
        out["cuda_available"] = str(torch.cuda.is_available())
    return out


def show_versions(file=None) -> None:
    """Print the versions of xgenfill and its dependencies."""
    for key, value in versions().items():
        print(f"{key:>14}: {value}", file=file or sys.stdout)
