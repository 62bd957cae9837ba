"""M.analysis with upstream's names and definitions (issue 17), each method checked against
upstream's definition written out here neuron by neuron, on a real NEST run."""
import json

import numpy as np
import pytest

pytest.importorskip('nest')
from mam_pynn.model import MultiAreaModel  # noqa: E402

NETWORK = {'N_scaling': 0.005, 'K_scaling': 0.01, 'fullscale_rates': 'fullscale_rates.json',
           'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat',
                                 'cc_weights_factor': 1., 'cc_weights_I_factor': 1.}}
T_MIN, T_MAX = 200., 1000.


@pytest.fixture(scope='module')
def M(tmp_path_factory):
    """Upstream's script: MultiAreaModel(..., simulation=True, analysis=True), simulate."""
    M = MultiAreaModel(NETWORK, simulation=True, analysis=True,
                       sim_spec={'t_sim': T_MAX, 'areas_simulated': ['V1', 'V2']})
    M.simulation.simulate(out_dir=tmp_path_factory.mktemp('up') / 'run', progress=False)
    return M


def spikes(M, area, pop):
    """(ids, times) of one population from spikes.h5, independently of the class."""
    import h5py
    import yaml
    cfg = yaml.safe_load((M.simulation.run_dir / 'config.yaml').read_text())
    p = cfg['populations'][area][pop]
    with h5py.File(M.simulation.run_dir / 'spikes.h5') as f:
        ids, t = f[f'spikes/{area}/node_ids'][:].astype(int), f[f'spikes/{area}/timestamps'][:]
    mine = (ids >= p['first_id']) & (ids < p['first_id'] + p['size'])
    return ids[mine] - p['first_id'], t[mine], p['size']


POPS = [('V1', '23E'), ('V1', '4I'), ('V2', '5E'), ('V2', '6I')]


def test_attributes_are_upstreams(M):
    a = M.analysis
    assert a.T == T_MAX and a.areas_loaded == ['V1', 'V2'] == a.areas_recorded
    assert a.interarea_speed == M.params['delay_params']['interarea_speed']
    assert a.spike_data['V1']['4E'].shape[1] == 2


def test_create_pop_rates(M):
    M.analysis.create_pop_rates(t_min=T_MIN)
    for area, pop in POPS:
        _, t, n = spikes(M, area, pop)
        expected = np.sum((t > T_MIN) & (t < T_MAX)) / (n * (T_MAX - T_MIN) / 1000.)
        assert M.analysis.pop_rates[area][pop][0] == pytest.approx(expected, rel=1e-12)
    assert M.analysis.pop_rates['Parameters']['t_min'] == T_MIN
    all_t = np.concatenate([spikes(M, 'V1', pop)[1] for pop in M.structure['V1']])
    n_area = sum(spikes(M, 'V1', pop)[2] for pop in M.structure['V1'])
    expected = np.sum((all_t > T_MIN) & (all_t < T_MAX)) / (n_area * (T_MAX - T_MIN) / 1000.)
    assert M.analysis.pop_rates['V1']['total'] == pytest.approx(expected, rel=1e-12)


def test_create_pop_rates_compute_stat(M):
    """compute_stat=True: (mean, std) of the single-neuron rates, silent neurons as 0."""
    M.analysis.create_pop_rates(t_min=T_MIN, compute_stat=True)
    for area, pop in POPS:
        ids, t, n = spikes(M, area, pop)
        rates = np.bincount(ids[(t > T_MIN) & (t < T_MAX)], minlength=n) / ((T_MAX - T_MIN) / 1000.)
        assert M.analysis.pop_rates[area][pop] == pytest.approx((rates.mean(), rates.std()), rel=1e-12)
    assert len(M.analysis.pop_rates['V1']['total']) == 2


def test_create_pop_rate_dists(M):
    M.analysis.create_pop_rate_dists(t_min=T_MIN)
    for area, pop in POPS:
        ids, t, n = spikes(M, area, pop)
        rates = np.zeros(n)
        for i in ids[(t > T_MIN) & (t < T_MAX)]:
            rates[i] += 1
        rates /= (T_MAX - T_MIN) / 1000.
        d = M.analysis.pop_rate_dists[area][pop]
        assert d['stats']['mu'] == pytest.approx(rates.mean()) and d['stats']['sigma'] == pytest.approx(rates.std())
        vals, bins = np.histogram(rates, bins=100)
        np.testing.assert_allclose(d['histogram'][1], vals / vals.sum())
        np.testing.assert_allclose(d['histogram'][0], bins[:-1])


def shifted_rate(t, n, r=1.):
    """Upstream's binned population rate: range (t_min + r/2, t_max + r/2)."""
    counts, _ = np.histogram(t, bins=int((T_MAX - T_MIN) / r), range=(T_MIN + r / 2, T_MAX + r / 2))
    return counts / (n * r / 1000.)


def test_create_synchrony_and_rate_time_series(M):
    M.analysis.create_synchrony(t_min=T_MIN)
    M.analysis.create_rate_time_series(t_min=T_MIN)
    for area, pop in POPS:
        _, t, n = spikes(M, area, pop)
        rate = shifted_rate(t, n)
        assert M.analysis.synchrony[area][pop] == pytest.approx(rate.std() / rate.mean(), rel=1e-12)
        np.testing.assert_allclose(M.analysis.rate_time_series_pops[area][pop], rate)
    assert M.analysis.rate_time_series['V1'].shape == (int(T_MAX - T_MIN),)
    with pytest.raises(ValueError, match="kernel 'gauss_time_window': only 'binned'"):
        M.analysis.create_rate_time_series(kernel='gauss_time_window')


def test_create_pop_cv_isi(M):
    """Upstream: mean CV over neurons with >= 1 ISI in (t_min, t_max)."""
    M.analysis.create_pop_cv_isi(t_min=T_MIN)
    for area, pop in POPS:
        ids, t, _ = spikes(M, area, pop)
        keep = (t > T_MIN) & (t < T_MAX)
        cvs = []
        for i in np.unique(ids[keep]):
            isi = np.diff(np.sort(t[keep][ids[keep] == i]))
            if isi.size > 0:
                cvs.append(isi.std() / isi.mean())
        assert M.analysis.pop_cv_isi[area][pop] == pytest.approx(np.mean(cvs), rel=1e-12)


def test_create_pop_LvR(M):
    """Upstream: LvR with R = 2 ms, 0 for neurons with < 2 ISIs, silent neurons as 0."""
    M.analysis.create_pop_LvR(t_min=T_MIN)
    for area, pop in POPS:
        ids, t, n = spikes(M, area, pop)
        keep = (t >= T_MIN) & (t < T_MAX)
        values = []
        for i in np.unique(ids[keep]):
            I = np.diff(np.sort(t[keep][ids[keep] == i]))
            if I.size > 1:
                s = I[:-1] + I[1:]
                values.append(3. / (I.size - 1) * np.sum((1 - 4 * I[:-1] * I[1:] / s ** 2) * (1 + 4 * 2. / s)))
            else:
                values.append(0.)
        expected = np.sum(values) / n
        assert M.analysis.pop_LvR[area][pop] == pytest.approx(expected, rel=1e-9)


def test_save_writes_every_computed_member_and_overwrites_only_when_told(M):
    M.analysis.create_pop_rates()
    M.analysis.create_rate_time_series(t_min=T_MIN)
    out = M.simulation.run_dir / 'analysis' / 'upstream'
    files = M.analysis.save()
    assert {'pop_rates.json', 'rate_time_series_pops.npz'} <= {f.name for f in files}
    saved = json.loads((out / 'pop_rates.json').read_text())
    assert saved['V1']['4E'][0] == pytest.approx(M.analysis.pop_rates['V1']['4E'][0])
    assert saved['Parameters']['t_min'] == 500.      # upstream's default transient
    with np.load(out / 'rate_time_series_pops.npz') as z:
        np.testing.assert_array_equal(z['V2/5E'], M.analysis.rate_time_series_pops['V2']['5E'])
        assert json.loads(str(z['Parameters']))['t_min'] == T_MIN
    mtime = (out / 'rate_time_series_pops.npz').stat().st_mtime_ns
    M.analysis.save()                                # same results: kept as they are
    assert (out / 'rate_time_series_pops.npz').stat().st_mtime_ns == mtime
    M.analysis.create_pop_rates(t_min=T_MIN)
    with pytest.raises(FileExistsError, match='pop_rates.json'):
        M.analysis.save()
    assert json.loads((out / 'pop_rates.json').read_text())['Parameters']['t_min'] == 500.
    M.analysis.save(overwrite=True)
    assert json.loads((out / 'pop_rates.json').read_text())['Parameters']['t_min'] == T_MIN
    assert not [f for f in out.iterdir() if f.name.startswith('.')]     # no temporary left


def test_synthetic_run_absent_and_silent_populations(M, tmp_path):
    """Analysis(M, run_dir) on any run; upstream's 'complete' has TH's missing L4 as
    (0, 0) rates and NaN synchrony and series; a silent population: NaN synchrony,
    upstream's empty rate distribution, LvR and CV 0."""
    from mam_pynn.analysis import Analysis
    from mam_pynn.analysis.synthetic import default_layout, make_run_dir
    run = make_run_dir(tmp_path / 'syn', default_layout(200, ['V1', 'TH'], seed=2), t_sim=1500.,
                       rates={'6I': 0.}, seed=2)
    a = Analysis(M, run)
    assert a.T == 1500. and a.areas_loaded == ['V1', 'TH']
    a.create_pop_rates()
    a.create_synchrony()
    a.create_rate_time_series()
    a.create_pop_rate_dists()
    a.create_pop_LvR()
    a.create_pop_cv_isi()
    assert a.pop_rates['TH']['4E'] == (0., 0.) and np.isnan(a.synchrony['TH']['4I'])
    assert np.isnan(a.rate_time_series_pops['TH']['4E']).all() and '4E' not in a.pop_LvR['TH']
    assert a.pop_rates['V1']['6I'][0] == 0. and np.isnan(a.synchrony['V1']['6I'])
    assert a.pop_rate_dists['V1']['6I']['stats'] == {'mu': 0., 'sigma': 0.}
    assert a.pop_LvR['V1']['6I'] == 0. and a.pop_cv_isi['V1']['6I'] == 0.
    t = a.spike_data['TH']['23E'][:, 1]
    rate = np.histogram(t, bins=1000, range=(500.5, 1500.5))[0]
    assert a.synchrony['TH']['23E'] == pytest.approx(rate.std() / rate.mean(), rel=1e-12)
    assert a.save() and (run / 'analysis' / 'upstream' / 'pop_LvR.json').is_file()


def test_unknown_parameter_and_area_are_named(M, tmp_path):
    with pytest.raises(KeyError, match="unknown parameter 'tmin'"):
        M.analysis.create_pop_rates(tmin=100.)
    from mam_pynn.analysis import Analysis
    with pytest.raises(ValueError, match=r"load_areas \['V4'\] were not recorded"):
        Analysis(M, run_dir=M.simulation.run_dir, load_areas=['V4']).create_pop_rates()
    with pytest.raises(ValueError, match="call M.simulation.simulate"):
        MultiAreaModel(NETWORK, simulation=True, analysis=True,
                       sim_spec={'areas_simulated': ['V1']}).analysis.create_pop_rates()


def test_upstream_script(M):
    """Upstream's order: M.analysis exists before simulate() and reads the run afterwards."""
    from mam_pynn.analysis import Analysis
    assert isinstance(M.analysis, Analysis) and M.analysis.run_dir == M.simulation.run_dir
    M.analysis.create_pop_rates()
    assert set(M.analysis.pop_rates) == {'Parameters', 'V1', 'V2'}


def test_create_synaptic_input_and_bold_signal(M):
    """Upstream's create_synaptic_input written out: each source population's binned
    rate convolved ('same') with exp(-t/tau_syn) on [0, 20) ms (tau_syn_in for I
    sources), times |W| K, summed; the area's signal the N-weighted mean. BOLD: the
    balloon of that signal over its maximum (1 ms samples)."""
    from mam_pynn.analysis.bold import balloon
    a = M.analysis
    a.create_synaptic_input(t_min=T_MIN)
    neuron = M.params['neuron_params']['single_neuron_dict']
    sources = [(area, pop) for area in ('V1', 'V2') for pop in M.structure[area]]
    output = {}
    for area, pop in sources:
        _, t, n = spikes(M, area, pop)
        tau = neuron['tau_syn_in'] if pop.endswith('I') else neuron['tau_syn_ex']
        output[area, pop] = np.convolve(np.exp(-np.arange(0., 20.) / tau), shifted_rate(t, n), mode='same')
    for area in ('V1', 'V2'):
        total = np.zeros(int(T_MAX - T_MIN))
        for pop in M.structure[area]:
            x = sum(output[s] * abs(M.W[area][pop][s[0]][s[1]]) * M.K[area][pop][s[0]][s[1]]
                    for s in sources)
            np.testing.assert_allclose(a.synaptic_input_pops[area][pop], x, rtol=1e-10)
            total = total + x * M.N[area][pop]
        np.testing.assert_allclose(a.synaptic_input[area], total / M.N[area]['total'], rtol=1e-10)
    np.testing.assert_allclose(a.synaptic_output_pops['V2']['6I'], output['V2', '6I'], rtol=1e-12)
    assert a.synaptic_input['Parameters']['t_min'] == T_MIN
    a.create_bold_signal(t_min=T_MIN)
    x = a.synaptic_input['V2']
    np.testing.assert_allclose(a.bold_signal['V2'], balloon(x / x.max(), 0.001), rtol=1e-12)
    out = M.simulation.run_dir / 'analysis' / 'upstream'
    assert {'synaptic_input.npz', 'bold_signal.npz'} <= {f.name for f in a.save(overwrite=True)}
    with np.load(out / 'synaptic_input_pops.npz') as z:
        np.testing.assert_array_equal(z['V1/4E'], a.synaptic_input_pops['V1']['4E'])
