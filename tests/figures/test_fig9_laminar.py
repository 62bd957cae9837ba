"""Schmidt et al. 2018 (dynamics) Fig. 9 from a small hand-written layout: the significant
channels per structural gradient recounted here from the Granger JSON files with plain
loops (a planted channel significant in every area pair, the rest random), the path
panel's area pairs per gradient recounted from the architectural types, and a layout
without Granger files drawn with one line saying how to write them."""
import json
from collections import Counter

import numpy as np
import pytest

from mam_pynn.analysis.layout import LabelledRun, relative_path, write_file
from mam_pynn.figures.dynamics import _architecture, fig9_laminar_interactions
from mam_pynn.params import AREA_LIST, POPULATION_LIST

AREAS = ['V1', 'V2', 'V3', 'FEF']          # types 8, 7, 7, 5: every gradient occurs
PLANTED = ('5E', '4I')                     # source pop -> target pop, p = 1e-3 in every area pair


def write_layout(root, rng, granger=True, la_rates=False):
    write_file(root / 'syn' / relative_path('pop_rates'),
               {a: {p: [1., 0.] for p in POPULATION_LIST} for a in AREAS})
    if granger:
        for t in AREAS:
            for tp in POPULATION_LIST:
                gc = {s: {sp: [float(rng.uniform(0., .1)),
                               1e-3 if (s != t and (sp, tp) == PLANTED) else float(rng.uniform(0., 1.))]
                          for sp in POPULATION_LIST if (s == t or sp.endswith('E')) and (s, sp) != (t, tp)}
                      for s in AREAS}
                write_file(root / 'syn' / relative_path('granger_causality', area=t, pop=tp), gc)
    if la_rates:
        from mam_pynn.model import MultiAreaModel
        M = MultiAreaModel({})
        write_file(root / 'syn' / relative_path('pop_rates_LA_state'),
                   {a: {p: float(rng.uniform(1., 5.)) for p in M.structure[a]} for a in M.area_list})
    return LabelledRun(root, 'syn')


def recount(root, arch):
    """{gradient: Counter((source pop, target pop))} and {gradient: ordered area pairs},
    from the files, with upstream's rule: target type < source type HL, > LH, = HZ."""
    def grad(t, s):
        return 'same-area' if t == s else ('HL' if arch[t] < arch[s] else 'LH' if arch[t] > arch[s] else 'HZ')
    counts, pairs = {}, Counter(grad(t, s) for t in AREAS for s in AREAS)
    for t in AREAS:
        for tp in POPULATION_LIST:
            d = json.loads((root / 'syn' / relative_path('granger_causality', area=t, pop=tp)).read_text())
            for s, entries in d.items():
                for sp, (_, p) in entries.items():
                    if p < 0.05:
                        counts.setdefault(grad(t, s), Counter())[(sp, tp)] += 1
    return counts, pairs


def test_fig9_channels_recounted_from_the_granger_files(tmp_path):
    write_layout(tmp_path, np.random.default_rng(3), la_rates=True)
    fig9_laminar_interactions(tmp_path / 'out', LabelledRun(tmp_path, 'syn'))
    d = json.loads((tmp_path / 'out' / 'fig9_laminar_interactions.json').read_text())
    assert (tmp_path / 'out' / 'fig9_laminar_interactions.png').stat().st_size > 0
    arch = _architecture(AREAS)
    counts, pairs = recount(tmp_path, arch)
    assert {g for g in ('HL', 'HZ', 'LH') if pairs[g]} == {'HL', 'HZ', 'LH'}
    for g in ('HL', 'HZ', 'LH', 'same-area'):
        got = d['significant_channels'][g]
        assert got['area_pairs'] == pairs[g]
        assert {(sp, tp): k for sp, tp, k, _ in got['channels']} == dict(counts.get(g, {}))
        assert all(f == pytest.approx(k / pairs[g]) for _, _, k, f in got['channels'])
        assert d['significant_fraction'][g]['significant'] == sum(counts.get(g, {}).values())
        if g != 'same-area':       # the planted channel: significant in every area pair
            assert dict((tuple(c[:2]), c[3]) for c in got['channels'])[PLANTED] == 1.
    # E: relative in-degree K / (the target's tested total) of the full-scale model, recounted
    from mam_pynn.model import MultiAreaModel
    from mam_pynn.theory.metastability import fig4_network_params
    K = MultiAreaModel(fig4_network_params(1.9)).K
    rel = {True: [], False: []}
    sig = {True: [], False: []}
    for t in AREAS:
        for tp in POPULATION_LIST:
            d_gc = json.loads((tmp_path / 'syn' / relative_path('granger_causality', area=t, pop=tp)).read_text())
            total = sum(K[t][tp][s][sp] for s in d_gc for sp in d_gc[s])
            for s in d_gc:
                for sp, (_, p) in d_gc[s].items():
                    rel[s == t].append(K[t][tp][s][sp] / total)
                    if p < 0.05:
                        sig[s == t].append(K[t][tp][s][sp] / total)
    bins = np.array(d['relative_indegree_bins'])
    assert bins[0] == pytest.approx(1e-5) and bins[-1] == pytest.approx(1.)
    for key, local in (('areal', False), ('local', True)):
        hist = d['relative_indegree_hist'][key]
        inside = [x for x in rel[local] if bins[0] <= x <= bins[-1]]
        assert sum(hist['all']) == len(inside) > 0
        assert sum(hist['significant']) == sum(bins[0] <= x <= bins[-1] for x in sig[local])
        assert hist['mean_all'] == pytest.approx(np.mean(rel[local]))
    # the path panel: every ordered pair of the 32 areas but those into MDP (no cc input)
    full = _architecture(AREA_LIST)
    expected = Counter('HL' if full[t] < full[s] else 'LH' if full[t] > full[s] else 'HZ'
                       for t in AREA_LIST for s in AREA_LIST if s != t and t != 'MDP')
    assert sum(expected.values()) == 961
    assert d['paths']['area_pairs'] == dict(expected)
    for g, n in expected.items():
        assert sum(k for _, _, k in d['paths']['pair_counts'][g]) == n
    # ... and which population pairs: per area pair the argmin of all shortest paths by
    # networkx's Floyd-Warshall on the gain at the written rates (the figure: scipy, Johnson)
    import networkx as nx
    from mam_pynn.theory.paths import path_gain_matrix
    M = MultiAreaModel(fig4_network_params(1.9), theory=True)
    la = json.loads((tmp_path / 'syn' / relative_path('pop_rates_LA_state')).read_text())
    gain, _ = path_gain_matrix(M.theory, [la[a][p] for a, p in (x.split('-', 1) for x in M.structure_vec)])
    graph = nx.DiGraph()
    graph.add_weighted_edges_from((s, t, -np.log10(gain[t, s])) for t, s in zip(*np.nonzero(gain > 0)))
    dist = nx.floyd_warshall_numpy(graph, nodelist=range(gain.shape[0]))
    pops = [x.split('-', 1) for x in M.structure_vec]
    index = {a: [i for i, (b, _) in enumerate(pops) if b == a] for a in AREA_LIST}
    pairs = {}
    for t in AREA_LIST:
        for s in AREA_LIST:
            block = dist[np.ix_(index[s], index[t])]
            if s != t and np.isfinite(block).any():
                i, j = np.unravel_index(np.argmin(block), block.shape)
                g = 'HL' if full[t] < full[s] else 'LH' if full[t] > full[s] else 'HZ'
                pairs.setdefault(g, Counter())[(pops[index[s][i]][1], pops[index[t][j]][1])] += 1
    for g in expected:
        assert {(sp, tp): k for sp, tp, k in d['paths']['pair_counts'][g]} == dict(pairs[g])


def test_fig9_without_granger_files_says_how_to_write_them(tmp_path, capsys):
    write_layout(tmp_path, np.random.default_rng(0), granger=False)
    paths = fig9_laminar_interactions(tmp_path / 'out', LabelledRun(tmp_path, 'syn'))
    d = json.loads((tmp_path / 'out' / 'fig9_laminar_interactions.json').read_text())
    assert '--granger' in d['missing'] and 'granger_causality' in d['missing']
    assert '--granger' in capsys.readouterr().out and len(paths) == 3


def test_mam_preprocess_granger_asks_for_the_on_request_products(monkeypatch, tmp_path):
    import mam_pynn.analysis.preprocess as pre
    from mam_pynn.cli import main
    calls = []
    monkeypatch.setattr(pre, 'preprocess', lambda *a, **k: calls.append(k))
    assert main(['preprocess', str(tmp_path), '--out', str(tmp_path / 'data')]) == 0
    assert main(['preprocess', str(tmp_path), '--out', str(tmp_path / 'data'), '--granger']) == 0
    assert calls[0]['extra'] == [] and calls[1]['extra'] == list(pre.ON_REQUEST) != []
