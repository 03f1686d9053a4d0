"""The files xgenfill writes, as a data manager checks them: the IOOS compliance-checker finds
nothing that xgenfill's own writing caused (cf:1.8 and cf:1.11), and the CLI keeps what the
input carried (global attributes, other variables, compression)."""

from __future__ import annotations

import json
import warnings
from importlib import resources

import numpy as np
import pytest
import xarray as xr

import xgenfill
from xgenfill.cli import main

OAHU = resources.files("xgenfill") / "data" / "occci_oahu_monthly.nc"


def _issues(path, tmp_path, checker: str) -> set[str]:
    """The checker's errors and warnings (high and medium priority) on a file."""
    runner = pytest.importorskip("compliance_checker.runner")
    report = tmp_path / f"{path.stem}-{checker}.json"
    runner.CheckSuite.load_all_available_checkers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns when it cannot fetch the latest name table
        runner.ComplianceChecker.run_checker(str(path), [checker], 0, "normal",
                                             output_filename=str(report), output_format="json")
    result = json.loads(report.read_text())[checker]
    out = set()
    for level in ("high_priorities", "medium_priorities"):
        for check in result[level]:
            stack = [check]
            while stack:
                node = stack.pop()
                out.update(f"{check['name']}: {m}" for m in node["msgs"])
                stack.extend(node.get("children", []))
    # We declare the version we follow (CF-1.8); a check against a later version asks for its
    # own number in Conventions, whatever the file holds: not a defect of what we wrote.
    with xr.open_dataset(path) as ds:
        ours = "CF-1.8" in str(ds.attrs.get("Conventions", ""))
    return {m.replace(path.name, "FILE") for m in out
            if not (ours and "Conventions global attribute does not contain" in m)}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The bundled OC-CCI file, filled by the CLI and by return_dataset=True."""
    tmp = tmp_path_factory.mktemp("cf")
    src = tmp / "oahu.nc"
    with resources.as_file(OAHU) as p:
        src.write_bytes(p.read_bytes())
    cli = tmp / "oahu_cli.nc"
    assert main(["inpaint", str(src), str(cli), "--var", "chlor_a", "--model",
                 "linear_time"]) == 0
    ds = xgenfill.open_sample("phytofit")
    api = tmp / "phytofit_api.nc"
    ds.chl.genfill.inpaint(model="linear_time", return_dataset=True).to_netcdf(api)
    plain = tmp / "phytofit_in.nc"
    ds.to_netcdf(plain)
    return {"src": src, "cli": cli, "api": api, "plain": plain}


@pytest.mark.parametrize("checker", ["cf:1.8", "cf:1.11"])
def test_compliance_checker_finds_nothing_we_wrote(written, tmp_path, checker):
    before_cli = _issues(written["src"], tmp_path, checker)
    new_cli = _issues(written["cli"], tmp_path, checker) - before_cli
    assert not new_cli, new_cli
    # the Dataset form of an in-memory DataArray: whatever the input lacked, we add nothing bad
    before_api = _issues(written["plain"], tmp_path, checker)
    new_api = _issues(written["api"], tmp_path, checker) - before_api
    assert not new_api, new_api


def test_cli_keeps_the_inputs_attributes_variables_and_compression(written, tmp_path):
    with xr.open_dataset(written["src"]) as src, xr.open_dataset(written["cli"]) as out:
        for key, value in src.attrs.items():
            if key != "history":
                assert key in out.attrs and str(out.attrs[key]) == str(value), key
        assert out.attrs["history"].startswith(tuple("0123456789"))  # our line first
        assert "history" not in out.chlor_a.attrs or \
            out.chlor_a.attrs["history"] == src.chlor_a.attrs.get("history")
        assert set(src.variables) <= set(out.variables)
        for name in ("chlor_a_filled_flag", "chlor_a_uncertainty"):
            assert out[name].encoding.get("zlib") == src.chlor_a.encoding.get("zlib"), name
        links = out.chlor_a.attrs["ancillary_variables"].split()
        assert links[-2:] == ["chlor_a_filled_flag", "chlor_a_uncertainty"]
        for old in src.chlor_a.attrs.get("ancillary_variables", "").split():
            assert old in links  # appended to, not overwritten
        for coord in src.coords:
            if "_FillValue" not in src[coord].encoding:
                assert "_FillValue" not in out[coord].encoding, coord
    size_in, size_out = written["src"].stat().st_size, written["cli"].stat().st_size
    assert size_out < 4 * size_in, (size_in, size_out)  # three variables, compressed alike


def test_range_attributes_stay_true_after_filling():
    ds = xgenfill.open_sample("phytofit").isel(time=slice(0, 20))
    da = ds.chl.copy()
    lo, hi = float(da.min()), float(da.max())
    da.attrs.update(actual_range=np.array([lo, hi], np.float32),
                    valid_max=np.float32(hi * 0.5))  # a bound the data already break
    out = xgenfill.inpaint(da, model="linear_time")
    vals = out.values[np.isfinite(out.values)]
    np.testing.assert_allclose(out.attrs["actual_range"], [vals.min(), vals.max()])
    assert out.attrs["valid_max"] >= vals.max()  # readers mask values above valid_max
    lazy = xgenfill.inpaint(da.chunk({"time": 10}), model="linear_time")
    assert "actual_range" not in lazy.attrs and "valid_max" not in lazy.attrs
