"""Each statistic against known answers on synthetic spike data and independent loops."""
from __future__ import annotations

import numpy as np
import pytest

from mam_pynn.analysis import statistics as st

from mam_pynn.analysis.synthetic import columnar, poisson_trains

T = 20000.  # ms


@pytest.fixture(scope='module')
def poisson():
    rng = np.random.default_rng(3)
    return columnar(poisson_trains(200, 10., T, rng))


def test_rates_of_poisson_trains(poisson):
    neuron, times = poisson
    rates = st.neuron_rates(neuron, 200, T)
    assert rates.shape == (200,)
    assert rates.mean() == pytest.approx(10., rel=0.02)
    # single-neuron counts are Poisson: variance of rates = mean / T
    assert rates.var() == pytest.approx(10. / (T / 1000.), rel=0.25)
    assert st.population_rate(times.size, 200, T) == pytest.approx(rates.mean())


def test_silent_neurons_count_in_rates():
    neuron, times = columnar([np.array([1., 2., 3.]), np.array([])])
    assert st.neuron_rates(neuron, 4, 1000.).tolist() == [3., 0., 0., 0.]
    assert st.population_rate(times.size, 4, 1000.) == 0.75


def test_cv_and_lvr_of_poisson_trains_are_one(poisson):
    neuron, times = poisson
    assert st.nanmean(st.cv_isi(neuron, times, 200)) == pytest.approx(1., abs=0.03)
    assert st.nanmean(st.lvr(neuron, times, 200, t_ref=0.)) == pytest.approx(1., abs=0.03)


def test_lvr_refractory_correction_makes_dead_time_poisson_one():
    """Shinomoto's correction is exact to first order in R/ISI: 0.996 at 5 spikes/s."""
    rng = np.random.default_rng(4)
    neuron, times = columnar(poisson_trains(300, 5., 40000., rng, dead_time=2.))
    with_r = st.nanmean(st.lvr(neuron, times, 300, t_ref=2.))
    without_r = st.nanmean(st.lvr(neuron, times, 300, t_ref=0.))
    assert with_r == pytest.approx(1., abs=0.02)
    assert without_r < with_r - 0.02  # dead time alone makes trains look more regular


def test_regular_trains_have_zero_cv_and_lvr():
    trains = [np.arange(5. + k, T, 100. + 10 * k) for k in range(5)]
    neuron, times = columnar(trains)
    np.testing.assert_allclose(st.cv_isi(neuron, times, 5), 0., atol=1e-9)
    np.testing.assert_allclose(st.lvr(neuron, times, 5, t_ref=2.), 0., atol=1e-9)


def test_too_few_spikes_give_nan_and_upstream_mean_counts_them_as_zero():
    # neuron 0: 2 spikes (1 ISI), neuron 1: 4 spikes, neuron 2 silent
    neuron, times = columnar([np.array([0., 10.]), np.array([0., 10., 30., 40.]), np.array([])])
    lv = st.lvr(neuron, times, 3, t_ref=0.)
    assert np.isnan(lv[0]) and np.isnan(lv[2]) and np.isfinite(lv[1])
    assert st.upstream_mean(lv) == pytest.approx(lv[1] / 3)
    assert st.nanmean(lv) == pytest.approx(lv[1])
    assert np.isnan(st.cv_isi(neuron, times, 3)[0])


def test_lvr_and_cv_match_a_per_neuron_loop():
    """Vectorised forms against a direct transcription of the formulas, neuron by neuron."""
    rng = np.random.default_rng(5)
    trains = [np.sort(rng.uniform(0, 2000., rng.integers(0, 40))) for _ in range(60)]
    neuron, times = columnar(trains)
    lv, cv = st.lvr(neuron, times, 60, t_ref=2.), st.cv_isi(neuron, times, 60)
    for k, tr in enumerate(trains):
        isi = np.diff(tr)
        if isi.size < 2:
            assert np.isnan(lv[k]) and np.isnan(cv[k])
            continue
        total = 0.
        for a, b in zip(isi[:-1], isi[1:]):
            total += (1 - 4 * a * b / (a + b) ** 2) * (1 + 4 * 2. / (a + b))
        assert lv[k] == pytest.approx(3 * total / (isi.size - 1), rel=1e-10)
        assert cv[k] == pytest.approx(np.std(isi) / np.mean(isi), rel=1e-10)


def test_synchrony_of_independent_poisson_population(poisson):
    _, times = poisson
    expected = 1. / np.sqrt(200 * 10. * 1e-3)  # CV of Poisson counts, mean N r dt
    assert st.synchrony(times, 0., T, 1.) == pytest.approx(expected, rel=0.05)


def test_synchrony_of_a_synchronous_population_is_higher(poisson):
    rng = np.random.default_rng(6)
    shared = np.sort(rng.uniform(0, T, 200))
    neuron, times = columnar([shared + rng.normal(0, 0.2, 200) for _ in range(50)])
    assert st.synchrony(times, 0., T, 1.) > 5 * st.synchrony(poisson[1], 0., T, 1.)
    assert np.isnan(st.synchrony(np.empty(0), 0., T))


def test_rate_series_and_smoothing():
    times = np.array([0.5, 0.7, 1.2, 9.99, 10.0])
    h = st.spike_histogram(times, 0., 10., 1.)
    assert h.tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]  # 10.0 is outside [0, 10)
    r = st.rate_series(times, 2, 0., 10., 1.)
    assert r[0] == pytest.approx(2 / (2 * 1e-3))
    const = np.full(500, 7.)
    np.testing.assert_allclose(st.smooth(const, 5., 1.), 7.)
    assert st.gaussian_kernel(5., 1.).sum() == pytest.approx(1.)
    with pytest.raises(ValueError, match='shorter than one bin'):
        st.spike_histogram(times, 0., 0.5, 1.)


def test_correlated_pairs_have_the_mixture_correlation():
    """Neurons sharing a fraction c of their spikes (same 1 ms bin): count correlation ~ c."""
    rng = np.random.default_rng(7)
    rate, c, t_stop = 20., 0.3, 100000.
    shared = np.sort(rng.uniform(0, t_stop, rng.poisson(c * rate * t_stop / 1000.)))
    shared = np.floor(shared) + 0.5  # bin centres, so shared spikes share a bin
    trains = [np.concatenate([shared, rng.uniform(0, t_stop, rng.poisson((1 - c) * rate * t_stop / 1000.))])
              for _ in range(4)]
    indep = [rng.uniform(0, t_stop, rng.poisson(rate * t_stop / 1000.)) for _ in range(4)]
    neuron, times = columnar(trains + indep)
    cc = st.correlation_matrix(st.count_matrix(neuron, times, np.arange(8), 0., t_stop, 1.))
    # Poisson counts per bin: cov = var(shared) = c r dt, var = r dt, so corr = c
    expected = c
    assert cc[:4, :4][~np.eye(4, dtype=bool)] == pytest.approx(np.full(12, expected), abs=0.03)
    assert np.abs(cc[4:, 4:][~np.eye(4, dtype=bool)]).max() < 0.03
    assert np.abs(cc[:4, 4:]).max() < 0.03


def test_correlation_matrix_matches_numpy_and_marks_silent_rows():
    rng = np.random.default_rng(8)
    dense = rng.poisson(0.3, (6, 500)).astype(float)
    dense[2] = 0.
    cc = st.correlation_matrix(dense)
    with np.errstate(invalid='ignore', divide='ignore'):
        ref = np.corrcoef(dense)
    ok = np.isfinite(ref)
    np.testing.assert_allclose(cc[ok], ref[ok], atol=1e-12)
    assert np.isnan(cc[2]).all()
    assert st.mean_off_diagonal(cc) == pytest.approx(np.nanmean(ref[~np.eye(6, dtype=bool)]))


def test_power_spectrum_of_white_noise_and_a_sine():
    rng = np.random.default_rng(9)
    n = 2 ** 14
    noise = rng.normal(0, 2., n)
    f, p = st.power_spectrum(noise, bin_ms=1.)
    assert f[0] > 0 and f[-1] == pytest.approx(500.)
    # one-sided density of white noise: 2 sigma^2 / fs
    assert np.mean(p) == pytest.approx(2 * 4. / 1000., rel=0.05)
    sine = np.sin(2 * np.pi * 40. * np.arange(n) / 1000.) + rng.normal(0, 0.1, n)
    f, p = st.power_spectrum(np.stack([sine, noise]), bin_ms=1.)
    assert p.shape == (2, f.size)
    assert abs(f[np.argmax(p[0])] - 40.) < 1.5


def test_functional_connectivity_and_similarity():
    rng = np.random.default_rng(10)
    common = rng.normal(size=5000)
    series = np.stack([common + rng.normal(size=5000) * s for s in (0.5, 1., 2.)])
    fc = st.functional_connectivity(series)
    assert fc.shape == (3, 3) and np.allclose(np.diag(fc), 1.)
    assert fc[0, 1] > fc[0, 2] > 0
    a = rng.uniform(-1, 1, (6, 6))
    a = (a + a.T) / 2
    assert st.fc_similarity(a, a) == pytest.approx(1.)
    assert st.fc_similarity(a, -a) == pytest.approx(-1.)
    with pytest.raises(ValueError, match='square'):
        st.fc_similarity(a, a[:5, :5])


def test_experimental_fc_file_is_read_like_upstream():
    from mam_pynn.data import data_file
    from mam_pynn.params import AREA_LIST
    path = data_file('Fig8_exp_func_conn.csv')
    exp = st.load_experimental_fc(AREA_LIST, path)
    assert exp.shape == (32, 32)
    np.testing.assert_allclose(exp, exp.T)
    np.testing.assert_allclose(np.diag(exp), 0.)
    # independent reading: the header names its areas twice; upstream keeps the second block
    lines = [ln for ln in path.read_text().splitlines()[3:] if ln.strip()]
    names = lines[0].split('\t')
    mat = np.loadtxt(lines[1:], delimiter='\t')
    half = len(names) // 2
    i, j = half + names[:half].index('V1'), half + names[:half].index('FEF')
    assert exp[AREA_LIST.index('V1'), AREA_LIST.index('FEF')] == mat[i, j]
    with pytest.raises(KeyError, match='nowhere'):
        st.load_experimental_fc(['V1', 'nowhere'], path)


def test_cv_isi_upstream_counts_two_spike_neurons_as_zero():
    """Upstream's pop_cv_isi averages over neurons with >= 1 ISI (a 2-spike neuron has CV 0);
    ours needs >= 2 ISIs (issue 14.3)."""
    from mam_pynn.analysis.statistics import cv_isi, cv_isi_upstream
    neuron = np.array([0, 0, 1, 1, 1, 1])
    times = np.array([10., 20., 0., 10., 30., 60.])      # neuron 1: ISIs 10, 20, 30
    isi = np.array([10., 20., 30.])
    assert cv_isi_upstream(neuron, times, 3) == pytest.approx((0. + isi.std() / isi.mean()) / 2)
    ours = cv_isi(neuron, times, 3)
    assert np.isnan(ours[0]) and np.isnan(ours[2]) and ours[1] == pytest.approx(isi.std() / isi.mean())
    assert cv_isi_upstream(np.array([0]), np.array([5.]), 1) == 0.


def test_welch_segment_default_shortens_explicit_is_kept_or_refused():
    """Issue 14.1: the default 1024 shrinks for short windows (the caller records it);
    an explicit setting is never overridden silently."""
    assert st.welch_segment(5000) == 1024 and st.welch_segment(500) == 64
    assert st.welch_segment(500, 256) == 256
    with pytest.raises(ValueError, match="spectrum_len_segment=1024 is longer than the analysed window"):
        st.welch_segment(500, 1024)


def test_upstream_spectrum_is_scipy_welch_1024_1000():
    """Issue 14.2: upstream's settings, checked against scipy directly; a 25 Hz sine peaks."""
    from scipy.signal import welch
    t = np.arange(4000.)
    x = 5 + np.sin(2 * np.pi * 25. * t / 1000.) + np.random.default_rng(0).normal(0, 0.5, t.size)
    f, p = st.power_spectrum_upstream(x)
    f0, p0 = welch(x, fs=1000., nperseg=1024, noverlap=1000)
    np.testing.assert_allclose(p, p0[f0 > 0]) and np.testing.assert_allclose(f, f0[f0 > 0])
    assert abs(f[np.argmax(p)] - 25.) < 1.
    with pytest.raises(ValueError, match="spectrum_method='upstream' needs >= 1024 bins"):
        st.power_spectrum_upstream(x[:800])


def test_bootstrap_se_of_the_mean_correlation_shrinks_with_more_neurons():
    """Issue 14.4: the reported sampling error behaves like one (about 1/n for pairs)."""
    rng = np.random.default_rng(3)
    shared = rng.normal(size=2000)

    def cc(n):
        x = 0.3 * shared + rng.normal(size=(n, 2000))
        return np.corrcoef(x)
    se_small, se_large = st.bootstrap_mean_cc_se(cc(30)), st.bootstrap_mean_cc_se(cc(300))
    assert 0 < se_large < se_small
    assert np.isnan(st.bootstrap_mean_cc_se(np.eye(2)))


def test_bootstrap_se_equals_resampling_the_matrix():
    """Issue 24: the multiplicity form equals the definition computed directly: each
    resample's sub-matrix cc[idx, idx], its entries of distinct neurons, NaN left out."""
    rng = np.random.default_rng(5)

    def direct(cc, draws=50, seed=0):
        idx_all = np.random.default_rng(seed).integers(0, len(cc), (draws, len(cc)))
        means = []
        for idx in idx_all:
            sub = cc[np.ix_(idx, idx)]
            off = sub[idx[:, None] != idx[None, :]]
            off = off[np.isfinite(off)]
            means.append(off.mean() if off.size else np.nan)
        return np.nanstd(means)

    for n, silent in ((3, 1), (8, 0), (60, 3), (200, 0)):
        x = rng.normal(size=(n, 400)) + 0.5 * rng.normal(size=400)
        x[:silent] = 0.        # rows without variance: NaN correlations
        with np.errstate(invalid='ignore', divide='ignore'):
            cc = np.corrcoef(x)
        expected = direct(cc)
        assert np.isfinite(expected) or n == 3
        np.testing.assert_allclose(st.bootstrap_mean_cc_se(cc), expected, rtol=1e-12, atol=1e-15)
