"""Down-scaled MAM subsets under `mpirun -n 2`: NEST (merged spikes, determinism across
decompositions) and NEURON (really one parallel job, not two copies)."""
import json
import sys

import h5py
import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.slow

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


def test_neuron_sees_two_ranks(mpi_env, mpi_run):
    code = ("from neuron import h; h.nrnmpi_init(); pc = h.ParallelContext(); "
            "print('NHOST', int(pc.id()), int(pc.nhost()), flush=True); pc.barrier(); pc.done()")
    proc = mpi_run([sys.executable, '-c', code], mpi_env, ranks=2, timeout=300)
    lines = sorted(l for l in proc.stdout.splitlines() if l.startswith('NHOST'))
    assert lines == ['NHOST 0 2', 'NHOST 1 2']


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
