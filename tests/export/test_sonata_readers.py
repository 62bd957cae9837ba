"""Tools no one here wrote read and run our SONATA export: bmtk's PointNet (on NEST) and
NEST's own nest.SonataNetwork; the loader rebuilds the same connectivity in PyNN/NEST.

Each simulation runs in its own process (each reader sets up the NEST kernel itself).
Rates are compared per population after a 100 ms transient (the readers start every
neuron at V0_mean; ours draw the initial potentials).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from standin import SUBSET
from edge_populations import edge_populations
from mam_pynn.export.sonata import edge_files, load_sonata
from mam_pynn.hpc import nest_mpi_prefix
from export_rates import population_rates, rates_agree

HERE = Path(__file__).parent
NEST_NOTE = Path(__file__).parents[2] / '.notes' / 'nest_mpi_status.md'
T_MIN = 100.0


def _run(code: str, cwd, env=None, timeout=600):
    res = subprocess.run([sys.executable, '-c', code], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res


@pytest.fixture(scope='module')
def mam_rates(small_export, small_sim_params, tmp_path_factory):
    """Rates of `mam simulate` (the Model's own PyNN/NEST build) of the same network."""
    pytest.importorskip('mam_pynn.simulation')
    out, _ = small_export
    run = tmp_path_factory.mktemp('mam_run')
    code = f"""
import sys; sys.path.insert(0, {str(HERE)!r})
import standin
M = standin.model(0.01, 0.01, {{'connection_params': {{'replace_non_simulated_areas': 'hom_poisson_stat'}}}})
from mam_pynn.simulation import Simulation
Simulation(M, {small_sim_params!r}).simulate({str(run / 'r')!r}, progress=False)
"""
    _run(code, HERE)   # a failing `mam simulate` is a failure, not a skip
    return population_rates(run / 'r' / 'spikes.h5', load_sonata(out), T_MIN, small_sim_params['t_sim'])


def test_round_trip_connectivity_in_nest(small_export):
    """export -> load -> PyNN/NEST network: the same connections as in the file."""
    pytest.importorskip('nest')
    out, _ = small_export
    code = f"""
import json, numpy as np
from mam_pynn.export.sonata import load_sonata, connect_edges
from mam_pynn.network.builder import build_network, make_backend
c = load_sonata({str(out)!r}, chunk_edges=20000)
be = make_backend('nest'); be.setup(c.plan.dt, 1, 1)
built = build_network(c.plan, be, [], progress=None)
connect_edges(c, be, built.populations)
res = {{}}
for (t, s), ref in c.connectivity().items():
    conns = be.nest.GetConnections(built.populations[s].node_collection, built.populations[t].node_collection)
    w = np.atleast_1d(np.asarray(conns.get('weight'), float)); d = np.atleast_1d(np.asarray(conns.get('delay'), float))
    res['|'.join(t + s)] = [len(w), w.mean(), w.std(), d.mean(), ref['n'], ref['w_mean'], ref['w_sd'], ref['d_mean']]
print(json.dumps(res))
"""
    res = json.loads(_run(code, out).stdout.strip().splitlines()[-1])
    assert len(res) > 100
    for key, (n, wm, ws, dm, rn, rwm, rws, rdm) in res.items():
        assert n == rn, key
        assert wm == pytest.approx(rwm, rel=1e-5, abs=1e-6), key
        assert ws == pytest.approx(rws, rel=1e-3, abs=1e-4), key
        assert abs(dm - rdm) <= 0.05 + 1e-9, key   # NEST puts delays on the 0.1 ms grid


@pytest.mark.slow
def test_loader_simulation_rates_agree_with_mam_simulate(small_export, small_sim_params, mam_rates, tmp_path):
    pytest.importorskip('nest')
    out, _ = small_export
    _run(f"from mam_pynn.export.sonata import simulate_sonata; "
         f"simulate_sonata({str(out)!r}, out_dir={str(tmp_path / 'run')!r}, progress=False)", out)
    got = population_rates(tmp_path / 'run' / 'spikes.h5', load_sonata(out), T_MIN, small_sim_params['t_sim'])
    assert np.mean([r.mean() for r in got.values()]) > 0.5
    assert rates_agree(mam_rates, got) == []


@pytest.mark.slow
def test_bmtk_pointnet_runs_it(small_export, small_sim_params, mam_rates, tmp_path):
    pytest.importorskip('bmtk')
    out, _ = small_export
    code = f"""
from bmtk.simulator import pointnet
cfg = pointnet.Config.from_json({str(out / 'bmtk_config.json')!r})
cfg.build_env()
net = pointnet.PointNetwork.from_config(cfg)
sim = pointnet.PointSimulator.from_config(cfg, net)
sim.run()
"""
    _run(code, tmp_path)   # another working directory: paths must resolve against the config
    spikes = out / 'output' / 'spikes.h5'
    assert spikes.exists()
    got = population_rates(spikes, load_sonata(out), T_MIN, small_sim_params['t_sim'])
    assert np.mean([r.mean() for r in got.values()]) > 0.5
    assert rates_agree(mam_rates, got) == []


def test_bmtk_reads_edge_types(small_export):
    """bmtk's SONATA reader (the one PointNet uses) sees our edge and node types."""
    pytest.importorskip('bmtk')
    from bmtk.utils import sonata
    out, _ = small_export
    files = edge_files(out)
    net = sonata.File(data_files=[str(p) for p in files],
                      data_type_files=[str(p.with_name(p.name.replace('edges_to_', 'edge_types_to_')).with_suffix('.csv'))
                                       for p in files])
    with edge_populations(out) as groups:
        for name in ('V1_to_V1', 'V1_to_V2', 'V2_to_V1'):
            df = net.edges[name].get_group(0).to_dataframe()
            assert np.array_equal(np.sort(df['edge_type_id'].to_numpy()), np.sort(groups[name]['edge_type_id'][:]))
            assert np.isclose(df['syn_weight'].sum(), groups[name]['0/syn_weight'][:].sum(), rtol=1e-5)


ENV_SH = Path(__file__).parents[2] / 'hpc' / 'env.sh'
NEST_PREFIX = nest_mpi_prefix()
# NEST loads the system HDF5 with RTLD_GLOBAL; h5py (its own HDF5) must be imported first
H5PY_FIRST = 'import h5py\n'


def _nest_with_hdf5_runner():
    """(run(code, cwd), '') for a NEST built with HDF5, or (None, reason to skip).

    The NEST of hpc/env.sh once the build note says READY; before that, the build's prefix
    if it is installed there already."""
    status = ''
    if NEST_NOTE.exists():
        status = next((line for line in NEST_NOTE.read_text().splitlines()
                       if line.strip().upper().startswith('STATUS')), '')
    word = status.split(':', 1)[-1].split()[0].strip('*`').upper() if ':' in status else ''
    if word in ('READY', 'DONE', 'BUILT', 'OK') and ENV_SH.exists():
        def run(code, cwd):
            return subprocess.run(['bash', '-c', f'source {ENV_SH} && exec python -c "$0"', code],
                                  cwd=cwd, capture_output=True, text=True, timeout=900)
    else:
        site = next(NEST_PREFIX.glob('lib*/python3*/site-packages'), None)
        if site is None or not (site / 'nest').exists():
            return None, (f"no NEST with HDF5: {NEST_NOTE.name} says {status.strip() or 'nothing'!r} "
                          f"and {NEST_PREFIX} holds no NEST")

        def run(code, cwd):
            env = dict(os.environ, PYTHONPATH=str(site))
            return subprocess.run([sys.executable, '-c', code], cwd=cwd, env=env,
                                  capture_output=True, text=True, timeout=900)
    probe = run(H5PY_FIRST + "import nest; print('HDF5', nest.GetKernelStatus('build_info')['have_hdf5'])",
                Path.cwd())
    if 'HDF5 True' not in probe.stdout:
        return None, f"that NEST has no HDF5 or does not import: {(probe.stdout + probe.stderr)[-300:]}"
    return run, ''


@pytest.mark.slow
def test_nest_sonata_network_runs_it(small_export, small_sim_params, request, tmp_path):
    run, why = _nest_with_hdf5_runner()
    if run is None:
        pytest.skip(why)
    out, _ = small_export
    code = H5PY_FIRST + f"""
import nest, numpy as np
nest.set_verbosity('M_ERROR')
net = nest.SonataNetwork({str(out / 'circuit_config.json')!r}, {str(out / 'simulation_config.json')!r})
nodes = net.BuildNetwork()
print('connections', nest.num_connections)
recs = {{}}
for area in {SUBSET!r}:
    recs[area] = nest.Create('spike_recorder')
    nest.Connect(nodes[area], recs[area])
net.Simulate()
with h5py.File({str(tmp_path / 'spikes.h5')!r}, 'w') as f:
    for area, sr in recs.items():
        ev = sr.get('events'); first = nodes[area][0].global_id
        f.create_dataset(f'spikes/{{area}}/node_ids', data=np.asarray(ev['senders']) - first)
        f.create_dataset(f'spikes/{{area}}/timestamps', data=np.asarray(ev['times']))
"""
    res = run(code, out)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    import h5py
    with edge_populations(out) as groups, h5py.File(out / 'network' / 'external_edges.h5', 'r') as fe:
        n_file = sum(g['target_node_id'].shape[0] for g in [*groups.values(), *fe['edges'].values()])
    n_nest = int(res.stdout.split('connections')[1].split()[0])
    assert n_nest == n_file
    mam_rates = request.getfixturevalue('mam_rates')
    got = population_rates(tmp_path / 'spikes.h5', load_sonata(out), T_MIN, small_sim_params['t_sim'])
    assert np.mean([r.mean() for r in got.values()]) > 0.5
    assert rates_agree(mam_rates, got) == []


@pytest.mark.slow
def test_bmtk_runs_the_spike_train_form_like_the_generator_form(small_model, tmp_path):
    """external='spikes' (virtual nodes + pre-drawn trains, portable) drives the network
    like external='poisson_generator': same recurrent edges (same seed), same rates."""
    pytest.importorskip('bmtk')
    from mam_pynn.export.sonata import export_sonata
    sim = {'t_sim': 300., 'areas_simulated': ['V1'], 'rng_seed': 4}
    rates = {}
    for form in ('poisson_generator', 'spikes'):
        out = tmp_path / form
        export_sonata(small_model, sim, out, external=form)
        _run(f"""
from bmtk.simulator import pointnet
cfg = pointnet.Config.from_json({str(out / 'bmtk_config.json')!r}); cfg.build_env()
net = pointnet.PointNetwork.from_config(cfg)
pointnet.PointSimulator.from_config(cfg, net).run()
""", tmp_path)
        rates[form] = population_rates(out / 'output' / 'spikes.h5', load_sonata(tmp_path / 'poisson_generator'),
                                       T_MIN, sim['t_sim'])
    assert rates_agree(rates['poisson_generator'], rates['spikes']) == []
