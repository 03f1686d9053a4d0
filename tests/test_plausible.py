"""Fills far outside the observed range are refused (left unfilled, flagged, warned about) in
the eager fill, the lazy fill and validate alike."""

import warnings

import numpy as np
import pytest
import xarray as xr

import xgenfill
from xgenfill import zoo
from xgenfill.models.base import Fill, Filler
from xgenfill import plausible
from xgenfill.plausible import MAD_TO_STD, MARGIN
from xgenfill.post import FILLED, NOT_FILLED

from .conftest import make_chl, realdata

WILD_COLUMNS = 4  # the test model goes wild in the gaps of the first columns


class Wild(Filler):
    """Mean fill (0 in normalised units), except 50 standard deviations above the mean in the
    first WILD_COLUMNS columns: a model extrapolating wildly there. Pixel-wise, so that any
    chunking gives the same fill."""

    name = "wild"
    spatial_radius = 0

    def fill(self, cube, n_samples=1, seed=0):
        nx = cube.values.shape[-1]
        x = np.arange(nx) if cube.x_index is None else np.asarray(cube.x_index)
        value = np.where(x < WILD_COLUMNS, 50.0, 0.0).astype(np.float32)
        out = np.broadcast_to(value, cube.values.shape)
        out = np.where(cube.gaps, out, np.nan)[None]
        return Fill(samples=np.repeat(out, n_samples, 0))


def _wild_gaps(da):
    gaps = np.isnan(da.values) & np.isfinite(da.values).any(axis=0)
    wild = gaps.copy()
    wild[..., WILD_COLUMNS:] = False
    return gaps, wild


def test_implausible_fills_are_left_unfilled_and_flagged():
    da = make_chl()
    gaps, wild = _wild_gaps(da)
    assert wild.any()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = xgenfill.inpaint(da, model=Wild(), return_dataset=True)
    msgs = [w for w in caught if issubclass(w.category, xgenfill.GenfillWarning)]
    assert len(msgs) == 1 and f"{int(wild.sum())} of {int(gaps.sum())} gap pixels" in str(
        msgs[0].message)
    assert msgs[0].filename == __file__  # points at the user's line, not at xgenfill
    flag = ds.chl_filled_flag.values
    assert (flag[wild] == NOT_FILLED).all() and np.isnan(ds.chl.values[wild]).all()
    assert np.isnan(ds.chl_uncertainty.values[wild]).all()
    assert (flag[gaps & ~wild] == FILLED).all()
    # the mean fill is the geometric mean of the observations
    np.testing.assert_allclose(ds.chl.values[gaps & ~wild],
                               10 ** np.nanmean(np.log10(da.values)), rtol=1e-5)
    obs = np.isfinite(da.values)
    np.testing.assert_array_equal(ds.chl.values[obs], da.values[obs])


@pytest.mark.parametrize("sample_size", [1_000_000, 2_000])
def test_lazy_fill_refuses_the_same_pixels(monkeypatch, sample_size):
    # a small sample size makes the robust scale read a strided lattice (step > 1)
    monkeypatch.setattr(plausible, "SAMPLE_SIZE", sample_size)
    da = make_chl()
    assert (plausible.lattice_step(da.shape) > 1) == (sample_size < da.size)
    _, wild = _wild_gaps(da)
    with pytest.warns(xgenfill.GenfillWarning, match="left unfilled"):
        eager = xgenfill.inpaint(da, model=Wild(), return_dataset=True)
    with pytest.warns(xgenfill.GenfillWarning, match="left unfilled"):
        lazy = xgenfill.inpaint(da.chunk(time=10, lon=16), model=Wild(),
                                return_dataset=True).compute()
    np.testing.assert_array_equal(lazy.chl_filled_flag.values, eager.chl_filled_flag.values)
    np.testing.assert_allclose(lazy.chl.values, eager.chl.values, rtol=1e-6)


def test_validate_counts_implausible_fills_as_not_filled():
    da = make_chl()
    with pytest.warns(xgenfill.GenfillWarning, match="left unfilled"):
        scores = xgenfill.validate(da, models=[Wild()], keep_members=True)
    hide = scores.holdout.values
    wild_hidden = int(hide[..., :WILD_COLUMNS].sum())
    assert wild_hidden > 0
    assert int(scores.n_not_filled.sel(model="wild")) == wild_hidden
    assert int(scores.n.sel(model="wild")) == int(hide.sum()) - wild_hidden


def test_pretrained_vae_on_olci_artefacts_stays_in_range():
    """Real case: on OLCI C2RCC chl of the southern North Sea (250 m, turbid water, whole
    overpasses missing) the embedded VAE returned up to 1e38 mg m-3. Every value it fills must
    stay in the observed range widened by MARGIN robust standard deviations: the data's
    retrieval artefacts (1 % near 1e-4 mg m-3) triple the plain standard deviation, which
    let fills of 67,600 mg m-3 through on this crop."""
    path = realdata("xcube_olci_northsea/cube-1-250-250.zarr")
    da = xr.open_zarr(path).conc_chl.isel(lat=slice(300, 556), lon=slice(700, 956)).load()
    model = zoo.load("vae-chl-v1")  # the embedded weights: what a fresh install runs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = xgenfill.inpaint(da, model=model, return_dataset=True, progress=False)
    logs = np.log10(da.values[np.isfinite(da.values)])
    scale = MAD_TO_STD * np.median(np.abs(logs - np.median(logs)))
    assert scale < 0.5 * logs.std()
    lo, hi = logs.min() - MARGIN * scale, logs.max() + MARGIN * scale
    flag = ds.conc_chl_filled_flag.values
    filled = np.log10(ds.conc_chl.values[flag == FILLED])
    assert filled.size > 0.5 * np.isnan(da.values).sum()
    assert lo - 1e-6 <= filled.min() and filled.max() <= hi + 1e-6
    refused = int((flag == NOT_FILLED).sum())
    assert refused > 0 and any(f"{refused} of" in str(w.message) for w in caught)


def test_lazy_fill_warns_once_per_call_not_once_per_chunk():
    import warnings

    from xgenfill.plausible import drop_implausible

    stack = np.array([[0.0, 5.0], [0.1, 9.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own rule: one per text and place
        for _ in range(5):  # five chunks, different counts would give five texts
            drop_implausible(stack, -1.0, 1.0, name="'chl'", counts=False)
    assert len([w for w in caught if "left unfilled" in str(w.message)]) == 1


class _Beyond(Filler):
    """A model that fills every gap half a standard deviation above the highest observation."""

    name = "beyond"

    def fill(self, cube, n_samples=1, seed=None):
        top = np.nanmax(cube.values)
        return Fill(samples=np.where(cube.gaps, top + 0.5, np.nan).astype(np.float32)[None])


def test_fills_beyond_the_observed_range_are_flagged_and_said_once(chl):
    import warnings

    import xgenfill

    model = _Beyond()
    with pytest.warns(xgenfill.GenfillWarning, match="outside the range observed"):
        out = xgenfill.inpaint(chl, model=model, return_dataset=True)
    flag = out.chl_filled_flag.values
    gaps = ~np.isfinite(chl.values) & (flag != 2)
    assert (flag[gaps] == 4).all() and np.isfinite(out.chl.values[gaps]).all()
    lazy = xgenfill.inpaint(chl.chunk({"time": 10}), model=model, return_dataset=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        lazy = lazy.compute()
    # (the test model's value depends on its chunk: compare with what the lazy fill gave)
    beyond = gaps & (lazy.chl.values > float(chl.max()))
    assert beyond.any() and np.array_equal(lazy.chl_filled_flag.values == 4, beyond)
    assert len([w for w in caught if "outside the range observed" in str(w.message)]) == 1


def test_fills_are_never_beyond_the_variables_physical_range():
    from xgenfill.prepare import prepare

    from .test_transforms import _sst_cube

    prep = prepare(_sst_cube())  # degC: -5 to 50 at most
    hot = (60.0 - prep.mean[0]) / prep.std[0]  # 60 degC, in normalised units
    values = np.where(prep.gaps[0], np.float32(hot), np.nan)[None].astype(np.float32)
    with pytest.warns(xgenfill.GenfillWarning, match="left unfilled"):
        kept = prep.plausible_fill(0, Fill(samples=values))
    assert np.isnan(kept.samples).all()


@pytest.mark.parametrize("units", ["degC", "degree_Celsius", "degree Celsius", "degrees Celsius"])
def test_an_undecoded_fill_value_in_celsius_is_refused_however_the_units_are_spelled(units):
    from xgenfill.plausible import check_physical, physical_bounds
    from xgenfill.transforms import TRANSFORMS

    assert physical_bounds(units, TRANSFORMS["identity"]) == (-5.0, 50.0)
    with pytest.raises(xgenfill.GenfillError, match="outside -5..50"):
        check_physical(np.array([15.0, -999.0]), "SST", units)
