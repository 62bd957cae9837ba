"""Simulation: the run directory, reproducibility, the watchdog and bad input."""
import json

import h5py
import numpy as np
import pytest
import yaml

pytest.importorskip('nest')
from mam_pynn.model import MultiAreaModel  # noqa: E402

NETWORK = {'N_scaling': 0.002, 'K_scaling': 0.01, 'fullscale_rates': 'fullscale_rates.json',
           'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}}
SIM = {'t_sim': 50., 'chunk_ms': 25., 'areas_simulated': ['V1', 'V2'],
       'recording_dict': {'areas_recorded': ['V1', 'V2']}}


def simulate(tmp_path, name, network=NETWORK, **sim):
    M = MultiAreaModel(network, simulation=True, sim_spec={**SIM, **sim})
    return M, M.simulation.simulate(out_dir=tmp_path / name, progress=False)


def read_spikes(run_dir):
    with h5py.File(run_dir / 'spikes.h5', 'r') as f:
        return {a: (f[f'spikes/{a}/node_ids'][:], f[f'spikes/{a}/timestamps'][:])
                for a in f['spikes']}


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('runs')
    M, summary = simulate(tmp, 'a', rng_seed=5, recording_dict={
        'areas_recorded': ['V1', 'V2'], 'record_vm': True, 'Nrec_vm_fraction': 0.05,
        'vm_dict': {'start': 0., 'stop': 20., 'interval': 1.0, 'label': 'vm'}})
    return M, summary, tmp / 'a', tmp


def test_run_directory_follows_the_contract(run):
    M, summary, run_dir, _ = run
    cfg = yaml.safe_load((run_dir / 'config.yaml').read_text())
    assert cfg['label'] == M.label and cfg['backend'] == 'nest'
    assert cfg['network_params']['N_scaling'] == 0.002
    assert cfg['sim_params']['t_sim'] == 50.
    for area in ('V1', 'V2'):
        assert list(cfg['populations'][area]) == M.structure[area]
        first = 0
        for pop, v in cfg['populations'][area].items():
            assert v['first_id'] == first
            assert v['size'] == int(M.N_vec[M.structure_vec.index(f'{area}-{pop}')])
            first += v['size']
    s = json.loads((run_dir / 'summary.json').read_text())
    for key in ('backend', 'label', 'neurons', 'synapses', 'areas_simulated', 't_sim_ms', 'build_s',
                'sim_s', 'rtf', 'peak_rss_mb', 'num_processes', 'threads', 'spikes', 'mean_rate_hz',
                'network_creation_s', 'local_connections_s', 'cortico_cortical_connections_s',
                'state_propagation_s', 'watchdog_stopped'):
        assert key in s, key
    assert s['neurons'] == sum(v['size'] for a in cfg['populations'].values() for v in a.values())
    assert s['areas_simulated'] == ['V1', 'V2'] and s['t_sim_ms'] == 50.
    assert s['watchdog_stopped'] is False and s['peak_rss_mb'] > 0
    spikes = read_spikes(run_dir)
    assert set(spikes) == {'V1', 'V2'}
    assert s['spikes'] == sum(len(t) for _, t in spikes.values()) > 0
    with h5py.File(run_dir / 'spikes.h5', 'r') as f:
        assert f['spikes/V1/node_ids'].dtype == np.uint64
        assert f['spikes/V1/timestamps'].dtype == np.float64
        assert f['spikes/V1'].attrs['sorting'] == 2   # by_time
        assert f['spikes/V1/timestamps'].attrs['units'] == 'ms'
    for area, (ids, times) in spikes.items():
        assert np.all(np.diff(times) >= 0)
        assert ids.max() < sum(v['size'] for v in cfg['populations'][area].values())
        assert times.min() >= 0 and times.max() <= 50.
    n_rate = s['spikes'] / s['neurons'] / 0.05
    assert s['mean_rate_hz'] == pytest.approx(n_rate)
    assert (run_dir / 'figures' / 'raster.png').stat().st_size > 0
    with h5py.File(run_dir / 'vm.h5', 'r') as f:
        v = f['report/V1/V_m'][:]
        assert len(v) > 0 and np.all(f['report/V1/times'][:] <= 20.)


def test_sonata_reader_accepts_the_spike_file(run):
    libsonata = pytest.importorskip('libsonata')
    _, summary, run_dir, _ = run
    reader = libsonata.SpikeReader(str(run_dir / 'spikes.h5'))
    assert sorted(reader.get_population_names()) == ['V1', 'V2']
    assert reader['V1'].sorting == 'by_time'
    assert len(reader['V1'].get()) + len(reader['V2'].get()) == summary['spikes']


def test_same_seed_same_spikes_other_seed_other_spikes(run):
    _, _, run_dir, tmp = run
    a = read_spikes(run_dir)
    simulate(tmp, 'b', rng_seed=5, recording_dict={'areas_recorded': ['V1', 'V2']})
    simulate(tmp, 'c', rng_seed=6, recording_dict={'areas_recorded': ['V1', 'V2']})
    b, c = read_spikes(tmp / 'b'), read_spikes(tmp / 'c')
    for area in a:
        np.testing.assert_array_equal(a[area][0], b[area][0])
        np.testing.assert_array_equal(a[area][1], b[area][1])
    assert any(len(a[x][1]) != len(c[x][1]) or np.any(a[x][1] != c[x][1]) for x in a)


def test_a_finished_run_is_never_overwritten(run):
    M, _, run_dir, _ = run
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(FileExistsError, match='finished run'):
        M.simulation.simulate(out_dir=run_dir, progress=False)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_a_crashed_runs_leftovers_are_refused(tmp_path):
    """A directory left by a crashed run (here its vm.h5) is not reused: the new run's
    files would sit beside it. Nothing is written into it."""
    M = MultiAreaModel(NETWORK, simulation=True, sim_spec=SIM)
    (tmp_path / 'r').mkdir()
    (tmp_path / 'r' / 'vm.h5').write_bytes(b'old')
    with pytest.raises(FileExistsError, match=r'unfinished run \(vm\.h5\).*remove the directory'):
        M.simulation.simulate(out_dir=tmp_path / 'r', progress=False)
    assert [p.name for p in (tmp_path / 'r').iterdir()] == ['vm.h5']
    (tmp_path / 'empty').mkdir()
    from mam_pynn.simulation import check_run_dir
    check_run_dir(tmp_path / 'empty')            # an empty directory is fine
    check_run_dir(tmp_path / 'absent')


def test_summary_is_published_only_if_none_appeared_meanwhile(tmp_path):
    from mam_pynn.simulation import publish_summary
    publish_summary(tmp_path, {'spikes': 1})
    assert json.loads((tmp_path / 'summary.json').read_text()) == {'spikes': 1}
    with pytest.raises(FileExistsError, match='another run wrote'):
        publish_summary(tmp_path, {'spikes': 2})
    assert json.loads((tmp_path / 'summary.json').read_text()) == {'spikes': 1}


def test_files_written_before_the_summary(tmp_path):
    """``before_summary`` runs while the summary is not yet there (NEST's timers must not
    come after it: summary.json marks a complete run); ``figures=False`` draws no raster."""
    M = MultiAreaModel(NETWORK, simulation=True, sim_spec={
        **SIM, 'areas_simulated': ['V1'],
        'recording_dict': {'areas_recorded': ['V1'], 'spike_dict': {'start': 20.}}})
    seen = []

    def hook(run_dir):
        seen.append(sorted(p.name for p in run_dir.iterdir() if not p.name.startswith('.')))
        (run_dir / 'extra.json').write_text('{}')
    s = M.simulation.simulate(out_dir=tmp_path / 'r', progress=False, figures=False,
                              before_summary=hook)
    assert seen == [['config.yaml', 'spikes.h5']]
    assert not (tmp_path / 'r' / 'figures').exists()
    assert s['spike_start_ms'] == 20. and s['spikes'] > 0
    assert s['mean_rate_hz'] == pytest.approx(s['spikes'] / s['recorded_neurons'] / 0.03)


def test_watchdog_stops_a_run_above_the_rate_bound(tmp_path):
    _, s = simulate(tmp_path, 'w', max_mean_rate=1e-3)
    assert s['watchdog_stopped'] is True and s['status'] == 'stopped_by_watchdog'
    assert s['t_sim_ms'] == 25. and s['stopped_at_ms'] == 25.
    saved = json.loads((tmp_path / 'w' / 'summary.json').read_text())
    assert saved['watchdog_stopped'] is True
    assert read_spikes(tmp_path / 'w')['V1'][1].max() <= 25.


@pytest.mark.parametrize('kwargs, error, match', [
    ({'backend': 'nosuchsim'}, ValueError, 'unknown backend'),
    ({'sim_spec': {'areas_simulated': ['V1', 'XX']}}, ValueError, "unknown area 'XX'"),
    ({'sim_spec': {'recording_dict': {'areas_recorded': ['YY']}}}, ValueError, "unknown area 'YY'"),
    ({'sim_spec': {'t_simm': 10.}}, KeyError, 't_sim'),
])
def test_bad_simulation_input_is_a_clear_error(tmp_path, kwargs, error, match):
    M = MultiAreaModel(NETWORK)
    from mam_pynn.simulation import Simulation
    with pytest.raises(error, match=match):
        Simulation(M, kwargs.get('sim_spec', {}), backend=kwargs.get('backend', 'nest'))


@pytest.mark.parametrize('source, content, match', [
    (None, None, 'replace_cc_input_source is not set'),
    ('missing.json', None, 'does not exist'),
    ('bad.json', '{"V2": 3', 'not valid JSON'),
])
def test_bad_replacement_input_fails_before_anything_is_written(tmp_path, source, content, match):
    if content is not None:
        (tmp_path / source).write_text(content)
    network = {**NETWORK, 'connection_params': {
        'replace_non_simulated_areas': 'het_poisson_stat',
        'replace_cc_input_source': None if source is None else str(tmp_path / source)}}
    with pytest.raises(ValueError, match=match):
        MultiAreaModel(network, simulation=True, sim_spec={**SIM}).simulation.simulate(
            out_dir=tmp_path / 'run', progress=False)
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('name', ['downscaled.yaml', 'subset_het_poisson.yaml'])
def test_example_configs_are_valid(name):
    from pathlib import Path

    from mam_pynn.cli import load_config
    cfg = load_config(Path(__file__).parents[1] / 'configs' / name)
    M = MultiAreaModel(cfg['network_params'], simulation=True, sim_spec=cfg['sim_params'],
                       backend=cfg.get('backend', 'nest'))
    assert M.simulation.T == cfg['sim_params']['t_sim']
    assert M.simulation.areas_simulated == cfg['sim_params'].get('areas_simulated', M.area_list)


def test_generic_pynn_backend_runs_end_to_end(tmp_path):
    network = {**NETWORK, 'N_scaling': 0.001, 'K_scaling': 0.005}
    M = MultiAreaModel(network, simulation=True, backend='nest-generic', sim_spec={
        't_sim': 30., 'chunk_ms': 10., 'areas_simulated': ['V1'],
        'recording_dict': {'areas_recorded': ['V1']}})
    s = M.simulation.simulate(out_dir=tmp_path / 'g', progress=False)
    assert s['backend'] == 'nest-generic' and s['neurons'] == sum(
        int(M.N_vec[M.structure_vec.index(f'V1-{p}')]) for p in M.structure['V1'])
    ids, times = read_spikes(tmp_path / 'g')['V1']
    assert len(times) == s['spikes'] > 0 and np.all(np.diff(times) >= 0)
    assert ids.max() < s['neurons']


class _TwoRankBackend:
    """This rank of a 2-rank run: ``local`` spikes per chunk among 1000 neurons in all."""

    def __init__(self, local):
        self.local, self.chunks = local, 0

    def process_info(self):
        return 2, 1

    def prepare(self):
        pass

    def cleanup(self):
        pass

    def run(self, duration_ms):
        self.chunks += 1
        return self.local, 1000


class _OtherRank:
    """COMM_WORLD of 2 ranks, the other one counting ``other`` spikes per chunk."""

    def __init__(self, other):
        self.other = other

    def Get_size(self):
        return 2

    def allgather(self, n):
        return [n, self.other]


def test_watchdog_decides_on_the_spikes_of_all_ranks(monkeypatch):
    """Under MPI each rank counts only its own spikes: deciding on them alone, a quiet rank
    would simulate on while a busy one stopped, and the job would hang. Here this rank's
    100 spikes per 25 ms chunk are 4 spikes/s, all ranks' 300 are 12 > max_mean_rate."""
    import mam_pynn.simulation as S
    M = MultiAreaModel(NETWORK, simulation=True,
                       sim_spec={**SIM, 't_sim': 100., 'max_mean_rate': 10.})
    monkeypatch.setattr(S, 'mpi_comm_world', lambda: _OtherRank(200))
    quiet = _TwoRankBackend(100)
    t, watchdog, _ = M.simulation._run_chunks(quiet, lambda msg: None)
    assert quiet.chunks == 1 and t == 25. and watchdog['watchdog_stopped'] is True
    assert watchdog['chunk_rate_hz'] == pytest.approx(12.)
    monkeypatch.setattr(S, 'mpi_comm_world', lambda: _OtherRank(50))   # all ranks: 6 spikes/s
    t, watchdog, _ = M.simulation._run_chunks(_TwoRankBackend(100), lambda msg: None)
    assert t == 100. and watchdog['watchdog_stopped'] is False


def test_spike_count_over_ranks(monkeypatch):
    import mam_pynn.simulation as S
    assert S.spike_count_over_ranks(1)(7) == 7
    monkeypatch.setattr(S, 'mpi_comm_world', lambda: _OtherRank(5))
    assert S.spike_count_over_ranks(2)(7) == 12
    assert S.spike_count_over_ranks(2)(-1) == -1          # one rank cannot count: none decides
    monkeypatch.setattr(S, 'mpi_comm_world', lambda: _OtherRank(-1))
    assert S.spike_count_over_ranks(2)(7) == -1
    with pytest.raises(RuntimeError, match='COMM_WORLD holds 2'):
        S.spike_count_over_ranks(3)
