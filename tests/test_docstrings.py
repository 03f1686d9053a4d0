"""The public API's docstrings are complete (numpydoc validation) and their Examples run.

The same checks as the docs build (``numpydoc_validation_checks`` in ``docs/conf.py``), so a
missing parameter, Returns, See Also or Examples section fails here before it reaches a page.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

import xgenfill

validate = pytest.importorskip("numpydoc.validate")

# GL01: our summaries start on the line of the opening quotes (PEP 257), not the line after.
IGNORED = {"GL01"}

ACCESSOR_METHODS = [
    "xgenfill.accessor.GenfillDataArrayAccessor.inpaint",
    "xgenfill.accessor.GenfillDataArrayAccessor.validate",
    "xgenfill.accessor.GenfillDataArrayAccessor.fit",
    "xgenfill.accessor.GenfillDatasetAccessor.inpaint",
    "xgenfill.accessor.GenfillDatasetAccessor.inpaint_fractions",
]
PUBLIC = ([f"xgenfill.{name}" for name in xgenfill.__all__ if name != "__version__"]
          + ["xgenfill.accessor.GenfillDataArrayAccessor",
             "xgenfill.accessor.GenfillDatasetAccessor"]
          + ACCESSOR_METHODS + ["xgenfill.plot.plot_fill", "xgenfill.plot.plot_validation"]
          # the submodule entries of the API page (docs/api.rst)
          + ["xgenfill.fractions.covariate_trend", "xgenfill.landmask.auto_sea_mask",
             "xgenfill.streaming.ArchiveSampler", "xgenfill.metrics.rmse_ratio_interval"])


def _resolve(name: str):
    module, _, attr = name.rpartition(".")
    try:
        obj = importlib.import_module(module)
        return getattr(obj, attr)
    except ImportError:
        parent, _, cls = module.rpartition(".")
        return getattr(getattr(importlib.import_module(parent), cls), attr)


@pytest.mark.parametrize("name", PUBLIC)
def test_numpydoc_validation_is_clean(name):
    result = validate.validate(name)
    errors = [f"{code}: {msg}" for code, msg in result["errors"] if code not in IGNORED]
    assert not errors, f"{name}:\n" + "\n".join(errors)


@pytest.mark.parametrize("name", PUBLIC)
def test_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setenv("XGENFILL_OFFLINE", "1")
    obj = _resolve(name)
    tests = doctest.DocTestFinder(recurse=False).find(obj, name, globs={})
    examples = [t for t in tests if t.examples]
    assert examples, f"{name} has no Examples that run"
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    report: list[str] = []
    for test in examples:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
