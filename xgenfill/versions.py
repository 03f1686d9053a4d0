"""``xgenfill.show_versions()``: what a bug report needs."""

from __future__ import annotations

import importlib
import platform
import sys
from typing import TextIO

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


def show_versions(file: "TextIO | None" = None) -> None:
    """Print the versions of xgenfill and its dependencies, for a bug report.

    Also says which CUDA build torch is and whether a GPU is visible.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default: standard output).

    See Also
    --------
    xgenfill.list_models : Which pretrained models are available offline.

    Examples
    --------
    >>> import io
    >>> import xgenfill
    >>> buf = io.StringIO()
    >>> xgenfill.show_versions(file=buf)
    >>> "xarray:" in buf.getvalue()
    True
    """
    for key, value in versions().items():
        print(f"{key:>14}: {value}", file=file or sys.stdout)
