"""Figures of Schmidt, Bakker et al. 2018 (Brain Struct Funct 223:1409): the anatomy and
connectivity of the model, recomputed from the raw data by our own stages.

Each ``figN_*`` function computes its data (a dict: every number it plots), draws the
figure and writes PNG, PDF and JSON (``common.save``). The panels follow upstream's
figures/Schmidt2018 scripts; differences are stated on the figure and in figures/README.md.
"""
from __future__ import annotations

import numpy as np

from ..analysis.interactions import map_equation_communities, structural_connectivity
from ..anatomy import structural_gradient
from .common import area_ticks, plt, save

PAPER = 'Schmidt, Bakker et al. 2018, Brain Struct Funct'


#: the model as derived from the data, before K_stable replaces its in-degrees by the
#: stabilised K' (Schuecker et al. 2017): what the published Figs. 4 D and 7 show (upstream's
#: Fig. 7 script reads this model's synapse numbers from its custom_Data_Model json; the
#: sparsity of the published Fig. 4 D is that of this K, K' has no zero entries)
DATA_MODEL_PARAMS = {'connection_params': {'K_stable': None}}


def _inputs(params=None):
    from ..anatomy import load_raw_data, process_raw_data
    from ..model import MultiAreaModel
    raw = load_raw_data()
    return raw, process_raw_data(raw), MultiAreaModel(params or {})


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
    """Fig. 4: CoCoMac connections of the model, FLN data, FLN vs distance, and the model's
    FLN as upstream's panel D defines it (``structural_connectivity``: each target area's
    area-level in-degrees over their sum, external input included), so that the diagonal
    is the share of intra-area synapses (the intrinsic FLN)."""
    areas = list(M.area_list)
    n = len(areas)
    cocomac = np.zeros((n, n))
    fln_data = np.full((n, n), np.nan)
    model_fln = structural_connectivity(M)
    for i, target in enumerate(areas):
        for j, source in enumerate(areas):
            if M.K_areas[target][source] > 0 and source in raw['cocomac_data'].get(target, {}):
                cocomac[i, j] = 1.
            if source in proc['FLN_Data_FV91'].get(target, {}):
                fln_data[i, j] = proc['FLN_Data_FV91'][target][source]
    dist = np.asarray(M.distance_matrix, float)
    measured = np.isfinite(fln_data) & (fln_data > 0)
    d, f = dist[measured], fln_data[measured]
    slope, intercept = np.polyfit(d, np.log(f), 1)   # FLN ~ exp(-lambda d): log-linear fit
    return {'areas': areas, 'cocomac': cocomac, 'fln_data': fln_data,
            'model_fln': model_fln, 'distance_mm': d, 'fln_measured': f,
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


#: edges drawn in the graph panel: relative out-degree above this (upstream's threshold)
GRAPH_EDGE_MIN = 1e-3


def community_data(M, seed: int = 1) -> dict:
    """Fig. 7: communities of the area-level graph by the map equation (infomap, directed,
    as upstream: edges source -> target weighted by the relative out-degree, each target's
    row normalised over its sources, self-connections removed), and the graph panel's
    layout. Without the infomap package, networkx's Louvain method stands in and the
    figure says so."""
    areas, D = area_outdegrees(M)
    W = D / D.sum(axis=1, keepdims=True)
    np.fill_diagonal(W, 0.)
    membership, method = map_equation_communities(W, areas, seed)
    parts = [[a for a, m in zip(areas, membership) if m == k] for k in range(max(membership) + 1)]
    return {'areas': areas, 'outdegree': D, 'weights': W, 'method': method,
            'communities': parts, 'membership': membership,
            'graph': community_graph(areas, W, D, membership)}


def community_graph(areas, W, D, membership) -> dict:
    """The graph panel as upstream draws it: each community laid out by Kamada-Kawai on its
    own edges (networkx), the communities' centres on a circle; edges with relative
    out-degree above GRAPH_EDGE_MIN, within (intra) or between (inter) communities, their
    width the log of the absolute out-degree."""
    import networkx as nx
    n_parts = max(membership) + 1
    centres = nx.circular_layout(range(n_parts), scale=1.4) if n_parts > 1 else {0: np.zeros(2)}
    positions = {}
    for k in range(n_parts):
        nodes = [a for a, m in zip(areas, membership) if m == k]
        sub = nx.Graph()
        sub.add_nodes_from(nodes)
        sub.add_edges_from((areas[j], areas[i]) for i in range(len(areas)) for j in range(len(areas))
                           if W[i, j] > 0 and membership[i] == membership[j] == k)
        local = nx.kamada_kawai_layout(sub) if len(nodes) > 1 else {nodes[0]: np.zeros(2)}
        radius = 0.17 * np.sqrt(len(nodes)) if len(nodes) > 1 else 0.
        for a in nodes:
            positions[a] = np.asarray(centres[k]) + radius * np.asarray(local[a])
    edges = {'intra': [], 'inter': []}
    for i, target in enumerate(areas):
        for j, source in enumerate(areas):
            if W[i, j] > GRAPH_EDGE_MIN:
                kind = 'intra' if membership[i] == membership[j] else 'inter'
                edges[kind].append([source, target, float(W[i, j]), float(D[i, j])])
    return {'positions': {a: positions[a] for a in areas},
            'community': dict(zip(areas, membership)), 'edge_min': GRAPH_EDGE_MIN, 'edges': edges}


# Fig. 8: the connections between two areas are described by their shortest path on the
# population-level graph. Upstream's definitions (figures/Schmidt2018/Fig8_laminar_paths.py):
# gain G = K |J| with g = -4, rescaled by its leading eigenvalue; edge length log10(1/G);
# shortest paths with negative lengths allowed (no negative cycle: the rescaled matrix has
# spectral radius 1); per area pair the population pair with the shortest path.
LAMINAR_PATH_PARAMS = {'connection_params': {'g': -4.}}
SLN_THRESHOLDS = (0.35, 0.65)
INTERMEDIATE_POPS = ('5E', '23E', '6E')


def hierarchical_relation(sln, thresholds=SLN_THRESHOLDS) -> str:
    """FF (SLN above the upper threshold), FB (below the lower) or lateral: upstream's
    classification by SLN, thresholds (0.35, 0.65)."""
    low, high = thresholds
    return 'FF' if sln > high else 'FB' if sln < low else 'lateral'


def shortest_population_paths(gain):
    """All-pairs shortest paths on the graph with edges source -> target of length
    log10(1/gain[target, source]): (length[s, t], predecessor[s, t]). Johnson's method
    allows the negative lengths of gains above 1."""
    from scipy.sparse.csgraph import csgraph_from_dense, shortest_path
    with np.errstate(divide='ignore'):
        length = np.where(gain.T > 0, -np.log10(gain.T), np.inf)
    graph = csgraph_from_dense(length, null_value=np.inf)
    return shortest_path(graph, method='J', directed=True, return_predecessors=True)


def _path(pred, s, t) -> list[int]:
    path = [t]
    while path[-1] != s:
        path.append(int(pred[s, path[-1]]))
    return path[::-1]


def _stage_pattern(path_pops) -> list[str]:
    """The populations a path uses in each intermediate area ('5E', or '4E+23E' for two)."""
    stages, last_area = [], None
    for label in path_pops:
        area, pop = label.split('-', 1)
        if area == last_area:
            stages[-1] += '+' + pop
        else:
            stages.append(pop)
        last_area = area
    return stages[1:-1]


def laminar_path_data(M, proc, gain=None) -> dict:
    """Fig. 8: per ordered area pair, the shortest population-level path, the pair of
    populations it joins, and the pair's class by SLN and by architectural type.
    ``gain``: (gain, leading eigenvalue) to use instead of the structural K |J|
    (the dynamics paper's Fig. 9 B: :func:`..theory.paths.path_gain_matrix`)."""
    from collections import Counter
    n = len(M.N_vec)
    pops = list(M.structure_vec)
    if gain is None:
        gain = np.asarray(M.K_matrix, float)[:, :n] * np.abs(np.asarray(M.J_matrix, float)[:, :n])
        leading = float(np.max(np.linalg.eigvals(gain).real))
        gain = gain / leading
    else:
        gain, leading = gain
    length, pred = shortest_population_paths(gain)
    index = {a: [i for i, p in enumerate(pops) if p.split('-')[0] == a] for a in M.area_list}
    sln, arch = proc['SLN_completed'], proc['architecture_completed']
    records = []
    for target in M.area_list:
        for source in M.area_list:
            if source == target:
                continue
            block = length[np.ix_(index[source], index[target])]
            if not np.isfinite(block).any():
                continue                      # no path (e.g. into MDP, which has no cc input)
            i, j = np.unravel_index(np.argmin(block), block.shape)
            s, t = index[source][i], index[target][j]
            path = [pops[k] for k in _path(pred, s, t)]
            value = sln.get(target, {}).get(source)
            records.append({
                'source_area': source, 'target_area': target,
                'source_pop': pops[s].split('-', 1)[1], 'target_pop': pops[t].split('-', 1)[1],
                'length': float(length[s, t]), 'path': path,
                'stages': len({p.split('-')[0] for p in path}),
                'intermediate': _stage_pattern(path),
                'SLN': value, 'SLN_class': None if value is None else hierarchical_relation(value),
                'arch_class': structural_gradient(arch[target], arch[source])})
    pair_counts = {}
    for key, classes in (('SLN_class', ('FF', 'lateral', 'FB')), ('arch_class', ('HL', 'HZ', 'LH'))):
        for c in classes:
            pairs = Counter((r['source_pop'], r['target_pop']) for r in records if r[key] == c)
            pair_counts[c] = [[sp, tp, k] for (sp, tp), k in pairs.most_common()]
    intermediate = {c: dict(Counter(x for r in records if r['arch_class'] == c
                                    for x in r['intermediate'])) for c in ('HL', 'HZ', 'LH')}
    return {'params': LAMINAR_PATH_PARAMS, 'leading_eigenvalue': leading,
            'sln_thresholds': SLN_THRESHOLDS, 'populations': pops, 'paths': records,
            'pair_counts': pair_counts, 'intermediate_counts': intermediate,
            'unreachable_targets': sorted({a for a in M.area_list
                                           if not any(r['target_area'] == a for r in records)})}


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
    raw, proc, M = _inputs(DATA_MODEL_PARAMS)
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
    _matrix(axes[1, 1], fig, d['model_fln'], areas, 'inferno',
            'FLN of the model (in-degree share, diagonal: intrinsic)', LogNorm(vmin=1e-6, vmax=1))
    axes[1, 1].set_title('D  FLN of the model (K_areas over their row sum, external included)')
    fig.suptitle(f'{PAPER}, Fig. 4 (redrawn from the raw data; the model before K_stable)', fontsize=9)
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


def _draw_community_graph(ax, d):
    """Areas as nodes coloured by community, edges within a community black, between
    communities light grey (upstream's Fig. 7), arrows from source to target."""
    from matplotlib.patches import FancyArrowPatch
    g = d['graph']
    pos = {a: np.asarray(p) for a, p in g['positions'].items()}
    colors = plt().get_cmap('tab10')
    widths = np.log10([e[3] for kind in ('intra', 'inter') for e in g['edges'][kind]])
    lo, hi = widths.min(), widths.max()
    for kind, color, alpha, z in (('inter', '0.82', 0.5, 1), ('intra', 'k', 0.9, 2)):
        for source, target, _, outdegree in g['edges'][kind]:
            lw = 0.3 + 2.2 * (np.log10(outdegree) - lo) / max(hi - lo, 1e-9)
            ax.add_patch(FancyArrowPatch(pos[source], pos[target], arrowstyle='-|>', mutation_scale=6,
                                         connectionstyle='arc3,rad=0.15', lw=lw, color=color,
                                         alpha=alpha, shrinkA=8, shrinkB=8, zorder=z))
    for area, xy in pos.items():
        ax.scatter(*xy, s=330, color=colors(g['community'][area] % 10), edgecolor='k', lw=0.6, zorder=3)
        ax.text(*xy, area, ha='center', va='center', fontsize=6, color='w', fontweight='bold', zorder=4)
    xy = np.array(list(pos.values()))
    ax.set_xlim(xy[:, 0].min() - 0.15, xy[:, 0].max() + 0.15)
    ax.set_ylim(xy[:, 1].min() - 0.15, xy[:, 1].max() + 0.15)
    ax.set_aspect('equal')
    ax.axis('off')


def fig7_community_structure(out_dir) -> list:
    from matplotlib.colors import LogNorm
    from ..model import MultiAreaModel
    d = community_data(MultiAreaModel(DATA_MODEL_PARAMS))
    order = [a for part in d['communities'] for a in part]
    idx = [d['areas'].index(a) for a in order]
    W = d['weights'][np.ix_(idx, idx)]
    pyplot = plt()
    fig, (a, b) = pyplot.subplots(1, 2, figsize=(13, 7), constrained_layout=True,
                                  gridspec_kw={'width_ratios': [1, 1.15]})
    _matrix(a, fig, W, order, 'viridis', 'relative out-degree (per target area)',
            LogNorm(vmin=max(W[W > 0].min(), 1e-5), vmax=W.max()))
    edge, n = 0, len(order)
    for part in d['communities']:
        a.add_patch(pyplot.Rectangle((edge, n - edge - len(part)), len(part), len(part),
                                     fill=False, color='C3', lw=1.2))
        edge += len(part)
    a.set_title('A  area-level connectivity, ordered by community')
    _draw_community_graph(b, d)
    g = d['graph']
    b.set_title(f"B  {len(d['communities'])} communities: {d['method']}\n"
                f"edges of relative out-degree > {g['edge_min']:g}: {len(g['edges']['intra'])} within a "
                f"community (black), {len(g['edges']['inter'])} between (grey);\n"
                f"width: log absolute out-degree", fontsize=9)
    fig.suptitle(f"{PAPER}, Fig. 7: community structure of the area-level graph "
                 f"(the model before K_stable, as upstream)", fontsize=9)
    return save(fig, d, out_dir, 'fig7_community_structure')


_LAYER_Y = {'23': 3., '4': 2., '5': 1., '6': 0.}
_POP_DY = {'E': 0.17, 'I': -0.17}


def _pop_label(pop: str) -> str:
    return pop.replace('23', '2/3')


def _laminar_diagram(ax, pair_counts, title, max_count):
    """Source area (left) and target area (right) as layers of E (triangle) and I (circle)
    populations; one arrow per population pair, its width the number of area pairs whose
    shortest path joins them; the most frequent pairs listed below."""
    from matplotlib.patches import FancyArrowPatch
    for x in (0., 2.):
        for y in _LAYER_Y.values():
            for kind, dy in _POP_DY.items():
                ax.plot(x, y + dy, marker='^' if kind == 'E' else 'o', ms=7, ls='none',
                        color='C3' if kind == 'E' else 'C0', zorder=3)
    for layer, y in _LAYER_Y.items():
        ax.text(-0.25, y, _pop_label('L' + layer), ha='right', va='center', fontsize=7)
    ax.text(0., 3.55, 'source area', ha='center', fontsize=7)
    ax.text(2., 3.55, 'target area', ha='center', fontsize=7)
    for sp, tp, k in pair_counts:
        start = (0., _LAYER_Y[sp[:-1]] + _POP_DY[sp[-1]])
        end = (2., _LAYER_Y[tp[:-1]] + _POP_DY[tp[-1]])
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle='-|>', mutation_scale=7,
                                     lw=0.5 + 6. * k / max_count, color='0.3', alpha=0.7,
                                     shrinkA=5, shrinkB=5, zorder=2))
    total = sum(k for _, _, k in pair_counts)
    top = ', '.join(f'{_pop_label(sp)}→{_pop_label(tp)} {k}' for sp, tp, k in pair_counts[:3])
    ax.text(1., -0.55, f'most frequent: {top}', ha='center', va='top', fontsize=6.5)
    ax.set_xlim(-0.7, 2.3)
    ax.set_ylim(-0.9, 3.7)
    ax.axis('off')
    ax.set_title(f'{title} ({total} area pairs)', fontsize=8)


# the intermediate stages panel C counts, as upstream, and the two-population stages our
# paths also use
_STAGES_SHOWN = INTERMEDIATE_POPS + ('4E+23E', '4I+23E')


def fig8_laminar_paths(out_dir) -> list:
    from ..anatomy import load_raw_data, process_raw_data
    from ..model import MultiAreaModel
    d = laminar_path_data(MultiAreaModel(LAMINAR_PATH_PARAMS), process_raw_data(load_raw_data()))
    pyplot = plt()
    fig, axes = pyplot.subplots(3, 3, figsize=(10, 8.5), constrained_layout=True,
                                gridspec_kw={'height_ratios': [1, 1, 0.8]})
    low, high = SLN_THRESHOLDS
    names = {'FF': f'feedforward, SLN > {high:g}', 'lateral': f'lateral, {low:g} ≤ SLN ≤ {high:g}',
             'FB': f'feedback, SLN < {low:g}', 'HL': 'higher → lower type',
             'HZ': 'equal architectural types', 'LH': 'lower → higher type'}
    max_count = max(k for counts in d['pair_counts'].values() for _, _, k in counts)
    for row, classes, letter in ((0, ('FF', 'lateral', 'FB'), 'A'), (1, ('HL', 'HZ', 'LH'), 'B')):
        for col, c in enumerate(classes):
            _laminar_diagram(axes[row, col], d['pair_counts'][c], f'{letter}  {names[c]}', max_count)
    def bars(counts):
        shown = [counts.get(p, 0) for p in _STAGES_SHOWN]
        return shown + [sum(counts.values()) - sum(shown)]
    ymax = max(max(bars(v)) for v in d['intermediate_counts'].values())
    for col, c in enumerate(('HL', 'HZ', 'LH')):
        ax = axes[2, col]
        ax.bar(range(len(_STAGES_SHOWN) + 1), bars(d['intermediate_counts'][c]),
               color=['C3'] * 3 + ['C1'] * 2 + ['0.6'])
        ax.set_xticks(range(len(_STAGES_SHOWN) + 1))
        ax.set_xticklabels([_pop_label(p).replace('+', '→\n') for p in _STAGES_SHOWN] + ['other'],
                           fontsize=7)
        ax.set_ylim(0, 1.1 * ymax)
        ax.set_xlabel('populations used in an intermediate area')
        ax.set_ylabel('number of intermediate stages')
        ax.set_title(f'C  indirect paths, {names[c]}', fontsize=8)
    fig.suptitle(f"{PAPER}, Fig. 8: shortest laminar paths between areas on the population "
                 f"graph\n(gain K|J|, g = −4, rescaled by λmax = {d['leading_eigenvalue']:.0f} mV; "
                 f"inhibitory gains as absolute values, as upstream)\n"
                 f"arrow: the population pair joined by an area pair's shortest path, width: number "
                 f"of area pairs; no path into {', '.join(d['unreachable_targets'])} "
                 f"(no cortico-cortical input)", fontsize=8)
    return save(fig, d, out_dir, 'fig8_laminar_paths')


FIGURES = {'fig2_anatomy': fig2_anatomy, 'fig4_connectivity': fig4_connectivity,
           'fig5_cc_laminar_pattern': fig5_laminar_pattern,
           'fig6_connectivity_measures': fig6_connectivity_measures,
           'fig7_community_structure': fig7_community_structure,
           'fig8_laminar_paths': fig8_laminar_paths}
