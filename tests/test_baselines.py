import numpy as np
import pytest

from xgenfill.models.base import Cube
from xgenfill.models.baselines import Climatology, LinearSpace, LinearTime


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
    v = np.array([0.0, np.nan, 10.0], dtype=np.float32)[:, None, None] * np.ones((3, 4, 4), np.float32)
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
    v = np.array([1, 3, 100, 5, np.nan], dtype=np.float32)[:, None, None] * np.ones((5, 4, 4), np.float32)
    out = Climatology(window=15).fill(Cube(v, np.ones((4, 4), bool), doy=doy)).samples[0]
    np.testing.assert_allclose(out[4], np.mean([1, 3, 5]))


def test_deterministic_baselines_refuse_ensembles():
    from xgenfill.errors import GenfillError

    cube = Cube(np.zeros((3, 4, 4), np.float32), np.ones((4, 4), bool))
    with pytest.raises(GenfillError):
        LinearTime().fill(cube, n_samples=2)
