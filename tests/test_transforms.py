import numpy as np
import pytest

import xgenfill
from xgenfill.errors import GenfillError
from xgenfill.prepare import prepare
from xgenfill.transforms import TRANSFORMS

from .conftest import make_chl


def test_chl_by_standard_name_and_by_units():
    da = make_chl()
    assert prepare(da).transform.name == "log10"
    da2 = da.copy()
    da2.attrs = {"units": "mg m-3"}
    assert prepare(da2).transform.name == "log10"  # name 'chl' + mg m-3
    da3 = da.rename("sst")
    da3.attrs = {"units": "degree_Celsius"}
    assert prepare(da3).transform.name == "identity"


def test_fraction_gets_logit_and_override():
    da = make_chl()
    frac = (da / (da + 1)).rename("pico_fraction")
    frac.attrs = {"units": "1", "long_name": "pico fraction"}
    assert prepare(frac).transform.name == "logit"
    assert prepare(frac, transform="identity").transform.name == "identity"
    with pytest.raises(GenfillError, match="unknown transform"):
        prepare(frac, transform="sqrt")


@pytest.mark.parametrize("name", ["log10", "logit", "identity"])
def test_inverse_is_exact(name):
    x = np.array([0.01, 0.2, 0.5, 0.9])
    tf = TRANSFORMS[name]
    np.testing.assert_allclose(tf.inverse(tf.forward(x)), x, rtol=1e-12)


def test_normalised_values_are_standardised():
    p = prepare(make_chl())
    v = p.values[np.isfinite(p.values)]
    assert abs(v.mean()) < 1e-4 and abs(v.std() - 1) < 1e-3
    np.testing.assert_allclose(p.to_physical(p.values)[np.isfinite(p.values)],
                               make_chl().values.reshape(p.values.shape)[np.isfinite(p.values)],
                               rtol=1e-5)


def test_fraction_fill_stays_in_unit_interval():
    da = make_chl()
    frac = (da / (da + 1)).rename("micro")
    frac.attrs = {"units": "1"}
    out = xgenfill.inpaint(frac, model="linear_time")
    v = out.values[np.isfinite(out.values)]
    assert v.min() >= 0 and v.max() <= 1
