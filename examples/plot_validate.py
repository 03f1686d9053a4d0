"""
Score models on your own data: validate()
=========================================

There is no truth inside a gap. :func:`xgenfill.validate` hides observed pixels under real
cloud masks transplanted from other days, fills them with every model and scores the fills
there: RMSE and bias, and for ensembles CRPS, the spread/skill ratio and the rank (PIT)
histogram, plus the zonal spectra of each model's error.
"""

import matplotlib.pyplot as plt

import xgenfill
from xgenfill.plot import plot_validation

ds = xgenfill.open_sample("phytofit").isel(time=slice(30, 60))
result = ds.chl.genfill.validate(models=["diffusion", "anomaly", "dineof", "linear_time"],
                                 holdout="transplant", fraction=0.1, n_samples=8, seed=0)
table = result[["n", "rmse", "bias", "crps", "spread_skill"]].sel(space="transformed")
print(table.to_dataframe().round(4))

# %%
# The figure: the held-out pixels of one day, the best model's fill there and its error; the
# PIT histogram (flat when the ensemble is calibrated); the error spectra against the observed
# signal; RMSE per model with the ensemble's spread/skill (1 when calibrated).

fig = plot_validation(result, ds.chl)
plt.show()
