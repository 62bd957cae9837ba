"""Figures of Schmidt, Bakker et al. 2018 (Brain Struct Funct 223:1409): the anatomy and
connectivity of the model, recomputed from the raw data by our own stages.

Each ``figN_*`` function computes its data (a dict: every number it plots), draws the
figure and writes PNG, PDF and JSON (``common.save``). The panels follow upstream's
figures/Schmidt2018 scripts; differences are stated on the figure and in figures/README.md.
"""
from __future__ import annotations

import numpy as np

from .common import area_ticks, plt, save

PAPER = 'Schmidt, Bakker et al. 2018, Brain Struct Funct'


def _inputs():
    from ..anatomy import load_raw_data, process_raw_data
    from ..model import MultiAreaModel
    raw = load_raw_data()
    return raw, process_raw_data(raw), MultiAreaModel({})


# ------------------------------------------------------------------ data

def anatomy_data(raw, proc, areas) -> dict:
    """Fig. 2: neuron densities per architectural type; total thickness vs log density."""
    from ..anatomy import _linear_fit
    density = np.array([proc['neuronal_densities'][a]['overall'] for a in areas])
    arch = np.array([proc['architecture_completed'][a] for a in areas])
    thick_data = np.array([raw['total_thickness_data'][a] for a in areas], dtype=float)
    known = np.isfinite(thick_data)
    slope, intercept = _linear_fit(np.log10(density[known]), thick_data[known])
    return {'areas': areas, 'density_per_mm3': density, 'architectural_type': arch,
            'thickness_data_um': thick_data,
            'thickness_model_um': np.array([proc['total_thicknesses'][a] for a in areas]),
            'thickness_fit': {'slope_um_per_decade': slope, 'intercept_um': intercept}}


def connectivity_data(raw, proc, M) -> dict:
    """Fig. 4: CoCoMac connections of the model, FLN data, FLN vs distance, completed FLN."""
    areas = list(M.area_list)
    n = len(areas)
    cocomac = np.zeros((n, n))
    fln_data = np.full((n, n), np.nan)
    fln_completed = np.full((n, n), np.nan)
    for i, target in enumerate(areas):
        for j, source in enumerate(areas):
            if M.K_areas[target][source] > 0 and source in raw['cocomac_data'].get(target, {}):
                cocomac[i, j] = 1.
            if source in proc['FLN_Data_FV91'].get(target, {}):
                fln_data[i, j] = proc['FLN_Data_FV91'][target][source]
            value = proc['FLN_completed'].get(target, {}).get(source)
            if value and source != target:
                fln_completed[i, j] = value
    dist = np.asarray(M.distance_matrix, float)
    measured = np.isfinite(fln_data) & (fln_data > 0)
    d, f = dist[measured], fln_data[measured]
    slope, intercept = np.polyfit(d, np.log(f), 1)   # FLN ~ exp(-lambda d): log-linear fit
    return {'areas': areas, 'cocomac': cocomac, 'fln_data': fln_data,
            'fln_completed': fln_completed, 'distance_mm': d, 'fln_measured': f,
            'fln_distance_fit': {'decay_per_mm': -slope, 'log_intercept': intercept}}


def sln_data() -> dict:
    """Fig. 5: SLN vs log ratio of neuron densities, and the beta-binomial probit fit."""
    from ..anatomy import SLN_FIT_PUBLISHED, fit_sln
    from ..data.raw import load_sln_fit_data
    table = load_sln_fit_data()
    fit = fit_sln(table['S'], table['I'], table['log_density_ratio'])
    S, I = np.asarray(table['S'], float), np.asarray(table['I'], float)
    return {'log_density_ratio': np.asarray(table['log_density_ratio'], float),
            'SLN': S / (S + I), 'labelled_neurons': S + I,
            'fit': fit, 'published_fit': {'intercept': SLN_FIT_PUBLISHED[0],
                                          'slope': SLN_FIT_PUBLISHED[1]}}


def connection_probability(syn, n_pre, n_post):
    """p = 1 - (1 - 1/(N_pre N_post))^S: the chance that a given pair is connected at least
    once when S synapses are drawn independently among the N_pre N_post pairs."""
    pairs = np.outer(n_post, n_pre)
    with np.errstate(divide='ignore', invalid='ignore'):
        p = -np.expm1(syn * np.log1p(-1. / pairs))
    return np.where(pairs > 0, p, 0.)


def population_data(M) -> dict:
    """Fig. 6: population-level connection probabilities and in-degrees (full model)."""
    n = len(M.N_vec)
    syn = np.asarray(M.syn_matrix, float)[:, :n]
    return {'populations': list(M.structure_vec),
            'connection_probability': connection_probability(syn, M.N_vec, M.N_vec),
            'indegree': np.asarray(M.K_matrix, float)[:, :n]}


def area_outdegrees(M) -> tuple[list, np.ndarray]:
    """Area-level out-degrees as upstream's Fig. 7 uses them: D[t, s] = synapses from area s
    onto area t per neuron of s, from the population-level synapse counts."""
    areas = list(M.area_list)
    n = len(M.N_vec)
    syn = np.asarray(M.K_matrix, float)[:, :n] * np.asarray(M.N_vec, float)[:, None]
    index = {a: [i for i, name in enumerate(M.structure_vec) if name.split('-')[0] == a]
             for a in areas}
    D = np.array([[syn[np.ix_(index[t], index[s])].sum() / M.N[s]['total'] for s in areas]
                  for t in areas])
    return areas, D


def community_data(M, seed: int = 1) -> dict:
    """Fig. 7: communities of the area-level graph by the map equation (infomap, directed,
    as upstream: edges source -> target weighted by the relative out-degree, each target's
    row normalised over its sources, self-connections removed). Without the infomap
    package, networkx's Louvain method stands in and the figure says so."""
    areas, D = area_outdegrees(M)
    W = D / D.sum(axis=1, keepdims=True)
    np.fill_diagonal(W, 0.)
    try:
        import infomap
        im = infomap.Infomap(f'--directed --two-level --silent --seed {seed}')
        for i in range(len(areas)):
            for j in range(len(areas)):
                if W[i, j] > 0:
                    im.add_link(j, i, float(W[i, j]))   # from source j to target i
        im.run()
        modules = im.get_modules()
        membership = [modules[i] - 1 for i in range(len(areas))]
        method = f'map equation (infomap {infomap.__version__})'
    except ImportError:
        import networkx as nx
        G = nx.DiGraph()
        G.add_weighted_edges_from((areas[j], areas[i], float(W[i, j]))
                                  for i in range(len(areas)) for j in range(len(areas)) if W[i, j] > 0)
        parts = nx.community.louvain_communities(G, weight='weight', seed=seed)
        lookup = {a: k for k, p in enumerate(parts) for a in p}
        membership = [lookup[a] for a in areas]
        method = 'Louvain (networkx), not the map equation: infomap is not installed'
    # communities numbered in order of their first area in the model's area list
    first = {}
    for m in membership:
        first.setdefault(m, len(first))
    membership = [first[m] for m in membership]
    parts = [[a for a, m in zip(areas, membership) if m == k] for k in range(len(first))]
    return {'areas': areas, 'outdegree': D, 'weights': W, 'method': method,
            'communities': parts, 'membership': membership}


# ------------------------------------------------------------------ figures

def _matrix(ax, fig, m, areas, cmap, label, norm=None):
    pyplot = plt()
    masked = np.ma.masked_invalid(np.where(m == 0, np.nan, m))
    cm = pyplot.get_cmap(cmap).copy()
    cm.set_bad('white')
    im = ax.pcolormesh(masked[::-1], cmap=cm, norm=norm)
    area_ticks(ax, areas, 'x')
    area_ticks(ax, areas[::-1], 'y')
    ax.set_xlabel('source area')
    ax.set_ylabel('target area')
    ax.set_aspect('equal')
    if label:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=label)
    return im


def fig2_anatomy(out_dir) -> list:
    raw, proc, M = _inputs()
    d = anatomy_data(raw, proc, list(M.area_list))
    pyplot = plt()
    fig, (a, b) = pyplot.subplots(1, 2, figsize=(9, 3.8), constrained_layout=True)
    types = sorted(set(d['architectural_type'].tolist()))
    for t in types:
        sel = d['architectural_type'] == t
        a.scatter(np.full(sel.sum(), t), d['density_per_mm3'][sel] / 1e3, s=14, color='0.4')
        a.plot([t - 0.3, t + 0.3], [d['density_per_mm3'][sel].mean() / 1e3] * 2, color='C3')
    a.set_xticks(types)
    a.set_xlabel('architectural type')
    a.set_ylabel('overall neuron density (10³ neurons / mm³)')
    a.set_title('A  densities by architectural type')
    logd = np.log10(d['density_per_mm3'])
    known = np.isfinite(d['thickness_data_um'])
    b.scatter(logd[known], d['thickness_data_um'][known], s=14, color='0.2', label='data')
    b.scatter(logd[~known], d['thickness_model_um'][~known], s=14, marker='x', color='C0',
              label='estimated')
    x = np.linspace(logd.min(), logd.max(), 10)
    fit = d['thickness_fit']
    b.plot(x, fit['intercept_um'] + fit['slope_um_per_decade'] * x, color='C3', label='linear fit')
    b.set_xlabel('log₁₀ neuron density (neurons / mm³)')
    b.set_ylabel('total cortical thickness (µm)')
    b.set_title('B  thickness vs density')
    b.legend()
    fig.suptitle(f'{PAPER}, Fig. 2 (redrawn from the raw data)', fontsize=9)
    return save(fig, d, out_dir, 'fig2_anatomy')


def fig4_connectivity(out_dir) -> list:
    from matplotlib.colors import LogNorm
    raw, proc, M = _inputs()
    d = connectivity_data(raw, proc, M)
    pyplot = plt()
    fig, axes = pyplot.subplots(2, 2, figsize=(10, 9.5), constrained_layout=True)
    areas = d['areas']
    from matplotlib.colors import Normalize
    _matrix(axes[0, 0], fig, d['cocomac'], areas, 'binary', None, Normalize(0., 1.))
    axes[0, 0].set_title('A  CoCoMac connections in the model')
    _matrix(axes[0, 1], fig, d['fln_data'], areas, 'inferno', 'FLN (data)',
            LogNorm(vmin=1e-6, vmax=1))
    axes[0, 1].set_title('B  FLN data (Markov et al. 2014)')
    c = axes[1, 0]
    c.semilogy(d['distance_mm'], d['fln_measured'], '.', color='0.3', ms=4, label='data')
    x = np.linspace(0, d['distance_mm'].max(), 20)
    fit = d['fln_distance_fit']
    c.semilogy(x, np.exp(fit['log_intercept'] - fit['decay_per_mm'] * x), color='C3',
               label=f"exp. fit, λ = {fit['decay_per_mm']:.3f} / mm")
    c.set_xlabel('median distance (mm)')
    c.set_ylabel('FLN')
    c.set_title('C  FLN decays with distance')
    c.legend()
    _matrix(axes[1, 1], fig, d['fln_completed'], areas, 'inferno', 'FLN (completed)',
            LogNorm(vmin=1e-6, vmax=1))
    axes[1, 1].set_title('D  FLN of the model (data + distance rule)')
    fig.suptitle(f'{PAPER}, Fig. 4 (redrawn from the raw data)', fontsize=9)
    return save(fig, d, out_dir, 'fig4_connectivity')


def fig5_laminar_pattern(out_dir) -> list:
    from scipy.special import ndtr
    d = sln_data()
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(5.5, 4), constrained_layout=True)
    sc = ax.scatter(d['log_density_ratio'], d['SLN'], s=10 + 30 * np.log10(d['labelled_neurons']) / 5,
                    c=np.log10(d['labelled_neurons']), cmap='viridis')
    fig.colorbar(sc, ax=ax, label='log₁₀ labelled neurons')
    x = np.linspace(d['log_density_ratio'].min(), d['log_density_ratio'].max(), 100)
    f, p = d['fit'], d['published_fit']
    ax.plot(x, ndtr(f['intercept'] + f['slope'] * x), color='C3',
            label=f"our fit: Φ({f['intercept']:.4f} {f['slope']:+.4f} x)")
    ax.plot(x, ndtr(p['intercept'] + p['slope'] * x), '--', color='k',
            label=f"published: Φ({p['intercept']:.4f} {p['slope']:+.4f} x)")
    ax.set_xlabel('log ratio of neuron densities (target / source)')
    ax.set_ylabel('SLN (fraction of supragranular labelled neurons)')
    ax.set_ylim(0, 1)
    ax.legend(loc='upper right')
    ax.set_title(f'{PAPER}, Fig. 5: SLN vs density ratio', fontsize=9)
    return save(fig, d, out_dir, 'fig5_cc_laminar_pattern')


def fig6_connectivity_measures(out_dir) -> list:
    from matplotlib.colors import LogNorm
    _, _, M = _inputs()
    d = population_data(M)
    pyplot = plt()
    fig, axes = pyplot.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
    n = len(d['populations'])
    starts = [i for i, name in enumerate(d['populations']) if name.endswith('-23E')]
    for ax, key, label, vmin in ((axes[0], 'connection_probability', 'connection probability', 1e-6),
                                 (axes[1], 'indegree', 'in-degree (synapses per neuron)', 1e-2)):
        m = np.where(d[key] > 0, d[key], np.nan)
        cm = pyplot.get_cmap('inferno').copy()
        cm.set_bad('white')
        im = ax.pcolormesh(m[::-1], cmap=cm, norm=LogNorm(vmin=vmin, vmax=np.nanmax(m)))
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=label)
        ax.set_xticks(np.array(starts) + 0.5)
        ax.set_xticklabels([d['populations'][i].split('-')[0] for i in starts], rotation=90, fontsize=5)
        ax.set_yticks(n - np.array(starts) - 0.5)
        ax.set_yticklabels([d['populations'][i].split('-')[0] for i in starts], fontsize=5)
        ax.set_xlabel('source population (area, 8 populations each from 2/3E)')
        ax.set_ylabel('target population')
        ax.set_aspect('equal')
    axes[0].set_title('A  population-level connection probability')
    axes[1].set_title('B  population-level in-degree')
    fig.suptitle(f'{PAPER}, Fig. 6 (full-scale model, K_stable)', fontsize=9)
    return save(fig, d, out_dir, 'fig6_connectivity_measures')


def fig7_community_structure(out_dir) -> list:
    from matplotlib.colors import LogNorm
    _, _, M = _inputs()
    d = community_data(M)
    order = [a for part in d['communities'] for a in part]
    idx = [d['areas'].index(a) for a in order]
    W = d['weights'][np.ix_(idx, idx)]
    pyplot = plt()
    fig, (a, b) = pyplot.subplots(1, 2, figsize=(11, 5), constrained_layout=True,
                                  gridspec_kw={'width_ratios': [1.2, 1]})
    _matrix(a, fig, W, order, 'viridis', 'relative out-degree (per target area)',
            LogNorm(vmin=max(W[W > 0].min(), 1e-5), vmax=W.max()))
    edge, n = 0, len(order)
    for part in d['communities']:
        a.add_patch(pyplot.Rectangle((edge, n - edge - len(part)), len(part), len(part),
                                     fill=False, color='C3', lw=1.2))
        edge += len(part)
    a.set_title('A  area-level connectivity, ordered by community')
    b.axis('off')
    lines = [f"community {k + 1}: " + ', '.join(p) for k, p in enumerate(d['communities'])]
    b.text(0, 1, '\n'.join(lines), va='top', fontsize=8, wrap=True)
    b.set_title(f"B  communities: {d['method']}")
    fig.suptitle(f'{PAPER}, Fig. 7: community structure of the area-level graph', fontsize=9)
    return save(fig, d, out_dir, 'fig7_community_structure')


FIGURES = {'fig2_anatomy': fig2_anatomy, 'fig4_connectivity': fig4_connectivity,
           'fig5_cc_laminar_pattern': fig5_laminar_pattern,
           'fig6_connectivity_measures': fig6_connectivity_measures,
           'fig7_community_structure': fig7_community_structure}
