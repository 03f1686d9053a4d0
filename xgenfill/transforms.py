"""Value transforms applied before filling, chosen from metadata, with exact inverses.

Chlorophyll is log-normal, so models work on log10(chl); bounded fractions (phytoplankton size
classes) work on logit(f); anything else is only standardised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .errors import GenfillError, warn

__all__ = ["Transform", "TRANSFORMS", "choose_transform", "variable_family", "describe"]

CHL_STANDARD_NAME = "mass_concentration_of_chlorophyll_a_in_sea_water"
_CHL_UNITS = {"mg m-3", "mg m^-3", "mg/m3", "mg/m^3", "mg m**-3", "milligram m-3", "mg.m-3",
              "ug l-1", "ug/l", "µg l-1", "mg m-3 "}
_FRACTION_UNITS = {"1", "", "fraction", "dimensionless", "none", "-"}
_TEMPERATURE_UNITS = {"k", "kelvin", "degc", "deg_c", "degree_c", "degrees_c", "celsius",
                      "degree_celsius", "degrees_celsius", "°c", "c"}
_SST_STANDARD_NAMES = ("sea_surface_temperature", "sea_surface_foundation_temperature",
                       "sea_surface_skin_temperature", "sea_surface_subskin_temperature",
                       "sea_water_temperature")
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


def _text(da: xr.DataArray) -> str:
    return " ".join(str(s).lower() for s in (da.name, da.attrs.get("long_name", "")))


def _looks_like_chlorophyll(da: xr.DataArray) -> bool:
    if da.attrs.get("standard_name", "").strip() == CHL_STANDARD_NAME:
        return True
    units = str(da.attrs.get("units", "")).strip().lower()
    text = _text(da)
    return units in _CHL_UNITS and ("chl" in text or "chlorophyll" in text)


def _chlorophyll_units_only(da: xr.DataArray) -> bool:
    """Units of chlorophyll (mg m-3) without a name or standard_name that says so."""
    units = str(da.attrs.get("units", "")).strip().lower()
    return units in _CHL_UNITS and not _looks_like_chlorophyll(da)


def spaced_units(units: str) -> str:
    """``units`` lower-cased with their words joined by underscores: "degree Celsius" and
    UDUNITS' "degree_Celsius" are the same key (the temperature tables here and in
    :mod:`xgenfill.plausible` are keyed so)."""
    return "_".join(str(units).strip().lower().split())


def _looks_like_sst(da: xr.DataArray) -> bool:
    std = str(da.attrs.get("standard_name", "")).strip().lower()
    if std in _SST_STANDARD_NAMES:
        return True
    # "degree Celsius", "degrees C": spelled with a space as often as with UDUNITS' underscore
    units = spaced_units(da.attrs.get("units", ""))
    text = _text(da)
    named = "sst" in text or "temperature" in text or "temp" in str(da.name).lower()
    return units in _TEMPERATURE_UNITS and named


def describe(da: xr.DataArray) -> str:
    """The metadata a variable is identified by, for messages."""
    keys = ("standard_name", "units", "long_name")
    found = ", ".join(f"{k}={da.attrs[k]!r}" for k in keys if k in da.attrs)
    return f"{da.name!r} ({found or 'no standard_name, units or long_name'})"


def variable_family(da: xr.DataArray, transform: str) -> str | None:
    """The pretrained model family that fits a variable in a transform, or None.

    ``"chl"``: chlorophyll-like data in log10 (the chl models' space); ``"sst"``: sea
    temperature, standardised (the SST models' space); ``"fraction"``: fractions in logit
    space (no pretrained model); None when the metadata say neither (the caller must say
    what it assumes).
    """
    if transform == "log10":
        return "chl" if _looks_like_chlorophyll(da) or _chlorophyll_units_only(da) else None
    if transform == "logit":
        return "fraction"
    if _looks_like_chlorophyll(da):
        return "chl-linear"  # chlorophyll, but not in the space its models know
    return "sst" if _looks_like_sst(da) else None


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
        if _chlorophyll_units_only(da):
            finite = sample[np.isfinite(sample)]
            if not finite.size or finite.min() > 0:
                warn(f"{describe(da)} has the units of chlorophyll but neither its name nor "
                     "its standard_name say it is chlorophyll: it is treated as chlorophyll "
                     "(log10, the chlorophyll models); pass transform='identity' if it is not, "
                     f"or set standard_name={CHL_STANDARD_NAME!r} to silence this")
                return TRANSFORMS["log10"]
        if _looks_like_fraction(da, sample):
            return TRANSFORMS["logit"]
        return TRANSFORMS["identity"]
    key = "identity" if override in ("standardise", "standardize", "none") else override
    if key not in TRANSFORMS:
        raise GenfillError(f"unknown transform {override!r}; choose one of "
                           f"{['auto', *TRANSFORMS]}")
    return TRANSFORMS[key]
