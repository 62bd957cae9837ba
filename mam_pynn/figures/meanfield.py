"""Figures of Schuecker, Schmidt et al. 2017 (PLoS Comput Biol 13:e1005179): the mean-field
theory of the MAM and the stabilization of its connectivity, K -> K'.

Figs. 4-8 follow upstream's figures/SchueckerSchmidt2017 scripts panel by panel, computed
from OUR stabilization (``theory.stabilization.cached_stabilization``: the paper's network,
every correction kept, cached). Figs. 4-7 show the corrections themselves, which exist only
for our run; the figures drawn from a final K' (``ground_state_rates``,
``eigenvalues_chi``, and the first column of Fig. 8 beside the other K') use our K' by
default, or upstream's K_prime_original.npy with ``MAM_K_PRIME=upstream`` (``mam figures
meanfield --k-prime upstream``); each names the K' it draws. Figs. 1 and 4A are sketches.
"""
from __future__ import annotations

import os

import numpy as np

from ..theory.stabilization import K_PRIME_CHOICES, UPSTREAM_K_PRIME
from .common import plt, save

PAPER = 'Schuecker, Schmidt et al. 2017, PLoS Comput Biol'
GROUND_STATE = {'cc_weights_factor': 1., 'cc_weights_I_factor': 1.}
#: cortico-cortical weight factors of the eigenvalue sweep (E factor; the I factor scales along)
CC_FACTORS = (1.0, 1.2, 1.4, 1.6, 1.8, 1.9)
#: environment variable choosing the final K' of the figures: 'ours' (default) or 'upstream'
K_PRIME_ENV = 'MAM_K_PRIME'
#: drive factors of Fig. 4B (upstream's) and of the rate matrices of Fig. 4D/E
FIG4_KAPPAS = np.round(np.arange(1., 1.1001, 0.01), 2)
FIG4_RATE_KAPPAS = (1., 1.125)
#: areas of the zoomed panels (upstream's): Fig. 7C and Fig. 8A
FIG7_ZOOM, FIG8_ZOOM = ('FEF', '46'), ('V4', 'CITv')
#: the populations whose outputs form the SLN (supragranular, infragranular)
SUPRA, INFRA = ('23E',), ('5E', '6E')
#: clustering of the intra-areal changes (Fig. 8B): complete linkage cut at this distance
CLUSTER_CUT = 0.7
RATE_RANGE = (1e-2, 5e2)          # spikes/s, upstream's colour range of the rate matrices


# ------------------------------------------------------------------ the matrices drawn

def k_prime_choice() -> str:
    """Which final K' the figures draw first: $MAM_K_PRIME, 'ours' (default) or 'upstream'."""
    choice = os.environ.get(K_PRIME_ENV, 'ours') or 'ours'
    if choice not in K_PRIME_CHOICES:
        raise ValueError(f"{K_PRIME_ENV}={choice!r}: must be one of {', '.join(K_PRIME_CHOICES)}")
    return choice


def stabilization():
    """Our stabilization of the paper's network (cached; about a minute the first time)."""
    from ..theory.stabilization import cached_stabilization
    return cached_stabilization()


def k_primes(st=None) -> list:
    """[(name, label, K'), ...]: the chosen K' first, then the other."""
    from ..data import data_file
    st = stabilization() if st is None else st
    ours = ('ours', f"our K' ({len(st['f_low'])} corrections aiming at f5 = "
                    f"{st['settings']['target'] + st['settings']['margin']:g})", st['K_prime'])
    upstream = ('upstream', f"upstream's K' ({UPSTREAM_K_PRIME})",
                np.load(data_file(UPSTREAM_K_PRIME)))
    return [ours, upstream] if k_prime_choice() == 'ours' else [upstream, ours]


def _problem():
    from ..theory.stabilization import STABILIZATION_THEORY, _Problem, paper_network
    return _Problem(paper_network(), STABILIZATION_THEORY)


def _model(**connection_params):
    from ..model import MultiAreaModel
    return MultiAreaModel({'connection_params': connection_params})


def area_order(M) -> dict:
    """Areas sorted by architectural type, highest first (upstream's layout), with types."""
    from ..anatomy import load_raw_data, process_raw_data
    arch = process_raw_data(load_raw_data())['architecture_completed']
    areas = sorted(M.area_list, key=lambda a: (-arch[a], M.area_list.index(a)))
    return {'areas': areas, 'architectural_type': [int(arch[a]) for a in areas]}


def pop_grid(M, vector, areas) -> np.ndarray:
    """(8 populations, areas) matrix of a population vector; NaN where an area lacks one."""
    from ..params import POPULATION_LIST
    out = np.full((len(POPULATION_LIST), len(areas)), np.nan)
    for k, name in enumerate(M.structure_vec):
        area, pop = name.split('-')
        out[POPULATION_LIST.index(pop), areas.index(area)] = vector[k]
    return out


def _pop_list():
    from ..params import POPULATION_LIST
    return list(POPULATION_LIST)


def _pops(M):
    return np.array([s.split('-')[1] for s in M.structure_vec])


def _area_of(M):
    return np.array([s.split('-')[0] for s in M.structure_vec])


def area_level(M, K) -> np.ndarray:
    """Upstream's area-level in-degrees (areas x areas+1, the last column external): the
    synapses from each source area per neuron of the target area."""
    areas = list(M.area_list)
    onehot = (_area_of(M)[:, None] == np.array(areas)[None, :]).astype(float)
    N = np.asarray(M.N_vec, float)
    syn = np.asarray(K, float) * N[:, None]
    ext = np.asarray(M.K_matrix, float)[:, -1] * N
    per_area = onehot.T @ N
    return np.column_stack([onehot.T @ syn @ onehot, onehot.T @ ext]) / per_area[:, None]


# ------------------------------------------------------------------ data

def fig4_data() -> dict:
    """Fig. 4B-E: the raw network's rates from zero for drive factors kappa (B), the runs
    just below and above the transition and the pseudo-time speed of their mean rate with
    its minima (C), and the rates at kappa = 1 and 1.125 (D, E)."""
    from ..theory.stabilization import velocity, velocity_minima
    st = stabilization()
    problem = _problem()
    dt = problem.theory.params['dt']
    f_low, f_high = float(st['f_low'][0]), float(st['f_high'][0])
    kappas = np.r_[FIG4_KAPPAS, FIG4_RATE_KAPPAS[1], f_low, f_high]
    traj = problem.run(st['K_raw'], kappas)
    low, high = traj[:, -2], traj[:, -1]
    v_low, v_high = velocity(low, dt), velocity(high, dt)
    final = {k: traj[:, list(kappas).index(k), -1] for k in FIG4_RATE_KAPPAS}
    M = problem.theory.network
    order = area_order(M)
    return {'kappas': FIG4_KAPPAS, 'f_low': f_low, 'f_high': f_high, 'dt': dt,
            'times': np.arange(traj.shape[-1]) * dt,
            'mean_rate': traj[:, :len(FIG4_KAPPAS)].mean(axis=0),
            'mean_rate_low': low.mean(axis=0), 'mean_rate_high': high.mean(axis=0),
            'velocity_low': v_low, 'velocity_high': v_high,
            'minima_low': velocity_minima(v_low), 'minima_high': velocity_minima(v_high),
            't_unstable_fixed_point': float(st['t_seed'][0]),
            'unstable_fixed_point_mean_rate': float(st['saddle'][0].mean()),
            **order, 'populations': _pop_list(),
            'rates': {str(k): pop_grid(M, final[k], order['areas']) for k in FIG4_RATE_KAPPAS}}


def fig5_data() -> dict:
    """Fig. 5: the eigenvalues of the effective connectivity at each correction's unstable
    fixed point (A), the contribution eta_l of every eigendirection to the fixed point's
    shift against the in-degree change it alone would need, first correction (B), and the
    critical right eigenvector of each correction (C...)."""
    from ..theory.stabilization import direction_change, linearization
    st = stabilization()
    problem = _problem()
    M = problem.theory.network
    order = area_order(M)
    aim = st['settings']['target'] + st['settings']['margin']
    eigen, vectors = [], []
    for K, f5, nu in zip(st['K'], st['f_low'], st['saddle']):
        lin = linearization(problem, K, nu, f5, aim)
        eigen.append(lin['eigenvalues'])
        u = np.real(lin['right'][:, 0])
        u = u * np.sign(u[np.argmax(np.abs(u))])   # the sign of an eigenvector is free
        vectors.append(pop_grid(M, u, order['areas']))
        if len(eigen) == 1:
            first, nu1, K1 = lin, nu, K
    # panel B: first correction; eta_l = -a_l/(1 - lambda_l) (u_l . dnu*) / |dnu*|^2 (Eq. 13)
    lam, u, v = first['eigenvalues'], first['right'], first['left']
    d_nu_star = np.linalg.solve(np.eye(len(lam)) - first['G'], first['d_bar_nu'])
    a = v @ first['d_bar_nu']
    eta = -a / (1. - lam) * (u.T @ d_nu_star) / (d_nu_star @ d_nu_star)
    one = lam.imag >= 0                                  # one point per complex pair
    sum_dK = np.array([np.abs(np.maximum(K1 + np.real(direction_change(first, nu1, l)), 0.) - K1
                              ).sum() for l in np.flatnonzero(one)])
    return {'eigenvalues_real': [e.real for e in eigen], 'eigenvalues_imag': [e.imag for e in eigen],
            'critical_eigenvalue': [float(e[0].real) for e in eigen],
            'eta_abs': np.abs(np.real(eta[one])), 'eta_sum': [eta.sum().real, eta.sum().imag],
            'relative_in_degree_change': sum_dK / K1.sum(), 'critical_index': 0,
            'critical_eigenvectors': vectors, **order, 'populations': _pop_list()}


def fig6_data() -> dict:
    """Fig. 6: the unstable fixed point of each correction (rates per area and population),
    with the residual |Phi(nu) - nu| and critical eigenvalue."""
    st = stabilization()
    M = _problem().theory.network
    order = area_order(M)
    return {'rates': [pop_grid(M, nu, order['areas']) for nu in st['saddle']],
            'f_low': st['f_low'], 'residual_hz': st['residual'],
            'critical_eigenvalue': np.real(st['eigenvalue']),
            'mean_rate': [float(nu.mean()) for nu in st['saddle']],
            **order, 'populations': _pop_list()}


def fig7_data() -> dict:
    """Fig. 7: (A) the mean 5E/6E rate at the end of the runs against the drive factor,
    the stabilization's coarse scans before each correction and with the final K', and the
    other K' on the same grid; (B) area-level change of the first correction relative to
    the target area's total in-degree; (C) its change per population pair of FEF and 46
    relative to the target population's in-degree; (D) the later corrections' change per
    source area and population, relative."""
    st = stabilization()
    problem = _problem()
    M = problem.theory.network
    order = area_order(M)
    Ks = list(st['K']) + [st['K_prime']]
    other = [k for k in k_primes(st) if k[0] == 'upstream'][0]
    kappa = st['scan_kappa']
    other_curve = problem.final(other[2], kappa)[problem.is_5E | problem.is_6E].mean(axis=0)
    K0, K1, K_end = Ks[0], Ks[1], Ks[-1]
    idx = [M.area_list.index(a) for a in order['areas']]
    A0, A1 = area_level(M, K0), area_level(M, K1)
    area_change = ((A1 - A0)[:, :-1] / A1.sum(axis=1)[:, None])[np.ix_(idx, idx)]
    area = _area_of(M)
    zoom = np.flatnonzero(np.isin(area, FIG7_ZOOM))
    zoom = zoom[np.argsort([FIG7_ZOOM.index(a) for a in area[zoom]], kind='stable')]
    zoom_change = (K1 - K0)[np.ix_(zoom, zoom)] / K0[zoom].sum(axis=1)[:, None]
    with np.errstate(divide='ignore', invalid='ignore'):
        source = (K_end - K1).sum(axis=0) / K1.sum(axis=0)
    return {'kappas': kappa, 'mean_rate_5E_6E': st['scan_rate_5E_6E'],
            'mean_rate_5E_6E_other': other_curve, 'other': other[1],
            'f_low': st['f_low'], 'area_change_first': area_change,
            'zoom_areas': FIG7_ZOOM, 'zoom_populations': [M.structure_vec[k] for k in zoom],
            'zoom_change_first': zoom_change,
            'source_change_later': pop_grid(M, source, order['areas']),
            **order, 'populations': _pop_list()}


def fig8_columns(M, K_raw, K, proc) -> dict:
    """Fig. 8's measures of one K' against the raw K (upstream's definitions)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist, squareform
    areas = list(M.area_list)
    area, pops = _area_of(M), _pops(M)
    dev = K - K_raw
    same = area[:, None] == area[None, :]
    # A: intra-areal change per source population, relative, averaged over areas
    rel = []
    for p in _pop_list():
        per_area = []
        for a in areas:
            m = same & (area[None, :] == a) & (pops[None, :] == p)
            if K_raw[m].sum() > 0:
                per_area.append(dev[m].sum() / K_raw[m].sum())
        rel.append(np.mean(per_area))
    zoom = np.flatnonzero(np.isin(area, FIG8_ZOOM))
    zoom = zoom[np.argsort([FIG8_ZOOM.index(a) for a in area[zoom]], kind='stable')]
    zoom_change = dev[np.ix_(zoom, zoom)] / K_raw[zoom].sum(axis=1)[:, None]
    # B: intra-areal change patterns (8 x 8 per area, rows relative to the target's
    # in-degree; TH's 6 x 6 not normalised and padded with zeros, as upstream's), correlated
    patterns = []
    for a in areas:
        k = np.flatnonzero(area == a)
        m = dev[np.ix_(k, k)]
        if len(k) == 8:
            m = m / K_raw[k].sum(axis=1)[:, None]
        else:
            full = np.zeros((8, 8))
            keep = [_pop_list().index(p) for p in pops[k]]
            full[np.ix_(keep, keep)] = m
            m = full
        patterns.append(m.ravel())
    D = np.clip(pdist(np.array(patterns), metric='correlation'), 0, 2)
    clusters = fcluster(linkage(D, method='complete'), CLUSTER_CUT, criterion='distance')
    order = np.argsort(clusters, kind='stable')
    # C: FLN before and after (area-level in-degree over the total, external included)
    A0, A1 = area_level(M, K_raw), area_level(M, K)
    fln0, fln1, pairs = [], [], []
    for i, a in enumerate(areas):
        for j, b in enumerate(areas):
            if a != b and b in proc['FLN_completed'][a]:
                fln0.append(A0[i, j] / A0[i].sum())
                fln1.append(A1[i, j] / A1[i].sum())
                pairs.append(f'{a}-{b}')
    # D: SLN of every area pair from the synapse numbers onto all target populations
    N = np.asarray(M.N_vec, float)
    dsln = []
    for a in areas:
        for b in areas:
            if a == b:
                continue
            t, s = area == a, area == b
            sup = lambda KK, P: (KK[np.ix_(t, s & np.isin(pops, P))] * N[t][:, None]).sum()  # noqa: E731
            s0, i0, s1, i1 = sup(K_raw, SUPRA), sup(K_raw, INFRA), sup(K, SUPRA), sup(K, INFRA)
            if s0 + i0 > 0 and s1 + i1 > 0:
                dsln.append(s1 / (s1 + i1) - s0 / (s0 + i0))
    fln0, fln1 = np.array(fln0), np.array(fln1)
    pos = (fln0 > 0) & (fln1 > 0)
    return {'intra_change_by_source': rel, 'zoom_change': zoom_change,
            'zoom_populations': [M.structure_vec[k] for k in zoom],
            'correlation': (1. - squareform(D))[np.ix_(order, order)],
            'clusters': clusters[order], 'cluster_areas': [areas[k] for k in order],
            'fln_raw': fln0, 'fln_stabilized': fln1, 'fln_pairs': pairs,
            'fln_log_correlation': float(np.corrcoef(np.log10(fln0[pos]), np.log10(fln1[pos]))[0, 1]),
            'delta_sln': np.array(dsln), 'relative_change': float(np.linalg.norm(dev) / np.linalg.norm(K_raw))}


def fig8_data() -> dict:
    from ..anatomy import load_raw_data, process_raw_data
    st = stabilization()
    M = _problem().theory.network
    proc = process_raw_data(load_raw_data())
    arch = proc['architecture_completed']
    cols = []
    for name, label, K in k_primes(st):
        c = fig8_columns(M, st['K_raw'], K, proc)
        c.update(name=name, label=label,
                 cluster_architecture=[int(arch[a]) for a in c['cluster_areas']])
        cols.append(c)
    ours = st['K_prime']
    orig = [K for n, _, K in k_primes(st) if n == 'upstream'][0]
    corr = np.corrcoef((ours - st['K_raw']).ravel(), (orig - st['K_raw']).ravel())[0, 1]
    return {'columns': cols, 'populations': _pop_list(), 'change_correlation': float(corr)}


def ground_state_data() -> dict:
    """Stationary rates of the model's ground state (its defaults with chi = 1) with each
    K' and with the raw K, and whether each reached a fixed point."""
    from ..theory import Theory
    st = stabilization()
    out = {'panels': []}
    for name, label, K in k_primes(st) + [('raw', 'the raw K', None)]:
        M = _model(K_stable=_k_stable(st, name), **GROUND_STATE)
        theory = Theory(M, {})
        _, traj, times = theory.integrate_siegert(full_output=True)
        out['panels'].append({'name': name, 'label': label, 'rates': traj[:, -1],
                              'convergence': theory.convergence(traj, times),
                              'leading_eigenvalue': theory.leading_eigenvalue(traj[:, -1]).real})
    out['populations'] = list(M.structure_vec)
    out['areas'] = list(M.area_list)
    return out


def _k_stable(st, name):
    """The K_stable parameter that gives the model K' ``name`` ('ours', 'upstream', 'raw')."""
    return {'ours': str(st['npy']), 'upstream': UPSTREAM_K_PRIME, 'raw': None}[name]


def eigen_data() -> dict:
    """Eigenvalues of the effective connectivity at the ground-state fixed point with the
    chosen K', and the leading eigenvalue along cortico-cortical weight factors with each K'."""
    from ..theory import Theory
    st = stabilization()
    sweeps = []
    for name, label, _ in k_primes(st):
        sweep = []
        for f in CC_FACTORS:
            fi = 1. + (f - 1.) * 10 / 9
            theory = Theory(_model(cc_weights_factor=f, cc_weights_I_factor=fi,
                                   K_stable=_k_stable(st, name)), {})
            _, traj, times = theory.integrate_siegert(full_output=True)
            rates = traj[:, -1]
            sweep.append({'cc_weights_factor': f, 'cc_weights_I_factor': fi,
                          'leading_eigenvalue': theory.leading_eigenvalue(rates).real,
                          'mean_rate': float(rates.mean()),
                          'converged': theory.convergence(traj, times)['converged']})
        sweeps.append({'name': name, 'label': label, 'sweep': sweep})
    theory = Theory(_model(K_stable=_k_stable(st, sweeps[0]['name']), **GROUND_STATE), {})
    ev = np.linalg.eigvals(theory.gain_matrix(theory.stationary_rates()))
    return {'k_prime': sweeps[0]['label'], 'eigenvalues_real': ev.real,
            'eigenvalues_imag': ev.imag, 'sweeps': sweeps}


def stabilization_summary() -> dict:
    """Every correction of our stabilization (the table of bench_stabilization)."""
    st = stabilization()
    return {'corrections': [
        {'transition_f5': float(st['f_low'][i]), 'transition_bracket': [float(st['f_low'][i]),
                                                                        float(st['f_high'][i])],
         'unstable_fixed_point_mean_rate': float(st['saddle'][i].mean()),
         'residual_hz': float(st['residual'][i]),
         'critical_eigenvalue': float(np.real(st['eigenvalue'][i])),
         'seed_time': float(st['t_seed'][i]), 'nearest_velocity_minimum': int(st['nearest_minimum'][i]),
         'relative_change': float(st['relative_change'][i])} for i in range(len(st['f_low']))],
        'settings': st['settings'], 'seconds': st['seconds'], 'cache': str(st['path']),
        'relative_change_total': float(np.linalg.norm(st['K_prime'] - st['K_raw'])
                                       / np.linalg.norm(st['K_raw']))}


# ------------------------------------------------------------------ drawing helpers

def _cmap(name='rates'):
    from matplotlib.colors import LinearSegmentedColormap
    blue, blue2, red2, red = '#1f4e9e', '#7fb2e5', '#f0a47a', '#c0451a'
    colors = [blue, blue2, 'white', red2, red]
    cm = LinearSegmentedColormap.from_list(f'mam_{name}', colors, N=256)
    cm.set_bad('k')
    cm.set_under('0.3')
    return cm


def _arch_axis(ax, d, axis='x'):
    """Area names on ``axis`` (sorted by architectural type) and the type of each block."""
    areas, arch = d['areas'], np.array(d['architectural_type'])
    ticks = np.arange(len(areas)) + 0.5
    bounds = np.flatnonzero(np.diff(arch)) + 1
    if axis == 'x':
        ax.set_xticks(ticks)
        ax.set_xticklabels(areas, rotation=90, fontsize=5)
        for b in bounds:
            ax.axvline(b, color='k', lw=0.6)
        for t in np.unique(arch):
            mid = np.mean(np.flatnonzero(arch == t)) + 0.5
            ax.text(mid, 1.01, str(t), transform=ax.get_xaxis_transform(), ha='center',
                    va='bottom', fontsize=6)
    else:
        ax.set_yticks(ticks)
        ax.set_yticklabels(areas, fontsize=5)
        for b in bounds:
            ax.axhline(b, color='k', lw=0.6)


def _pop_axis(ax, pops, label=True):
    ax.set_yticks(np.arange(len(pops)) + 0.5)
    ax.set_yticklabels([p.replace('23', '2/3') for p in pops] if label else [])
    ax.invert_yaxis()


def _rate_matrix(fig, ax, grid, d, label='rate (spikes/s)', cbar=True):
    from matplotlib.colors import LogNorm
    cm = _cmap()
    im = ax.pcolormesh(np.ma.masked_invalid(grid), cmap=cm,
                       norm=LogNorm(vmin=RATE_RANGE[0], vmax=RATE_RANGE[1]))
    _arch_axis(ax, d)
    _pop_axis(ax, d['populations'])
    if cbar:
        fig.colorbar(im, ax=ax, label=label, extend='min')
    return im


def _signed_matrix(fig, ax, grid, label, lim=None):
    lim = lim or float(np.nanmax(np.abs(grid))) or 1.
    im = ax.pcolormesh(np.ma.masked_invalid(grid), cmap=_cmap('signed'), vmin=-lim, vmax=lim)
    fig.colorbar(im, ax=ax, label=label)
    return im


def _two_columns(n_panels, row_height, top_rows=0):
    """A figure of ``top_rows`` rows and then ``n_panels`` panels two per row (one per
    correction): (figure, gridspec)."""
    rows = top_rows + (n_panels + 1) // 2
    fig = plt().figure(figsize=(10, row_height * rows + 0.4), constrained_layout=True)
    return fig, fig.add_gridspec(rows, 2)


# ------------------------------------------------------------------ figures

def fig4_meanfield_mam(out_dir) -> list:
    d = fig4_data()
    pyplot = plt()
    fig = pyplot.figure(figsize=(10, 7.2), constrained_layout=True)
    gs = fig.add_gridspec(2, 2, height_ratios=[1, 1.05])
    b, c = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
    t = np.asarray(d['times'])
    greys = pyplot.get_cmap('Greys')(np.linspace(0.25, 1., len(d['kappas'])))
    for k, (kappa, m) in enumerate(zip(d['kappas'], d['mean_rate'])):
        b.plot(t, m, color=greys[k], lw=0.9)
    b.plot(t, d['mean_rate_low'], color='C0', lw=1.6, label=f"κ = {d['f_low']:.8f} (stays low)")
    b.plot(t, d['mean_rate_high'], color='C3', lw=1.6, label=f"κ = {d['f_high']:.8f} (escapes)")
    t_u = d['t_unstable_fixed_point']
    b.axvline(t_u, color='k', ls='--', lw=0.8)
    b.set(yscale='log', xlabel='pseudo-time s (ms)', ylabel='population-averaged rate ⟨ν⟩ (spikes/s)',
          ylim=(1., 500.), xlim=(0., t[-1]))
    sm = pyplot.cm.ScalarMappable(cmap=pyplot.matplotlib.colors.ListedColormap(greys),
                                  norm=pyplot.Normalize(d['kappas'][0], d['kappas'][-1]))
    fig.colorbar(sm, ax=b, label='drive factor κ of 5E (grey runs)', shrink=0.8)
    b.legend(loc='upper right', fontsize=7)
    b.set_title('B  runs from zero rates, raw K', loc='left')
    for key, col in (('low', 'C0'), ('high', 'C3')):
        v = np.asarray(d[f'velocity_{key}'])
        c.plot(t[:-1], v, color=col, lw=1.2)
        mins = np.asarray(d[f'minima_{key}'], int)
        c.plot(t[mins], v[mins], 'v', color=col, ms=6, mfc='none')
    c.axvline(t_u, color='k', ls='--', lw=0.8, label=f'unstable fixed point seed (s = {t_u:.2f} ms; '
              f"⟨ν*⟩ = {d['unstable_fixed_point_mean_rate']:.2f} spikes/s)")
    c.set(yscale='log', xlabel='pseudo-time s (ms)', ylabel='speed |d⟨ν⟩/ds| (spikes/s per ms)',
          ylim=(1e-5, 1e3), xlim=(0., t[-1]))
    c.legend(loc='upper right', fontsize=7)
    c.set_title('C  speed of the mean rate; ▽ its minima', loc='left')
    for k, kappa in enumerate(FIG4_RATE_KAPPAS):
        ax = fig.add_subplot(gs[1, k])
        _rate_matrix(fig, ax, np.asarray(d['rates'][str(kappa)], float), d)
        ax.set_title(f"{'DE'[k]}  stationary rates at κ = {kappa} (raw K, s = {t[-1]:g} ms)",
                     loc='left', pad=12)
        ax.set_xlabel('area (architectural type above)')
    fig.suptitle(f"{PAPER}, Fig. 4 B–E (A is a sketch)\nthe paper's network (g = −16, "
                 "rate_ext = 8 spikes/s, χ = 1), drive κ on 5E, 10/3 κ − 7/3 on 6E; exponential "
                 "Euler, dt = 0.01 ms\nD, E: dark grey below 0.01 spikes/s; black: TH has no layer 4",
                 fontsize=9)
    return save(fig, d, out_dir, 'fig4_meanfield_mam')


def fig5_eigenspace(out_dir) -> list:
    d = fig5_data()
    fig, gs = _two_columns(len(d['critical_eigenvectors']), 3.1, top_rows=1)
    a = fig.add_subplot(gs[0, 0])
    markers = 'sov^D<>p'
    for i, (re, im) in enumerate(zip(d['eigenvalues_real'], d['eigenvalues_imag'])):
        a.plot(re, im, markers[i % len(markers)], ms=3.5, mfc='none', color=f'C{i}',
               label=f"correction {i + 1}: λmax = {d['critical_eigenvalue'][i]:.3f}")
    a.axvline(1., color='k', ls='--', lw=0.8)
    a.set(xlabel='Re λ', ylabel='Im λ', title='A  eigenvalues of G at the unstable fixed point')
    a.legend(fontsize=7, loc='lower left')
    b = fig.add_subplot(gs[0, 1])
    x, y = np.asarray(d['relative_in_degree_change']), np.asarray(d['eta_abs'])
    b.plot(x[1:], y[1:], '.', color='k', ms=4, label='other eigendirections')
    b.plot(x[:1], y[:1], 'o', color='C3', ms=6, label='critical eigendirection')
    b.set(xscale='log', xlabel='Σ|δK| / ΣK needed along one direction alone',
          ylabel=r'$|\eta_l|$ (share of the shift δν*)', ylim=(-0.05, 1.05),
          title='B  first correction: each eigendirection')
    b.legend(fontsize=7)
    vecs = d['critical_eigenvectors']
    lim = max(float(np.nanmax(np.abs(np.asarray(v, float)))) for v in vecs)
    for i, v in enumerate(vecs):
        ax = fig.add_subplot(gs[1 + i // 2, i % 2])
        _signed_matrix(fig, ax, np.asarray(v, float), 'component of u₀', lim)
        _arch_axis(ax, d)
        _pop_axis(ax, d['populations'])
        ax.set_title(f"{'CDEFGHIJ'[i]}  critical eigenvector, correction {i + 1}", loc='left', pad=12)
    fig.suptitle(f'{PAPER}, Fig. 5: eigenspace of the effective connectivity G at the unstable '
                 'fixed points of our corrections\neigenvectors of unit length, the sign chosen '
                 'so that the largest component is positive; η_l: one point per complex pair',
                 fontsize=9)
    return save(fig, d, out_dir, 'fig5_eigenspace')


def fig6_unstable_fp(out_dir) -> list:
    d = fig6_data()
    fig, gs = _two_columns(len(d['rates']), 2.9)
    for i, grid in enumerate(d['rates']):
        ax = fig.add_subplot(gs[i // 2, i % 2])
        _rate_matrix(fig, ax, np.asarray(grid, float), d)
        ax.set_title(f"{'ABCDEFGH'[i]}  correction {i + 1}: κ = {d['f_low'][i]:.5f}, "
                     f"⟨ν*⟩ = {d['mean_rate'][i]:.2f} spikes/s, λmax = "
                     f"{d['critical_eigenvalue'][i]:.3f}", loc='left', fontsize=8, pad=12)
    fig.suptitle(f'{PAPER}, Fig. 6: the unstable fixed points ν* of our corrections '
                 f'(max |Φ(ν*) − ν*| = {max(d["residual_hz"]):.1e} spikes/s)', fontsize=9)
    return save(fig, d, out_dir, 'fig6_unstable_fp')


def fig7_stabilization_analysis(out_dir) -> list:
    d = fig7_data()
    pyplot = plt()
    fig = pyplot.figure(figsize=(11, 8.4), constrained_layout=True)
    gs = fig.add_gridspec(2, 2)
    a = fig.add_subplot(gs[0, 0])
    curves = d['mean_rate_5E_6E']
    shades = np.linspace(0., 0.7, len(curves))
    for i, curve in enumerate(curves):
        label = 'raw K' if i == 0 else (f'after {i} correction' + ('s' if i > 1 else ''))
        a.plot(d['kappas'], curve, '.-', color=str(shades[i]), ms=3, label=label)
    a.plot(d['kappas'], d['mean_rate_5E_6E_other'], '--', color='C3', lw=1, label=d['other'])
    a.axvline(1.2, color='C0', lw=0.8, ls=':', label='target κ = 1.2')
    a.set(yscale='log', xlabel='drive factor κ of 5E (6E: 10/3 κ − 7/3)',
          ylabel='⟨ν⟩ of 5E and 6E at s = 30 ms (spikes/s)')
    a.legend(fontsize=6.5, loc='lower right')
    a.set_title('A  transition to high activity, per correction', loc='left')
    b = fig.add_subplot(gs[0, 1])
    _signed_matrix(fig, b, np.asarray(d['area_change_first'], float)[::-1],
                   'Δ area-level in-degree / total in-degree')
    _arch_axis(b, d)
    b.set_yticks(np.arange(len(d['areas'])) + 0.5)
    b.set_yticklabels(d['areas'][::-1], fontsize=5)
    b.set(xlabel='source area', ylabel='target area')
    b.set_title('B  first correction, area level', loc='left', pad=12)
    c = fig.add_subplot(gs[1, 0])
    zc = np.asarray(d['zoom_change_first'], float)
    _signed_matrix(fig, c, zc[::-1], 'ΔK / in-degree of the target population')
    labels = [p.replace('-23', '-2/3') for p in d['zoom_populations']]
    c.set_xticks(np.arange(len(labels)) + 0.5)
    c.set_xticklabels(labels, rotation=90, fontsize=6)
    c.set_yticks(np.arange(len(labels)) + 0.5)
    c.set_yticklabels(labels[::-1], fontsize=6)
    half = len(labels) // 2
    c.axvline(half, color='k', lw=0.8)
    c.axhline(half, color='k', lw=0.8)
    c.set(xlabel='source population', ylabel='target population')
    c.set_title(f"C  first correction, {' and '.join(d['zoom_areas'])}", loc='left')
    e = fig.add_subplot(gs[1, 1])
    _signed_matrix(fig, e, np.asarray(d['source_change_later'], float),
                   'Σ ΔK / Σ K over all targets')
    _arch_axis(e, d)
    _pop_axis(e, d['populations'])
    e.set_xlabel('source area')
    e.set_title('D  corrections 2… (K\' − K after the first), per source', loc='left', pad=12)
    fig.suptitle(f"{PAPER}, Fig. 7: our stabilization's corrections", fontsize=9)
    return save(fig, d, out_dir, 'fig7_stabilization_analysis')


def fig8_conn_analysis(out_dir) -> list:
    d = fig8_data()
    pyplot = plt()
    fig = pyplot.figure(figsize=(11, 13), constrained_layout=True)
    gs = fig.add_gridspec(4, 2, height_ratios=[0.7, 1.2, 1.3, 1.1])
    cols = d['columns']
    bar = fig.add_subplot(gs[0, :])
    x = np.arange(len(d['populations']))
    for k, col in enumerate(cols):
        bar.bar(x + (k - 0.5) * 0.38, col['intra_change_by_source'], width=0.38,
                color=('C0', 'C3')[k], label=col['label'])
    bar.axhline(0, color='k', lw=0.6)
    bar.set_xticks(x)
    bar.set_xticklabels([p.replace('23', '2/3') for p in d['populations']])
    bar.set(xlabel='source population (within the area)', ylabel='mean relative change of the\n'
            'intra-areal in-degrees')
    bar.legend(fontsize=7)
    bar.set_title(f"A  change from the raw K (correlation of the two changes: "
                  f"{d['change_correlation']:.3f})", loc='left')
    lim = max(float(np.abs(np.asarray(c['zoom_change'])).max()) for c in cols)
    for k, col in enumerate(cols):
        ax = fig.add_subplot(gs[1, k])
        _signed_matrix(fig, ax, np.asarray(col['zoom_change'], float)[::-1],
                       'ΔK / in-degree of the target population', lim)
        labels = [p.replace('-23', '-2/3') for p in col['zoom_populations']]
        ax.set_xticks(np.arange(len(labels)) + 0.5)
        ax.set_xticklabels(labels, rotation=90, fontsize=6)
        ax.set_yticks(np.arange(len(labels)) + 0.5)
        ax.set_yticklabels(labels[::-1], fontsize=6)
        ax.axvline(len(labels) // 2, color='k', lw=0.8)
        ax.axhline(len(labels) // 2, color='k', lw=0.8)
        ax.set_title(f"A  {col['label']}: {' and '.join(FIG8_ZOOM)}", loc='left', fontsize=8)
        ax.set(xlabel='source population', ylabel='target population')
        bx = fig.add_subplot(gs[2, k])
        corr = np.asarray(col['correlation'], float)
        im = bx.pcolormesh(corr[::-1], cmap=_cmap('signed'), vmin=-1, vmax=1)
        fig.colorbar(im, ax=bx, label='Pearson r of the intra-areal changes')
        names = [f"{a} ({t}, c{c})" for a, t, c in zip(col['cluster_areas'],
                                                       col['cluster_architecture'], col['clusters'])]
        bx.set_xticks(np.arange(len(names)) + 0.5)
        bx.set_xticklabels(names, rotation=90, fontsize=4.5)
        bx.set_yticks(np.arange(len(names)) + 0.5)
        bx.set_yticklabels(names[::-1], fontsize=4.5)
        bx.set_title(f"B  {col['label']}: {len(set(col['clusters']))} clusters "
                     "(area (arch. type, cluster))", loc='left', fontsize=8)
    c = fig.add_subplot(gs[3, 0])
    for k, col in enumerate(cols):
        c.loglog(col['fln_raw'], np.asarray(col['fln_stabilized'], float), '.', ms=3,
                 color=('C0', 'C3')[k], label=f"{col['label']} (r of log = "
                 f"{col['fln_log_correlation']:.3f})")
    c.plot([1e-4, 1], [1e-4, 1], color='0.5', lw=0.8)
    c.set(xlim=(1e-3, 1), ylim=(1e-3, 1), xlabel='FLN with the raw K', ylabel="FLN with K'")
    c.legend(fontsize=6.5)
    c.set_title('C  fraction of the in-degree from each source area', loc='left')
    e = fig.add_subplot(gs[3, 1])
    bins = np.linspace(-1, 1, 51)
    for k, col in enumerate(cols):
        e.hist(col['delta_sln'], bins=bins, histtype='step', lw=1.3, color=('C0', 'C3')[k],
               label=f"{col['label']}: mean {np.mean(col['delta_sln']):+.3f}")
    e.set(xlabel="δSLN = SLN(K') − SLN(K)", ylabel='area pairs', yscale='log')
    e.set_ylim(top=e.get_ylim()[1] * 8)          # room for the legend above the bars
    e.legend(fontsize=6.5, loc='upper left')
    e.set_title('D  change of the SLN per area pair', loc='left')
    fig.suptitle(f"{PAPER}, Fig. 8: where K' differs from the raw K\n{cols[0]['label']} "
                 f"(blue) beside {cols[1]['label']} (red)", fontsize=9)
    return save(fig, d, out_dir, 'fig8_conn_analysis')


def ground_state_rates(out_dir) -> list:
    from ..params import POPULATION_LIST
    from matplotlib.colors import LogNorm
    d = ground_state_data()
    M = _model(**GROUND_STATE)
    pyplot = plt()
    fig, axes = pyplot.subplots(1, 3, figsize=(11, 7), constrained_layout=True)
    for k, (ax, panel) in enumerate(zip(axes, d['panels'])):
        grid = np.full((len(M.area_list), len(POPULATION_LIST)), np.nan)
        for j, name in enumerate(M.structure_vec):
            area, pop = name.split('-')
            grid[M.area_list.index(area), POPULATION_LIST.index(pop)] = panel['rates'][j]
        im = ax.imshow(grid, aspect='auto', cmap='viridis', norm=LogNorm(vmin=1e-2, vmax=300.))
        ax.set_yticks(range(len(M.area_list)))
        ax.set_yticklabels(M.area_list, fontsize=6)
        ax.set_xticks(range(len(POPULATION_LIST)))
        ax.set_xticklabels([p.replace('23', '2/3') for p in POPULATION_LIST], rotation=90)
        ax.set_xlabel('population (white: none in TH)')
        conv = panel['convergence']
        ax.set_title(f"{'ABC'[k]}  {panel['label']}\nmean {np.mean(panel['rates']):.2f} spikes/s, "
                     f"{'fixed point' if conv['converged'] else 'NOT converged'}, "
                     f"λmax {panel['leading_eigenvalue']:.2f}", fontsize=7.5)
    fig.colorbar(im, ax=axes, label='stationary rate (spikes/s)', shrink=0.6)
    axes[0].set_ylabel('area')
    fig.suptitle(f"{PAPER}: mean-field rates of the model's ground state (χ = 1)", fontsize=9)
    return save(fig, d, out_dir, 'ground_state_rates')


def eigenvalues_chi(out_dir) -> list:
    d = eigen_data()
    pyplot = plt()
    fig, (a, b) = pyplot.subplots(1, 2, figsize=(9, 4), constrained_layout=True)
    a.scatter(d['eigenvalues_real'], d['eigenvalues_imag'], s=6, color='0.3')
    a.axvline(1., color='C3', ls='--', label='stability line Re λ = 1')
    a.set(xlabel='Re λ', ylabel='Im λ')
    a.legend()
    a.set_title('A  eigenvalues of the effective connectivity (χ = 1)')
    for k, sw in enumerate(d['sweeps']):
        f = [s['cc_weights_factor'] for s in sw['sweep']]
        lam = [s['leading_eigenvalue'] for s in sw['sweep']]
        b.plot(f, lam, 'o-' if k == 0 else 's--', color=('C0', 'C1')[k], label=sw['label'],
               mfc='none' if k else None)
        for xx, y, s in zip(f, lam, sw['sweep']):
            if not s['converged']:
                b.plot(xx, y, 'x', color='C3', ms=9)
    b.legend(fontsize=7)
    b.axhline(1., color='C3', ls='--')
    b.set(xlabel='cortico-cortical weight factor χ (χ_I = 1 + 10/9 (χ − 1))',
          ylabel='leading eigenvalue Re λmax')
    b.set_title('B  leading eigenvalue vs χ (× : not converged in T = 50 ms)', fontsize=9)
    fig.suptitle(f"{PAPER}: the model's fixed point (A with {d['k_prime']})", fontsize=9)
    return save(fig, d, out_dir, 'eigenvalues_chi')


FIGURES = {'fig4_meanfield_mam': fig4_meanfield_mam, 'fig5_eigenspace': fig5_eigenspace,
           'fig6_unstable_fp': fig6_unstable_fp,
           'fig7_stabilization_analysis': fig7_stabilization_analysis,
           'fig8_conn_analysis': fig8_conn_analysis, 'ground_state_rates': ground_state_rates,
           'eigenvalues_chi': eigenvalues_chi}

from .bistability import FIGURES as _BISTABILITY  # noqa: E402  (Figs. 2, 3, 9)
#: the paper's figures in its order (Figs. 2-9), then ours
FIGURES = dict(sorted({**FIGURES, **_BISTABILITY}.items(), key=lambda kv: (not kv[0].startswith('fig'), kv[0])))


def main(argv=None) -> int:
    """``python -m mam_pynn.figures.meanfield OUT.json``: run (or read from the cache) our
    stabilization and write every correction to OUT.json (the workflow's first step)."""
    import sys
    from ..io import atomic_write_json
    from .common import jsonable
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].endswith('.json'):
        print("usage: python -m mam_pynn.figures.meanfield OUT.json", file=sys.stderr)
        return 2
    summary = stabilization_summary()
    atomic_write_json(args[0], jsonable(summary))
    print(f"stabilization: {len(summary['corrections'])} corrections, |K' - K|/|K| = "
          f"{summary['relative_change_total']:.4f} (computed in {summary['seconds']:.0f} s; "
          f"cache {summary['cache']}); wrote {args[0]}", flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
