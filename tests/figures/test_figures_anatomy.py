"""Schmidt et al. 2018 (Brain Struct Funct) figures: their data against independent
computations and the numbers printed in the papers (figures/README.md lists them)."""
import numpy as np
import pytest

from figure_helpers import load
from mam_pynn.figures.anatomy import FIGURES


def test_every_figure_is_written_as_png_pdf_and_data(drawn):
    for name in FIGURES:
        for ext in ('png', 'pdf', 'json'):
            f = drawn['out'] / 'anatomy' / f'{name}.{ext}'
            assert f.is_file() and f.stat().st_size > 1000, f


def test_connection_probabilities_equal_the_independent_formula(drawn, model):
    """p = 1 - (1 - 1/(N_pre N_post))^S per population pair, recomputed here in a loop."""
    d = load(drawn, 'anatomy', 'fig6_connectivity_measures')
    p = np.array(d['connection_probability'], float)
    n = len(model.N_vec)
    syn = np.asarray(model.syn_matrix, float)
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, n, size=(300, 2)):
        pairs = model.N_vec[i] * model.N_vec[j]
        expected = 1. - (1. - 1. / pairs) ** syn[i, j]
        # the naive power loses ~1e-8 of 1 - 1/(N N) ~ 1 - 1e-9 in float64 (the figure uses
        # log1p/expm1): equal to 1e-6
        assert p[i, j] == pytest.approx(expected, rel=1e-6, abs=1e-15)
    assert d['populations'] == list(model.structure_vec)
    np.testing.assert_allclose(np.array(d['indegree'], float), np.asarray(model.K_matrix)[:, :n])


def _reference_blocks(reference_dir):
    """Upstream's model before K_stable (reference no_K_stable.npz): in-degrees K (254 x 255,
    last column external), neurons N, and the rows of each area, from the reference layout."""
    import json
    ref = np.load(reference_dir / 'no_K_stable.npz')
    layout = json.loads((reference_dir / 'variants.json').read_text())['_layout']
    rows, start = {}, 0
    for area in layout['area_list']:
        rows[area] = slice(start, start + len(layout['structure'][area]))
        start += len(layout['structure'][area])
    return ref['K_matrix'], ref['N_vec'], rows


def test_area_outdegrees_are_upstreams_before_K_stable(drawn, reference_dir):
    """D[t, s] = synapses from s onto t per neuron of s, from upstream's K before K_stable
    (what its Fig. 7 script reads), summed here area block by area block."""
    d = load(drawn, 'anatomy', 'fig7_community_structure')
    K, N, rows = _reference_blocks(reference_dir)
    D = np.array(d['outdegree'], float)
    for i, t in enumerate(d['areas']):
        for j, s in enumerate(d['areas']):
            synapses = np.sum(K[rows[t], rows[s]] * N[rows[t], None])
            assert D[i, j] == pytest.approx(synapses / N[rows[s]].sum(), rel=1e-9, abs=1e-12), (t, s)
    assert d['method'].startswith('map equation (infomap')


#: the communities of the published Fig. 7 (read off upstream's Fig7_community_structure.eps:
#: node colours)
PUBLISHED_COMMUNITIES = [
    {'V1', 'V2'}, {'FEF', '46'}, {'STPp', 'STPa'}, {'VP', 'VOT', 'MSTd', 'PITd'},
    {'V4', 'PITv', 'CITv', 'CITd', 'TF', 'AITv', 'AITd', 'TH'},
    {'V3', 'V3A', 'MT', 'V4t', 'PIP', 'PO', 'DP', 'MIP', 'MDP', 'VIP', 'LIP', 'MSTl', 'FST', '7a'}]


def test_communities_are_the_published_six(drawn):
    d = load(drawn, 'anatomy', 'fig7_community_structure')
    assert sorted(map(sorted, d['communities'])) == sorted(map(sorted, PUBLISHED_COMMUNITIES))
    assert [d['communities'][m].count(a) for a, m in zip(d['areas'], d['membership'])] == [1] * 32


def test_graph_panel_groups_the_nodes_by_community_and_draws_upstreams_edges(drawn):
    """Node colours are the partition; each node lies nearer its own community's centre than
    any other's; the edges are those of relative out-degree > 1e-3, black within a community
    and grey between (upstream's drawing rule), recomputed here from the plotted weights."""
    d = load(drawn, 'anatomy', 'fig7_community_structure')
    g, areas = d['graph'], d['areas']
    assert g['community'] == dict(zip(areas, d['membership']))
    pos = {a: np.array(p) for a, p in g['positions'].items()}
    centres = [np.mean([pos[a] for a in part], axis=0) for part in d['communities']]
    for a in areas:
        dist = [np.linalg.norm(pos[a] - c) for c in centres]
        assert int(np.argmin(dist)) == g['community'][a], a
    W = np.array(d['weights'], float)
    expected = {'intra': set(), 'inter': set()}
    for i, t in enumerate(areas):
        for j, s in enumerate(areas):
            if W[i, j] > 1e-3:
                same = any(t in part and s in part for part in d['communities'])
                expected['intra' if same else 'inter'].add((s, t))
    for kind in ('intra', 'inter'):
        assert {(e[0], e[1]) for e in g['edges'][kind]} == expected[kind]


def test_model_fln_is_upstreams_panel_d_with_the_intrinsic_fln_on_the_diagonal(drawn, reference_dir):
    """Upstream's Fig. 4 D: K_areas[t][s] / sum of K_areas[t] (external input included), of the
    model before K_stable (its zeros are the published panel's: VOT gets input from V2 and VP
    only, CITd from V4, MDP from none); the diagonal, the intra-area share of the synapses, is
    present for every area."""
    d = load(drawn, 'anatomy', 'fig4_connectivity')
    K, N, rows = _reference_blocks(reference_dir)
    fln = np.array(d['model_fln'], float)
    areas = d['areas']
    for i, t in enumerate(areas):
        total = np.sum(K[rows[t]] * N[rows[t], None])
        for j, s in enumerate(areas):
            expected = np.sum(K[rows[t], rows[s]] * N[rows[t], None]) / total
            assert fln[i, j] == pytest.approx(expected, rel=1e-9, abs=1e-15), (t, s)
    assert np.all((np.diag(fln) > 0.4) & (np.diag(fln) < 0.6))
    sources = {t: {s for j, s in enumerate(areas) if fln[i, j] > 0} for i, t in enumerate(areas)}
    assert sources['VOT'] == {'V2', 'VP', 'VOT'} and sources['CITd'] == {'V4', 'CITd'}
    assert sources['MDP'] == {'MDP'}


def test_sln_fit_equals_the_published_constants(drawn):
    """Upstream's published probit fit: intercept -0.1516142, slope -1.5343200."""
    fit = load(drawn, 'anatomy', 'fig5_cc_laminar_pattern')['fit']
    assert round(fit['intercept'], 7) == -0.1516142
    assert round(fit['slope'], 6) == -1.534320


def test_the_papers_counts(model):
    """32 areas, 254 populations, 4.13 million neurons, 24.1 G synapses (K' model)."""
    n = len(model.N_vec)
    assert len(model.area_list) == 32 and n == 254
    assert round(float(np.sum(model.N_vec)) / 1e6, 2) == 4.13
    assert round(float(np.asarray(model.syn_matrix)[:, :n].sum()) / 1e9, 1) == 24.1


def test_fln_decays_with_distance(drawn):
    d = load(drawn, 'anatomy', 'fig4_connectivity')
    # independent log-linear least squares on the plotted points
    x, y = np.array(d['distance_mm']), np.log(np.array(d['fln_measured']))
    A = np.vstack([x, np.ones_like(x)]).T
    slope, _ = np.linalg.lstsq(A, y, rcond=None)[0]
    assert d['fln_distance_fit']['decay_per_mm'] == pytest.approx(-slope, rel=1e-9)
    assert 0.05 < -slope < 0.3      # the exponential distance rule: lambda of order 0.1 / mm


def _bellman_ford_area_paths(M):
    """Upstream's Fig. 8 recipe done independently: a networkx graph with one edge per
    nonzero gain K |J| (g = -4), rescaled by the leading eigenvalue, length log10(1/gain),
    Bellman-Ford from every population; per area pair the shortest population pair."""
    import networkx as nx
    pops = list(M.structure_vec)
    n = len(pops)
    gain = np.asarray(M.K_matrix)[:, :n] * np.abs(np.asarray(M.J_matrix)[:, :n])
    gain = gain / max(np.linalg.eigvals(gain).real)
    g = nx.DiGraph()
    g.add_nodes_from(pops)
    for t in range(n):
        for s in range(n):
            if gain[t, s] > 0:
                g.add_edge(pops[s], pops[t], distance=np.log10(1. / gain[t, s]))
    dist = {p: nx.bellman_ford_predecessor_and_distance(g, p, weight='distance')[1] for p in pops}
    best = {}
    for source in M.area_list:
        for target in M.area_list:
            if source == target:
                continue
            options = [(dist[f'{source}-{sp}'][f'{target}-{tp}'], sp, tp)
                       for sp in M.structure[source] for tp in M.structure[target]
                       if f'{target}-{tp}' in dist[f'{source}-{sp}']]
            if options:
                best[source, target] = min(options)
    return g, best


def test_laminar_paths_equal_an_independent_bellman_ford(drawn):
    """Fig. 8: for every ordered area pair, the shortest path's length and population pair
    equal networkx's Bellman-Ford (upstream's algorithm) on a graph built here; each stored
    path is a chain of edges whose lengths add up to the stored length."""
    from mam_pynn.model import MultiAreaModel
    d = load(drawn, 'anatomy', 'fig8_laminar_paths')
    M = MultiAreaModel(d['params'])
    g, best = _bellman_ford_area_paths(M)
    records = {(r['source_area'], r['target_area']): r for r in d['paths']}
    assert set(records) == set(best)
    assert len(records) == 31 * 31          # every pair of distinct areas but those into MDP
    assert d['unreachable_targets'] == ['MDP']
    for key, (length, sp, tp) in best.items():
        r = records[key]
        assert r['length'] == pytest.approx(length, rel=1e-9, abs=1e-12)
        assert (r['source_pop'], r['target_pop']) == (sp, tp), key
        path = r['path']
        assert path[0] == f'{key[0]}-{sp}' and path[-1] == f'{key[1]}-{tp}'
        along = sum(g.edges[a, b]['distance'] for a, b in zip(path, path[1:]))
        assert along == pytest.approx(length, rel=1e-9, abs=1e-12)
        assert r['stages'] == len(dict.fromkeys(p.split('-')[0] for p in path))


def test_laminar_path_classes_follow_sln_and_architecture(drawn):
    """FF/lateral/FB by SLN (0.65, 0.35) and HL/HZ/LH by architectural type, recomputed from
    the processed data; the arrow widths count the area pairs of each population pair; the
    intermediate stages are the populations a path visits in areas other than its ends."""
    from collections import Counter
    from mam_pynn.anatomy import load_raw_data, process_raw_data
    proc = process_raw_data(load_raw_data())
    d = load(drawn, 'anatomy', 'fig8_laminar_paths')
    arch, sln = proc['architecture_completed'], proc['SLN_completed']
    for r in d['paths']:
        s, t = r['source_area'], r['target_area']
        expected = 'HL' if arch[t] < arch[s] else 'LH' if arch[t] > arch[s] else 'HZ'
        assert r['arch_class'] == expected
        value = sln[t].get(s)
        assert r['SLN'] == value
        if value is not None:
            assert r['SLN_class'] == ('FF' if value > 0.65 else 'FB' if value < 0.35 else 'lateral')
        areas = [p.split('-')[0] for p in r['path']]
        inner = [p.split('-')[1] for p in r['path'] if p.split('-')[0] not in (s, t)]
        assert '+'.join(inner) == '+'.join(r['intermediate'])
        assert len(r['intermediate']) == len(dict.fromkeys(areas)) - 2
    for cls in ('FF', 'lateral', 'FB', 'HL', 'HZ', 'LH'):
        key = 'SLN_class' if cls in ('FF', 'lateral', 'FB') else 'arch_class'
        expected = Counter((r['source_pop'], r['target_pop']) for r in d['paths'] if r[key] == cls)
        assert {(a, b): k for a, b, k in d['pair_counts'][cls]} == dict(expected)
    for cls in ('HL', 'HZ', 'LH'):
        expected = Counter(x for r in d['paths'] if r['arch_class'] == cls for x in r['intermediate'])
        assert d['intermediate_counts'][cls] == dict(expected)
    # a hierarchy check on the data: feedforward paths start in layer 2/3 more often than
    # feedback paths do (the laminar origin SLN describes)
    share = {c: sum(k for a, _, k in d['pair_counts'][c] if a == '23E') /
             sum(k for _, _, k in d['pair_counts'][c]) for c in ('FF', 'FB')}
    assert share['FF'] > share['FB']
