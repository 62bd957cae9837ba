"""The tutorial notebook (issue 15.3) runs top to bottom in a fresh kernel, and what it
shows is checked here against independent computations: the model's totals, the
projection's weights against W/W_sd, the stimulus's effect, the analysis against spike
counts read from spikes.h5 directly, the SONATA round trip. The committed notebook holds
no outputs."""
import json
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

nbformat = pytest.importorskip('nbformat')
nbclient = pytest.importorskip('nbclient')
pytest.importorskip('ipykernel')
pytest.importorskip('pyNN')
pytest.importorskip('nest')

NOTEBOOK = Path(__file__).resolve().parents[1] / 'notebooks' / 'multi_area_model.ipynb'


def test_the_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert code, "the notebook has no code cells"
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"code cells {dirty} hold outputs: strip them before committing"


@pytest.fixture(scope='module')
def executed(tmp_path_factory):
    """Run the notebook in a kernel of this interpreter; returns (notebook, results, out)."""
    out = tmp_path_factory.mktemp('notebook')
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # a kernel spec of this interpreter, so that no other installed 'python3' kernel is used
    spec = out / 'jupyter' / 'kernels' / 'mam_pynn_test'
    spec.mkdir(parents=True)
    (spec / 'kernel.json').write_text(json.dumps({
        'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        'display_name': 'mam_pynn test', 'language': 'python'}))
    env = {**os.environ, 'MAM_NOTEBOOK_OUT': str(out / 'outputs'), 'MPLBACKEND': 'Agg'}
    saved = os.environ.get('JUPYTER_PATH')
    os.environ['JUPYTER_PATH'] = str(out / 'jupyter')
    try:
        client = nbclient.NotebookClient(nb, kernel_name='mam_pynn_test', timeout=600,
                                         allow_errors=False,
                                         resources={'metadata': {'path': str(out)}})
        client.execute(env=env)
    finally:
        if saved is None:
            os.environ.pop('JUPYTER_PATH')
        else:
            os.environ['JUPYTER_PATH'] = saved
    results = json.loads((out / 'outputs' / 'results.json').read_text())
    return nb, results, out / 'outputs'


def test_every_cell_ran_without_an_error(executed):
    nb, _, _ = executed
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == 'error']
    assert not errors, errors
    shown = ''.join(o.get('text', '') for c in code for o in c.outputs)
    assert 'notebook done in' in shown


def test_connectivity_is_the_models(executed):
    from mam_pynn import MultiAreaModel
    _, r, _ = executed
    M = MultiAreaModel({})
    neurons = sum(M.N[a][p] for a in M.area_list for p in M.structure[a])
    synapses = sum(M.synapses[t][tp][s][sp] for t in M.area_list for tp in M.structure[t]
                   for s in M.area_list for sp in M.structure[s])
    c = r['connectivity']
    assert (c['areas'], c['populations']) == (32, 254)
    assert c['neurons'] == pytest.approx(neurons, rel=1e-12)
    assert c['synapses'] == pytest.approx(synapses, rel=1e-9)
    assert abs(c['neurons'] - 4.13e6) < 0.01e6 and abs(c['synapses'] - 24.1e9) < 0.1e9   # the papers


def test_the_theory_reaches_a_stable_fixed_point(executed):
    _, r, _ = executed
    t = r['theory']
    assert t['converged'] and 0 < t['lambda_max'] < 1
    assert 0 < t['mean_rate'] < 50


def test_the_projection_read_back_has_the_models_weights(executed):
    _, r, _ = executed
    p = r['projection']
    assert p['n_read'] == p['n'] > 100
    se = p['W_sd'] / np.sqrt(p['n'])
    assert abs(p['w_mean'] - p['W']) < 5 * se, p
    assert p['w_sd'] == pytest.approx(p['W_sd'], rel=0.25)


def test_the_stimulus_raises_the_stimulated_population(executed):
    _, r, _ = executed
    plain, stim = r['stimulus']['plain'], r['stimulus']['stimulated']
    assert stim['V1-4E pulse'] > 2 * stim['V1-4E before'] + 5
    assert stim['V1-4E pulse'] > plain['V1-4E pulse'] + 10


def test_the_analysis_agrees_with_spike_counts_read_directly(executed):
    _, r, out = executed
    run = out / 'plain'
    layout = yaml.safe_load((run / 'config.yaml').read_text())['populations']['V1']['4E']
    with h5py.File(run / 'spikes.h5') as f:
        ids, t = f['spikes/V1/node_ids'][:], f['spikes/V1/timestamps'][:]
    t_sim = yaml.safe_load((run / 'config.yaml').read_text())['sim_params']['t_sim']
    mine = ((ids >= layout['first_id']) & (ids < layout['first_id'] + layout['size'])
            & (t >= 100.) & (t < t_sim))          # the analysis window is [t_min, t_max)
    rate = mine.sum() / layout['size'] / ((t_sim - 100.) / 1000.)
    assert r['analysis']['V1-4E']['rate'] == pytest.approx(rate, rel=1e-9)
    # upstream's names over the same run: its rate (mean over neurons) is the same number,
    # its LvR the upstream convention of the population mean
    assert r['upstream_api']['V1_4E_rate'] == pytest.approx(rate, rel=1e-9)
    assert r['upstream_api']['V1_23E_LvR'] == pytest.approx(r['analysis']['V1-23E']['lvr_upstream'],
                                                             rel=1e-9)
    assert {'raster.png', 'rate_map.png', 'lvr_map.png'} <= set(r['analysis']['figures'])


def test_the_sonata_round_trip_keeps_the_network(executed):
    _, r, _ = executed
    e = r['export']
    assert e['edges'] == e['edges_read'] == r['plain']['synapses']
    assert e['neurons'] == r['plain']['neurons']
    assert e['rate_sonata'] == pytest.approx(e['rate_model'], rel=0.3)
