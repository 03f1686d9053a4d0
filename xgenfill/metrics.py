"""Scores on held-out pixels: numpy kernels over 1-D arrays (members along axis 0).

Deterministic: RMSE, MAE, bias, correlation, skill 1 - RMSE/RMS. Ensembles: CRPS (Gneiting &
Raftery 2007, ensemble form), spread/skill ratio (Fortin et al. 2014), central-interval
coverage, and the rank (PIT) histogram (Hamill 2001).
"""

from __future__ import annotations

import numpy as np

__all__ = ["deterministic_scores", "crps_ensemble", "spread_skill", "interval_coverage",
           "rank_histogram", "ensemble_scores", "zonal_spectrum", "effective_resolution",
           "rmse_ratio_interval"]


def deterministic_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, bias (pred - truth), Pearson correlation, RMS of truth and skill."""
    n = truth.size
    if n == 0:
        return dict(n=0, rms=np.nan, rmse=np.nan, mae=np.nan, bias=np.nan, corr=np.nan,
                    skill=np.nan)
    err = pred - truth
    rmse = float(np.sqrt(np.mean(err**2)))
    rms = float(np.sqrt(np.mean(truth**2)))
    corr = float(np.corrcoef(pred, truth)[0, 1]) if n > 1 and pred.std() > 0 and truth.std() > 0 \
        else np.nan
    return dict(n=int(n), rms=rms, rmse=rmse, mae=float(np.mean(np.abs(err))),
                bias=float(np.mean(err)), corr=corr, skill=1.0 - rmse / rms if rms > 0 else np.nan)


def rmse_ratio_interval(pred: np.ndarray, ref: np.ndarray, truth: np.ndarray,
                        groups: np.ndarray, level: float = 0.9, n_boot: int = 2000,
                        seed: int = 0) -> tuple[float, float, float]:
    """The ratio of two fills' RMSEs on the same pixels, with a block-bootstrap interval.

    Whole groups (a held-out date, a cloud) are resampled, because neighbouring pixels under
    one cloud share their errors and are not independent draws.

    Parameters
    ----------
    pred, ref, truth : numpy.ndarray
        (N,) two fills and the truth at the same held-out pixels.
    groups : numpy.ndarray
        (N,) the block (date or cloud label) of each pixel.
    level : float, default 0.9
        Central probability of the interval.
    n_boot, seed : int
        Bootstrap resamples and their seed.

    Returns
    -------
    tuple of float
        The ratio and the lower and upper ends of its interval (NaN ends with one group).

    See Also
    --------
    xgenfill.validate : Its ``point_block`` is the group of each held-out pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from xgenfill.metrics import rmse_ratio_interval
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.normal(size=400)
    >>> groups = np.repeat(np.arange(20), 20)
    >>> ratio, lo, hi = rmse_ratio_interval(truth + 0.5 * rng.normal(size=400),
    ...                                     truth + rng.normal(size=400), truth, groups)
    >>> bool(lo < ratio < hi < 1.0)
    True
    """
    keys, inv = np.unique(np.asarray(groups), return_inverse=True)
    se_p = np.bincount(inv, (np.asarray(pred) - truth) ** 2, keys.size)
    se_r = np.bincount(inv, (np.asarray(ref) - truth) ** 2, keys.size)
    ratio = float(np.sqrt(se_p.sum() / se_r.sum()))
    if keys.size < 2:
        return ratio, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    # resampled groups as counts per group: one matrix product for every resample
    counts = rng.multinomial(keys.size, np.full(keys.size, 1.0 / keys.size), n_boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.sqrt((counts @ se_p) / (counts @ se_r))
    lo, hi = np.nanquantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return ratio, float(lo), float(hi)


def crps_ensemble(members: np.ndarray, truth: np.ndarray) -> float:
    """Mean CRPS of an ensemble (K, n) against observations (n,):
    E|X - y| - 0.5 E|X - X'| with the empirical member distribution."""
    k = members.shape[0]
    term1 = np.mean(np.abs(members - truth[None]), axis=0)
    srt = np.sort(members, axis=0)
    i = np.arange(k)[:, None]
    # sum_{i,j} |x_i - x_j| = 2 sum_i (2i - k + 1) x_(i)
    term2 = np.sum((2 * i - k + 1) * srt, axis=0) / k**2
    return float(np.mean(term1 - term2))


def spread_skill(members: np.ndarray, truth: np.ndarray) -> float:
    """sqrt((K+1)/K) * sqrt(mean ensemble variance) / RMSE of the ensemble mean (1 = calibrated)."""
    k = members.shape[0]
    var = members.var(axis=0, ddof=1).mean()
    rmse = np.sqrt(np.mean((members.mean(0) - truth) ** 2))
    return float(np.sqrt((k + 1) / k * var) / rmse) if rmse > 0 else np.nan


def interval_coverage(members: np.ndarray, truth: np.ndarray, level: float) -> float:
    """Fraction of observations inside the central ``level`` interval of the members (their
    quantiles, as a user would read an interval off them).

    With few members this is below ``level`` even for a calibrated ensemble: the 5-95 %
    quantiles of 8 members hold about 73 % of truths drawn from the members' own distribution,
    their 25-75 % quantiles about 40 %. Compare with that, or with the rank histogram.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth, members = rng.standard_normal(100000), rng.standard_normal((8, 100000))
    >>> round(interval_coverage(members, truth, 0.9), 2), round(interval_coverage(
    ...     members, truth, 0.5), 2)  # calibrated, 8 members
    (0.73, 0.4)
    >>> round(interval_coverage(rng.standard_normal((100, 100000)), truth, 0.9), 2)  # 100
    0.88
    """
    lo, hi = np.quantile(members, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return float(np.mean((truth >= lo) & (truth <= hi)))


def rank_histogram(members: np.ndarray, truth: np.ndarray, seed: int = 0) -> np.ndarray:
    """Counts of the observation's rank among the K members (K + 1 bins), ties split at random."""
    k = members.shape[0]
    below = (members < truth[None]).sum(0)
    ties = (members == truth[None]).sum(0)
    rng = np.random.default_rng(seed)
    rank = below + np.floor(rng.random(truth.size) * (ties + 1)).astype(int)
    return np.bincount(rank, minlength=k + 1)


def ensemble_scores(members: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    if truth.size == 0 or members.shape[0] < 2:
        return dict(crps=np.nan, spread_skill=np.nan, coverage_50=np.nan, coverage_90=np.nan)
    return dict(crps=crps_ensemble(members, truth), spread_skill=spread_skill(members, truth),
                coverage_50=interval_coverage(members, truth, 0.5),
                coverage_90=interval_coverage(members, truth, 0.9))


def zonal_spectrum(fields: np.ndarray, valid: np.ndarray, length: int) -> np.ndarray:
    """Mean power spectrum along the last axis over every run of ``length`` valid pixels.

    ``fields`` (..., X) and ``valid`` (..., X) boolean. Segments are de-meaned and Hann-windowed.
    Returns power for wavenumbers 0..length//2 (NaN when there is no segment).
    """
    f = fields.reshape(-1, fields.shape[-1])
    v = valid.reshape(-1, valid.shape[-1])
    win = np.hanning(length)
    acc = np.zeros(length // 2 + 1)
    n = 0
    for row, ok in zip(f, v):
        x0 = 0
        while x0 + length <= row.size:
            if ok[x0:x0 + length].all():
                seg = row[x0:x0 + length]
                acc += np.abs(np.fft.rfft((seg - seg.mean()) * win)) ** 2
                n += 1
                x0 += length
            else:
                x0 += 1
    return acc / n if n else np.full(acc.shape, np.nan)


def effective_resolution(err_psd: np.ndarray, sig_psd: np.ndarray, length: int) -> float:
    """Shortest wavelength (in pixels) still resolved: the largest wavelength at which
    PSD(error)/PSD(signal) reaches 0.5 (Ballarotta et al. 2019); NaN if it never does."""
    k = np.arange(1, length // 2 + 1)
    ratio = err_psd[1:] / sig_psd[1:]
    wavelength = length / k
    above = np.flatnonzero(ratio >= 0.5)
    if above.size == 0:
        return float(wavelength[-1])  # resolved down to the grid scale
    i = above[0]
    if i == 0:
        return float(wavelength[0])
    # interpolate between the last resolved and the first unresolved wavenumber
    r0, r1 = ratio[i - 1], ratio[i]
    frac = (0.5 - r0) / (r1 - r0) if r1 != r0 else 0.0
    k0, k1 = 1.0 / wavelength[i - 1], 1.0 / wavelength[i]  # wavenumbers
    return float(1.0 / (k0 + frac * (k1 - k0)))
