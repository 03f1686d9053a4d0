import numpy as np
import pytest

from xgenfill.models.base import Cube
from xgenfill.models.baselines import AnomalyInterp, Climatology, LinearSpace, LinearTime


def test_linear_time_is_exact_on_linear_signal():
    t = np.arange(10, dtype=float)
    v = np.broadcast_to((0.5 * t)[:, None, None], (10, 4, 5)).astype(np.float32).copy()
    truth = v.copy()
    v[3:6, 1, 2] = np.nan
    v[0, 0, 0] = np.nan  # before the first observation: nearest
    out = LinearTime().fill(Cube(v, np.ones((4, 5), bool), time_index=t)).samples[0]
    np.testing.assert_allclose(out[3:6, 1, 2], truth[3:6, 1, 2], rtol=1e-6)
    assert out[0, 0, 0] == truth[1, 0, 0]


def test_linear_time_uses_real_time_spacing():
    t = np.array([0.0, 1.0, 10.0])
    v = (np.array([0.0, np.nan, 10.0], dtype=np.float32)[:, None, None]
         * np.ones((3, 4, 4), np.float32))
    out = LinearTime().fill(Cube(v, np.ones((4, 4), bool), time_index=t)).samples[0]
    np.testing.assert_allclose(out[1], 1.0)


def test_linear_space_is_exact_on_plane():
    y, x = np.mgrid[0:12, 0:15]
    v = (0.1 * y + 0.2 * x).astype(np.float32)[None].copy()
    truth = v.copy()
    v[0, 4:8, 5:9] = np.nan
    out = LinearSpace().fill(Cube(v, np.ones((12, 15), bool))).samples[0]
    np.testing.assert_allclose(out[0, 4:8, 5:9], truth[0, 4:8, 5:9], atol=1e-5)


def test_climatology_averages_same_season():
    doy = np.array([10, 20, 200, 375 - 365, 20], dtype=np.float32)
    v = (np.array([1, 3, 100, 5, np.nan], dtype=np.float32)[:, None, None]
         * np.ones((5, 4, 4), np.float32))
    out = Climatology(window=15).fill(Cube(v, np.ones((4, 4), bool), doy=doy)).samples[0]
    np.testing.assert_allclose(out[4], np.mean([1, 3, 5]))


def test_deterministic_baselines_refuse_ensembles():
    from xgenfill.errors import GenfillError

    cube = Cube(np.zeros((3, 4, 4), np.float32), np.ones((4, 4), bool))
    with pytest.raises(GenfillError):
        LinearTime().fill(cube, n_samples=2)


def _cold_step_cube(nx: int = 300, periodic_x: bool = False):
    """Five steps of a fixed spatial pattern; step 2 is 1 colder everywhere; a cloud covers all
    of step 2 but its first 20 columns."""
    nt, ny = 5, 30
    yy, xx = np.mgrid[0:ny, 0:nx]
    pattern = np.sin(yy / 5.0) + np.cos(2 * np.pi * xx / nx * 3)
    v = (pattern[None] + np.array([0, 0, -1.0, 0, 0])[:, None, None]).astype(np.float32)
    truth = v.copy()
    v[2, :, 20:] = np.nan
    return Cube(v, np.ones((ny, nx), bool), time_index=np.arange(nt, dtype=float),
                periodic_x=periodic_x), truth


def test_anomaly_carries_a_cold_step_into_its_cloud():
    cube, truth = _cold_step_cube()
    out = AnomalyInterp().fill(cube).samples[0]
    linear = LinearTime().fill(cube).samples[0]
    gap = ~np.isfinite(cube.values[2])
    # interpolation in time misses the cold step by 1 everywhere under the cloud ...
    np.testing.assert_allclose(linear[2][gap] - truth[2][gap], 1.0, atol=1e-5)
    # ... the departure of the step's observed columns corrects it fully near them, then
    # less and less (the coarse scales hold fewer observations), not at all beyond their reach
    reach = AnomalyInterp().spatial_radius
    fix = (linear[2] - out[2])[10]  # one row: the correction, column by column
    np.testing.assert_allclose(fix[20:35], 1.0, atol=1e-5)
    assert np.all(np.diff(fix[20:20 + reach]) <= 1e-6) and fix[20 + reach - 1] > 0
    np.testing.assert_allclose(fix[20 + reach:], 0.0, atol=1e-6)
    # observed pixels are the observations; other steps have no gap
    np.testing.assert_array_equal(out[2][~gap], cube.values[2][~gap])
    np.testing.assert_array_equal(out[0], cube.values[0])


def test_anomaly_wraps_longitudes_on_global_grids():
    cube, truth = _cold_step_cube(nx=1000, periodic_x=True)
    out = AnomalyInterp(sigmas=(3.0, 9.0)).fill(cube).samples[0]
    np.testing.assert_allclose(out[2][:, 20:25], truth[2][:, 20:25], atol=1e-4)
    # the far end of the row is within reach of the observed columns 0..19 only when wrapped
    np.testing.assert_allclose(out[2][:, -5:], truth[2][:, -5:], atol=1e-4)
    cube.periodic_x = False
    flat = AnomalyInterp(sigmas=(3.0, 9.0)).fill(cube).samples[0]
    assert np.abs(flat[2][:, -5:] - truth[2][:, -5:]).min() > 0.99


def test_anomaly_leaves_land_and_never_observed_pixels_unfilled():
    cube, _ = _cold_step_cube()
    cube.values[:, 5, 100] = np.nan  # an ocean pixel never observed
    ocean = np.ones(cube.ocean.shape, bool)
    ocean[0, :] = False  # land row
    cube.ocean = ocean
    out = AnomalyInterp().fill(cube).samples[0]
    assert np.isnan(out[:, 0, :]).all() and np.isnan(out[:, 5, 100]).all()
    assert np.isfinite(out[2, 1:, :][np.arange(29) != 4]).all()


def test_anomaly_checks_its_arguments():
    from xgenfill.errors import GenfillError

    with pytest.raises(GenfillError, match="sigmas"):
        AnomalyInterp(sigmas=(0.0, 3.0))
    with pytest.raises(GenfillError, match="at least 2"):
        AnomalyInterp().fill(Cube(np.zeros((1, 4, 4), np.float32), np.ones((4, 4), bool)))
    with pytest.raises(GenfillError, match="deterministic"):
        AnomalyInterp().fill(_cold_step_cube()[0], n_samples=2)
