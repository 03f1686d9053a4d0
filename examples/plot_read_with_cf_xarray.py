"""
Read the outputs with cf-xarray
===============================

The files xgenfill writes follow the CF conventions: the filled variable names its status
flag and its uncertainty in ``ancillary_variables``, and the flag carries ``flag_values`` and
``flag_meanings``. cf-xarray reads them by meaning instead of by name.
"""

import tempfile
from pathlib import Path

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import matplotlib.pyplot as plt
import xarray as xr

import xgenfill

ds = xgenfill.open_sample("oahu")
out = ds.chlor_a.genfill.inpaint(model="dineof", return_dataset=True)
path = Path(tempfile.mkdtemp()) / "oahu_filled.nc"
out.to_netcdf(path)

back = xr.open_dataset(path)
print(back.chlor_a.attrs["ancillary_variables"])
print(back.cf.get_associated_variable_names("chlor_a"))

# %%
# The flag by meaning: ``flag.cf == "filled"`` compares with the value that means "filled";
# ``filled_outside_observed_range`` marks fills beyond every observed value (extrapolations).

flag = back.chlor_a_filled_flag
print(flag.cf)
filled = (flag.cf == "filled") | (flag.cf == "filled_outside_observed_range")
share = filled.sum(("latitude", "longitude")) / (flag.cf != "land_or_masked").sum(
    ("latitude", "longitude"))

# %%
# Axes by meaning too, whatever they are called in the file.

fig, ax = plt.subplots(figsize=(9, 3), constrained_layout=True)
(100 * share).plot(ax=ax)
ax.set_ylabel("share of the sea filled (%)")
ax.set_xlabel(back.cf["T"].name)
ax.set_title("OC-CCI monthly chlorophyll around Oahu: what DINEOF filled")
plt.show()
