import os
import subprocess
import sys

import numpy as np
import xarray as xr

import xgenfill
from xgenfill.cli import main

from .conftest import make_chl


def test_inpaint_roundtrip(tmp_path, capsys):
    src = tmp_path / "in.nc"
    make_chl().to_dataset().to_netcdf(src)
    dst = tmp_path / "out.nc"
    assert main(["inpaint", str(src), str(dst), "--var", "chl", "--model", "dineof",
                 "-o", "nev=4"]) == 0
    out = xr.open_dataset(dst)
    assert {"chl", "chl_filled_flag", "chl_uncertainty"} <= set(out)
    assert np.isfinite(out.chl.values).sum() > np.isfinite(make_chl().values).sum()


def test_bad_input_exits_nonzero_with_one_line(tmp_path, capsys):
    src = tmp_path / "in.nc"
    make_chl().to_dataset().to_netcdf(src)
    assert main(["inpaint", str(src), str(tmp_path / "o.nc"), "--var", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xgenfill: error: variable 'nope' not in") and "\n" not in err
    assert main(["inpaint", str(src), str(tmp_path / "o.nc"), "--var", "chl",
                 "--model", "nomodel"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["inpaint", str(tmp_path / "missing.nc"), "o.nc", "--var", "chl"]) == 2


def test_console_script_show_versions_and_demo(tmp_path):
    out = subprocess.run([sys.executable, "-m", "xgenfill.cli", "show-versions"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "xarray" in out.stdout and "torch" in out.stdout
    # the README's main job: the embedded default model on the bundled sample, offline
    env = {**os.environ, "XGENFILL_OFFLINE": "1", "XGENFILL_CACHE_DIR": str(tmp_path / "c")}
    res = subprocess.run([sys.executable, "-m", "xgenfill.cli", "demo", str(tmp_path / "d.nc"),
                          "--png", str(tmp_path / "d.png")], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "d.png").stat().st_size > 10_000
    ds = xr.open_dataset(tmp_path / "d.nc")
    assert int((ds.chl_filled_flag == 1).sum()) > 0
    assert "model='auto'" in ds.attrs["history"]  # the global attribute, CF's place
    assert "history" not in ds.chl.attrs


def test_inpaint_fractions_from_the_command_line(tmp_path):
    from .test_fractions import NAMES, brewin_fractions

    src, dst = tmp_path / "psc.nc", tmp_path / "out.nc"
    brewin_fractions(nt=10).to_netcdf(src)
    assert main(["inpaint", str(src), str(dst), "--var", *NAMES, "--fractions",
                 "--model", "linear_time"]) == 0
    out = xr.open_dataset(dst)
    filled = out.pico_filled_flag.values == 1
    assert filled.sum() > 100 and {f"{n}_uncertainty" for n in NAMES} <= set(out)
    total = sum(out[n].values.astype(np.float64) for n in NAMES)
    np.testing.assert_allclose(total[filled], 1.0, atol=1e-6)
    # without --fractions each variable is filled on its own: they do not sum to 1
    dst2 = tmp_path / "alone.nc"
    assert main(["inpaint", str(src), str(dst2), "--var", *NAMES, "--model", "linear_time"]) == 0
    alone = xr.open_dataset(dst2)
    assert np.abs(sum(alone[n].values.astype(np.float64) for n in NAMES)[filled] - 1).max() > 1e-2


def test_every_argument_has_help():
    # the docs' CLI page is generated from the parser: an argument without help is undocumented
    import argparse

    from xgenfill.cli import build_parser

    def walk(parser, prog):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{prog} {name}")
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                yield prog, action

    undocumented = [f"{prog}: {a.dest}" for prog, a in walk(build_parser(), "xgenfill")
                    if not a.help]
    assert not undocumented


def test_warnings_are_one_clean_line(tmp_path):
    ds = xgenfill.open_sample("phytofit").isel(time=slice(0, 10))
    ds = ds.rename({"chl": "concentration"})
    ds["concentration"].attrs = {"units": "mg m-3"}  # chl units, no chl name: warned
    ds.to_netcdf(tmp_path / "in.nc")
    res = subprocess.run([sys.executable, "-m", "xgenfill.cli", "inpaint", str(tmp_path / "in.nc"),
                          str(tmp_path / "out.nc"), "--var", "concentration", "--model",
                          "linear_time"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("xgenfill: warning: ") for ln in lines), lines
    assert "treated as chlorophyll" in res.stderr and ".py:" not in res.stderr


def test_cli_chunks_mask_file_dims_and_early_output_check(tmp_path):
    ds = xgenfill.open_sample("phytofit").isel(time=slice(0, 12))
    src = tmp_path / "in.nc"
    ds.to_netcdf(src)
    # a missing output folder fails before any fill, with the reason
    res = subprocess.run([sys.executable, "-m", "xgenfill.cli", "inpaint", str(src),
                          str(tmp_path / "nope" / "out.nc"), "--var", "chl"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "does not exist" in res.stderr
    # a single image needs a mask: from another file, and the error names the option
    one = ds.isel(time=[5]).rename({"time": "date", "lat": "row", "lon": "col"})
    one = one.drop_vars(["date", "row", "col"])
    one.to_netcdf(tmp_path / "one.nc")
    sea = ds.chl.notnull().any("time").rename({"lat": "row", "lon": "col"}).drop_vars(
        ["row", "col"]).astype("i1").rename("sea")
    sea.to_netcdf(tmp_path / "mask.nc")
    dims = "--dims=T=date,Y=row,X=col"
    assert main(["inpaint", str(tmp_path / "one.nc"), str(tmp_path / "o1.nc"), "--var", "chl",
                 "--model", "linear_space", dims]) == 2
    assert main(["inpaint", str(tmp_path / "one.nc"), str(tmp_path / "o1.nc"), "--var", "chl",
                 "--model", "linear_space", dims, "--mask", f"{tmp_path / 'mask.nc'}:sea"]) == 0
    with xr.open_dataset(tmp_path / "o1.nc") as out:
        assert int((out.chl_filled_flag == 1).sum()) > 0
    # lazy processing gives the eager file
    assert main(["inpaint", str(src), str(tmp_path / "lazy.nc"), "--var", "chl", "--model",
                 "linear_time", "--chunks", "time=12,lat=48,lon=80"]) == 0
    assert main(["inpaint", str(src), str(tmp_path / "eager.nc"), "--var", "chl", "--model",
                 "linear_time"]) == 0
    with xr.open_dataset(tmp_path / "lazy.nc") as a, xr.open_dataset(tmp_path / "eager.nc") as b:
        np.testing.assert_allclose(a.chl.values, b.chl.values, rtol=1e-5)
        assert (a.chl_filled_flag.values == b.chl_filled_flag.values).all()


def test_cli_mask_option_errors_name_the_option(tmp_path, capsys):
    ds = xgenfill.open_sample("phytofit").isel(time=[3])
    ds.to_netcdf(tmp_path / "one.nc")
    assert main(["inpaint", str(tmp_path / "one.nc"), str(tmp_path / "o.nc"), "--var", "chl",
                 "--model", "linear_space"]) == 2
    assert "--mask FILE:VAR" in capsys.readouterr().err
    assert main(["inpaint", str(tmp_path / "one.nc"), str(tmp_path / "o.nc"), "--var", "chl",
                 "--mask", f"{tmp_path / 'absent.nc'}:sea"]) == 2
    assert "--mask file" in capsys.readouterr().err
