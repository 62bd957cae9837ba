"""Schmidt et al. 2018 (PLoS Comput Biol) figures: drawn from upstream's data layout (issue 25),
what they plot is what the layout holds, equal to our run's `mam analyze` statistics where
the definitions meet; the published labels are read with --original-data; the workflow
simulates, analyses, preprocesses and draws (local) or writes job scripts (cluster)."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from figure_helpers import mam_figures
from mam_pynn.analysis.layout import LabelledRun
from mam_pynn.figures import make_figure
from mam_pynn.figures.dynamics import FIGURES, STATES, readers

AREAS = ['V1', 'V2', 'V4', 'FEF', '46', 'TH']


@pytest.fixture(scope='module', autouse=True)
def few_theory_starts():
    """Fig. 4 B's theory with 4 starts per chi (the figure's default takes minutes)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('MAM_FIG4_STARTS', '4')
        yield


@pytest.fixture(scope='module')
def drawn(tmp_path_factory, few_theory_starts):
    """A synthetic 6-area run (no simulator), analysed, preprocessed into the layout as
    label 'syn' and drawn, every state reading it."""
    from mam_pynn.analysis import analyze_run
    from mam_pynn.analysis.preprocess import preprocess
    from mam_pynn.analysis.synthetic import default_layout, make_run_dir
    tmp = tmp_path_factory.mktemp('syn')
    run = make_run_dir(tmp / 'run', default_layout(300, AREAS, seed=2), t_sim=2000., seed=2)
    stats = analyze_run(run, t_min=500., figures=False, verbose=False)
    preprocess(run, tmp / 'data', label='syn', verbose=False)
    runs = readers(tmp / 'data', overrides={state: 'syn' for state in STATES})
    out = tmp / 'fig'
    for name in FIGURES:
        make_figure('dynamics', name, out, runs)
    return {'run': run, 'stats': stats, 'data': tmp / 'data', 'out': out,
            'layout': LabelledRun(tmp / 'data', 'syn')}


def data(out, name):
    return json.loads((Path(out) / f'{name}.json').read_text())


def unlabelled(d):
    """A figure's data without the run labels (keys ending in 'label'), at any depth."""
    if isinstance(d, dict):
        return {k: unlabelled(v) for k, v in d.items() if not k.endswith('label')}
    return d


def _matrix(values):
    return np.array([[np.nan if v is None else v for v in row] for row in values], float)


def test_plotted_numbers_are_the_layouts(drawn):
    r = drawn['layout']
    for name in ('fig3_ground_state', 'fig5_metastable'):
        fig = data(drawn['out'], name)
        assert fig['areas'] == AREAS and fig['label'] == 'syn'
        for key, table in (('rates', r.pop_rates()), ('corrcoeff', r.corrcoeff()), ('lvr', r.pop_LvR())):
            for i, area in enumerate(AREAS):
                for j, pop in enumerate(fig['populations']):
                    got = fig[key][i][j]
                    assert (got is None and pop not in table[area]) or got == table[area][pop], (key, area, pop)
        for area in fig['series_areas']:
            np.testing.assert_array_equal(fig['rate_binned'][area], r.rate_time_series(area))
            np.testing.assert_array_equal(fig['rate_auto_kernel'][area], r.rate_time_series(area, method='auto_kernel'))
        assert fig['raster_window_ms'] == [1500., 2000.]      # the last 500 ms of a 2 s run


def test_raster_shows_the_lowest_ids_of_each_population(drawn):
    r, fig = drawn['layout'], data(drawn['out'], 'fig3_ground_state')
    gids = r.network_gids()
    s = fig['raster']['V1']
    first, last = gids[('V1', '23E')]
    d = r.spikes('V1', '23E')
    n = last - first + 1                                   # a small area: every neuron drawn
    keep = (d[:, 0] < first + n) & (d[:, 1] >= 1500.) & (d[:, 1] <= 2000.)
    rows = np.array(s['row'])
    assert np.count_nonzero(rows < n) == keep.sum()
    np.testing.assert_array_equal(np.sort(np.array(s['times_ms'])[rows < n]), np.sort(d[keep, 1]))


def test_figures_equal_our_statistics_where_both_exist(drawn):
    """Rates and LvR plotted from the layout are the run's statistics.json numbers (upstream's
    open window and LvR mean: `rate`, `lvr_upstream`), computed there by another code path."""
    stats = json.loads((drawn['run'] / 'analysis' / 'statistics.json').read_text())
    fig = data(drawn['out'], 'fig5_metastable')
    for i, area in enumerate(AREAS):
        for j, pop in enumerate(fig['populations']):
            s = stats['populations'][area].get(pop)
            if s is None:
                assert fig['rates'][i][j] is None and fig['lvr'][i][j] is None
                continue
            assert fig['rates'][i][j] == pytest.approx(s['rate'], rel=1e-12)
            assert fig['lvr'][i][j] == pytest.approx(s['lvr_upstream'], rel=1e-12)


def test_fig2_plots_each_states_population_rates(drawn):
    """Fig. 2: the layout's pop_rates per area and population (0 drawn at 1e-5, as upstream;
    NaN where the area lacks the population), the architectural types those of the raw
    data file."""
    from mam_pynn.data import data_file
    fig2, r = data(drawn['out'], 'fig2_bistability'), drawn['layout']
    table = r.pop_rates()
    for key in 'ABC':
        m = _matrix(fig2[key]['rates'])
        for i, area in enumerate(AREAS):
            for j, pop in enumerate(fig2['populations']):
                want = table[area].get(pop, np.nan)
                want = 1e-5 if want == 0. else want
                assert (np.isnan(m[i, j]) and np.isnan(want)) or m[i, j] == want, (key, area, pop)
    lines = data_file('raw_data/ArchitecturalTypes.csv').read_text().splitlines()
    raw = dict(ln.split('\t')[:2] for ln in lines if not ln.startswith('#') and ln.count('\t') == 1)
    checked = [a for a in AREAS if raw.get(a, '').strip().isdigit()]
    assert len(checked) >= 4
    for area in checked:
        assert fig2['architecture'][area] == int(raw[area]), area


def test_fig4_theory_and_runs(drawn):
    """Fig. 4: A the layout's V1 series; B the histogram of the population means of the end
    states (numpy's histogram of the plotted means, range 0-40, 50 bins); C below 1 and
    growing with chi from 1.8 on (upstream's published panel)."""
    fig4, r = data(drawn['out'], 'fig4_metastability'), drawn['layout']
    assert fig4['starts'] == 4
    for state in ('ground_state', 'metastable'):
        np.testing.assert_array_equal(fig4['v1_rate'][state]['rate'], r.rate_time_series('V1'))
    for c, h in fig4['theory_histogram'].items():
        counts, _ = np.histogram(fig4['theory_mean_activity'][c], bins=50, range=(0., 40.))
        assert h['counts'] == counts.tolist(), c
    lam = [fig4['critical_eigenvalue'][c] for c in ('1.8', '1.9', '2', '2.1')]
    assert all(0.5 < v < 1. for v in lam) and lam == sorted(lam)


def test_fig6_without_and_with_experimental_data(drawn, tmp_path, monkeypatch):
    """Fig. 6: D the layout's subsample spectra and F its V1 rate histogram; without
    $MAM_CHU2014_DIR no experimental panel; with a synthetic pvc-5 folder the experimental
    spectra and histograms are chu2014.process's (tested on planted phases there)."""
    from mam_pynn.analysis import chu2014
    from mam_pynn.figures.dynamics import CHU2014_ENV, fig6_comparison_exp_spiking_data
    r = drawn['layout']
    fig6 = data(drawn['out'], 'fig6_comparison_exp_spiking_data')
    assert fig6['experiment'] is None
    f, power = r.power_spectrum('V1', method='subsample')
    for state in ('ground_state', 'metastable'):
        np.testing.assert_array_equal(fig6['sim_spectra'][state]['power'], power)
    np.testing.assert_array_equal(fig6['rate_histogram_sim'], r.rate_histogram('V1')[1])
    folder = chu2014.write_synthetic(tmp_path / 'chu', phases_s=((0., 25., 'low'), (25., 50., 'high')))
    monkeypatch.setenv(CHU2014_ENV, str(folder))
    fig6_comparison_exp_spiking_data(tmp_path / 'out', r, r)
    exp = data(tmp_path / 'out', 'fig6_comparison_exp_spiking_data')['experiment']
    want = chu2014.process(folder, r.rate_histogram('V1')[0])
    for phase in chu2014.PHASES:
        np.testing.assert_allclose(exp[f'power_spectrum_{phase}'], want[f'power_spectrum_V1_{phase}'])
    assert exp['rate_histogram_full'] == want['rate_histogram_full'].tolist()
    assert exp['neurons'] == len(want['spike_data_1mm'])


def test_fig7_extremum_times_and_hierarchy(drawn):
    """Fig. 7 from the layout's cross-correlation files = the extremum times recomputed from
    the area rates (timescales.extremum_times, tested on known lags there); the hierarchy
    solves the least-squares problem (checked by scipy's minimize as upstream's fit, up to
    its tolerance); panel A's order is each area's first rise above twice its mean."""
    from scipy.optimize import minimize
    from mam_pynn.analysis.timescales import extremum_times
    fig7, r = data(drawn['out'], 'fig7_temporal_hierarchy'), drawn['layout']
    rates = np.array([r.rate_time_series(a) for a in AREAS])
    times, _ = extremum_times(rates, AREAS)
    np.testing.assert_allclose(_matrix(fig7['extremum_times']), times)
    keep = [i for i, a in enumerate(AREAS) if a != 'MDP']
    c = times[np.ix_(keep, keep)]
    res = minimize(lambda h: np.sum((h[:, None] - h[None, :] - c) ** 2), np.zeros(len(keep)), tol=1e-12)
    h = res.x - res.x.min()
    h /= h.max()
    by_area = dict(zip(fig7['hierarchy_areas'], fig7['hierarchy']))
    np.testing.assert_allclose([by_area[AREAS[i]] for i in keep], h, atol=1e-4)
    i0 = int(fig7['window_ms'][0] - 500.)
    rise = [np.flatnonzero(x[i0:i0 + 500] > 2 * x[i0:i0 + 500].mean()) for x in rates]
    rise = [int(x[0]) if x.size else 499 for x in rise]
    assert fig7['order_A'] == [AREAS[i] for i in np.argsort(rise, kind='stable')]


def test_fig8_plots_the_layouts_fc_its_similarities_and_communities(drawn):
    """Fig. 8: A, C the layout's FC and fMRI's; D r over all off-diagonal entries (numpy's
    corrcoef on the flattened matrices with zeroed diagonals); the structural connectivity
    relative in-degrees summed by hand from K_areas; E, F the layout's communities."""
    from mam_pynn.analysis.statistics import load_experimental_fc
    from mam_pynn.model import MultiAreaModel
    from mam_pynn.theory.metastability import fig4_network_params
    fig8 = data(drawn['out'], 'fig8_interactions')
    sim = drawn['layout'].functional_connectivity('synaptic_input')
    np.testing.assert_array_equal(_matrix(fig8['fc_sim']), sim)
    exp = load_experimental_fc(AREAS)
    np.testing.assert_array_equal(_matrix(fig8['fc_exp']), exp)
    off = ~np.eye(len(AREAS), dtype=bool)
    r = np.corrcoef(np.where(off, sim, 0).ravel(), np.where(off, exp, 0).ravel())[0, 1]
    assert fig8['similarity_exp']['metastable']['r'] == pytest.approx(r, rel=1e-12)
    assert fig8['areas'] == AREAS and fig8['fc_bold'] is None       # 2 s: no BOLD FC
    M = MultiAreaModel(fig4_network_params(1.))
    for i, t in enumerate(AREAS):
        total = sum(M.K_areas[t].values())
        for j, s in enumerate(AREAS):
            assert fig8['structural_connectivity'][i][j] == pytest.approx(M.K_areas[t][s] / total, rel=1e-12)
    assert fig8['communities']['sim'] == drawn['layout'].communities('synaptic_input')
    # the map equation groups the early visual areas V1, V2 apart from the frontal FEF, 46
    st = fig8['communities']['structure']
    assert st['V1'] == st['V2'] != st['FEF'] == st['46']


def test_the_published_labels_are_read_with_original_data(drawn, tmp_path):
    """`mam figures dynamics --original-data DIR`: the same layout under upstream's labels
    gives the same figures (of the rasters' run only the spike files are read, as upstream's
    Fig. 5 does); --label overrides a label; a missing file is one line naming it and the
    figure."""
    import shutil
    published = tmp_path / 'published'
    for state, (label, _) in STATES.items():       # the layout as the authors' labels name it
        shutil.copytree(drawn['data'] / 'syn', published / label)
        (published / label / 'custom_params_syn').rename(published / label / f'custom_params_{label}')
        for f in (published / label / 'recordings').glob('syn-spikes-*.npy'):
            f.rename(f.with_name(f.name.replace('syn-', f'{label}-', 1)))
    shutil.rmtree(published / STATES['metastable_spikes'][0] / 'Analysis')   # its rasters need only spikes
    out = tmp_path / 'out'
    mam_figures('dynamics', out, '--original-data', str(published))
    for name in FIGURES:
        ours, theirs = unlabelled(data(drawn['out'], name)), unlabelled(data(out / 'dynamics', name))
        for key in ours:
            assert theirs[key] == ours[key], (name, key)
    assert data(out / 'dynamics', 'fig3_ground_state')['label'] == STATES['ground_state'][0]
    assert data(out / 'dynamics', 'fig5_metastable')['spikes_label'] == STATES['metastable_spikes'][0]
    (published / 'lacking' / 'Analysis').mkdir(parents=True)
    import subprocess
    import sys
    res = subprocess.run([sys.executable, '-m', 'mam_pynn.cli', 'figures', 'dynamics', '--out', str(out),
                          '--original-data', str(published), '--label', 'ground_state=lacking'],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    line = res.stderr.strip().splitlines()[-1]
    assert 'lacking/Analysis/rate_time_series_full/rate_time_series_full_Parameters.json: missing' in line \
        or 'lacking/Analysis/pop_rates.json: missing' in line, line
    assert 'fig2_bistability reads it' in line           # the first figure reading ground_state


TINY = {'backend': 'nest',
        'network_params': {'N_scaling': 0.002, 'K_scaling': 0.01, 'fullscale_rates': 'fullscale_rates.json',
                           'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}},
        'sim_params': {'t_sim': 400., 'areas_simulated': ['V1', 'V2', 'V4'], 'local_num_threads': 1}}


def _figures_config(tmp_path, mode):
    configs = {}
    for state, chi in (('ground_state', 1.), ('metastable', 1.9), ('bistability_LA', 1.), ('bistability_HA', 1.)):
        cfg = yaml.safe_load(yaml.safe_dump(TINY))
        cfg['network_params']['connection_params'].update(cc_weights_factor=chi,
                                                          cc_weights_I_factor=1. if chi == 1. else 2.)
        if state.startswith('bistability'):                 # upstream's unstabilized model
            cfg['network_params']['connection_params'].update(
                g=-16., K_stable=None, fac_nu_ext_5E=1. if state.endswith('LA') else 1.125,
                fac_nu_ext_6E=1. if state.endswith('LA') else 1.41666667)
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
    assert (out / 'runs' / 'layout' / 'metastable' / 'Analysis' / 'pop_rates.json').is_file()
    assert 'N_scaling 0.002' in fig5['scale'] and 'χ = 1.9' in fig5['scale']
    # a second call redraws nothing
    before = {p: p.stat().st_mtime_ns for p in (out / 'dynamics').iterdir()}
    res = mam_figures('dynamics', out, '--config', str(_figures_config(tmp_path, 'local')))
    assert 'Nothing to be done' in res.stdout + res.stderr
    assert before == {p: p.stat().st_mtime_ns for p in (out / 'dynamics').iterdir()}


def test_cluster_mode_writes_job_scripts_instead_of_simulating(tmp_path):
    out = tmp_path / 'out'
    res = mam_figures('dynamics', out, '--config', str(_figures_config(tmp_path, 'cluster')))
    for state in ('ground_state', 'metastable', 'bistability_LA', 'bistability_HA'):
        script = (out / 'runs' / f'{state}.job.sh').read_text()
        assert '#SBATCH --nodes=2' in script and 'simulate --config' in script, script
        assert not (out / 'runs' / state / 'summary.json').exists()
    assert 'submit them' in res.stdout + res.stderr
    assert not list((out / 'dynamics').glob('*.png'))   # no figures drawn (the folder is made first)
