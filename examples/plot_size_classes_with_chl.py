"""
Fill size classes with chlorophyll
==================================

Phytoplankton size-class fractions (pico, nano, micro) are retrieved less often than the
chlorophyll they are derived from (a global 4 km archive: about 60 % missing against 10 %),
and chlorophyll explains much of them (abundance-based models: Brewin et al. 2010). Passing
chlorophyll as a covariate lets every filler use it: :func:`xgenfill.inpaint_fractions`
splits each centred log-ratio field into its per-date regression on the covariates
(:func:`xgenfill.fractions.covariate_trend`) and a residual, fills the residual with the
chosen model and adds the two. :func:`xgenfill.train_fractions` trains networks on those
residuals, which also read chlorophyll with its own gaps.

No real gridded size-class product ships with xgenfill, so the fractions here are made from
the bundled real OC-CCI monthly chlorophyll around Oahu with the three-component model of
Brewin et al. (2010): ``C_pn = 1.057 (1 - exp(-0.851 C))``, ``C_p = 0.107 (1 - exp(-6.801
C))``, with a smooth random modulation of pico's share of the small cells (the logit of
``C_p / C_pn`` shifted by 0.3 times a Gaussian random field smoothed over 3 months and 4
pixels) that chlorophyll does not explain, and real MODIS cloud masks (from the bundled
PhytoFit sample) on top of chlorophyll's own gaps. Their truth is known under those clouds,
so the fills are scored there. The full benchmark is ``benchmarks/psc.py``.
"""

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter

import xgenfill

chl = xgenfill.open_sample("oahu").chlor_a.isel(time=slice(0, 120))
rng = np.random.default_rng(0)
g = gaussian_filter(rng.standard_normal(chl.shape), (3, 4, 4), mode="wrap")
g = g / g.std()
pico_nano = 1.057 * (1 - np.exp(-0.851 * chl))
pico = 0.107 * (1 - np.exp(-6.801 * chl))
share = np.log(pico / (pico_nano - pico)) + 0.3 * g  # pico's share of pico + nano, modulated
pico = pico_nano / (1 + np.exp(-share))
truth = xr.Dataset({"pico": pico / chl, "nano": (pico_nano - pico) / chl,
                    "micro": (chl - pico_nano) / chl})

# real MODIS cloud masks: per month, the clouds of a 17 x 21 crop of open sea (no land) on
# a PhytoFit day that had 30 to 70 % of that crop under cloud
pf = np.isfinite(xgenfill.open_sample("phytofit").chl.values)
crop = (slice(39, 56), slice(40, 61))
assert pf[:, crop[0], crop[1]].any(0).all()  # all sea
share = 1 - pf[:, crop[0], crop[1]].mean((1, 2))
days = np.flatnonzero((share > 0.3) & (share < 0.7))
clouds = ~pf[rng.choice(days, 120)][:, crop[0], crop[1]]
ds = truth.where(~clouds)
ds["chl"] = chl
for name in ("pico", "nano", "micro"):
    ds[name].attrs = {"units": "1", "long_name": f"{name}phytoplankton fraction of chl-a"}
names = ["pico", "nano", "micro"]
sea = chl.notnull().values
print(f"size classes missing: {1 - ds.pico.notnull().values[:, sea.any(0)].mean():.0%}, "
      f"chlorophyll missing: {1 - sea[:, sea.any(0)].mean():.0%}")

# %%
# The anomaly fill alone, the same with chlorophyll as a covariate, and diffusion networks
# trained on the residuals (a short CPU budget here; the benchmark trains longer).

plain = xgenfill.inpaint_fractions(ds, names, model="anomaly")
with_chl = xgenfill.inpaint_fractions(ds, names, model="anomaly", covariates=["chl"])
models = xgenfill.train_fractions(ds, names, covariates=["chl"], max_steps=150, patch=16,
                                  widths=(16, 32), seed=0)
net = xgenfill.inpaint_fractions(ds, names, model=models, covariates=["chl"], n_samples=4)

hidden = clouds & sea  # hidden by the clouds, with a known truth


def rmse(out):  # on the hidden pixels each fill reached (all but a handful)
    return float(np.sqrt(np.nanmean([(out[n].values[hidden] - truth[n].values[hidden]) ** 2
                                     for n in names])))


for label, out in (("anomaly", plain), ("anomaly + chl", with_chl),
                   ("diffusion + chl", net)):
    total = sum(out[n] for n in names).where(out.pico_filled_flag == 1)
    print(f"{label:16s} mean fraction RMSE {rmse(out):.4f}; "
          f"largest |sum - 1| {float(abs(total - 1).max()):.1e}")

# %%
# One month: chlorophyll, the true pico fraction, the pixels the clouds hid, and the three
# fills of pico.

t = int(np.argmax(hidden.sum((1, 2))))
fig, axes = plt.subplots(1, 5, figsize=(17, 3.2), sharey=True, constrained_layout=True)
np.log10(chl.isel(time=t)).plot(ax=axes[0], cmap="viridis",
                                cbar_kwargs={"label": "log10 chl"})
axes[0].set_title("chlorophyll (observed)")
kw = dict(vmin=float(truth.pico[t].min()), vmax=float(truth.pico[t].max()), cmap="cividis")
truth.pico.isel(time=t).plot(ax=axes[1], **kw)
axes[1].set_title("pico: truth")
ds.pico.isel(time=t).plot(ax=axes[2], **kw)
axes[2].set_title("pico: observed")
plain.pico.isel(time=t).plot(ax=axes[3], **kw)
axes[3].set_title(f"anomaly ({rmse(plain):.3f})")
net.pico.isel(time=t).plot(ax=axes[4], **kw)
axes[4].set_title(f"diffusion + chl ({rmse(net):.3f})")
plt.show()
