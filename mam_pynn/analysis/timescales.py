"""Temporal structure of the area rates (Schmidt et al. 2018, Fig. 7): cross-correlation
functions (upstream's figures/Schmidt2018_dyn/compute_cross_correlation.py), the time of
their extremum per area pair and the temporal hierarchy fitted to those times
(Fig7_temporal_hierarchy.py), and the areas' intrinsic time scales from their rate
autocorrelation (asked for by issue 22; upstream's Fig. 7 does not compute them).

Inputs are plain arrays: rate series in spikes/s, one value per bin of ``resolution``
ms (upstream: the areas' 1 ms binned rates from 500 ms to the end of the run,
rate_time_series_full_<area>.npy).
"""
from __future__ import annotations

import numpy as np

#: upstream's smoothing of the cross-correlation: Gaussian, sigma 2 bins, sampled at -5..4
SMOOTH_SIGMA = 2.
SMOOTH_LAGS = np.arange(-5., 5.)
#: correlation_peak's defaults in Fig7_temporal_hierarchy.py (ms, wavelet widths in bins)
MAX_LAG_MS = 100.
PEAK_WIDTHS = (5.,)
#: areas without cortico-cortical input, left out of the hierarchy (upstream: MDP)
NO_CC_INPUT = ('MDP',)


def lag_axis(n: int, resolution: float = 1.) -> np.ndarray:
    """Upstream's lags (correlation_toolbox crosscorrfunc) for n bins: (-n/2 + 1 ... n/2)
    times 1/(2 f_max) with f_max the largest FFT frequency, i.e. a bin of n/(n-2)
    resolution for even n (n/(n-1) for odd n, where the axis is also half a bin off)."""
    f_max = np.max(np.fft.fftfreq(n, resolution * 1e-3))
    return np.arange(-n / 2. + 1, n / 2. + 1) * (1. / (2. * f_max) * 1e3)


def _centred_fft(rates: np.ndarray) -> np.ndarray:
    x = np.atleast_2d(np.asarray(rates, float))
    return np.fft.fft(x - x.mean(axis=-1, keepdims=True), axis=-1)


def _cross_function(Xi: np.ndarray, Xj: np.ndarray, resolution: float) -> np.ndarray:
    """crosscorrfunc of crossspec (correlation_toolbox, no smoothing): the circular cross-
    covariance sum_t x_i(t + k) x_j(t) x 1e3 / (n resolution), lags -n/2 + 1 ... n/2."""
    n = Xi.size
    raw = np.real(np.fft.ifft(Xi * Xj.conj())) * 1e3 / (resolution * n)
    mid = n // 2
    return np.concatenate([raw[mid + 1:], raw[:mid + 1]])


def smooth_cross(c: np.ndarray) -> np.ndarray:
    """Upstream's smoothing: np.convolve with a unit-area Gaussian (sigma 2 bins) sampled
    at lags -5..4 bins, mode 'same'; the kernel's asymmetric sampling moves the function
    one bin to later lags (so every extremum time below is one bin later, as upstream's)."""
    kernel = np.exp(-SMOOTH_LAGS ** 2 / (2 * SMOOTH_SIGMA ** 2)) / (np.sqrt(2. * np.pi) * SMOOTH_SIGMA)
    return np.convolve(kernel, c, mode='same')


def cross_correlation(rate1: np.ndarray, rate2: np.ndarray, resolution: float = 1.):
    """(lags in ms (n,), cross (2, 2, n)): upstream's cross_correlation_<a1>_<a2>.npy and
    cross_correlation_time.npy. cross[i][j][k] = smoothed sum_t x_i(t + tau_k) x_j(t)
    x 1e3 / T (T in ms) of the mean-free rates x (circular); a peak of cross[0][1] at a
    negative lag means area 1 leads area 2."""
    X = _centred_fft(np.vstack([rate1, rate2]))
    cross = np.array([[smooth_cross(_cross_function(X[i], X[j], resolution)) for j in range(2)]
                      for i in range(2)])
    return lag_axis(X.shape[1], resolution), cross


def _peak(t, c, same_area, widths):
    """Fig7's correlation_peak for one sign: (index, time, value) of the largest peak
    found by scipy's find_peaks_cwt (lag 0 for an area with itself)."""
    from scipy.signal import find_peaks_cwt
    peaks = find_peaks_cwt(c, np.asarray(widths, float))
    if len(peaks) == 0:
        return None, np.nan, 0.
    if same_area:
        i = int(np.flatnonzero(t == 0)[0])
        return i, 0., c[i]
    i = int(peaks[np.argmax(c[peaks])])
    return i, t[i], c[i]


def correlation_peak(t: np.ndarray, cc: np.ndarray, same_area: bool = False,
                     max_lag: float = MAX_LAG_MS, widths=PEAK_WIDTHS) -> tuple[float, float]:
    """(time, value) of the extremum of a cross-correlation function cc(t) within
    |t| < max_lag ms (upstream's correlation_peak): the largest maximum and the deepest
    minimum found by find_peaks_cwt, the one of larger magnitude wins (the minimum on a
    tie); (0, cc(0)) for an area with itself; (nan, nan) without any peak."""
    inside = (t > -max_lag) & (t < max_lag)
    t, c = np.asarray(t)[inside], np.asarray(cc, float)[inside]
    i_max, t_max, v_max = _peak(t, c, same_area, widths)
    i_min, t_min, v_min = _peak(t, -c, same_area, widths)
    i, tp = (i_max, t_max) if abs(v_max) > abs(v_min) else (i_min, t_min)
    return (np.nan, np.nan) if i is None else (float(tp), float(c[i]))


def extremum_times(rates: np.ndarray, areas, resolution: float = 1., excluded=NO_CC_INPUT,
                   max_lag: float = MAX_LAG_MS, widths=PEAK_WIDTHS):
    """(times, values), each (areas, areas): the extremum time (ms) and value of the
    smoothed cross-correlation cross[0][1] of every area pair (Fig7's cc_matrix, panels
    C and D), NaN for areas in ``excluded``. ``rates``: (areas, bins) in the order of
    ``areas``; :func:`peak_matrix` does the rest."""
    X = _centred_fft(rates)
    t = lag_axis(X.shape[1], resolution)
    return peak_matrix(lambda i, j: (t, smooth_cross(_cross_function(X[i], X[j], resolution))),
                       areas, excluded, max_lag, widths)


def peak_matrix(cross, areas, excluded=NO_CC_INPUT, max_lag: float = MAX_LAG_MS, widths=PEAK_WIDTHS):
    """(times, values) of :func:`extremum_times` from ``cross(i, j)`` -> (lags, smoothed
    cross[0][1] of areas i, j) (e.g. read from cross_correlation_<a>_<b>.npy). As upstream,
    an entry whose transposed entry is already known and non-zero is its negative
    (cross_ij(tau) = cross_ji(-tau)), others are computed."""
    areas = list(areas)
    n = len(areas)
    times, values = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if times[j, i] != 0.:
                times[i, j], values[i, j] = -times[j, i], values[j, i]
            elif areas[i] in excluded or areas[j] in excluded:
                times[i, j] = values[i, j] = np.nan
            else:
                times[i, j], values[i, j] = correlation_peak(*cross(i, j), i == j, max_lag, widths)
    return times, values


def temporal_hierarchy(times: np.ndarray, areas) -> dict:
    """The hierarchy h minimising sum_ij (h_i - h_j - times_ij)^2 (Fig7's create_hierarchy,
    there by scipy.optimize.minimize from a random start; here the exact least-squares
    solution), mapped onto [0, 1]; an area that leads (negative extremum times to the
    others) is low. Areas with non-finite entries in the first row of
    ``times`` are left out (upstream: MDP). Returns {'areas': areas in ascending order,
    'hierarchy': their values (upstream's Fig7_temporal_hierarchy.csv), 'order':
    indices into the kept areas (index_transformation), 'kept': the kept areas}."""
    times = np.asarray(times, float)
    keep = np.isfinite(times[0])
    kept = [a for a, k in zip(areas, keep) if k]
    c = times[np.ix_(keep, keep)]
    n = c.shape[0]
    rows = np.zeros((n * n, n))
    pairs = np.arange(n * n)
    rows[pairs, pairs // n] += 1.
    rows[pairs, pairs % n] -= 1.
    h = np.linalg.lstsq(rows, c.ravel(), rcond=None)[0]
    order = np.argsort(h)
    h = h[order] - h.min()
    h /= h.max()
    return {'areas': [kept[i] for i in order], 'hierarchy': h, 'order': order, 'kept': kept}


def count_violations(hierarchy: np.ndarray, times: np.ndarray) -> float:
    """Pairs whose order in the hierarchy contradicts the sign of their extremum time:
    sign(h_i - h_j) != sign(times_ij), counted over i, j and halved (Fig7's
    count_violations; a NaN entry counts as a violation, as there)."""
    h = np.asarray(hierarchy, float)
    return float(np.sum(np.sign(h[:, None] - h[None, :]) != np.sign(times))) / 2.


def surrogate_times(times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fig7's surrogate: row by row, the entries from the diagonal on are permuted and the
    column mirrored with the opposite sign."""
    s = np.array(times, float)
    n = s.shape[0]
    for j in range(n):
        ind = np.arange(j, n)
        perm = rng.permutation(ind)
        values = s[j, ind].copy()
        s[j, perm] = values
        s[perm, j] = -values
    return s


def autocorrelation(rate: np.ndarray, max_lag_bins: int) -> np.ndarray:
    """Normalised autocorrelation of a rate series at lags 0..max_lag_bins (mean-free,
    biased estimator: sum over the overlap / (n var))."""
    x = np.asarray(rate, float) - np.mean(rate)
    n = x.size
    f = np.fft.rfft(x, 2 * n)
    acov = np.fft.irfft(f * f.conj())[:max_lag_bins + 1]
    return acov / acov[0]


def intrinsic_timescale(rate: np.ndarray, resolution: float = 1., fit_range_ms=(1., 100.)):
    """An area's intrinsic time scale (ms): tau of A exp(-lag/tau) + B fitted (least
    squares, scipy curve_fit) to the rate autocorrelation at lags in ``fit_range_ms``
    (Murray et al. 2014's measure; lag 0, which holds the spiking noise, is left out).
    Returns (tau, A, B)."""
    from scipy.optimize import curve_fit
    lo, hi = (int(round(x / resolution)) for x in fit_range_ms)
    ac = autocorrelation(rate, hi)[lo:]
    lags = np.arange(lo, hi + 1) * resolution
    if not np.all(np.isfinite(ac)):
        raise ValueError("the rate series is constant: no autocorrelation")
    guess_tau = lags[np.argmax(ac < ac[0] / np.e)] if np.any(ac < ac[0] / np.e) else lags[-1]
    (A, tau, B), _ = curve_fit(lambda s, A, tau, B: A * np.exp(-s / tau) + B, lags, ac,
                               p0=(ac[0], max(guess_tau, resolution), 0.), maxfev=10000)
    return float(tau), float(A), float(B)
