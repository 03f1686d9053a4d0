"""Fill the gaps of the bundled MODIS chlorophyll sample with the embedded diffusion model,
get an 8-member ensemble mean with its spread, and save NetCDF + PNG.

    python examples/quickstart.py
"""

import xgenfill
from xgenfill.plot import plot_fill

ds = xgenfill.open_sample("phytofit")
out = ds.chl.genfill.inpaint(model="diffusion", n_samples=8, seed=0, return_dataset=True)
print(out)
out.to_netcdf("chl_filled.nc")
plot_fill(ds.chl, out, "chl_filled.png")
