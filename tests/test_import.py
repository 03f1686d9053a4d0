import subprocess
import sys

import xarray as xr


def _run_fresh(code: str) -> None:
    """Run ``code`` in a fresh interpreter; it must print 'ok'."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_import_does_not_import_torch():
    _run_fresh("import sys, xgenfill, xarray as xr; "
               "assert 'torch' not in sys.modules, 'torch imported'; "
               "assert hasattr(xr.DataArray([1.0]), 'genfill'); "
               "assert hasattr(xr.Dataset(), 'genfill'); print('ok')")


def test_accessor_is_the_function(chl):
    import xgenfill

    a = chl.genfill.inpaint(model="linear_time")
    b = xgenfill.inpaint(chl, model="linear_time")
    xr.testing.assert_equal(a, b)
    assert a.attrs.keys() == b.attrs.keys()


def test_models_is_the_subpackage_and_still_the_zoo_call():
    # xgenfill.models was a function shadowing the subpackage: after importing a submodule,
    # xgenfill.models.neural failed. Both must work, and the old call give the zoo's list.
    _run_fresh("import xgenfill, xgenfill.models.neural; "
               "assert xgenfill.models.neural.NeuralFiller; "
               "assert xgenfill.models() == xgenfill.list_models(); "
               "assert xgenfill.models.registry.model_names() == xgenfill.model_names(); "
               "print('ok')")


def test_accessor_methods_have_the_functions_signature_less_the_object():
    import inspect

    import xgenfill

    pairs = [(xgenfill.accessor.GenfillDataArrayAccessor.inpaint, xgenfill.inpaint),
             (xgenfill.accessor.GenfillDataArrayAccessor.fit, xgenfill.train),
             (xgenfill.accessor.GenfillDataArrayAccessor.validate, xgenfill.validate),
             (xgenfill.accessor.GenfillDatasetAccessor.inpaint, xgenfill.inpaint_dataset),
             (xgenfill.accessor.GenfillDatasetAccessor.inpaint_fractions,
              xgenfill.inpaint_fractions)]
    for method, func in pairs:
        m = list(inspect.signature(method).parameters)
        f = list(inspect.signature(func).parameters)
        assert m[0] == "self" and m[1:] == f[1:], method.__name__
        # the object's own parameter is not documented on the method
        doc_m, doc_f = inspect.getdoc(method), inspect.getdoc(func)
        assert f"\n{f[0]} : " not in doc_m and f"\n{f[0]} : " in doc_f
