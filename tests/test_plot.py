"""The fill map: its three panels (observed, filled, status) share the grid's coordinates."""

import numpy as np
import pytest

import xgenfill

from .conftest import make_chl

pytest.importorskip("matplotlib")


def test_status_panel_lies_on_the_same_grid_as_the_maps(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from xgenfill.plot import plot_fill

    da = make_chl(nt=6).isel(lat=slice(None, None, -1))  # descending latitude, as in L3m files
    out = xgenfill.inpaint(da, model="linear_time", return_dataset=True)
    fig = plot_fill(da, out, path=tmp_path / "f.png", time=2)
    observed, filled, status = [a.collections[0] for a in fig.axes if a.get_title()]
    for panel in (filled, status):  # same mesh: latitudes and longitudes, not row numbers
        np.testing.assert_allclose(panel.get_coordinates(), observed.get_coordinates())
    edges = observed.get_coordinates()[:, 0, 1]  # cell edges in y, centred on the latitudes
    np.testing.assert_allclose((edges[:-1] + edges[1:]) / 2, da.lat.values, atol=1e-6)
    flags = np.asarray(status.get_array()).reshape(da.sizes["lat"], da.sizes["lon"])
    np.testing.assert_array_equal(flags, out.chl_filled_flag.isel(time=2).values)
    assert (flags[-5:, :6] == 2).all()  # the land corner, on the grid's last (southern) rows
    assert (tmp_path / "f.png").stat().st_size > 10_000
