"""
Lazy fills of a chunked archive, with a progress bar
====================================================

A dask-backed input gives a lazy dask-backed result: nothing is filled until it is computed,
chunk by chunk with halos in time and space, and the result is the same whatever the chunking
(bit for bit) and the same as the eager fill (within float32 rounding).
This is how an archive larger than memory is filled (open it with ``xr.open_mfdataset`` or
``xr.open_zarr``, then write the result with ``to_zarr``/``to_netcdf``).
"""

import matplotlib.pyplot as plt
import numpy as np
from dask.diagnostics import ProgressBar

import xgenfill

ds = xgenfill.open_sample("phytofit")
lazy = ds.chl.chunk({"time": 30, "lat": 48, "lon": 80})
filled = lazy.genfill.inpaint(model="anomaly")
print(filled)  # a dask array: nothing computed yet

# %%
# Computing it runs the chunks in parallel; dask's progress bar reports them.

with ProgressBar():
    result = filled.compute()
other = ds.chl.chunk({"time": -1, "lat": -1, "lon": -1}).genfill.inpaint(model="anomaly")
print("same with one chunk:", np.array_equal(result, other.compute(), equal_nan=True))
eager = ds.chl.genfill.inpaint(model="anomaly")
print("same as eager (float32 rounding):",
      np.allclose(result, eager, rtol=1e-5, atol=0, equal_nan=True))

# %%
# The share of each day that is observed, and after the fill.

fig, ax = plt.subplots(figsize=(9, 3), constrained_layout=True)
sea = ds.chl.notnull().any("time")
(100 * ds.chl.notnull().where(sea).mean(("lat", "lon"))).plot(ax=ax, label="observed")
(100 * result.notnull().where(sea).mean(("lat", "lon"))).plot(ax=ax, label="after the fill")
ax.set_ylabel("share of the sea (%)")
ax.set_title("")
ax.legend()
plt.show()
