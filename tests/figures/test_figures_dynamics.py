"""Schmidt et al. 2018 (PLoS Comput Biol) figures: what they plot is the run's `mam analyze`
output; the workflow simulates, analyses and draws (local) or writes job scripts (cluster)."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import mam_figures
from mam_pynn.figures import make_figure
from mam_pynn.figures.dynamics import FIGURES, population_table


@pytest.fixture(scope='module')
def analysed(tmp_path_factory):
    """A synthetic 32-area run (known statistics, no simulator), analysed."""
    from mam_pynn.analysis import analyze_run
    from mam_pynn.analysis.synthetic import default_layout, make_run_dir
    run = make_run_dir(tmp_path_factory.mktemp('syn') / 'run', default_layout(300), t_sim=1500.)
    stats = analyze_run(run, t_min=200., figures=False, verbose=False)
    out = tmp_path_factory.mktemp('fig')
    for name in FIGURES:
        make_figure('dynamics', name, out, {'ground_state': run, 'metastable': run})
    return run, stats, out


def data(out, name):
    return json.loads((Path(out) / f'{name}.json').read_text())


def test_plotted_statistics_are_the_analysis_output(analysed):
    run, stats, out = analysed
    saved = json.loads((run / 'analysis' / 'statistics.json').read_text())
    fig3, fig5 = data(out, 'fig3_ground_state'), data(out, 'fig5_metastable')
    for key, plotted in (('rate', fig3['rates']), ('lvr', fig5['lvr']), ('cv_isi', fig5['cv_isi'])):
        table, pops = population_table(saved, key, fig3['areas'])
        for i, area in enumerate(fig3['areas']):
            for j, pop in enumerate(pops):
                value = saved['populations'][area].get(pop, {}).get(key)
                got = plotted[i][j]
                assert (value is None and got is None) or got == pytest.approx(value, rel=1e-12)
    assert fig3['areas'] == list(saved['populations'])


def test_rate_histograms_count_every_active_neuron(analysed):
    run, _, out = analysed
    fig5 = data(out, 'fig5_metastable')
    with np.load(run / 'analysis' / 'series.npz') as f:
        rates, offsets = f['neuron_rate'], f['pop_offsets']
        labels = [str(x).split('/')[-1] for x in f['pop_labels']]
    for pop, counts in fig5['rate_histograms'].items():
        r = np.concatenate([rates[offsets[k]:offsets[k + 1]] for k, p in enumerate(labels) if p == pop])
        assert sum(counts) == np.count_nonzero(r > 0), pop


def test_fc_figure_plots_the_analysis_fc_and_its_similarity(analysed):
    run, stats, out = analysed
    fig8 = data(out, 'fig8_functional_connectivity')
    with np.load(run / 'analysis' / 'series.npz') as f:
        key = 'fc_sim_synaptic_input' if fig8['signal'] == 'synaptic_input' else 'fc_sim'
        np.testing.assert_allclose(np.array(fig8['fc_sim'], float), f[key])
        np.testing.assert_allclose(np.array(fig8['fc_exp'], float), f['fc_exp'])
    fc = stats['functional_connectivity']
    expected = fc['synaptic_input']['similarity_exp'] if fig8['signal'] == 'synaptic_input' \
        else fc['similarity_exp']
    assert fig8['similarity_exp'] == pytest.approx(expected)
    assert 'DOWN-SCALED' in fig8['scale'] or 'N_scaling 1,' in fig8['scale']


def test_an_unanalysed_run_is_refused_with_the_command_to_run(tmp_path):
    from mam_pynn.analysis.synthetic import default_layout, make_run_dir
    run = make_run_dir(tmp_path / 'raw', default_layout(50, ['V1', 'V2']), t_sim=300.)
    with pytest.raises(FileNotFoundError, match=f"run `mam analyze {run}` first"):
        make_figure('dynamics', 'fig3_ground_state', tmp_path / 'f', {'ground_state': run})


TINY = {'backend': 'nest',
        'network_params': {'N_scaling': 0.002, 'K_scaling': 0.01, 'fullscale_rates': 'fullscale_rates.json',
                           'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}},
        'sim_params': {'t_sim': 400., 'areas_simulated': ['V1', 'V2', 'V4'], 'local_num_threads': 1}}


def _figures_config(tmp_path, mode):
    configs = {}
    for state, chi in (('ground_state', 1.), ('metastable', 1.9)):
        cfg = yaml.safe_load(yaml.safe_dump(TINY))
        cfg['network_params']['connection_params'].update(cc_weights_factor=chi,
                                                          cc_weights_I_factor=1. if chi == 1. else 2.)
        configs[state] = tmp_path / f'{state}.yaml'
        configs[state].write_text(yaml.safe_dump(cfg))
    path = tmp_path / 'figures.yaml'
    path.write_text(yaml.safe_dump({'runs': {k: str(v) for k, v in configs.items()}, 'runs_dir': '',
                                    't_min': 100., 'mode': mode, 'data_dir': '',
                                    'jobscript': {'nodes': 2, 'ranks_per_node': 2, 'threads': 4}}))
    return path


def test_the_dynamics_workflow_simulates_analyses_and_draws(tmp_path):
    pytest.importorskip('nest')
    out = tmp_path / 'out'
    mam_figures('dynamics', out, '--config', str(_figures_config(tmp_path, 'local')))
    for name in FIGURES:
        assert (out / 'dynamics' / f'{name}.png').is_file(), name
    stats = json.loads((out / 'runs' / 'metastable' / 'analysis' / 'statistics.json').read_text())
    fig5 = data(out / 'dynamics', 'fig5_metastable')
    assert fig5['areas'] == ['V1', 'V2', 'V4'] == list(stats['populations'])
    assert 'N_scaling 0.002' in fig5['scale'] and 'χ = 1.9' in fig5['scale']
    # a second call redraws nothing
    before = {p: p.stat().st_mtime_ns for p in (out / 'dynamics').iterdir()}
    res = mam_figures('dynamics', out, '--config', str(_figures_config(tmp_path, 'local')))
    assert 'Nothing to be done' in res.stdout + res.stderr
    assert before == {p: p.stat().st_mtime_ns for p in (out / 'dynamics').iterdir()}


def test_cluster_mode_writes_job_scripts_instead_of_simulating(tmp_path):
    out = tmp_path / 'out'
    res = mam_figures('dynamics', out, '--config', str(_figures_config(tmp_path, 'cluster')))
    for state in ('ground_state', 'metastable'):
        script = (out / 'runs' / f'{state}.job.sh').read_text()
        assert '#SBATCH --nodes=2' in script and 'simulate --config' in script, script
        assert not (out / 'runs' / state / 'summary.json').exists()
    assert 'submit them' in res.stdout + res.stderr
    assert not (out / 'dynamics').exists()
