"""Upstream's data layout (issue 25): `mam preprocess` writes a small synthetic run into
<data_path>/<label>/ with upstream's file names, and the reader gives back numbers that are
checked here against computations of their own from the run's spikes.h5."""
from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import yaml

from mam_pynn.analysis.layout import LabelledRun, MissingFile, relative_path
from mam_pynn.analysis.preprocess import PRODUCTS, preprocess

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')
LABEL, T_MIN = 'small', 500.


@pytest.fixture(scope='module')
def layout(small_run, tmp_path_factory):
    """A copy of the session's small run (analysed here: the shared one stays unanalysed)."""
    data = tmp_path_factory.mktemp('layout')
    run = data.parent / f'{data.name}_run'
    shutil.copytree(small_run, run)
    result = preprocess(run, data, label=LABEL, t_min=T_MIN, verbose=False)
    return run, LabelledRun(data, LABEL), result


def spikes(run, area, pop):
    """(neuron index in pop, times, size) straight from spikes.h5 and config.yaml."""
    cfg = yaml.safe_load((run / 'config.yaml').read_text())
    p = cfg['populations'][area][pop]
    with h5py.File(run / 'spikes.h5') as f:
        ids, t = f[f'spikes/{area}/node_ids'][:].astype(int), f[f'spikes/{area}/timestamps'][:]
    mine = (ids >= p['first_id']) & (ids < p['first_id'] + p['size'])
    return ids[mine] - p['first_id'], t[mine], p['size']


def test_the_files_have_upstreams_names(layout):
    run, r, result = layout
    root = r.root
    for rel in (f'custom_params_{LABEL}', f'recordings/{LABEL}-spikes-V1-23E.npy', 'recordings/network_gids.txt',
                'Analysis/pop_rates.json', 'Analysis/pop_LvR.json', 'Analysis/pop_cv_isi.json',
                'Analysis/synchrony.json', 'Analysis/corrcoeff.json',
                'Analysis/pop_rate_dists-V1-23E-histogram.npy', 'Analysis/pop_rate_dists-V1-23E-stats-mu.npy',
                'Analysis/pop_rate_dists-parameters', 'Analysis/rate_time_series-V1.npy',
                'Analysis/rate_time_series_pops-TH-23E.npy', 'Analysis/rate_time_series_pops-parameters',
                'Analysis/rate_time_series_full/rate_time_series_full_V1.npy',
                'Analysis/rate_time_series_full/rate_time_series_full_V1_23E.npy',
                'Analysis/rate_time_series_full/rate_time_series_full_Parameters.json',
                'Analysis/rate_time_series_auto_kernel/rate_time_series_auto_kernel_FEF.npy',
                'Analysis/rate_histogram/rate_histogram_V1.npy', 'Analysis/rate_histogram/rate_histogram_bins.npy',
                'Analysis/power_spectrum_full/power_spectrum_full_freq.npy',
                'Analysis/synaptic_input/synaptic_input_V1.npy',
                'Analysis/functional_connectivity_synaptic_input.npy'):
        assert (root / rel).is_file(), rel
    assert not (root / 'recordings' / f'{LABEL}-spikes-TH-4E.npy').exists()     # TH has no layer 4
    assert json.loads((root / 'Analysis' / 'pop_rates.json').read_text())['Parameters']['t_min'] == T_MIN
    assert result['skipped']['Analysis/pop_rates_LA_state.json'] == \
        'the run ends at 3000 ms, before the low-activity phase 3500-3600 ms'
    assert set(result['skipped']) == {'Analysis/pop_rates_LA_state.json',     # 3 s: no BOLD FC
                                      'Analysis/functional_connectivity_bold_signal.npy',
                                      'Analysis/FC_bold_signal_communities.json'}
    assert not [p for p in r.data_path.iterdir() if p.name.startswith('.')]       # no staging left


def test_rates_and_irregularity_are_our_statistics_where_the_definitions_meet(layout):
    """pop_rates.json (upstream's open window) and pop_LvR.json (upstream's mean) equal the
    run's `mam analyze` statistics computed by another code path (statistics.py)."""
    from mam_pynn.analysis import analyze_run
    run, r, _ = layout
    stats = analyze_run(run, t_min=T_MIN, figures=False, verbose=False)
    rates, lvr, cv = r.pop_rates(), r.pop_LvR(), r.pop_cv_isi()
    assert r.areas() == ['V1', 'V2', 'FEF', 'TH'] and set(rates['TH']) == {'23E', '23I', '5E', '5I', '6E', '6I', 'total'}
    for area, pops in stats['populations'].items():
        for pop, s in pops.items():
            assert rates[area][pop] == pytest.approx(s['rate'], rel=1e-12)
            assert lvr[area][pop] == pytest.approx(s['lvr_upstream'], rel=1e-12)
            assert cv[area][pop] == pytest.approx(s['cv_isi_upstream'], rel=1e-12)
        assert rates[area]['total'] == pytest.approx(stats['areas'][area]['rate'], rel=1e-12)


def test_spike_files_hold_every_spike_with_upstreams_global_ids(layout):
    run, r, _ = layout
    gids = r.network_gids()
    assert gids[('V1', '23E')][0] == 1
    for (area, pop), (first, last) in gids.items():
        ids, t, size = spikes(run, area, pop)
        stored = r.spikes(area, pop)
        assert last - first + 1 == size
        np.testing.assert_array_equal(np.sort(stored[:, 1]), np.sort(t))
        np.testing.assert_array_equal(np.sort(stored[:, 0]), np.sort(ids + first))


def test_binned_rate_series_are_upstreams_histograms(layout):
    """rate_time_series_full: 1 ms bins shifted by half a bin (upstream's pop_rate_time_series),
    spikes in (t_min, T]; the area's is the size-weighted mean of its populations and equals
    the Analysis member (histogram of all the area's spikes) written by save()."""
    run, r, _ = layout
    T = r.rate_time_series_parameters()['t_max']
    for area, pop in (('V1', '23E'), ('TH', '6I')):
        _, t, size = spikes(run, area, pop)
        t = t[(t > T_MIN) & (t <= T)]
        k = np.floor(t - T_MIN - 0.5).astype(int)          # bin k: [t_min + k + 0.5, t_min + k + 1.5)
        n = int(T - T_MIN)
        counts = np.bincount(k[(k >= 0) & (k < n)], minlength=n)
        np.testing.assert_allclose(r.rate_time_series(area, pop), counts / (size * 1e-3), rtol=1e-12)
    for area in r.areas():
        pops = [p for p in r.pop_LvR()[area]]
        sizes = [spikes(run, area, p)[2] for p in pops]
        mean = np.average([r.rate_time_series(area, p) for p in pops], axis=0, weights=sizes)
        np.testing.assert_allclose(r.rate_time_series(area), mean, rtol=1e-12)
        np.testing.assert_allclose(r.analysis_array('rate_time_series', area), mean, rtol=1e-10, atol=1e-12)
    kernel, full = r.rate_time_series('V1', method='auto_kernel'), r.rate_time_series('V1')
    assert kernel.shape == full.shape and kernel.mean() == pytest.approx(full.mean(), rel=0.05)
    assert kernel.std() < 0.5 * full.std()          # smoothed


def test_correlation_coefficients_follow_compute_corrcoeff(layout):
    """Independently: dense 1 ms counts in [t_min, T] of the active neurons among the 3001
    ids from the first spiking one, first 2000, np.corrcoef, NaN as 0, off-diagonal mean."""
    run, r, _ = layout
    T = r.rate_time_series_parameters()['t_max']
    for area, pop in (('V1', '4E'), ('FEF', '5I')):
        ids, t, _ = spikes(run, area, pop)
        trains = [t[ids == i] for i in np.arange(ids.min(), ids.min() + 3001)]
        hist = np.array([np.histogram(x, np.arange(T_MIN, T + 1., 1.))[0] for x in trains])
        hist = hist[hist.max(axis=1) > hist.min(axis=1)][:2000]
        cc = np.nan_to_num(np.corrcoef(hist)[~np.eye(len(hist), dtype=bool)], nan=0.)
        assert r.corrcoeff()[area][pop] == pytest.approx(cc.mean(), rel=1e-9, abs=1e-12)


def test_spectra_histograms_and_fc(layout):
    from scipy.signal import periodogram
    run, r, _ = layout
    freq, power = r.power_spectrum('V1', method='full')
    x = r.rate_time_series('V1')
    x = x - x.mean()
    # Welch by hand: Hann-windowed periodograms of 1024 samples every 24, averaged
    starts = range(0, x.size - 1024 + 1, 24)
    by_hand = np.mean([periodogram(x[s:s + 1024], fs=1000., window='hann', detrend='constant')[1]
                       for s in starts], axis=0)
    np.testing.assert_allclose(freq, np.arange(513) * 1000. / 1024)
    np.testing.assert_allclose(power, by_hand, rtol=1e-10, atol=1e-12)
    bins, vals = r.rate_histogram('TH')
    rates = np.concatenate([np.bincount(ids[(t > T_MIN) & (t < 3000.)], minlength=n) / 2.5
                            for ids, t, n in (spikes(run, 'TH', p) for p in r.pop_LvR()['TH'])])
    h, edges = np.histogram(rates, bins=100)
    np.testing.assert_allclose(vals, h / h.sum())
    np.testing.assert_allclose(bins, edges[:-1])         # TH is the last area written
    fc = r.functional_connectivity('synaptic_input')
    signals = np.array([r.synaptic_input(a) for a in r.areas()])
    np.testing.assert_allclose(fc, np.corrcoef(signals), atol=1e-12)
    assert fc.shape == (4, 4)


def test_dynamics_products_against_independent_computations(layout):
    """Issue 22's products: area input = N-weighted mean of its populations' inputs; the
    cross-correlation files those of the areas' rates; the subsample series of a population = its binned
    rate over the neurons taken; the BOLD signal of a 3 s run written, its FC skipped."""
    run, r, result = layout
    cfg = yaml.safe_load((run / 'config.yaml').read_text())
    from mam_pynn.analysis.synaptic_input import run_model
    pops = list(r.pop_LvR()['V2'])
    n = np.array([run_model(run).N['V2'][p] for p in pops], float)      # the model's sizes, as upstream
    np.testing.assert_allclose(r.synaptic_input('V2'),
                               np.average([r.synaptic_input('V2', p) for p in pops], axis=0, weights=n),
                               rtol=1e-10, atol=1e-12)
    t, c = r.cross_correlation('V1', 'FEF')
    assert t.shape == c.shape[-1:] and c.shape[:2] == (2, 2)
    from mam_pynn.analysis.timescales import cross_correlation     # tested in test_timescales
    t2, c2 = cross_correlation(r.rate_time_series('V1'), r.rate_time_series('FEF'))
    np.testing.assert_array_equal(t, t2)
    np.testing.assert_allclose(c, c2)
    assert r.bold_signal('V1').size == r.rate_time_series('V1').size
    assert 'Analysis/functional_connectivity_bold_signal.npy' in result['skipped']
    assert not any('granger' in p for p in result['written'])      # on request only
    ids, times, size = spikes(run, 'V1', '23E')
    keep = (times > T_MIN) & (times <= 3000.)
    sub = r.rate_time_series('V1', '23E', method='subsample')
    active = np.flatnonzero(np.bincount(ids[keep], minlength=size) / 2.5 > 0.56)
    sizes = {p: v['size'] for p, v in cfg['populations']['V1'].items()}
    n_taken = min(active.size, int(np.round(140 * sizes['23E'] / sum(sizes.values()))))
    chosen = keep & np.isin(ids, active[:n_taken])
    t = times[chosen]
    t = t[t < 3000. + 0.5]
    bins = np.floor(t - T_MIN - 0.5).astype(int)                  # upstream's half-shifted 1 ms bins
    np.testing.assert_allclose(sub, np.bincount(bins[bins >= 0], minlength=sub.size) * 1e3 / n_taken)


def test_a_missing_file_is_one_line_naming_it_and_the_figure(layout):
    _, r, _ = layout
    reader = LabelledRun(r.data_path, LABEL, figure='fig8_interactions')
    with pytest.raises(MissingFile) as err:        # 3 s: no BOLD after its 5 s transient
        reader.functional_connectivity('bold_signal')
    msg = str(err.value)
    assert '\n' not in msg and 'functional_connectivity_bold_signal.npy' in msg and 'fig8_interactions' in msg
    assert 'compute_functional_connectivity.py' in msg
    with pytest.raises(FileNotFoundError, match='granger_causality_V1_23E.json'):
        reader.granger_causality('V1', '23E')


def test_a_new_product_plugs_in_with_one_line(small_run, tmp_path, monkeypatch):
    """As h22a's computations will: one entry in PRODUCTS, read back by the reader; a
    finished label folder is refused, then replaced only when told."""
    monkeypatch.setitem(PRODUCTS, 'Analysis/bold_signal/bold_signal_{area}.npy', lambda ctx: {
        relative_path('bold_signal', area=a): 2. * ctx.out.synaptic_input(a) for a in ctx.areas})
    only = ['Analysis/rate_time_series_full/rate_time_series_full_{area}[_{pop}].npy',
            'Analysis/synaptic_input/synaptic_input_{area}[_{pop}].npy',
            'Analysis/bold_signal/bold_signal_{area}.npy']
    preprocess(small_run, tmp_path, label='x', only=only, verbose=False)
    r = LabelledRun(tmp_path, 'x')
    np.testing.assert_array_equal(r.bold_signal('FEF'), 2. * r.synaptic_input('FEF'))
    assert not r.has('pop_rates')
    with pytest.raises(FileExistsError, match='overwrite'):
        preprocess(small_run, tmp_path, label='x', only=only[:1], verbose=False)
    preprocess(small_run, tmp_path, label='x', only=only[:1], overwrite=True, verbose=False)
    assert not r.has('bold_signal', area='FEF') and r.has('rate_time_series', method='full', area='V1')
    with pytest.raises(KeyError, match='unknown product'):
        preprocess(small_run, tmp_path, label='y', only=['Analysis/nothing.npy'], verbose=False)


def test_analysis_save_writes_upstreams_layout(small_run, tmp_path):
    from mam_pynn.analysis import Analysis
    run = tmp_path / 'run'
    shutil.copytree(small_run, run)
    a = Analysis(None, run_dir=run)
    a.create_pop_rates(t_min=200.)
    a.create_pop_rate_dists(t_min=200.)
    a.create_rate_time_series(t_min=200.)
    files = a.save(layout='upstream', data_path=tmp_path / 'data', label='lab')
    assert tmp_path / 'data' / 'lab' / 'Analysis' / 'rate_time_series_pops-V2-5E.npy' in files
    r = LabelledRun(tmp_path / 'data', 'lab')
    assert r.parameters('pop_rates')['t_min'] == 200. == r.parameters('rate_time_series_pops')['t_min']
    assert r.pop_rates()['V2']['5E'] == a.pop_rates['V2']['5E'][0]
    np.testing.assert_array_equal(r.analysis_array('rate_time_series_pops', 'V2', '5E'),
                                  a.rate_time_series_pops['V2']['5E'])
    dist = r.pop_rate_dists('V1', '6I')
    np.testing.assert_array_equal(dist['histogram'], a.pop_rate_dists['V1']['6I']['histogram'])
    assert dist['stats'] == a.pop_rate_dists['V1']['6I']['stats']
    assert a.save(layout='upstream', data_path=tmp_path / 'data', label='lab') == files   # same: kept
    a.create_pop_rates(t_min=300.)
    with pytest.raises(FileExistsError, match='pop_rates.json'):
        a.save(layout='upstream', data_path=tmp_path / 'data', label='lab')


def test_auto_kernel_lists_populations_with_too_few_spikes(monkeypatch):
    """A population with 0, 1 or 2 spikes gets no kernel width (elephant cannot estimate one
    from so few): zeros, named in the parameters; a population with many spikes is the
    elephant rate of its merged train divided by its size (computed here directly)."""
    import types

    import neo
    import quantities as pq
    from elephant.statistics import instantaneous_rate

    from mam_pynn.analysis import preprocess
    rng = np.random.default_rng(3)
    many = np.sort(rng.uniform(100., 1000., 400))
    times = {'none': np.empty(0), 'one': np.array([500.]), 'two': np.array([300., 700.]),
             'many': many}
    ctx = types.SimpleNamespace(
        areas=['V1'], pops=lambda area: list(times), T=1000., t_min=100.,
        spikes=lambda area, pop: np.column_stack([np.ones_like(times[pop]), times[pop]]),
        size=lambda area, pop: 50, parameters=lambda **kw: kw)
    files = preprocess.rate_time_series_auto_kernel(ctx)
    params = next(v for k, v in files.items() if k.endswith('Parameters.json'))
    assert params['no_kernel_width'][:2] == ['V1/none', 'V1/one']
    assert set(params['no_kernel_width']) <= {'V1/none', 'V1/one', 'V1/two'}
    series = {k.split('_')[-1][:-4]: v for k, v in files.items() if k.endswith('.npy')}
    for pop in params['no_kernel_width']:
        assert not series[pop.split('/')[1]].any()
    train = neo.SpikeTrain(many * pq.ms, t_start=0. * pq.ms, t_stop=1000. * pq.ms)
    expected = instantaneous_rate(train, 1. * pq.ms, t_start=100. * pq.ms, t_stop=1000. * pq.ms)
    np.testing.assert_allclose(series['many'], np.asarray(expected.magnitude)[:, 0] / 50, rtol=1e-12)
