"""Fig. 8 interactions: communities of planted partitions (Louvain on an FC matrix of block-
correlated series, map equation and its fallback on a directed block graph), the
structural connectivity against the population-level in-degrees, FC comparison and
alluvial flows written out by hand."""
import sys

import numpy as np
import pytest

from mam_pynn.analysis import interactions as I

BLOCKS = [10, 12, 10]


def planted_fc(seed=0, n=3000):
    """FC of series that share one signal per block (plus independent noise)."""
    rng = np.random.default_rng(seed)
    block = np.repeat(np.arange(len(BLOCKS)), BLOCKS)
    shared = rng.standard_normal((len(BLOCKS), n))
    series = shared[block] + 1.2 * rng.standard_normal((block.size, n))
    return np.corrcoef(series), block


def as_partition(labels):
    return sorted(sorted(np.flatnonzero(np.asarray(labels) == k).tolist()) for k in set(labels))


def test_louvain_recovers_a_planted_partition_of_an_fc_matrix():
    fc, block = planted_fc()
    assert fc[block[:, None] != block[None, :]].min() < 0            # negative weights too
    areas = [f'a{i}' for i in range(block.size)]
    for seed in (1, 2, 3):
        part = I.louvain_communities(fc, areas, seed=seed)
        assert as_partition([part[a] for a in areas]) == as_partition(block)
        assert part['a0'] == 0 and sorted(set(part.values())) == [0, 1, 2]


def directed_blocks(seed=0):
    rng = np.random.default_rng(seed)
    block = np.repeat(np.arange(len(BLOCKS)), BLOCKS)
    W = np.where(block[:, None] == block[None, :], rng.uniform(0.5, 1., (32, 32)),
                 rng.uniform(0., 0.05, (32, 32)))
    np.fill_diagonal(W, 0.)
    return W, block


def test_map_equation_recovers_a_planted_partition(monkeypatch):
    W, block = directed_blocks()
    areas = [f'a{i}' for i in range(32)]
    membership, method = I.map_equation_communities(W, areas)
    assert method.startswith('map equation (infomap') and as_partition(membership) == as_partition(block)
    monkeypatch.setitem(sys.modules, 'infomap', None)                    # not installed
    membership, method = I.map_equation_communities(W, areas)
    assert method.startswith('Louvain (networkx)') and as_partition(membership) == as_partition(block)


def test_structural_connectivity_from_the_population_indegrees():
    from mam_pynn.model import MultiAreaModel
    M = MultiAreaModel({})
    C = I.structural_connectivity(M)
    areas = M.area_list

    def area_indegree(t, s):
        return sum(M.K[t][tp][s][sp] * M.N[t][tp] for tp in M.structure[t]
                   for sp in M.structure[s]) / M.N[t]['total']
    for t in ('V1', 'FEF', 'TH'):
        ext = sum(M.K[t][tp]['external']['external'] * M.N[t][tp] for tp in M.structure[t]) / M.N[t]['total']
        row = np.array([area_indegree(t, s) for s in areas])
        np.testing.assert_allclose(C[areas.index(t)], row / (row.sum() + ext), rtol=1e-10)


def test_fc_correlation_and_alluvial_flows():
    a = np.array([[1., .5, .2], [.5, 1., .1], [.2, .1, 1.]])
    b = np.array([[1., .4, .3], [.4, 1., .0], [.3, .0, 1.]])
    x, y = [0, .5, .2, .5, 0, .1, .2, .1, 0], [0, .4, .3, .4, 0, 0, .3, 0, 0]
    assert I.fc_correlation(a, b) == pytest.approx(np.corrcoef(x, y)[0, 1])
    parts = {'structure': {'V1': 0, 'V2': 0, 'FEF': 1, '46': 1},
             'simulation': {'V1': 0, 'V2': 1, 'FEF': 1, '46': 1},
             'experiment': {'V1': 2, 'V2': 2, 'FEF': 2, '46': 0}}
    d = I.alluvial_data(parts, ['V1', 'V2', 'FEF', '46'])
    assert d['columns'] == ['area', 'structure', 'simulation', 'experiment']
    assert d['table'][1] == ['V2', 0, 1, 2]
    assert d['flows']['structure -> simulation'] == [
        {'from': 1, 'to': 1, 'count': 2, 'areas': ['FEF', '46']},
        {'from': 0, 'to': 0, 'count': 1, 'areas': ['V1']},
        {'from': 0, 'to': 1, 'count': 1, 'areas': ['V2']}]
    assert [f['count'] for f in d['flows']['simulation -> experiment']] == [2, 1, 1]
    with pytest.raises(KeyError, match="partition 'structure' has no cluster for area 'V4'"):
        I.alluvial_data(parts, ['V1', 'V4'])
