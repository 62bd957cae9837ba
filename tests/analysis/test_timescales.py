"""Cross-correlations, extremum times, temporal hierarchy (upstream's Fig. 7) and intrinsic
time scales (issue 22), checked against independent computations: time-domain sums,
processes with known lags and time constants, scipy.optimize on upstream's objective."""
import numpy as np
import pytest
from scipy import stats
from scipy.optimize import minimize

from mam_pynn.analysis import timescales as ts


def ar1(n, tau_bins, rng, size=None):
    """AR(1) with autocorrelation exp(-k / tau_bins), unit variance."""
    phi = np.exp(-1. / tau_bins)
    shape = (n,) if size is None else (size, n)
    e = rng.standard_normal(shape) * np.sqrt(1 - phi ** 2)
    from scipy.signal import lfilter
    return lfilter([1.], [1., -phi], e, axis=-1)


def test_cross_correlation_is_the_smoothed_circular_covariance_sum():
    rng = np.random.default_rng(0)
    n = 64
    r1, r2 = rng.poisson(5., n).astype(float), rng.poisson(8., n).astype(float)
    t, cross = ts.cross_correlation(r1, r2)
    x = [r1 - r1.mean(), r2 - r2.mean()]
    kernel = stats.norm.pdf(np.arange(-5, 5), scale=2.)
    lags = np.arange(-n // 2 + 1, n // 2 + 1)
    np.testing.assert_allclose(t, lags * n / (n - 2.))            # upstream's axis: 1/(2 f_max)
    for i in range(2):
        for j in range(2):
            raw = np.array([np.sum(np.roll(x[i], -k) * x[j]) for k in lags]) * 1e3 / n
            smooth = [sum(kernel[m] * raw[p + 4 - m] for m in range(10) if 0 <= p + 4 - m < n)
                      for p in range(n)]
            np.testing.assert_allclose(cross[i, j], smooth, atol=1e-9)


@pytest.mark.parametrize('lead', [12, -4])
def test_known_lead_gives_a_peak_at_minus_the_lag(lead):
    """y(t) = x(t - lead): cross[0][1] peaks at -lead, moved one bin later by upstream's
    smoothing (its kernel, sampled at -5..4 bins, is applied with numpy's 'same')."""
    rng = np.random.default_rng(1)
    x = ar1(20000, 5., rng)
    y = np.roll(x, lead) + 0.3 * rng.standard_normal(x.size)
    t, cross = ts.cross_correlation(10 + x, 10 + y)
    tp, value = ts.correlation_peak(t, cross[0][1])
    assert tp == pytest.approx((-lead + 1) * t[-1] / (t.size / 2), abs=1e-9)
    assert value == pytest.approx(cross[0][1][np.argmax(cross[0][1])])
    assert ts.correlation_peak(t, cross[0][0], same_area=True) == (0., pytest.approx(cross[0][0][t == 0][0]))


def test_correlation_peak_takes_the_extremum_of_larger_magnitude():
    """A bump at +20 and a deeper dip at -30 (found by find_peaks_cwt within a bin)."""
    t = np.arange(-200., 201.)
    cc = np.exp(-(t - 20) ** 2 / 50.) - 1.5 * np.exp(-(t + 30) ** 2 / 50.)
    tp, value = ts.correlation_peak(t, cc)
    assert abs(tp + 30.) <= 1. and value == cc[t == tp][0] < -1.4
    tp, value = ts.correlation_peak(t, cc + 2 * np.exp(-(t - 20) ** 2 / 50.))
    assert abs(tp - 20.) <= 1. and value > 2.9
    assert np.isnan(ts.correlation_peak(t, np.zeros_like(t))[0])


def test_extremum_times_of_delayed_copies_and_the_hierarchy_they_give():
    """B and C follow A by 8 and 20 bins; MDP (no cortico-cortical input) is left out."""
    rng = np.random.default_rng(2)
    a = ar1(30000, 4., rng)
    rates = 5 + np.array([a, np.roll(a, 8), ar1(30000, 4., rng), np.roll(a, 20)]) \
        + 0.2 * rng.standard_normal((4, 30000))
    areas = ['A', 'B', 'MDP', 'C']
    times, values = ts.extremum_times(rates, areas)
    scale = 30000 / 29998.           # upstream's lag bin; + 1 bin from its smoothing
    assert times[0, 1] == pytest.approx(-7 * scale) and times[1, 0] == pytest.approx(7 * scale)
    assert times[0, 3] == pytest.approx(-19 * scale) and times[1, 3] == pytest.approx(-11 * scale)
    assert np.all(np.diag(times)[[0, 1, 3]] == 0) and np.isnan(times[2]).all() and np.isnan(times[:, 2]).all()
    h = ts.temporal_hierarchy(times, areas)
    # the leader lowest: h_i = mean_j times_ij for an antisymmetric matrix (-26/3, -4/3, 10)
    assert h['areas'] == ['A', 'B', 'C'] and h['kept'] == ['A', 'B', 'C']
    np.testing.assert_allclose(h['hierarchy'], [0., 22 / 56., 1.], atol=1e-9)
    assert ts.count_violations(h['hierarchy'], times[np.ix_([0, 1, 3], [0, 1, 3])]) == 0


def test_hierarchy_is_the_minimum_of_upstreams_objective():
    """Against scipy.optimize.minimize of sqrt(sum (h_i - h_j - c_ij)^2) (Fig7's hier_dev)."""
    rng = np.random.default_rng(3)
    h_true = rng.uniform(0, 50, 12)
    c = h_true[:, None] - h_true[None, :] + rng.normal(0, 5, (12, 12))
    c = (c - c.T) / 2
    res = minimize(lambda h: np.sqrt(np.sum((h[:, None] - h[None, :] - c) ** 2)), rng.random(12),
                   method='BFGS', options={'gtol': 1e-10})
    expected = np.sort(res.x) - res.x.min()
    got = ts.temporal_hierarchy(c, [str(i) for i in range(12)])
    np.testing.assert_allclose(got['hierarchy'], expected / expected.max(), atol=1e-6)
    assert got['order'].tolist() == np.argsort(res.x).tolist()


def test_count_violations_and_surrogates():
    h = np.array([0., 0.3, 1.])
    times = h[:, None] - h[None, :]
    assert ts.count_violations(h, times) == 0
    times[0, 2], times[2, 0] = 5., -5.
    assert ts.count_violations(h, times) == 1
    s = ts.surrogate_times(times, np.random.default_rng(0))
    upper = np.triu_indices(3, 1)
    np.testing.assert_array_equal(s[upper], -s.T[upper])          # antisymmetric off the diagonal
    assert set(np.abs(s[upper])) <= set(np.abs(times).ravel())


@pytest.mark.parametrize('tau_bins', [5., 20.])
def test_intrinsic_timescale_of_an_ar1_process(tau_bins):
    """AR(1) with autocorrelation exp(-k/tau) plus white observation noise (which only
    raises lag 0, left out of the fit): tau recovered within 5 %."""
    rng = np.random.default_rng(4)
    x = 3 + ar1(400000, tau_bins, rng) + 0.5 * rng.standard_normal(400000)
    tau, A, B = ts.intrinsic_timescale(x, resolution=0.5, fit_range_ms=(0.5, 5 * tau_bins * 0.5))
    assert tau == pytest.approx(tau_bins * 0.5, rel=0.05)
    assert A == pytest.approx(1 / 1.25, rel=0.05)                  # var 1 of 1.25 is the AR(1)'s
    ac = ts.autocorrelation(x[:2000], 10)
    y = x[:2000] - x[:2000].mean()
    np.testing.assert_allclose(ac, [np.dot(y[k:], y[:y.size - k]) / np.dot(y, y) for k in range(11)])
