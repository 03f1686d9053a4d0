"""xgenfill: generative gap filling of gridded satellite ocean observations, from xarray.

``import xgenfill`` registers the ``.genfill`` accessor on DataArray and Dataset. torch and
pooch are only imported when a model runs or weights are fetched.
"""

import logging

from . import accessor  # noqa: F401  (registers .genfill)
from ._version import __version__
from .api import inpaint, inpaint_dataset, train
from .fractions import inpaint_fractions, to_log_ratios, train_fractions
from .errors import GenfillError, GenfillWarning, OfflineError, WeightsError
from .models.registry import model_names
from .samples import open_sample
from .validation import validate
from .fraction_validation import validate_fractions
from .versions import show_versions
from .zoo import list_models
from . import models  # noqa: F401  (the subpackage; callable: xgenfill.models() = list_models())

__all__ = [
    "__version__", "inpaint", "inpaint_dataset", "inpaint_fractions", "to_log_ratios", "train",
    "train_fractions",
    "validate", "validate_fractions", "list_models", "model_names",
    "open_sample", "show_versions", "GenfillError", "GenfillWarning", "OfflineError",
    "WeightsError",
]

# A library logs, the application decides what to show (``logging.getLogger("xgenfill")``).
logging.getLogger(__name__).addHandler(logging.NullHandler())
