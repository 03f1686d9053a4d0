"""
Fill a day of chlorophyll, with its flag and uncertainty
========================================================

The embedded diffusion model fills the cloud gaps of a month of real MODIS-Aqua chlorophyll
(NW Atlantic, May 2015). With ``n_samples=8`` and ``return_dataset=True`` the result carries
the best estimate, a CF status flag saying what was filled, and the spread of eight generated
members at every filled pixel.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

import xgenfill

ds = xgenfill.open_sample("phytofit").isel(time=slice(30, 60))
out = ds.chl.genfill.inpaint(n_samples=8, seed=0, return_dataset=True, progress=False)
print(out)

# %%
# One day before and after. Observed pixels are unchanged; land (never observed) stays empty.

# the day with most of both observed and filled pixels: a partly cloudy day shows the fill best
n_filled = out.chl_filled_flag.isin([1, 4, 5]).sum(("lat", "lon")).values
n_observed = (out.chl_filled_flag == 0).sum(("lat", "lon")).values
day = int(np.argmax(n_filled * n_observed))
when = str(ds.time.values[day])[:10]
norm = LogNorm(0.1, 10)
fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True, sharey=True,
                         constrained_layout=True)
ds.chl.isel(time=day).plot(ax=axes[0, 0], norm=norm, cmap="viridis")
axes[0, 0].set_title(f"observed {when}")
out.chl.isel(time=day).plot(ax=axes[0, 1], norm=norm, cmap="viridis")
axes[0, 1].set_title("filled (diffusion, conditional mean)")
flag = out.chl_filled_flag.isel(time=day)
flag.plot(ax=axes[1, 0], levels=np.arange(-0.5, len(flag.attrs["flag_values"])), cmap="Set2",
          cbar_kwargs={"ticks": flag.attrs["flag_values"]})
axes[1, 0].set_title("status (see flag_meanings)")
print(dict(zip(flag.attrs["flag_values"].tolist(), flag.attrs["flag_meanings"].split())))
out.chl_uncertainty.isel(time=day).plot(ax=axes[1, 1], cmap="magma")
axes[1, 1].set_title("uncertainty: spread of 8 members (log10)")
plt.show()

# %%
# How much of each day was filled, and how uncertain the fills are on average.

filled = out.chl_filled_flag.isin([1, 4, 5])  # 4, 5: beyond the observed range, never observed
share = filled.mean(("lat", "lon"))
spread = out.chl_uncertainty.where(filled).mean(("lat", "lon"))
fig, ax = plt.subplots(figsize=(9, 3), constrained_layout=True)
(100 * share).plot(ax=ax, label="share filled (%)")
ax2 = ax.twinx()
spread.plot(ax=ax2, color="tab:red")
ax.set_ylabel("share of the box filled (%)")
ax2.set_ylabel("mean spread (log10)", color="tab:red")
ax.set_title("")
plt.show()
