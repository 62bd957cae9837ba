"""Figures of Schuecker, Schmidt et al. 2017 (PLoS Comput Biol 13:e1005179): mean-field rates,
the eigenvalues of the effective connectivity, and the stabilized in-degrees K'.

Computed with mam_pynn.theory on the full-scale model. The published figures use upstream's
stabilization; ours uses the project's default K' (upstream's K_prime_original.npy) and
the raw K (K_stable: null), as README's Mean-field section explains.
"""
from __future__ import annotations

import numpy as np

from .common import plt, save

PAPER = 'Schuecker, Schmidt et al. 2017, PLoS Comput Biol'
GROUND_STATE = {'cc_weights_factor': 1., 'cc_weights_I_factor': 1.}
#: cortico-cortical weight factors of the Fig. 5 sweep (E factor; the I factor scales along)
CC_FACTORS = (1.0, 1.2, 1.4, 1.6, 1.8, 1.9)


def _model(**connection_params):
    from ..model import MultiAreaModel
    return MultiAreaModel({'connection_params': connection_params})


def _grid(M, vector):
    """(areas, 8) matrix of a population vector, NaN where an area lacks a population."""
    from ..params import POPULATION_LIST
    out = np.full((len(M.area_list), len(POPULATION_LIST)), np.nan)
    for k, name in enumerate(M.structure_vec):
        area, pop = name.split('-')
        out[M.area_list.index(area), POPULATION_LIST.index(pop)] = vector[k]
    return out


def rates_data() -> dict:
    """Fig. 4: stationary rates of the ground state (chi = 1) with the stabilized K' and
    with the raw K, and whether each reached a fixed point."""
    from ..theory import Theory
    out = {}
    for name, K_stable in (('K_prime', 'K_prime_original.npy'), ('raw_K', None)):
        M = _model(K_stable=K_stable, **GROUND_STATE)
        theory = Theory(M, {})
        _, traj, times = theory.integrate_siegert(full_output=True)
        out[name] = {'rates': traj[:, -1], 'convergence': theory.convergence(traj, times),
                     'leading_eigenvalue': theory.leading_eigenvalue(traj[:, -1]).real}
    out['populations'] = list(M.structure_vec)
    out['areas'] = list(M.area_list)
    return out


def eigen_data() -> dict:
    """Fig. 5: eigenvalues of the effective connectivity at the ground-state fixed point, and
    the leading eigenvalue along cortico-cortical weight factors (K')."""
    from ..theory import Theory
    sweep = []
    for f in CC_FACTORS:
        theory = Theory(_model(cc_weights_factor=f, cc_weights_I_factor=1. + (f - 1.) * 10 / 9), {})
        rates = theory.stationary_rates()
        sweep.append({'cc_weights_factor': f, 'cc_weights_I_factor': 1. + (f - 1.) * 10 / 9,
                      'leading_eigenvalue': theory.leading_eigenvalue(rates).real,
                      'mean_rate': float(rates.mean()),
                      'converged': theory.convergence(theory.integrate_siegert()[1],
                                                      theory.times())['converged']})
    theory = Theory(_model(**GROUND_STATE), {})
    ev = np.linalg.eigvals(theory.gain_matrix(theory.stationary_rates()))
    return {'eigenvalues_real': ev.real, 'eigenvalues_imag': ev.imag, 'sweep': sweep}


def stabilization_data() -> dict:
    """Figs. 7/8: where the stabilization changes the in-degrees: K' - K per population pair
    and summed per area pair (relative to the raw area-level in-degree)."""
    raw, stable = _model(K_stable=None), _model()
    n = len(raw.N_vec)
    K, Kp = np.asarray(raw.K_matrix)[:, :n], np.asarray(stable.K_matrix)[:, :n]
    areas = list(raw.area_list)
    idx = np.array([areas.index(s.split('-')[0]) for s in raw.structure_vec])
    onehot = np.eye(len(areas))[idx]
    weight = np.asarray(raw.N_vec)[:, None]      # synapses = K * N_target
    area_raw = onehot.T @ (K * weight) @ onehot
    area_delta = onehot.T @ ((Kp - K) * weight) @ onehot
    neurons = onehot.T @ np.asarray(raw.N_vec)
    with np.errstate(divide='ignore', invalid='ignore'):
        rel = np.where(area_raw > 0, area_delta / area_raw, np.nan)
        rel_pop = np.where(K > 0, (Kp - K) / K, np.nan)
    return {'areas': areas, 'populations': list(raw.structure_vec),
            'indegree_change_area': area_delta / neurons[:, None],
            'relative_change_area': rel, 'relative_change_population': rel_pop,
            'total_synapses_raw': float((K * weight).sum()),
            'total_synapses_stabilized': float((Kp * weight).sum())}


def fig4_rates(out_dir) -> list:
    from ..params import POPULATION_LIST
    d = rates_data()
    from ..model import MultiAreaModel
    M = MultiAreaModel({})
    pyplot = plt()
    fig, axes = pyplot.subplots(1, 2, figsize=(8, 7), constrained_layout=True)
    from matplotlib.colors import LogNorm
    for ax, key, title in ((axes[0], 'K_prime', "A  with K' (stabilized)"),
                           (axes[1], 'raw_K', 'B  with the raw K')):
        grid = _grid(M, d[key]['rates'])
        im = ax.imshow(grid, aspect='auto', cmap='viridis',
                       norm=LogNorm(vmin=1e-2, vmax=max(np.nanmax(grid), 1.)))
        ax.set_yticks(range(len(M.area_list)))
        ax.set_yticklabels(M.area_list, fontsize=6)
        ax.set_xticks(range(len(POPULATION_LIST)))
        ax.set_xticklabels(POPULATION_LIST, rotation=90)
        ax.set_xlabel('population')
        conv = d[key]['convergence']
        ax.set_title(f"{title}\nmean {np.mean(d[key]['rates']):.2f} spikes/s, "
                     f"{'fixed point' if conv['converged'] else 'NOT converged'}, "
                     f"λmax {d[key]['leading_eigenvalue']:.2f}", fontsize=8)
        fig.colorbar(im, ax=ax, label='stationary rate (spikes/s)')
    axes[0].set_ylabel('area')
    fig.suptitle(f'{PAPER}, Fig. 4: mean-field rates, ground state (χ = 1)', fontsize=9)
    return save(fig, d, out_dir, 'fig4_meanfield_rates')


def fig5_eigenvalues(out_dir) -> list:
    d = eigen_data()
    pyplot = plt()
    fig, (a, b) = pyplot.subplots(1, 2, figsize=(9, 4), constrained_layout=True)
    a.scatter(d['eigenvalues_real'], d['eigenvalues_imag'], s=6, color='0.3')
    a.axvline(1., color='C3', ls='--', label='stability line Re λ = 1')
    a.set_xlabel('Re λ')
    a.set_ylabel('Im λ')
    a.legend()
    a.set_title('A  eigenvalues of the effective connectivity (χ = 1)')
    f = [s['cc_weights_factor'] for s in d['sweep']]
    lam = [s['leading_eigenvalue'] for s in d['sweep']]
    b.plot(f, lam, 'o-', color='C0')
    for x, y, s in zip(f, lam, d['sweep']):
        if not s['converged']:
            b.plot(x, y, 'x', color='C3', ms=9)
    b.axhline(1., color='C3', ls='--')
    b.set_xlabel('cortico-cortical weight factor χ (χ_I = 1 + 10/9 (χ - 1))')
    b.set_ylabel('leading eigenvalue Re λmax')
    b.set_title('B  leading eigenvalue vs χ (× : not converged in T = 50 ms)', fontsize=9)
    fig.suptitle(f'{PAPER}, Fig. 5 (K\' of the model)', fontsize=9)
    return save(fig, d, out_dir, 'fig5_eigenvalues')


def fig7_stabilization(out_dir) -> list:
    from .common import area_ticks
    d = stabilization_data()
    pyplot = plt()
    fig, (a, b) = pyplot.subplots(1, 2, figsize=(10, 4.6), constrained_layout=True,
                                  gridspec_kw={'width_ratios': [1.2, 1]})
    from matplotlib.colors import SymLogNorm
    delta = d['indegree_change_area']
    lim = np.nanmax(np.abs(delta))
    cm = pyplot.get_cmap('RdBu_r').copy()
    cm.set_bad('white')
    im = a.pcolormesh(np.ma.masked_invalid(np.where(delta == 0, np.nan, delta))[::-1], cmap=cm,
                      norm=SymLogNorm(linthresh=1., vmin=-lim, vmax=lim))
    area_ticks(a, d['areas'], 'x')
    area_ticks(a, d['areas'][::-1], 'y')
    a.set_aspect('equal')
    a.set_xlabel('source area')
    a.set_ylabel('target area')
    fig.colorbar(im, ax=a, label="K' − K, area level (synapses per target neuron)")
    a.set_title("A  where the stabilization changes the in-degrees")
    pop = d['relative_change_population']
    values = pop[np.isfinite(pop)]
    shown = values[(values >= -1) & (values <= 1)]
    b.hist(shown, bins=50, color='0.4')
    b.set_yscale('log')
    b.set_xlabel("(K' − K) / K per population pair")
    b.set_ylabel('population pairs')
    b.set_title(f"B  {values.size - shown.size} of {values.size} pairs beyond +100 % not shown;\n"
                f"total synapses {d['total_synapses_raw'] / 1e9:.2f} G → "
                f"{d['total_synapses_stabilized'] / 1e9:.2f} G", fontsize=9)
    fig.suptitle(f"{PAPER}, Figs. 7/8: K' (K_prime_original.npy) vs the raw K", fontsize=9)
    return save(fig, d, out_dir, 'fig7_stabilization')


FIGURES = {'fig4_meanfield_rates': fig4_rates, 'fig5_eigenvalues': fig5_eigenvalues,
           'fig7_stabilization': fig7_stabilization}

from .bistability import FIGURES as _BISTABILITY  # noqa: E402  (Figs. 2, 3, 9)
FIGURES.update(_BISTABILITY)
