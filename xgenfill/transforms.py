"""Value transforms applied before filling, chosen from metadata, with exact inverses.

Chlorophyll is log-normal, so models work on log10(chl); bounded fractions (phytoplankton size
classes) work on logit(f); anything else is only standardised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .errors import GenfillError

__all__ = ["Transform", "TRANSFORMS", "choose_transform"]

CHL_STANDARD_NAME = "mass_concentration_of_chlorophyll_a_in_sea_water"
_CHL_UNITS = {"mg m-3", "mg m^-3", "mg/m3", "mg/m^3", "mg m**-3", "milligram m-3", "mg.m-3",
              "ug l-1", "ug/l", "µg l-1", "mg m-3 "}
_FRACTION_UNITS = {"1", "", "fraction", "dimensionless", "none", "-"}
LOGIT_EPS = 1e-4  # fractions of exactly 0 or 1 are clipped before logit (observed pixels are
# copied back unchanged, so clipping only affects what the model sees).


@dataclass(frozen=True)
class Transform:
    """A monotonic value transform with its inverse."""

    name: str

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.name == "log10":
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log10(x)
        if self.name == "logit":
            p = np.clip(x, LOGIT_EPS, 1 - LOGIT_EPS)
            return np.log(p) - np.log1p(-p)
        return x

    def inverse(self, y: np.ndarray) -> np.ndarray:
        if self.name == "log10":
            return np.power(10.0, y)
        if self.name == "logit":
            return 1.0 / (1.0 + np.exp(-y))
        return y

    def check(self, values: np.ndarray, name: str) -> None:
        """Refuse values outside the transform's domain."""
        finite = values[np.isfinite(values)]
        if self.name == "log10" and finite.size and finite.min() <= 0:
            raise GenfillError(
                f"{name!r} has non-positive values (min {finite.min():g}) but is filled in log10 "
                "space; mask them as NaN or pass transform='identity'"
            )
        if self.name == "logit" and finite.size and (finite.min() < 0 or finite.max() > 1):
            raise GenfillError(
                f"{name!r} has values outside [0, 1] but is filled in logit space; "
                "pass transform='identity'"
            )

    @property
    def label(self) -> str:
        return {"log10": "log10", "logit": "logit"}.get(self.name, "")


TRANSFORMS = {name: Transform(name) for name in ("log10", "logit", "identity")}


def _looks_like_chlorophyll(da: xr.DataArray) -> bool:
    if da.attrs.get("standard_name", "").strip() == CHL_STANDARD_NAME:
        return True
    units = str(da.attrs.get("units", "")).strip().lower()
    text = " ".join(str(s).lower() for s in (da.name, da.attrs.get("long_name", "")))
    return units in _CHL_UNITS and ("chl" in text or "chlorophyll" in text)


def _looks_like_fraction(da: xr.DataArray, sample: np.ndarray) -> bool:
    units = str(da.attrs.get("units", "")).strip().lower()
    std = str(da.attrs.get("standard_name", "")).lower()
    if units not in _FRACTION_UNITS and "fraction" not in std:
        return False
    finite = sample[np.isfinite(sample)]
    return bool(finite.size and finite.min() >= 0 and finite.max() <= 1)


def choose_transform(da: xr.DataArray, sample: np.ndarray, override: str | None = "auto"
                     ) -> Transform:
    """Pick the transform from metadata, unless ``override`` names one.

    Parameters
    ----------
    da
        The variable (its name and attributes are read).
    sample
        Its values (only used to check that a fraction lies in [0, 1]).
    override
        ``"auto"`` (default), ``"log10"``, ``"logit"`` or ``"identity"``.
    """
    if override in (None, "auto"):
        if _looks_like_chlorophyll(da):
            return TRANSFORMS["log10"]
        if _looks_like_fraction(da, sample):
            return TRANSFORMS["logit"]
        return TRANSFORMS["identity"]
    key = "identity" if override in ("standardise", "standardize", "none") else override
    if key not in TRANSFORMS:
        raise GenfillError(f"unknown transform {override!r}; choose one of "
                           f"{['auto', *TRANSFORMS]}")
    return TRANSFORMS[key]
