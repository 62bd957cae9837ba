"""Schuecker et al. 2017, Figs. 2, 3 and 9: the plotted fixed points, separatrices, branches and
rates against independent computations (a root finder on a quadrature Siegert formula, scipy's
ODE solver, direct integration of the rate dynamics, spike counts read from spikes.h5)."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.integrate import quad, solve_ivp
from scipy.optimize import root
from scipy.special import erfcx, zeta

from figure_helpers import load

# upstream's Fig. 2 network, written out: LIF neuron relative to rest (mV, ms, pF), K, W (pA)
THETA, V_RESET, TAU_M, TAU_SYN, T_REF, C_M = 15., 0., 10., 0.5, 2., 250.
EE_K, EE_W = 420., 10.
J = EE_W * TAU_SYN / C_M                      # PSC amplitude -> PSP (mV), upstream's convention


def phi_quad(mu, sigma):
    """Siegert rate (spikes/s) with the Fourcaud-Brunel shift, by adaptive quadrature."""
    shift = np.sqrt(2.) * abs(zeta(0.5)) / 2. * np.sqrt(TAU_SYN / TAU_M) * sigma
    y_th, y_r = (THETA + shift - mu) / sigma, (V_RESET + shift - mu) / sigma
    integral = quad(lambda u: erfcx(-u), y_r, y_th, epsabs=0, epsrel=1e-12)[0]   # e^{u²}(1 + erf u)
    return 1e3 / (T_REF + TAU_M * np.sqrt(np.pi) * integral)


def ee_phi(rates, rate_ext, K_rec):
    """Both populations' Siegert rates: each gets K_rec/2 inputs from each and K external."""
    drive = K_rec / 2. * np.sum(rates) + EE_K * rate_ext
    mu, sigma = TAU_M * 1e-3 * J * drive, np.sqrt(TAU_M * 1e-3 * J ** 2 * drive)
    return np.full(2, phi_quad(mu, sigma))


def roots_2d(rate_ext, K_rec):
    """Every fixed point scipy's root finder reaches from a grid of starts (rounded set)."""
    found = []
    for r1 in np.arange(0., 61., 10.):
        for r2 in np.arange(0., 61., 10.):
            sol = root(lambda r: ee_phi(r, rate_ext, K_rec) - r, [r1, r2], method='hybr',
                       options={'xtol': 1e-13})
            if sol.success and np.all(sol.x >= 0) and np.abs(sol.fun).max() < 1e-9:
                if not any(np.allclose(sol.x, f, rtol=1e-6, atol=1e-9) for f in found):
                    found.append(sol.x)
    return sorted(found, key=lambda x: x[0])


def jacobian_eigenvalues(r, rate_ext, K_rec):
    """Eigenvalues of dPhi/dnu by central differences of the quadrature Siegert formula."""
    h = max(1e-6, 1e-5 * r[0])
    cols = [(ee_phi(r + h * e, rate_ext, K_rec) - ee_phi(r - h * e, rate_ext, K_rec)) / (2 * h)
            for e in np.eye(2)]
    return np.linalg.eigvals(np.array(cols).T)


@pytest.fixture(scope='module')
def fig2(drawn):
    return load(drawn, 'meanfield', 'fig2_ee_example')


def test_ee_fixed_points_equal_a_root_finder_and_their_stability_the_jacobian(fig2):
    K_stab = fig2['network']['K_stabilized']
    cases = {'base': (160., EE_K), 'increased': (161., EE_K), 'stabilized': (161., K_stab)}
    for name, (rate_ext, K_rec) in cases.items():
        plotted = fig2['phase'][name]['fixed_points']
        found = roots_2d(rate_ext, K_rec)
        assert len(found) == len(plotted) == 3, (name, found)
        for fp, x in zip(plotted, found):
            assert x[0] == pytest.approx(x[1], rel=1e-9)           # on the diagonal
            assert fp['rate'] == pytest.approx(x[0], rel=1e-7, abs=1e-12), name
            lam = jacobian_eigenvalues(x, rate_ext, K_rec).real.max()
            assert fp['stable'] == (lam < 1.), (name, fp, lam)
            # the figure's slopes are upstream's forward differences (0.01 mV): a few % off at
            # the low fixed point, where the rate is exponential in mu
            assert fp['leading_eigenvalue'] == pytest.approx(lam, rel=0.1)
        assert [fp['stable'] for fp in plotted] == [True, False, True]
    # panel C (bottom): one fixed point at 150 and 170, three at 160 (1D, same as the diagonal)
    for drive, count in (('150', 1), ('160', 3), ('170', 1)):
        assert len(fig2['drives'][drive]['fixed_points']) == count
    hi = fig2['drives']['170']['fixed_points'][0]['rate']
    assert hi == pytest.approx(root(lambda r: ee_phi(r, 170., EE_K) - r, [50., 50.]).x[0], rel=1e-7)


def test_stabilized_in_degree_keeps_the_unstable_fixed_point(fig2):
    base = fig2['flux']['base']['unstable_rate']
    assert fig2['network']['K_stabilized'] == pytest.approx(EE_K * (1. - 1. / base), rel=1e-12)
    assert fig2['flux']['stabilized']['unstable_rate'] == pytest.approx(base, rel=1e-9)
    assert fig2['flux']['increased']['unstable_rate'] < base - 1.     # the drive moved it


def test_bifurcation_scan_has_three_fixed_points_only_in_the_bistable_window(fig2):
    counts = {e['rate_ext']: len(e['fixed_points']) for e in fig2['scan']}
    three = [d for d, c in counts.items() if c == 3]
    assert set(counts.values()) == {1, 3}
    lo, hi = min(three), max(three)
    assert all(c == 3 for d, c in counts.items() if lo <= d <= hi)    # one window
    assert 150. < lo < 160. < 161. < hi < 170.


def test_separatrix_divides_trajectories_to_the_low_and_the_high_state(fig2):
    from mam_pynn.figures.bistability import EENetwork
    K_stab = fig2['network']['K_stabilized']
    cases = {'base': (160., EE_K), 'increased': (161., EE_K), 'stabilized': (161., K_stab)}
    for name, (rate_ext, K_rec) in cases.items():
        entry = fig2['phase'][name]
        net = EENetwork(rate_ext, n=2, K_rec=K_rec)
        low, _, high = (fp['rate'] for fp in entry['fixed_points'])
        a, b = (np.array(e) for e in entry['separatrix']['ends'])
        saddle = np.array(entry['separatrix']['saddle'])
        assert np.allclose(saddle, a + (b - a) / 2, rtol=1e-9)       # through the saddle
        normal = np.ones(2) / np.sqrt(2)                              # across the line
        for frac in (0.1, 0.5, 0.9):
            on = a + frac * (b - a)
            for side, target in ((-1, low), (1, high)):
                start = on + side * 0.02 * saddle[0] * normal
                sol = solve_ivp(lambda t, r: net.phi(r) - r, (0., 60.), start, method='LSODA',
                                rtol=1e-6, atol=1e-9)
                assert sol.y[:, -1] == pytest.approx(np.full(2, target), rel=1e-3, abs=1e-4), \
                    (name, frac, side)
    # panel D's trajectories (the figure's exponential Euler) end on their side's fixed point
    entry = fig2['phase']['base']
    low, saddle, high = (fp['rate'] for fp in entry['fixed_points'])
    for tr in np.array(entry['trajectories'], dtype=float):
        target = low if tr[:, 0].sum() < 2 * saddle else high
        assert tr[:, -1] == pytest.approx(np.full(2, target), rel=1e-3, abs=1e-4)


# ------------------------------------------------------------------ Fig. 3: the MAM
def paper_model(f5, **extra):
    """Upstream's Fig. 3 network, written out: raw K, g -16, rate_ext 10, drive f5 on 5E."""
    from mam_pynn.model import MultiAreaModel
    return MultiAreaModel({'connection_params': {
        'g': -16., 'av_indegree_V1': 3950., 'fac_nu_ext_TH': 1.2, 'fac_nu_ext_5E': f5,
        'fac_nu_ext_6E': 10. / 3. * f5 - 7. / 3., 'cc_weights_factor': 1.,
        'cc_weights_I_factor': 1., 'K_stable': None, **extra}, 'input_params': {'rate_ext': 10.}})


def integrate(f5, initial=None):
    from mam_pynn.theory import Theory
    spec = {'dt': 0.01, 'T': 30.}
    if initial is not None:
        spec['initial_rates'] = np.asarray(initial, float)
    theory = Theory(paper_model(f5), spec)
    _, traj, times = theory.integrate_siegert(full_output=True)
    assert theory.convergence(traj, times)['converged'], f5
    return traj[:, -1]


@pytest.fixture(scope='module')
def fig3(drawn):
    return load(drawn, 'meanfield', 'fig3_bistability')


def branch_rates(branch, f5):
    k = int(np.argmin(np.abs(np.array(branch['f5']) - f5)))
    assert branch['f5'][k] == pytest.approx(f5, abs=1e-9), f5
    return np.array(branch['rates'][k], float)


def test_low_and_high_branches_equal_direct_integration(fig3):
    high_state = np.array(fig3['states']['high']['rates'], float)
    for f5 in (0.9, 1.06):                       # from zero rates: the low state
        np.testing.assert_allclose(branch_rates(fig3['branches']['low'], f5), integrate(f5),
                                   rtol=1e-5, atol=1e-9, err_msg=f'low branch at {f5}')
    for f5 in (0.94, 1.3):                       # from the high-activity state of panel D
        np.testing.assert_allclose(branch_rates(fig3['branches']['high'], f5),
                                   integrate(f5, high_state), rtol=1e-5, atol=1e-9,
                                   err_msg=f'high branch at {f5}')


def test_the_states_of_panels_c_and_d_are_the_theorys_and_bistable(fig3):
    from mam_pynn.params import POPULATION_LIST
    for name, f5 in (('low', 1.), ('high', 1.125)):
        rates = integrate(f5)
        state = fig3['states'][name]
        np.testing.assert_allclose(state['rates'], rates, rtol=1e-9, atol=1e-12)
        grid = np.array(state['grid'], dtype=float)
        for k, pop in enumerate(fig3['populations']):
            area, p = pop.split('-')
            assert grid[fig3['areas'].index(area), POPULATION_LIST.index(p)] == pytest.approx(
                rates[k], rel=1e-12, abs=1e-300)
        assert np.isnan(grid[fig3['areas'].index('TH'), POPULATION_LIST.index('4E')])
    assert np.mean(fig3['states']['low']['rates']) < 5 < 100 < np.mean(fig3['states']['high']['rates'])
    low, high = fig3['branches']['low'], fig3['branches']['high']
    # both states exist at 1 and at 1.125; the low one ends (fold) with eigenvalue -> 1 above 1.125
    assert min(high['f5']) <= 1. and 1.125 < max(low['f5']) < low['ends_above'] <= 1.2
    assert low['leading_eigenvalue'][-1] > 0.85 and max(high['leading_eigenvalue']) < 1.


# ------------------------------------------------------------------ Fig. 9
@pytest.fixture(scope='module')
def fig9_runs(tmp_path_factory):
    """Two synthetic 32-area runs (no simulator) with Fig. 9's network in config.yaml, set up
    by fig9_configs (upstream's K', full scale), analysed and written into upstream's layout
    beside them (what the workflow does)."""
    from mam_pynn.analysis import analyze_run
    from mam_pynn.analysis.synthetic import default_layout, make_run_dir
    from mam_pynn.figures.bistability import fig9_configs, fig9_layout
    from mam_pynn.params import network_defaults, resolve
    base = tmp_path_factory.mktemp('fig9')
    (base / 'run.yaml').write_text(yaml.safe_dump({'network_params': {'N_scaling': 1.}}))
    runs = base / 'runs'
    paths = fig9_configs(base / 'run.yaml', runs, k_prime='upstream')
    for k, (variant, path) in enumerate(paths.items()):
        run = make_run_dir(runs / variant, default_layout(200, seed=k), t_sim=1200., seed=k)
        config = yaml.safe_load((run / 'config.yaml').read_text())
        config['network_params'] = resolve(yaml.safe_load(path.read_text())['network_params'],
                                           network_defaults())   # resolved, as mam simulate's
        (run / 'config.yaml').write_text(yaml.safe_dump(config, sort_keys=False))
        analyze_run(run, t_min=200., figures=False, verbose=False)
        fig9_layout(run, runs, variant, t_min=200.)
    return runs


def fig9_readers(runs):
    from mam_pynn.analysis.layout import LabelledRun
    from mam_pynn.figures.bistability import FIG9_STATES
    return {state: LabelledRun(runs, state) for state in FIG9_STATES.values()}


def spike_rates(run, t_min, t_max):
    """Population rates (spikes/s) counted from spikes.h5 and the layout in config.yaml, in
    upstream's open window (t_min, t_max) (its Analysis.create_pop_rates)."""
    import h5py
    layout = yaml.safe_load((run / 'config.yaml').read_text())['populations']
    out = {}
    with h5py.File(run / 'spikes.h5', 'r') as f:
        for area, pops in layout.items():
            ids = f[f'spikes/{area}/node_ids'][()]
            ts = f[f'spikes/{area}/timestamps'][()]
            ids = ids[(ts > t_min) & (ts < t_max)]
            for pop, e in pops.items():
                n = np.count_nonzero((ids >= e['first_id']) & (ids < e['first_id'] + e['size']))
                out[area, pop] = n / (e['size'] * (t_max - t_min) * 1e-3)
    return out


def check_fig9_rates(d, runs_dir):
    from mam_pynn.params import POPULATION_LIST
    for variant, v in d['variants'].items():
        counted = spike_rates(Path(runs_dir) / variant, v['t_min_ms'], v['t_max_ms'])
        sim = np.array(v['simulated'], dtype=float)
        for (area, pop), rate in counted.items():
            assert sim[d['areas'].index(area), POPULATION_LIST.index(pop)] == pytest.approx(
                rate, rel=1e-12), (variant, area, pop)
        assert np.count_nonzero(np.isfinite(sim)) == len(counted) == 254


def test_fig9_plots_the_rates_in_spikes_h5_and_the_theory(fig9_runs, tmp_path):
    from mam_pynn.figures import make_figure
    from mam_pynn.model import MultiAreaModel
    from mam_pynn.theory import Theory
    make_figure('meanfield', 'fig9_simulation', tmp_path, fig9_readers(fig9_runs))
    d = json.loads((tmp_path / 'fig9_simulation.json').read_text())
    check_fig9_rates(d, fig9_runs)
    assert d['setup']['k_prime'] == 'upstream'
    # panel A: the theory of upstream's Fig. 9 network with upstream's K', written out here
    M = MultiAreaModel({'connection_params': {
        'g': -12., 'av_indegree_V1': 3950., 'fac_nu_ext_TH': 1.2, 'fac_nu_ext_5E': 1.125,
        'fac_nu_ext_6E': 1.41666667, 'cc_weights_factor': 1., 'cc_weights_I_factor': 1.,
        'K_stable': 'K_prime_original.npy'}, 'input_params': {'rate_ext': 10.}})
    rates = Theory(M, {'dt': 0.01, 'T': 30.}).integrate_siegert()[1][:, -1]
    theory = np.array(d['variants']['K_prime']['theory'], dtype=float)
    assert np.nansum(theory) == pytest.approx(rates.sum(), rel=1e-9)
    assert 1. < rates.mean() < 10.                        # K' keeps Fig. 9's network low
    assert np.nanmean(np.array(d['variants']['raw_K']['theory'], float)) > 100.   # raw K: high


def test_fig9_setup_refuses_to_replace_another_k_prime(fig9_runs):
    from mam_pynn.figures.bistability import fig9_configs
    k = fig9_runs / 'K_prime.npy'
    data = k.read_bytes()
    base = fig9_runs.parent / 'run.yaml'
    assert fig9_configs(base, fig9_runs, k_prime='upstream')        # same set-up: accepted
    try:
        k.write_bytes(data[:-8] + b'\0' * 8)
        with pytest.raises(FileExistsError, match='K_prime.npy exists with other content'):
            fig9_configs(base, fig9_runs, k_prime='upstream')
    finally:
        k.write_bytes(data)
    with pytest.raises(ValueError, match="k_prime must be one of"):
        fig9_configs(base, fig9_runs, k_prime='mine')


def test_cluster_mode_sets_up_both_runs_and_writes_job_scripts(tmp_path):
    import hashlib
    import subprocess
    from mam_pynn.data import data_file
    from mam_pynn.figures.workflow import FIGURES_DIR, snakemake_command
    cfg = tmp_path / 'figures.yaml'
    run = FIGURES_DIR.parent / 'configs' / 'figures' / 'schuecker2017_fig9_fullscale.yaml'
    cfg.write_text(yaml.safe_dump({
        'fig9': {'run': str(run)}, 'k_prime': 'upstream', 'runs_dir': '', 'mode': 'cluster',
        'data_dir': '', 'jobscript': {'nodes': 2, 'ranks_per_node': 2, 'threads': 4}}))
    out = tmp_path / 'out'
    fig9 = out / 'runs' / 'meanfield_upstream_K_fig9'
    cmd = snakemake_command('meanfield', out, cfg)
    at = cmd.index('-s')                         # only Fig. 9's targets, not the theory figures
    cmd[at:at] = [str(fig9 / f'{v}.job.sh') for v in ('K_prime', 'raw_K')]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    for variant in ('K_prime', 'raw_K'):
        script = (fig9 / f'{variant}.job.sh').read_text()
        assert '#SBATCH --nodes=2' in script and f'{variant}.yaml' in script, script
        assert not (fig9 / variant / 'summary.json').exists()
    k_prime = yaml.safe_load((fig9 / 'K_prime.yaml').read_text())['network_params']
    raw = yaml.safe_load((fig9 / 'raw_K.yaml').read_text())['network_params']
    assert k_prime['connection_params']['K_stable'] == str((fig9 / 'K_prime.npy').resolve())
    assert raw['connection_params']['K_stable'] is None
    digest = hashlib.sha256(data_file('K_prime_original.npy').read_bytes()).hexdigest()
    assert hashlib.sha256((fig9 / 'K_prime.npy').read_bytes()).hexdigest() == digest
    for net in (k_prime, raw):                   # upstream's Fig. 9 parameters, full scale
        c = net['connection_params']
        assert (c['g'], c['fac_nu_ext_5E'], c['fac_nu_ext_6E'], net['input_params']['rate_ext'],
                net['neuron_params']['V0_mean'], net['neuron_params']['V0_sd'],
                net['N_scaling'], net['K_scaling']) == (-12., 1.125, 1.41666667, 10., -150., 50.,
                                                        1., 1.)
        assert 'fullscale_rates' not in net or net['fullscale_rates'] is None
    assert not list((out / 'meanfield_upstream_K').glob('*.png'))   # no figure drawn


@pytest.mark.slow
def test_fig9_local_run_simulates_analyses_and_draws(tmp_path):
    """The local, down-scaled Fig. 9 of configs/figures/schuecker2017_fig9_run.yaml shortened to
    1 s (NEST, both networks; some minutes on 2 cores): the figure's rates are those counted
    in spikes.h5, and the network with K' is active at a low rate (not silent)."""
    pytest.importorskip('nest')
    from figure_helpers import mam_figures
    from mam_pynn.figures.workflow import FIGURES_DIR
    run = yaml.safe_load((FIGURES_DIR.parent / 'configs' / 'figures' /
                          'schuecker2017_fig9_run.yaml').read_text())
    run['sim_params']['t_sim'] = 1000.
    (tmp_path / 'run.yaml').write_text(yaml.safe_dump(run))
    cfg = tmp_path / 'figures.yaml'
    cfg.write_text(yaml.safe_dump({'fig9': {'run': str(tmp_path / 'run.yaml')}, 'k_prime': 'upstream',
                                   'runs_dir': '', 'mode': 'local', 't_min': 300.}))
    out = tmp_path / 'out'
    mam_figures('meanfield', out, '--config', str(cfg))
    d = json.loads((out / 'meanfield_upstream_K' / 'fig9_simulation.json').read_text())
    runs = out / 'runs' / 'meanfield_upstream_K_fig9'
    check_fig9_rates(d, runs)
    assert 'DOWN-SCALED' in d['variants']['K_prime']['scale']
    rates = json.loads((runs / 'fullscale_rates.json').read_text())   # K' theory, full scale
    theory = np.array(d['variants']['K_prime']['theory'], dtype=float)
    assert rates['V1']['23E'] == pytest.approx(theory[0, 0], rel=1e-12)
    assert 0.5 < np.nanmean(np.array(d['variants']['K_prime']['simulated'], dtype=float)) < 20.


def test_without_snakemake_the_theory_figures_are_drawn_and_fig9_is_named(monkeypatch, tmp_path,
                                                                          capsys):
    from mam_pynn.figures import workflow
    drawn = []
    monkeypatch.setattr(workflow, 'snakemake_available', lambda: False)
    monkeypatch.setattr(workflow, 'make_figures', lambda paper, out, names: drawn.extend(names))
    assert workflow.run_figures('meanfield', tmp_path) == 0
    assert {'fig2_ee_example', 'fig3_bistability', 'fig4_meanfield_mam'} <= set(drawn)
    assert 'fig9_simulation' not in drawn
    assert 'not drawn' in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match='Snakemake'):
        workflow.run_figures('dynamics', tmp_path)            # every dynamics figure needs runs


def test_make_figures_draws_those_whose_runs_are_given(monkeypatch, tmp_path, capsys):
    import mam_pynn.figures as F
    drawn = []
    monkeypatch.setattr(F, 'make_figure', lambda paper, name, out, runs=None: drawn.append(name) or [])
    F.make_figures('meanfield', tmp_path)
    assert 'fig2_ee_example' in drawn and 'fig9_simulation' not in drawn
    assert 'not drawn, they read runs not given: fig9_simulation' in capsys.readouterr().out
    drawn.clear()
    F.make_figures('meanfield', tmp_path, runs=fig9_readers(tmp_path), progress=False)
    assert 'fig9_simulation' in drawn
    with pytest.raises(ValueError, match='every dynamics figure reads runs'):
        F.make_figures('dynamics', tmp_path)


def test_fig9_reads_a_run_under_another_label(fig9_runs, tmp_path):
    """--data with --label: Fig. 9 drawn from a run labelled as upstream labels its runs (a
    hash), in a copy of the data path, equals the figure drawn from our state names."""
    import shutil
    from mam_pynn.figures.__main__ import main
    data = tmp_path / 'data'
    shutil.copytree(fig9_runs, data)
    (data / 'fig9_K_prime').rename(data / '3afaec94')
    for f in (data / '3afaec94').rglob('*fig9_K_prime*'):       # upstream's names carry the label
        f.rename(f.with_name(f.name.replace('fig9_K_prime', '3afaec94')))
    assert main(['meanfield', 'fig9_simulation', '--out', str(tmp_path / 'own'),
                 '--data', str(fig9_runs)]) == 0
    assert main(['meanfield', 'fig9_simulation', '--out', str(tmp_path / 'relabelled'),
                 '--data', str(data), '--label', 'fig9_K_prime=3afaec94']) == 0
    own, relabelled = (json.loads((tmp_path / d / 'fig9_simulation.json').read_text())
                       for d in ('own', 'relabelled'))
    for v in (own, relabelled):
        for variant in v['variants'].values():
            assert variant.pop('run').endswith(('fig9_K_prime', 'fig9_raw_K', '3afaec94'))
    assert relabelled['variants'] == own['variants']
    # a state Fig. 9 does not read, and --label without --data: one line each (exit 2)
    assert main(['meanfield', 'fig9_simulation', '--out', str(tmp_path / 'x'),
                 '--data', str(data), '--label', 'metastable=3afaec94']) == 2
    assert main(['meanfield', 'fig9_simulation', '--out', str(tmp_path / 'x'),
                 '--label', 'fig9_K_prime=3afaec94']) == 2
