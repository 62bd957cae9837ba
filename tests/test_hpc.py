"""Memory planner, job scripts and the MPI merge helpers (no MPI needed here)."""
import json
import math
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from mam_pynn import hpc

DOWN = {'N_scaling': 0.005, 'K_scaling': 0.005, 'fullscale_rates': 'fullscale_rates.json',
        'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}}


@pytest.fixture(scope='module')
def counts_v1():
    return hpc.network_counts(DOWN, {'areas_simulated': ['V1'], 't_sim': 100.})


# ----------------------------------------------------------------- counts and memory

def test_counts_match_the_model(counts_v1):
    from mam_pynn.model import MultiAreaModel
    M = MultiAreaModel(DOWN)
    n_v1 = sum(int(n) for name, n in zip(M.structure_vec, M.N_vec) if name.startswith('V1-'))
    assert counts_v1['neurons'] == n_v1
    assert counts_v1['areas'] == ['V1']
    # every V1 neuron gets its external drive plus replaced cortico-cortical inputs
    assert counts_v1['device_connections'] > counts_v1['neurons']
    assert counts_v1['recorder_connections'] == counts_v1['neurons']
    assert counts_v1['synapses'] > 0
    # replaced inputs come with inter-area delays: longer than any local delay
    assert counts_v1['max_delay_ms'] > 5.0
    assert counts_v1['ring_buffer_slots'] == math.ceil(
        (counts_v1['max_delay_ms'] + 0.1) / counts_v1['dt_ms'])


def test_full_model_counts_match_reference(reference_dir):
    ref = np.load(reference_dir / 'default.npz')
    c = hpc.network_counts({}, {})
    # NEST builds whole neurons and synapses: each population's count truncated
    assert c['neurons'] == np.floor(ref['N_vec']).sum()
    assert c['synapses'] == pytest.approx(np.floor(ref['syn_matrix'][:, :-1]).sum(), rel=1e-9)
    assert len(c['areas']) == 32


def test_memory_parts_add_up_and_split_over_ranks(counts_v1):
    one = hpc.rank_memory_mb(counts_v1, 1, 1)
    two = hpc.rank_memory_mb(counts_v1, 2, 1)
    assert one['total'] == pytest.approx(sum(v for k, v in one.items() if k != 'total'))
    assert two['neurons'] == pytest.approx(one['neurons'] / 2)
    assert two['synapses'] == pytest.approx(one['synapses'] / 2)
    assert two['base'] == one['base']
    assert hpc.rank_memory_mb(counts_v1, 1, 4)['threads'] > one['threads']
    with pytest.raises(ValueError, match='processes'):
        hpc.rank_memory_mb(counts_v1, 0, 1)


def test_expected_max_delay():
    proj = [SimpleNamespace(n=1, delay_mean_ms=2.0, delay_sd_ms=1.0),
            SimpleNamespace(n=10**6, delay_mean_ms=1.5, delay_sd_ms=0.75)]
    d = hpc.expected_max_delay_ms(proj, 0.1)
    assert d == pytest.approx(1.5 + 0.75 * math.sqrt(2 * math.log(10**6)))
    assert hpc.expected_max_delay_ms(proj, 0.1, fixed_delays=[30.]) == 30.


def test_min_nodes_is_the_smallest_that_fits():
    # the full model: far more than one node
    c = hpc.network_counts({}, {})
    n = hpc.min_nodes(c, 512, ranks_per_node=2, threads=8)
    budget = 512 * 1024 * hpc.USABLE_FRACTION / 2
    assert n > 1
    assert hpc.rank_memory_mb(c, 2 * n, 8)['total'] <= budget
    assert hpc.rank_memory_mb(c, 2 * (n - 1), 8)['total'] > budget
    assert hpc.min_nodes(c, 1024, 2, 8) <= n
    # a node smaller than a rank's fixed cost never fits
    assert hpc.min_nodes(c, 0.1, 1, 1) is None
    with pytest.raises(ValueError, match='memory_per_node_gb'):
        hpc.min_nodes(c, 0, 1, 1)


def test_plan_and_text():
    r = hpc.plan(DOWN, {'areas_simulated': ['V1'], 'num_processes': 2}, memory_per_node_gb=24)
    assert r['num_processes'] == 2
    assert r['peak_total_gb'] == pytest.approx(2 * r['peak_per_rank_mb'] / 1024)
    assert r['min_nodes'] == 1 and r['fits'] is True
    text = hpc.plan_text(r)
    assert text.splitlines()[-1].startswith('plan: peak')
    assert 'needs >= 1 node' in text
    json.dumps(r)   # JSON-able


# ----------------------------------------------------------------- job scripts

def test_jobscript_slurm(tmp_path):
    cfg = tmp_path / 'full.yaml'
    cfg.write_text('sim_params: {t_sim: 1000.}\n')
    text = hpc.jobscript(cfg, nodes=4, ranks_per_node=2, threads=16, account='jinb33',
                         modules=['GCC', 'ParaStationMPI', 'NEST'], time='02:00:00',
                         out_dir='/scratch/run1')
    assert text.startswith('#!/bin/bash\n')
    for line in ('#SBATCH --nodes=4', '#SBATCH --ntasks-per-node=2', '#SBATCH --cpus-per-task=16',
                 '#SBATCH --account=jinb33', '#SBATCH --time=02:00:00', 'module load ParaStationMPI',
                 'export OMP_NUM_THREADS=16', 'export OMP_PROC_BIND=close'):
        assert line in text, line
    assert f'simulate --config {cfg.resolve()} --out /scratch/run1' in text
    assert 'sim_params.num_processes=8' in text and 'sim_params.local_num_threads=16' in text
    assert 'srun --cpu-bind=cores' in text
    assert '#SBATCH --partition' not in text      # not given: not written


def test_jobscript_mpirun_and_defaults(tmp_path):
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('{}\n')
    text = hpc.jobscript(cfg, 1, 2, 3, launcher='mpirun', setup='source hpc/env.sh')
    assert 'mpirun -n 2 ' in text and 'pe=3' in text
    assert 'source hpc/env.sh' in text
    assert '--out runs/c_1n2r3t' in text
    assert 'module load' not in text


def test_jobscript_errors(tmp_path):
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('{}\n')
    with pytest.raises(ValueError, match='scheduler'):
        hpc.jobscript(cfg, 1, 1, 1, scheduler='pbs')
    with pytest.raises(ValueError, match='nodes'):
        hpc.jobscript(cfg, 0, 1, 1)
    with pytest.raises(KeyError, match='acount'):
        hpc.jobscript(cfg, 1, 1, 1, acount='x')
    with pytest.raises(ValueError, match='config'):
        hpc.jobscript(None, 1, 1, 1)
    with pytest.raises(FileNotFoundError, match='missing.yaml'):
        hpc.jobscript(tmp_path / 'missing.yaml', 1, 1, 1)


# ----------------------------------------------------------------- MPI helpers

def test_mpi_rank_size(monkeypatch):
    for var in ('PMI_RANK', 'PMI_SIZE', 'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
                'SLURM_PROCID', 'SLURM_NTASKS'):
        monkeypatch.delenv(var, raising=False)
    assert hpc.mpi_rank_size() == (0, 1)
    monkeypatch.setenv('PMI_RANK', '1')
    monkeypatch.setenv('PMI_SIZE', '2')
    assert hpc.mpi_rank_size() == (1, 2)


def _write_part(path, spikes):
    with h5py.File(path, 'w') as f:
        for area, (ids, ts) in spikes.items():
            order = np.lexsort((ids, ts))
            f.create_dataset(f'spikes/{area}/node_ids', data=np.asarray(ids, 'u8')[order])
            f.create_dataset(f'spikes/{area}/timestamps', data=np.asarray(ts, 'f8')[order])


def test_merge_spike_files(tmp_path):
    rng = np.random.default_rng(3)
    parts, every = [], {'V1': [], 'V2': []}
    for r in range(3):
        spikes = {}
        for area in (['V1', 'V2'] if r else ['V1']):
            ids = rng.integers(0, 100, 500)
            ts = np.round(rng.uniform(0, 250, 500), 1)
            spikes[area] = (ids, ts)
            every[area].append((ids, ts))
        _write_part(tmp_path / f'p{r}.h5', spikes)
        parts.append(tmp_path / f'p{r}.h5')
    n = hpc.merge_spike_files(parts, tmp_path / 'merged.h5', window_ms=37.)
    assert n == 500 * 5
    with h5py.File(tmp_path / 'merged.h5') as f:
        assert list(f['spikes']) == ['V1', 'V2']
        for area, chunks in every.items():
            ids = f[f'spikes/{area}/node_ids'][:]
            ts = f[f'spikes/{area}/timestamps'][:]
            want_ids = np.concatenate([c[0] for c in chunks])
            want_ts = np.concatenate([c[1] for c in chunks])
            order = np.lexsort((want_ids, want_ts))
            np.testing.assert_array_equal(ts, want_ts[order])
            np.testing.assert_array_equal(ids, want_ids[order])
            assert f[f'spikes/{area}/timestamps'].attrs['units'] == 'ms'


def test_merge_summaries():
    a = {'backend': 'nest', 'spikes': 10, 'build_s': 2.0, 'sim_s': 5.0, 't_sim_ms': 1000.,
         'peak_rss_mb': 300., 'recorded_neurons': 100, 'mean_rate_hz': 0.1,
         'spike_start_ms': 0., 'import_s': 1.0, 'build_cpu_s': 2.0, 'sim_cpu_s': 4.0,
         'peak_rss_build_mb': 250., 'peak_rss_sim_mb': 300.}
    b = {**a, 'spikes': 30, 'build_s': 3.0, 'sim_s': 4.0, 'peak_rss_mb': 350., 'import_s': 1.5,
         'build_cpu_s': 2.5, 'sim_cpu_s': 3.0, 'peak_rss_build_mb': 280., 'peak_rss_sim_mb': 350.}
    s = hpc.merge_summaries([a, b])
    assert s['spikes'] == 40 and s['build_s'] == 3.0 and s['sim_s'] == 5.0
    assert s['rtf'] == pytest.approx(5.0)
    assert s['peak_rss_mb_per_rank'] == [300., 350.] and s['peak_rss_mb'] == 350.
    # values rank 0 measured of itself: the maximum over ranks, not rank 0's
    assert (s['import_s'], s['build_cpu_s'], s['sim_cpu_s']) == (1.5, 2.5, 4.0)
    assert (s['peak_rss_build_mb'], s['peak_rss_sim_mb']) == (280., 350.)
    assert s['num_processes'] == 2
    assert s['mean_rate_hz'] == pytest.approx(0.4)
    with pytest.raises(ValueError):
        hpc.merge_summaries([])


def test_merged_rate_counts_from_the_recording_start():
    """Spikes recorded from 200 ms of a 1000 ms run: the rate of a merged run divides by
    0.8 s, as a one-rank run does (it divided by the whole 1 s)."""
    from mam_pynn.simulation import mean_rate_hz, real_time_factor
    one = {'spikes': 40, 'recorded_neurons': 100, 't_sim_ms': 1000., 'spike_start_ms': 200.,
           'sim_s': 5.0, 'peak_rss_mb': 1.}
    one['mean_rate_hz'] = mean_rate_hz(40, 100, 1000., 200.)
    one['rtf'] = real_time_factor(5.0, 1000.)
    assert one['mean_rate_hz'] == pytest.approx(40 / 100 / 0.8)
    parts = [{**one, 'spikes': 10, 'mean_rate_hz': 0.}, {**one, 'spikes': 30, 'mean_rate_hz': 0.}]
    merged = hpc.merge_summaries(parts)
    assert merged['mean_rate_hz'] == pytest.approx(one['mean_rate_hz'])
    assert merged['rtf'] == pytest.approx(one['rtf'])
    assert mean_rate_hz(5, 100, 100., 200.) == 0.0     # nothing recorded yet: no rate


CONFIG = 'label: x\nsim_params: {t_sim: 100.}\npopulations:\n  V1:\n    23E: {first_id: 0, size: 10}\n'


def _write_parts(run_dir):
    base = {'backend': 'nest', 'label': 'x', 'neurons': 10, 'synapses': 5, 'build_s': 1.0,
            'sim_s': 2.0, 't_sim_ms': 100., 'rtf': 20., 'recorded_neurons': 10,
            'mean_rate_hz': 0.0, 'spike_start_ms': 0., 'threads': 1, 'num_processes': 1,
            'spikes': 0}
    for r, n in enumerate((3, 4)):
        d = hpc.rank_dir(run_dir, r)
        d.mkdir(parents=True)
        (d / 'config.yaml').write_text(CONFIG)
        _write_part(d / 'spikes.h5', {'V1': (np.arange(n) * 2 + r, np.linspace(1, 90, n))})
        (d / 'nest_kernel.json').write_text(json.dumps({'time_update': 1.0 + r, 'rank': r}))
        (d / 'summary.json').write_text(json.dumps({**base, 'spikes': n, 'peak_rss_mb': 100. + r}))


def test_merge_run(tmp_path):
    pytest.importorskip('matplotlib')
    _write_parts(tmp_path)
    s = hpc.merge_run(tmp_path, 2, timeout_s=5)
    assert s['spikes'] == 7 and s['peak_rss_mb_per_rank'] == [100., 101.]
    assert s['mean_rate_hz'] == pytest.approx(7 / 10 / 0.1)
    assert s['nest_timers'] == {'time_update': 2.0}
    assert json.loads((tmp_path / 'summary.json').read_text())['spikes'] == 7
    assert (tmp_path / 'config.yaml').read_text() == CONFIG
    with h5py.File(tmp_path / 'spikes.h5') as f:
        assert len(f['spikes/V1/timestamps']) == 7
    assert not (hpc.rank_dir(tmp_path, 0) / 'spikes.h5').exists()
    assert (tmp_path / 'figures' / 'raster.png').stat().st_size > 0   # one raster, merged
    assert not list(tmp_path.glob('.summary.*'))


def test_merge_run_keeps_the_parts_when_the_summary_cannot_be_written(tmp_path):
    """The parts' spike files go only after the merged run is published: here another run
    wrote summary.json meanwhile, the merge fails and the parts are still there."""
    _write_parts(tmp_path)
    (tmp_path / 'summary.json').write_text('{"other": 1, "t_sim_ms": 100.0}\n')
    with pytest.raises(FileExistsError, match='another run wrote'):
        hpc.merge_run(tmp_path, 2, timeout_s=5)
    assert json.loads((tmp_path / 'summary.json').read_text())['other'] == 1
    assert all((hpc.rank_dir(tmp_path, r) / 'spikes.h5').exists() for r in range(2))


class _StubSimulation:
    backend = 'nest'

    def __init__(self):
        self.calls = []

    def simulate(self, out_dir, **kw):
        self.calls.append((Path(out_dir), kw))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        kw['before_summary'](out_dir)
        assert not (Path(out_dir) / 'summary.json').exists()
        return {'watchdog_stopped': False}


def test_run_distributed_writes_nest_timers_before_the_summary(tmp_path, monkeypatch):
    monkeypatch.setattr(hpc.distributed, 'nest_kernel_info', lambda: {'time_update': 1.5})
    monkeypatch.setattr(hpc.distributed, 'mpi_rank_size', lambda: (0, 1))
    sim = _StubSimulation()
    hpc.run_distributed(sim, tmp_path / 'one')
    assert json.loads((tmp_path / 'one' / 'nest_kernel.json').read_text()) == {'time_update': 1.5}
    assert sim.calls[0][0] == tmp_path / 'one'
    # rank 1 of 2: its part, without a raster of its own (the merged run draws one)
    monkeypatch.setattr(hpc.distributed, 'mpi_rank_size', lambda: (1, 2))
    monkeypatch.setattr(hpc.distributed, 'check_nest_mpi', lambda size: None)
    hpc.run_distributed(sim, tmp_path / 'two')
    out, kw = sim.calls[1]
    assert out == hpc.rank_dir(tmp_path / 'two', 1) and kw['figures'] is False
    assert (out / 'nest_kernel.json').is_file()


def _reraise(err, *args):
    raise err


def test_run_distributed_refuses_leftovers_beside_the_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(hpc.distributed, 'mpi_rank_size', lambda: (1, 2))
    # in a real MPI run the error ends every rank (MPI_Abort); here it would end pytest
    monkeypatch.setattr(hpc.distributed, 'stop_all_ranks', _reraise)
    hpc.rank_dir(tmp_path, 0).mkdir(parents=True)     # another rank started: allowed
    (tmp_path / 'spikes.h5').write_text('')           # an earlier run's merge: not allowed
    with pytest.raises(FileExistsError, match=r'spikes\.h5.*remove the directory'):
        hpc.run_distributed(_StubSimulation(), tmp_path)


def test_merge_run_waits_for_missing_ranks(tmp_path):
    hpc.rank_dir(tmp_path, 0).mkdir(parents=True)
    with pytest.raises(TimeoutError, match='1 rank'):
        hpc.merge_run(tmp_path, 1, timeout_s=0.3)


@pytest.mark.slow
def test_plan_predicts_measured_peak_memory(tmp_path):
    """Real runs (NEST, 1 rank): the planner within 20 % of the measured peak RSS."""
    import subprocess
    import sys
    script = Path(hpc.__file__).resolve().parents[2] / 'hpc' / 'calibrate_memory.py'
    if not script.is_file():
        pytest.skip(f"{script} not found (needs the repository checkout)")
    out = tmp_path / 'check.json'
    proc = subprocess.run([sys.executable, str(script), '--sizes', 'tiny_V1,V1V2,V1_neurons_norec',
                           '--out', str(out)], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in json.loads(out.read_text())['rows']:
        ratio = row['predicted_mb']['total'] / row['measured_peak_mb']
        assert abs(ratio - 1) < 0.2, (row['name'], ratio)


def test_plan_names_the_virtual_processes_nest_needs():
    """NEST 3.10 holds at most 134,217,726 connections per virtual process and synapse
    model (measured: 315 M synapses on 2 threads failed in Connect)."""
    from mam_pynn.hpc import plan, plan_text
    from mam_pynn.network.nest_fast import NEST_MAX_CONNECTIONS_PER_VP, min_virtual_processes
    assert min_virtual_processes(NEST_MAX_CONNECTIONS_PER_VP // 2) == 1
    assert min_virtual_processes(315_000_000) == 3
    net = {'N_scaling': 0.114, 'K_scaling': 0.114, 'fullscale_rates': 'fullscale_rates.json'}
    two = plan(net, {'local_num_threads': 2})
    assert two['min_virtual_processes'] == min_virtual_processes(two['synapses']) == 3
    assert 'WARNING' in plan_text(two) and 'use >= 3' in plan_text(two)
    assert 'WARNING' not in plan_text(plan(net, {'local_num_threads': 4}))
