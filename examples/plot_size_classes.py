"""
Size classes that sum to one, beside chlorophyll
================================================

Phytoplankton size-class fractions (pico, nano, micro) must sum to 1 at every pixel. Filled
one by one they do not; :func:`xgenfill.inpaint_fractions` fills them together in centred
log-ratio space and closes them with a softmax, so every filled pixel sums to 1.

No real gridded size-class product ships with xgenfill, so the fractions here are derived from
the bundled real MODIS chlorophyll with the three-component abundance model of Brewin et al.
(2010, Ecological Modelling 221, 1472-1483): ``C_pn = 1.057 (1 - exp(-0.851 C))``,
``C_p = 0.107 (1 - exp(-6.801 C))``. They share chlorophyll's real gaps.
"""

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.colors import LogNorm

import xgenfill

chl = xgenfill.open_sample("phytofit").chl.isel(time=slice(30, 60))
pico_nano = 1.057 * (1 - np.exp(-0.851 * chl))
pico = 0.107 * (1 - np.exp(-6.801 * chl))
ds = xr.Dataset({"chl": chl, "pico": pico / chl, "nano": (pico_nano - pico) / chl,
                 "micro": (chl - pico_nano) / chl})
for name in ("pico", "nano", "micro"):
    ds[name].attrs = {"units": "1", "long_name": f"{name}phytoplankton fraction of chl-a"}

names = ["pico", "nano", "micro"]
out = ds.genfill.inpaint_fractions(names, model="anomaly")
total = sum(out[n] for n in names)
filled = out.pico_filled_flag.isin([1, 4, 5])  # 4, 5: beyond the observed range, never observed
print(f"{int(filled.sum())} pixels filled; largest |sum - 1| there: "
      f"{float(abs(total - 1).where(filled).max()):.1e}")

# %%
# Chlorophyll and the three filled fractions on one day.

n_observed = ds.pico.notnull().sum(("lat", "lon"))
day = int(np.argmax((filled.sum(("lat", "lon")) * n_observed).values))  # partly cloudy
fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), sharey=True, constrained_layout=True)
chl.isel(time=day).plot(ax=axes[0], norm=LogNorm(0.1, 10))
axes[0].set_title("chlorophyll-a (observed)")
for ax, name in zip(axes[1:], names):
    out[name].isel(time=day).plot(ax=ax, vmin=0, vmax=1, cmap="cividis")
    ax.set_title(f"{name} (filled)")
plt.show()
