"""Shared fixtures: small synthetic cubes with known structure, and real files when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def realdata(relative: str) -> Path:
    """Path of a file in ../shared/realdata, or skip (e.g. when testing from an sdist)."""
    path = REALDATA / relative
    if not path.exists():
        pytest.skip(f"real data not available ({path} missing: tests run outside the repo)")
    return path


def make_field(nt: int = 40, ny: int = 24, nx: int = 32, seed: int = 0, rank: int = 3
               ) -> np.ndarray:
    """Smooth low-rank space-time field (log10-chl-like, around -0.3) with known structure."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:ny, 0:nx] / np.array([ny, nx])[:, None, None]
    t = np.arange(nt) / nt
    field = np.full((nt, ny, nx), -0.3)
    for k in range(rank):
        pattern = np.sin(np.pi * (k + 1) * x + rng.uniform(0, 6)) * np.cos(
            np.pi * (k + 1) * y + rng.uniform(0, 6))
        amp = np.sin(2 * np.pi * (k + 1) * t + rng.uniform(0, 6)) / (k + 1)
        field += 0.3 * amp[:, None, None] * pattern[None]
    return field


def make_clouds(shape: tuple[int, int, int], seed: int = 1, frac: float = 0.35) -> np.ndarray:
    """Blob-shaped clouds: True where a pixel is missing."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    noise = gaussian_filter(rng.standard_normal(shape), sigma=(0, 3, 3))
    thresholds = np.quantile(noise.reshape(shape[0], -1), 1 - frac, axis=1)
    return noise > thresholds[:, None, None]


def make_chl(nt: int = 40, ny: int = 24, nx: int = 32, seed: int = 0, land: bool = True
             ) -> xr.DataArray:
    """A chlorophyll DataArray with CF metadata, clouds and a land corner."""
    truth = 10 ** make_field(nt, ny, nx, seed)
    data = truth.astype(np.float32)
    data[make_clouds(data.shape, seed + 1)] = np.nan
    if land:
        data[:, :5, :6] = np.nan
    da = xr.DataArray(
        data, dims=("time", "lat", "lon"), name="chl",
        coords={"time": pd.date_range("2020-01-01", periods=nt, freq="D"),
                "lat": np.linspace(40, 45, ny), "lon": np.linspace(-60, -52, nx)},
        attrs={"units": "mg m-3", "long_name": "chlorophyll-a concentration",
               "standard_name": "mass_concentration_of_chlorophyll_a_in_sea_water"},
    )
    da.lat.attrs.update(standard_name="latitude", units="degrees_north")
    da.lon.attrs.update(standard_name="longitude", units="degrees_east")
    return da


@pytest.fixture
def chl() -> xr.DataArray:
    return make_chl()


@pytest.fixture
def chl_truth() -> np.ndarray:
    return (10 ** make_field()).astype(np.float32)


# float32: the invariance tests check agreement to float rounding (bf16 has its own tests)
TINY = dict(widths=(8, 16), window=2, device="cpu", precision="float32")


@pytest.fixture(scope="session")
def tiny_models():
    """A diffusion and a VAE model trained in seconds on a synthetic cube."""
    import xgenfill

    da = make_chl(nt=60, seed=5)
    out = {}
    for kind in ("diffusion", "vae"):
        out[kind] = xgenfill.train(da, model=kind, max_steps=300, patch=24, progress=False,
                                   seed=0, **TINY)
    return out
