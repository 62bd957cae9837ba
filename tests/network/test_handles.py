"""Build, extend, run (issue 15): the built network's named handles on every backend.

Each backend runs in its own process (NEST, NEURON and Brian2 never share one
interpreter). The script builds V1 + V2, reads one projection's synapses, adds a current
pulse into V1 4E through the handles, records V_m of three of its neurons, runs and
reports rates per 10 ms bin per population.
"""
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

pytest.importorskip('pyNN')

_SCRIPT = r'''
import json, sys
import h5py, numpy as np
from mam_pynn.model import MultiAreaModel
backend, out = sys.argv[1], sys.argv[2]
M = MultiAreaModel({'N_scaling': 0.002, 'K_scaling': 0.01, 'fullscale_rates': 'fullscale_rates.json',
                    'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}},
                   simulation=True, backend=backend,
                   sim_spec={'t_sim': 300., 'chunk_ms': 100., 'areas_simulated': ['V1', 'V2'],
                             'recording_dict': {'areas_recorded': ['V1', 'V2']}})
net = M.simulation.build(progress=False)
pop = net.populations['V1', '4E']
# the largest projection: enough synapses for its weight moments
prj = max(net.projections.values(), key=lambda p: p.n)
c = prj.connections()
(sa, sp), (ta, tp) = prj.source, prj.target
net.add_stimulus({'kind': 'current', 'targets': ['V1-4E'], 'start': 150., 'duration': 100.,
                  'amplitude': 300.})
net.record(('V1', '4E'), 'v', n=3)
summary = net.run(out_dir=out)
sizes = {f"{a}-{p}": int(M.N_vec[M.structure_vec.index(f"{a}-{p}")]) for a in ('V1', 'V2') for p in M.structure[a]}
offsets, rates = {}, {}
with h5py.File(f"{out}/spikes.h5") as f:
    for a in ('V1', 'V2'):
        ids, t = f[f'spikes/{a}/node_ids'][:], f[f'spikes/{a}/timestamps'][:]
        first = 0
        for p in M.structure[a]:
            n = sizes[f"{a}-{p}"]
            mine = t[(ids >= first) & (ids < first + n)]
            rates[f"{a}-{p}"] = (np.histogram(mine, bins=np.arange(0, 301, 10))[0] / n / 0.01).tolist()
            first += n
with h5py.File(f"{out}/recordings.h5") as f:
    v = f['V1/4E/v/values'][:]
    v_ids = f['V1/4E/v/node_ids'][:].tolist()
print(json.dumps({'pop_size': int(pop.size), 'n': int(prj.n), 'n_read': int(len(c['weights_pa'])),
                  'source_max': int(c['sources'].max()), 'target_max': int(c['targets'].max()),
                  'pre_size': sizes[f"{sa}-{sp}"], 'post_size': sizes[f"{ta}-{tp}"],
                  'w_mean': float(c['weights_pa'].mean()), 'w_sd': float(c['weights_pa'].std()),
                  'W': M.W[ta][tp][sa][sp], 'W_sd': M.W_sd[ta][tp][sa][sp],
                  'd_min': float(c['delays_ms'].min()), 'rates': rates, 'v_shape': list(v.shape),
                  'v_ids': v_ids, 'extensions': summary['extensions'], 'spikes': summary['spikes']}))
'''


@pytest.fixture(scope='module', params=['nest', 'neuron', 'brian2'])
def extended_run(request, tmp_path_factory):
    pytest.importorskip(request.param)
    out = tmp_path_factory.mktemp(request.param) / 'run'
    res = subprocess.run([sys.executable, '-c', _SCRIPT, request.param, str(out)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return request.param, json.loads(res.stdout.strip().splitlines()[-1]), out


def test_the_stimulated_population_fires_more_and_the_rest_follows(extended_run):
    backend, r, _ = extended_run
    rates = {k: np.array(v) for k, v in r['rates'].items()}
    before, during = slice(5, 15), slice(15, 25)          # 50-150 ms, 150-250 ms
    stim = rates['V1-4E']
    assert stim[during].mean() > 3 * stim[before].mean() + 5, (backend, stim)
    # in its first 10 ms the pulse has raised V1 4E, while V2 (one cortico-cortical
    # delay and more away) has not yet moved as much, relative to its own baseline
    v2 = np.mean([rates[k] for k in rates if k.startswith('V2')], axis=0)
    gain = lambda x: x[15] / max(x[before].mean(), 1e-9)
    assert gain(stim) > gain(v2), (backend, stim[13:18], v2[13:18])


def test_a_projection_reports_the_models_weights_and_delays(extended_run):
    backend, r, _ = extended_run
    assert r['n_read'] == r['n']
    assert 0 <= r['source_max'] < r['pre_size'] and 0 <= r['target_max'] < r['post_size']
    se = r['W_sd'] / np.sqrt(r['n'])
    assert abs(r['w_mean'] - r['W']) < 5 * se + 1e-6 * abs(r['W']), r
    assert r['w_sd'] == pytest.approx(r['W_sd'], rel=0.15), r
    assert r['d_min'] >= 0.1 - 1e-9


def test_what_was_added_is_in_the_provenance_and_the_recordings(extended_run):
    backend, r, out = extended_run
    added = [e['added'] for e in r['extensions']]
    assert added == ['stimulus', 'recorder'], r['extensions']
    assert r['extensions'][0]['targets'] == ['V1-4E'] and r['extensions'][0]['amplitude'] == 300.
    cfg = yaml.safe_load((out / 'config.yaml').read_text())
    assert cfg['extensions'] == r['extensions']
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['extensions'] == r['extensions'] and summary['recordings'] == 'recordings.h5'
    assert sorted(r['v_ids']) == [0, 1, 2] and 3 in r['v_shape']


def test_a_projection_refuses_to_hand_over_too_many_synapses():
    from types import SimpleNamespace
    from mam_pynn.network.handles import Projection
    spec = SimpleNamespace(source=('V1', '23E'), target=('V1', '4E'), n=10, weight_mean_pa=1.,
                           weight_sd_pa=.1)
    with pytest.raises(ValueError, match='V1-23E -> V1-4E has 10 synapses.*max_connections = 5'):
        Projection(spec, None, None, None).connections(max_connections=5)


def test_an_unknown_population_names_what_there_is():
    from mam_pynn.network.handles import Populations
    with pytest.raises(KeyError, match="no population \\('V1', '9E'\\).*V1-4E"):
        Populations(None, {('V1', '4E'): object()})['V1', '9E']
