"""Down-scaled MAM subsets under `mpirun -n 2`: NEST (merged spikes, determinism across
decompositions) and NEURON (really one parallel job, not two copies)."""
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.slow
VENV_MPIRUN = Path(sys.executable).parent / 'mpirun'

SUBSET = {
    'network_params': {'N_scaling': 0.005, 'K_scaling': 0.005,
                       'fullscale_rates': 'fullscale_rates.json',
                       'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}},
    'sim_params': {'areas_simulated': ['V1', 'V2'], 't_sim': 200., 'rng_seed': 7},
}


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp('cfg') / 'subset.yaml'
    path.write_text(yaml.safe_dump(SUBSET))
    return path


def simulate(run, config, out, env, ranks, threads, backend='nest'):
    cmd = [sys.executable, '-m', 'mam_pynn.hpc', '--config', config, '--out', out,
           '--backend', backend,
           '--set', f'sim_params.num_processes={ranks}',
           '--set', f'sim_params.local_num_threads={threads}']
    run(cmd, env, ranks=ranks if ranks > 1 else None)
    return json.loads((out / 'summary.json').read_text())


def read_spikes(path):
    with h5py.File(path) as f:
        return {a: (f[f'spikes/{a}/node_ids'][:], f[f'spikes/{a}/timestamps'][:])
                for a in f['spikes']}


@pytest.fixture(scope='module')
def nest_2x1(config, nest_mpi_env, mpi_run, tmp_path_factory):
    out = tmp_path_factory.mktemp('runs') / 'nest_2x1'
    return out, simulate(mpi_run, config, out, nest_mpi_env, ranks=2, threads=1)


def test_nest_two_ranks_merge_into_one_run(nest_2x1):
    out, s = nest_2x1
    assert s['num_processes'] == 2 and s['threads'] == 1
    assert len(s['peak_rss_mb_per_rank']) == 2
    assert s['peak_rss_mb'] == max(s['peak_rss_mb_per_rank'])
    assert 'time_simulate' in s['nest_timers']
    assert (out / 'config.yaml').is_file()
    spikes = read_spikes(out / 'spikes.h5')
    assert set(spikes) == {'V1', 'V2'}
    assert sum(len(t) for _, t in spikes.values()) == s['spikes'] > 0
    for ids, ts in spikes.values():
        assert np.all(np.diff(ts) >= 0)          # one file, sorted by time
    # each rank recorded only its own neurons: the parts are disjoint and both non-empty
    ranks = sorted((out / 'ranks').iterdir())
    per_rank = [json.loads((r / 'summary.json').read_text())['spikes'] for r in ranks]
    assert len(per_rank) == 2 and all(n > 0 for n in per_rank) and sum(per_rank) == s['spikes']
    assert not any((r / 'spikes.h5').exists() for r in ranks)   # parts removed after the merge
    assert (out / 'figures' / 'raster.png').is_file()             # one raster, of the merged run
    assert not any((r / 'figures').exists() for r in ranks)


def test_nest_same_spikes_for_2x1_and_1x2(nest_2x1, config, nest_mpi_env, mpi_run, tmp_path_factory):
    out_21, _ = nest_2x1
    out_12 = tmp_path_factory.mktemp('runs') / 'nest_1x2'
    s = simulate(mpi_run, config, out_12, nest_mpi_env, ranks=1, threads=2)
    assert s['num_processes'] == 1 and s['threads'] == 2
    a, b = read_spikes(out_21 / 'spikes.h5'), read_spikes(out_12 / 'spikes.h5')
    assert a.keys() == b.keys()
    for area in a:
        np.testing.assert_array_equal(a[area][1], b[area][1])
        np.testing.assert_array_equal(a[area][0], b[area][0])


def test_neuron_sees_two_ranks(mpi_env, mpi_run, tmp_path):
    # one file per rank: the ranks' lines on the shared stdout can interleave mid-line
    code = ("import sys; from neuron import h; h.nrnmpi_init(); pc = h.ParallelContext(); "
            "open(f'{sys.argv[1]}/rank{int(pc.id())}', 'w').write(f'{int(pc.id())} {int(pc.nhost())}'); "
            "pc.barrier(); pc.done()")
    mpi_run([sys.executable, '-c', code, tmp_path], mpi_env, ranks=2, timeout=300)
    assert sorted(p.read_text() for p in tmp_path.glob('rank*')) == ['0 2', '1 2']


def test_neuron_subset_on_two_ranks(mpi_env, mpi_run, tmp_path_factory):
    out = tmp_path_factory.mktemp('runs') / 'neuron_2x1'
    cfg = tmp_path_factory.mktemp('cfg_nrn') / 'tiny.yaml'
    tiny = {**SUBSET, 'sim_params': {**SUBSET['sim_params'], 'areas_simulated': ['V1'],
                                      't_sim': 100.}}
    cfg.write_text(yaml.safe_dump(tiny))
    s = simulate(mpi_run, cfg, out, mpi_env, ranks=2, threads=1, backend='neuron')
    assert s['backend'] == 'neuron' and s['num_processes'] == 2
    spikes = read_spikes(out / 'spikes.h5')
    ids, ts = spikes['V1']
    assert len(ts) == s['spikes'] > 0
    pairs = set(zip(ids.tolist(), ts.tolist()))
    assert len(pairs) == len(ts), "a spike appears twice: ranks wrote gathered, not local, spikes"


def test_neuron_spikes_do_not_depend_on_the_rank_layout(mpi_env, mpi_run, tmp_path_factory):
    """Every Poisson source draws from its own stream (keyed by its global id and the seed),
    so 1 and 2 ranks give the same spikes, as NEST's do; another seed gives others."""
    cfg = _tiny_v1(tmp_path_factory, 'nrn_layout')
    runs = {}
    for ranks in (1, 2):
        out = tmp_path_factory.mktemp('runs') / f'neuron_{ranks}x1'
        s = simulate(mpi_run, cfg, out, mpi_env, ranks=ranks, threads=1, backend='neuron')
        assert s['num_processes'] == ranks and s['spikes'] > 0
        ids, ts = read_spikes(out / 'spikes.h5')['V1']
        runs[ranks] = sorted(zip(ts.round(6).tolist(), ids.tolist()))
    assert runs[1] == runs[2]
    other = _tiny_v1(tmp_path_factory, 'nrn_layout_seed', rng_seed=8)
    out = tmp_path_factory.mktemp('runs') / 'neuron_seed8'
    simulate(mpi_run, other, out, mpi_env, ranks=1, threads=1, backend='neuron')
    ids, ts = read_spikes(out / 'spikes.h5')['V1']
    assert sorted(zip(ts.round(6).tolist(), ids.tolist())) != runs[1]


def _tiny_v1(tmp_path_factory, name, **sim):
    """The SUBSET config reduced to V1 (NEURON takes a few seconds), with ``sim`` on top."""
    cfg = tmp_path_factory.mktemp(name) / 'tiny.yaml'
    cfg.write_text(yaml.safe_dump({**SUBSET, 'sim_params': {
        **SUBSET['sim_params'], 'areas_simulated': ['V1'], 't_sim': 100., **sim}}))
    return cfg


@pytest.mark.parametrize('backend', ['neuron', 'nest'])
def test_watchdog_takes_one_decision_on_the_rate_of_all_ranks(backend, request, mpi_run,
                                                             tmp_path_factory):
    """Each rank counts its own spikes; summed over ranks, all ranks stop after the same
    chunk (a rank stopping alone would hang the job: the timeout catches that) and see the
    rate of the whole network, which is the merged file's."""
    env = request.getfixturevalue('mpi_env' if backend == 'neuron' else 'nest_mpi_env')
    cfg = _tiny_v1(tmp_path_factory, f'cfg_wd_{backend}', t_sim=200., chunk_ms=50.,
                   max_mean_rate=1e-3)
    out = tmp_path_factory.mktemp('runs') / f'watchdog_{backend}'
    cmd = [VENV_MPIRUN, '-n', '2', sys.executable, '-m', 'mam_pynn.hpc', '--config', cfg,
           '--out', out, '--backend', backend, '--set', 'sim_params.num_processes=2']
    proc = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 3, proc.stderr[-4000:]        # 3: stopped by the watchdog
    s = json.loads((out / 'summary.json').read_text())
    ranks = [json.loads((r / 'summary.json').read_text()) for r in sorted((out / 'ranks').iterdir())]
    assert len(ranks) == 2 and all(r['stopped_at_ms'] == 50. for r in ranks)
    assert s['watchdog_stopped'] and s['t_sim_ms'] == 50. and s['spikes'] > 0
    # spike recording starts at 0 and covers all neurons: the chunk's rate is the run's
    for r in ranks:
        assert r['chunk_rate_hz'] == pytest.approx(s['mean_rate_hz'], rel=1e-9)


def test_mam_simulate_on_two_ranks_merges_one_run(mpi_env, mpi_run, tmp_path_factory):
    """`mpirun -n 2 mam simulate` writes one run: merged spikes, each counted once, and
    each rank's V_m of only its own neurons."""
    cfg = _tiny_v1(tmp_path_factory, 'cfg_cli', recording_dict={
        'areas_recorded': ['V1'], 'record_vm': True, 'Nrec_vm_fraction': 0.1,
        'vm_dict': {'start': 0., 'stop': 20., 'interval': 1.0, 'label': 'vm'}})
    out = tmp_path_factory.mktemp('runs') / 'cli_2x1'
    mpi_run([sys.executable, '-m', 'mam_pynn.cli', 'simulate', '--config', cfg, '--out', out,
             '--backend', 'neuron', '--set', 'sim_params.num_processes=2'], mpi_env, ranks=2)
    s = json.loads((out / 'summary.json').read_text())
    assert s['num_processes'] == 2 and len(s['peak_rss_mb_per_rank']) == 2
    ids, ts = read_spikes(out / 'spikes.h5')['V1']
    assert len(ts) == s['spikes'] > 0 and np.all(np.diff(ts) >= 0)
    assert len(set(zip(ids.tolist(), ts.tolist()))) == len(ts), "a spike appears twice"
    layout = yaml.safe_load((out / 'config.yaml').read_text())['populations']['V1']
    expected = {p['first_id'] + i for p in layout.values() for i in range(int(0.1 * p['size']))}
    parts = []
    for r in sorted((out / 'ranks').iterdir()):
        with h5py.File(r / 'vm.h5') as f:
            parts.append(set(f['report/V1/node_ids'][:].tolist()) if 'report/V1' in f else set())
    assert len(parts) == 2 and all(parts), "every rank records V_m of some neurons"
    assert not parts[0] & parts[1], "a neuron's V_m is on two ranks: gathered, not local"
    assert parts[0] | parts[1] == expected
