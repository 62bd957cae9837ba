"""Chu et al. 2014 (CRCNS pvc-5) processing as upstream's process_chu2014_data.py, on a
synthetic data set in pvc-5's file format with planted phases of high fluctuations."""
import numpy as np
import pytest
from scipy.io import loadmat, savemat
from scipy.signal import welch

from mam_pynn.analysis import chu2014 as C

PHASES = ((0., 25., 'low'), (25., 50., 'high'), (50., 75., 'low'))
CHANNELS = range(100, 116)          # 13 of them (100..112) within 1 mm


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp('chu')
    C.write_synthetic(folder, phases_s=PHASES, channels=CHANNELS, neurons_per_channel=5, rate=10.)
    return folder, C.process(folder, np.linspace(0., 40., 41))


def test_files_are_in_pvc5s_format_and_read_back(synthetic):
    folder, _ = synthetic
    raw = folder / 'crcns-pvc5' / 'rawSpikeTime'
    cc = loadmat(raw / 'times_090425blk10_ch105.mat')['cluster_class']
    assert cc.shape[1] == 2 and set(np.unique(cc[:, 0])) == {0., 1., 2., 3., 4.}
    neurons = C.read_neurons(folder)
    assert [ch for ch, _ in neurons] == [ch for ch in CHANNELS for _ in range(5)]
    np.testing.assert_array_equal(neurons[5 * 5 + 1][1], cc[cc[:, 0] == 1, 1])
    assert C.spike_folder(raw) == raw


def test_outputs_have_upstreams_names_and_shapes(synthetic):
    folder, out = synthetic
    n = 13 * 5
    assert len(out['spike_data_1mm']) == n and out['spike_data_1mm'].dtype == object
    np.testing.assert_array_equal(out['neuron_depths'], [(ch - 65) % 8 for ch in range(100, 113) for _ in range(5)])
    time, rates = out['rate_time_series_time'], out['rate_time_series_V1']
    assert rates.shape == (n, time.size) and np.allclose(np.diff(time), 1.)
    # every spike counted once, at 1000 spikes/s per spike and ms
    assert rates.sum() / 1e3 == sum(t.size for t in out['spike_data_1mm'])
    t0 = out['spike_data_1mm'][7]
    np.testing.assert_array_equal(rates[7] / 1e3, np.histogram(t0, np.r_[time, time[-1] + 1.])[0])
    for phase in C.PHASES:
        assert out[f'power_spectrum_V1_{phase}'].shape == out['power_spectrum_freq'].shape == (513,)
    for name in ('low', 'high', 'full'):
        assert out[f'rate_histogram_{name}'].sum() == n
    assert out['spectrogram_Sxx'].shape == (out['spectrogram_freq'].size, out['spectrogram_time'].size)


def test_planted_phases_are_found_and_their_spectra_differ(synthetic):
    _, out = synthetic
    f, t, S = out['spectrogram_freq'], out['spectrogram_time'], out['spectrogram_Sxx']
    high = S[f <= C.F_CRIT].sum(axis=0) > C.POWER_THRESHOLD
    inside = (t > 25. + 4.096 / 2) & (t < 50. - 4.096 / 2)        # segments wholly in the high phase
    outside = (t < 25. - 4.096 / 2) | (t > 50. + 4.096 / 2)
    assert high[inside].all() and not high[outside].any()
    pf = out['power_spectrum_freq']
    at2 = np.argmin(np.abs(pf - 2.))
    assert out['power_spectrum_V1_high_fluct'][at2] > 20 * np.median(out['power_spectrum_V1_low_fluct'])
    # the full spectrum is scipy's Welch of the mean-free population rate
    pop = out['rate_time_series_V1'].mean(axis=0)
    np.testing.assert_allclose(out['power_spectrum_V1_full'],
                               welch(pop - pop.mean(), fs=1e3, nperseg=1024, noverlap=1000, window='boxcar')[1])


def test_missing_data_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='pvc-5'):
        C.process(tmp_path, np.arange(5.))
    raw = tmp_path / 'crcns-pvc5' / 'rawSpikeTime'
    raw.mkdir(parents=True)
    savemat(raw / 'times_090425blk10_ch70.mat', {'other': np.zeros(3)})
    with pytest.raises(ValueError, match="ch70.mat: no readable 'cluster_class'"):
        C.process(tmp_path, np.arange(5.))


def test_subsampled_rate_series_takes_the_first_active_neurons():
    """Upstream's 'subsample': per population round(140 N_pop / N) neurons with > 0.56
    spikes/s in id order; their shifted-bin rate; the area the mean weighted by them."""
    rng = np.random.default_rng(3)
    sizes = {'23E': 300., '4I': 100.}                  # 105 and 35 of the 140
    spikes = {}
    for pop, n in sizes.items():
        rates = np.where(np.arange(int(n)) % 3 == 0, 0.1, 5.)   # every third neuron too slow
        ids = np.repeat(np.arange(int(n)), rng.poisson(rates * 2.))     # 2 s window
        spikes[pop] = (ids, rng.uniform(500., 2500., ids.size))
    area, pops = C.subsampled_rate_series(spikes, sizes, 500., 2500.)
    for pop, want in (('23E', 105), ('4I', 35)):
        ids, t = spikes[pop]
        u, c = np.unique(ids, return_counts=True)
        chosen = u[c / 2. > 0.56][:want]
        x = t[np.isin(ids, chosen)]
        expected = np.histogram(x, bins=2000, range=(500.5, 2500.5))[0] / (want * 1e-3)
        np.testing.assert_allclose(pops[pop], expected)
    np.testing.assert_allclose(area, (105 * pops['23E'] + 35 * pops['4I']) / 140)
    with pytest.raises(ValueError, match='population 23E: .* 1000 needed'):
        C.subsampled_rate_series(spikes, sizes, 500., 2500., n_neurons=1333)
