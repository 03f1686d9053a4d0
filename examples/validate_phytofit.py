"""Score the pretrained models, DINEOF and simple baselines on the bundled MODIS sample, the way
a reviewer would accept: real cloud masks transplanted onto observed pixels, scores only there.

    python examples/validate_phytofit.py validation.png
"""

import sys

import xgenfill
from xgenfill.plot import plot_validation

ds = xgenfill.open_sample("phytofit")
result = ds.chl.genfill.validate(models=["diffusion", "vae", "dineof", "linear_time"],
                                 holdout="transplant", fraction=0.1, n_samples=8, seed=0)
print(result[["n", "rmse", "bias", "skill", "crps", "spread_skill"]].to_dataframe())
plot_validation(result, ds.chl, sys.argv[1] if len(sys.argv) > 1 else "validation.png")
