"""The columnar statistics agree with Elephant on samples of Neo SpikeTrains from a run."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip('elephant')
import quantities as pq  # noqa: E402
from elephant import statistics as es  # noqa: E402
from elephant.conversion import BinnedSpikeTrain  # noqa: E402
from elephant.kernels import GaussianKernel  # noqa: E402
from elephant.spike_train_correlation import correlation_coefficient  # noqa: E402

from mam_pynn.analysis import statistics as st  # noqa: E402
from mam_pynn.analysis.spikes import load_population, read_run_info, sample_neurons, spike_trains  # noqa: E402

T_MIN = 500.
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning',
                                        'ignore::PendingDeprecationWarning')


@pytest.fixture(scope='module')
def pop_and_trains(small_run):
    info = read_run_info(small_run)
    ps = load_population(info, 'V1', '4E', t_min=T_MIN)
    sample = sample_neurons(ps, 40, seed=2)
    return info, ps, sample, spike_trains(ps, sample)


def test_spike_trains_hold_the_sampled_neurons_spikes(pop_and_trains):
    info, ps, sample, trains = pop_and_trains
    assert len(trains) == sample.size == 40
    for n, tr in zip(sample, trains):
        np.testing.assert_array_equal(tr.rescale('ms').magnitude, ps.times[ps.neuron == n])
        assert float(tr.t_start.rescale('ms')) == T_MIN and float(tr.t_stop.rescale('ms')) == info.t_sim


def test_rates_cv_lvr_agree_with_elephant(pop_and_trains):
    info, ps, sample, trains = pop_and_trains
    rates = st.neuron_rates(ps.neuron, ps.size, ps.t_stop - ps.t_start)[sample]
    cv = st.cv_isi(ps.neuron, ps.times, ps.size)[sample]
    lv = st.lvr(ps.neuron, ps.times, ps.size, t_ref=2.)[sample]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for k, tr in enumerate(trains):
            assert rates[k] == pytest.approx(float(es.mean_firing_rate(tr).rescale('Hz')), rel=1e-12)
            isi = es.isi(tr)
            if len(isi) >= 2:
                assert cv[k] == pytest.approx(es.cv(isi.magnitude), rel=1e-10)
                assert lv[k] == pytest.approx(es.lvr(isi, R=2. * pq.ms), rel=1e-10)


def test_correlation_coefficients_agree_with_elephant(pop_and_trains):
    info, ps, sample, trains = pop_and_trains
    ours = st.correlation_matrix(st.count_matrix(ps.neuron, ps.times, sample, T_MIN, info.t_sim, 1.))
    binned = BinnedSpikeTrain(trains, bin_size=1. * pq.ms, t_start=T_MIN * pq.ms, t_stop=info.t_sim * pq.ms)
    theirs = correlation_coefficient(binned)
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_binned_and_smoothed_rates_agree_with_elephant(pop_and_trains):
    info, ps, sample, trains = pop_and_trains
    sel = np.isin(ps.neuron, sample)
    ours = st.rate_series(ps.times[sel], sample.size, T_MIN, info.t_sim, 5.)
    hist = es.time_histogram(trains, bin_size=5. * pq.ms, output='rate')
    np.testing.assert_allclose(ours, hist.rescale('Hz').magnitude.ravel(), rtol=1e-10)

    binned = st.rate_series(ps.times[sel], sample.size, T_MIN, info.t_sim, 1.)
    smoothed = st.smooth(binned, 10., 1.)
    inst = es.instantaneous_rate(trains, sampling_period=1. * pq.ms, kernel=GaussianKernel(10. * pq.ms),
                                 pool_spike_trains=True)
    theirs = inst.rescale('Hz').magnitude.ravel()  # pooled: the mean over trains
    inner = slice(60, -60)  # away from the edges, where we renormalise the kernel
    np.testing.assert_allclose(smoothed[inner], theirs[inner], rtol=0.02, atol=0.05)
