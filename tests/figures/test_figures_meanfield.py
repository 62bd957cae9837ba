"""Schuecker et al. 2017 figures: the plotted numbers against independent computations.

The figures come from `mam figures meanfield` (the `drawn` fixture); our stabilization is
computed once (about a minute) and cached, and these tests read the same cache.
"""
import types

import numpy as np
import pandas as pd
import pytest
from scipy.signal import argrelmin

from figure_helpers import load


@pytest.fixture(scope='module')
def ours():
    from mam_pynn.theory.stabilization import cached_stabilization
    return cached_stabilization(verbose=False)


@pytest.fixture(scope='module')
def net():
    from mam_pynn.theory.stabilization import paper_network
    return paper_network()


def _vector(net, grid, areas, pops):
    """Population vector of a plotted (populations x areas) grid."""
    grid = np.asarray([[np.nan if x is None else x for x in row] for row in grid], float)
    return np.array([grid[pops.index(s.split('-')[1]), areas.index(s.split('-')[0])]
                     for s in net.structure_vec])


def _network_with(net, K, f5):
    other = types.SimpleNamespace(**{k: getattr(net, k) for k in (
        'J_matrix', 'add_DC_drive', 'params', 'area_list', 'structure', 'structure_vec')})
    other.K_matrix = np.array(net.K_matrix, float)
    other.K_matrix[:, :-1] = K
    pops = np.array([s.split('-')[1] for s in net.structure_vec])
    other.K_matrix[pops == '5E', -1] *= f5
    other.K_matrix[pops == '6E', -1] *= 10. / 3. * f5 - 7. / 3.
    return other


def test_ground_state_rates_are_the_models(drawn):
    """The plotted ground-state rates with our K' are those of the model with
    K_stable: true, with upstream's those of the default model; both low and converged."""
    from mam_pynn.model import MultiAreaModel
    d = load(drawn, 'meanfield', 'ground_state_rates')
    panels = {p['name']: p for p in d['panels']}
    assert [p['name'] for p in d['panels']] == ['ours', 'upstream', 'raw']
    for name, K_stable in (('ours', True), ('upstream', 'K_prime_original.npy')):
        M = MultiAreaModel({'connection_params': {'cc_weights_factor': 1., 'cc_weights_I_factor': 1.,
                                                  'K_stable': K_stable}}, theory=True)
        rates = M.theory.integrate_siegert()[1][:, -1]
        np.testing.assert_allclose(np.array(panels[name]['rates'], float), rates, rtol=1e-9)
        assert panels[name]['convergence']['converged'] is True
        assert 0 < np.mean(rates) < 10                      # the low-rate ground state
    assert not panels['raw']['convergence']['converged']


def test_fig4_velocity_minima_found_independently(drawn):
    """Fig. 4C's minima are the strict local minima (scipy's argrelmin) of the plotted
    speed below upstream's threshold 0.05; the two runs bracket the transition."""
    d = load(drawn, 'meanfield', 'fig4_meanfield_mam')
    for key in ('low', 'high'):
        v = np.array(d[f'velocity_{key}'], float)
        (mins,) = argrelmin(np.log(v))
        np.testing.assert_array_equal(d[f'minima_{key}'], mins[v[mins] < 0.05])
    assert d['mean_rate_low'][-1] < 10 < 30 < d['mean_rate_high'][-1]
    assert 0 < d['f_high'] - d['f_low'] <= 1e-7
    # the unstable fixed point is reached where the two runs still agree
    k = int(round(d['t_unstable_fixed_point'] / d['dt']))
    assert abs(d['mean_rate_high'][k] / d['mean_rate_low'][k] - 1) < 0.2


def test_fig6_unstable_fixed_points_are_saddles(drawn, ours, net):
    """Each plotted nu* is a fixed point of the network its correction started from, at
    the drive of its transition (Theory.transfer, the model's input path), with exactly one
    eigenvalue of G above 1, the plotted critical eigenvalue."""
    from mam_pynn.theory import Theory
    d = load(drawn, 'meanfield', 'fig6_unstable_fp')
    assert len(d['rates']) == len(ours['f_low']) >= 1
    for grid, K, f5, lam in zip(d['rates'], ours['K'], d['f_low'], d['critical_eigenvalue']):
        nu = _vector(net, grid, d['areas'], d['populations'])
        theory = Theory(_network_with(net, K, f5), {})
        assert np.abs(theory.transfer(nu) - nu).max() < 1e-6
        ev = np.linalg.eigvals(theory.gain_matrix(nu)).real
        assert np.sum(ev > 1) == 1 and ev.max() == pytest.approx(lam, rel=1e-8)


def test_fig5_eigendirections_add_up_to_the_shift(drawn):
    """Eq. 13: the shares eta_l of all eigendirections add up to the whole shift
    (sum -1 with upstream's sign); the critical eigenvalues are those of Fig. 6."""
    d = load(drawn, 'meanfield', 'fig5_eigenspace')
    assert d['eta_sum'][0] == pytest.approx(-1., abs=1e-6) and abs(d['eta_sum'][1]) < 1e-6
    fig6 = load(drawn, 'meanfield', 'fig6_unstable_fp')
    np.testing.assert_allclose(d['critical_eigenvalue'], fig6['critical_eigenvalue'], rtol=1e-8)
    for re, lam in zip(d['eigenvalues_real'], d['critical_eigenvalue']):
        assert max(re) == pytest.approx(lam, rel=1e-12)


def test_fig7_scans_bracket_each_recorded_transition(drawn, ours):
    """Fig. 7A's coarse scans (full runs to s = 30 ms) jump to high activity in the grid step
    holding each correction's transition; with our K' none jumps up to the aim, 1.25."""
    d = load(drawn, 'meanfield', 'fig7_stabilization_analysis')
    kappa = np.array(d['kappas'])
    curves = np.array(d['mean_rate_5E_6E'], float)
    for curve, f_low in zip(curves[:-1], ours['f_low']):
        high = curve > 30
        first = int(np.argmax(high))
        assert high.any() and not high[:first].any()
        assert kappa[first - 1] <= f_low < kappa[first]
    aim = ours['settings']['target'] + ours['settings']['margin']
    assert np.all(curves[-1][kappa <= aim] < 30)
    summary = load(drawn, 'meanfield', 'stabilization')
    assert [c['transition_f5'] for c in summary['corrections']] == pytest.approx(list(ours['f_low']))


def _fig8_independent(net, K_raw, K):
    """Fig. 8's measures recomputed with pandas from the two matrices (long tables)."""
    pops = [s.split('-')[1] for s in net.structure_vec]
    areas = [s.split('-')[0] for s in net.structure_vec]
    n = len(pops)
    t = pd.DataFrame({'ta': np.repeat(areas, n), 'tp': np.repeat(pops, n),
                      'sa': np.tile(areas, n), 'sp': np.tile(pops, n),
                      'K0': K_raw.ravel(), 'K1': K.ravel(),
                      'N': np.repeat(np.asarray(net.N_vec, float), n)})
    intra = t[t.ta == t.sa].groupby(['sp', 'sa'])[['K0', 'K1']].sum()
    intra = intra[intra.K0 > 0]
    bar = ((intra.K1 - intra.K0) / intra.K0).groupby('sp').mean()
    t['S0'], t['S1'] = t.K0 * t.N, t.K1 * t.N
    ext = pd.DataFrame({'ta': areas, 'E': np.asarray(net.K_matrix)[:, -1] * np.asarray(net.N_vec)})
    total0 = t.groupby('ta').S0.sum() + ext.groupby('ta').E.sum()
    total1 = t.groupby('ta').S1.sum() + ext.groupby('ta').E.sum()
    pair = t.groupby(['ta', 'sa'])[['S0', 'S1']].sum().reset_index()
    pair['fln0'] = pair.S0 / pair.ta.map(total0)
    pair['fln1'] = pair.S1 / pair.ta.map(total1)
    layer = t[t.sp.isin(['23E', '5E', '6E'])].assign(supra=lambda x: x.sp == '23E')
    s = layer[layer.ta != layer.sa].groupby(['ta', 'sa', 'supra'])[['S0', 'S1']].sum().unstack()
    sln0 = s['S0'][True] / (s['S0'][True] + s['S0'][False])
    sln1 = s['S1'][True] / (s['S1'][True] + s['S1'][False])
    return bar, pair.set_index(['ta', 'sa']), (sln1 - sln0).dropna()


def test_fig8_differences_recomputed_from_the_two_matrices(drawn, ours, net):
    """Fig. 8 for both K' (ours, upstream's) recomputed from the matrices with pandas: the
    mean intra-areal change per source population, the FLN before and after, the δSLN."""
    from mam_pynn.data import data_file
    d = load(drawn, 'meanfield', 'fig8_conn_analysis')
    matrices = {'ours': ours['K_prime'], 'upstream': np.load(data_file('K_prime_original.npy'))}
    assert [c['name'] for c in d['columns']] == ['ours', 'upstream']
    for col in d['columns']:
        bar, fln, dsln = _fig8_independent(net, ours['K_raw'], matrices[col['name']])
        np.testing.assert_allclose(col['intra_change_by_source'], bar[d['populations']].values,
                                   rtol=1e-10)
        index = [tuple(p.split('-', 1)) for p in col['fln_pairs']]
        np.testing.assert_allclose(col['fln_raw'], fln.loc[index, 'fln0'].values, rtol=1e-10)
        np.testing.assert_allclose(col['fln_stabilized'], fln.loc[index, 'fln1'].values, rtol=1e-10)
        np.testing.assert_allclose(np.sort(col['delta_sln']), np.sort(dsln.values), atol=1e-12)
    corr = np.corrcoef((matrices['ours'] - ours['K_raw']).ravel(),
                       (matrices['upstream'] - ours['K_raw']).ravel())[0, 1]
    assert d['change_correlation'] == pytest.approx(corr) and corr >= 0.97


def test_k_prime_option_draws_upstreams_file_first(monkeypatch):
    """MAM_K_PRIME=upstream (`mam figures meanfield --k-prime upstream`) puts upstream's
    K_prime_original.npy first and names it; an unknown choice is refused by name."""
    from mam_pynn.data import data_file
    from mam_pynn.figures import meanfield
    monkeypatch.setenv(meanfield.K_PRIME_ENV, 'upstream')
    first = meanfield.k_primes()[0]
    assert first[0] == 'upstream' and 'K_prime_original.npy' in first[1]
    np.testing.assert_array_equal(first[2], np.load(data_file('K_prime_original.npy')))
    monkeypatch.setenv(meanfield.K_PRIME_ENV, 'theirs')
    with pytest.raises(ValueError, match='MAM_K_PRIME'):
        meanfield.k_prime_choice()


def test_leading_eigenvalue_of_the_sweep_is_panel_As(drawn):
    """The sweep's chi = 1 point with the chosen K' is the largest real part of the
    eigenvalues drawn in panel A, below 1 (a stable fixed point), for both K'."""
    d = load(drawn, 'meanfield', 'eigenvalues_chi')
    assert [s['name'] for s in d['sweeps']] == ['ours', 'upstream']
    ev = d['sweeps'][0]['sweep'][0]['leading_eigenvalue']
    assert ev == pytest.approx(max(d['eigenvalues_real']), rel=1e-6) and ev < 1
    assert all(sw['sweep'][0]['leading_eigenvalue'] < 1 and sw['sweep'][0]['converged']
               for sw in d['sweeps'])


def test_k_prime_flag_reaches_the_workflow(tmp_path):
    """`mam figures meanfield --k-prime upstream` hands the choice to Snakemake and names
    its own output folder; other papers and unknown choices are refused by name."""
    from mam_pynn.figures.workflow import output_folder, run_figures, snakemake_command
    assert 'k_prime=upstream' in snakemake_command('meanfield', tmp_path, k_prime='upstream')
    assert output_folder('meanfield', 'upstream') == 'meanfield_upstream_K'
    assert output_folder('meanfield', 'ours') == output_folder('meanfield') == 'meanfield'
    with pytest.raises(ValueError, match='k_prime'):
        run_figures('anatomy', tmp_path, k_prime='upstream')
    with pytest.raises(ValueError, match='k_prime'):
        run_figures('meanfield', tmp_path, k_prime='theirs')
