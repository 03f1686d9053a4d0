import subprocess
import sys

import xarray as xr


def test_import_does_not_import_torch():
    code = ("import sys, xgenfill, xarray as xr; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert hasattr(xr.DataArray([1.0]), 'genfill'); "
            "assert hasattr(xr.Dataset(), 'genfill'); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_accessor_is_the_function(chl):
    import xgenfill

    a = chl.genfill.inpaint(model="linear_time")
    b = xgenfill.inpaint(chl, model="linear_time")
    xr.testing.assert_equal(a, b)
    assert a.attrs.keys() == b.attrs.keys()
