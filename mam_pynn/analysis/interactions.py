"""Area-level interactions of Schmidt et al. 2018, Fig. 8: communities of a functional
connectivity matrix by the Louvain method (upstream's figures/Schmidt2018_dyn/
compute_louvain_communities.py), communities of the structural connectivity by the map
equation, the comparison of FC matrices and the alluvial diagrams between partitions
(Fig8_interactions.py). FC matrices themselves: statistics.functional_connectivity
(Pearson, upstream's 1 - pdist correlation) and bold.bold_functional_connectivity.
"""
from __future__ import annotations

import numpy as np


def _numbered(membership) -> list[int]:
    """Community labels renumbered 0, 1, ... in order of their first node."""
    first = {}
    for m in membership:
        first.setdefault(m, len(first))
    return [first[m] for m in membership]


def zero_diagonal(matrix) -> np.ndarray:
    """A copy with the diagonal set to 0 (upstream's zero_diagonal)."""
    m = np.array(matrix, float)
    np.fill_diagonal(m, 0.)
    return m


def louvain_communities(fc, areas, seed: int | None = 1) -> dict:
    """Upstream's FC_<method>_communities.json: {area: community} of the Louvain method
    (networkx; upstream used python-louvain's best_partition, the same method) on the
    undirected graph weighted by the FC with its diagonal set to 0 (every pair an edge,
    negative correlations included, as upstream). Communities are numbered in order of
    their first area in ``areas``."""
    import networkx as nx
    fc = zero_diagonal(fc)
    areas = list(areas)
    if fc.shape != (len(areas), len(areas)):
        raise ValueError(f"FC {fc.shape} does not match {len(areas)} areas")
    G = nx.Graph()
    G.add_nodes_from(areas)
    G.add_weighted_edges_from((a, b, float(fc[i, j])) for i, a in enumerate(areas)
                              for j, b in enumerate(areas))
    parts = nx.community.louvain_communities(G, weight='weight', seed=seed)
    lookup = {a: k for k, part in enumerate(parts) for a in part}
    return dict(zip(areas, _numbered([lookup[a] for a in areas])))


def map_equation_communities(W, areas, seed: int = 1) -> tuple[list[int], str]:
    """(membership, method): communities of the directed graph with edges source j ->
    target i weighted by W[i, j] > 0, by the map equation (infomap, two-level, as
    upstream's apply_map_equation writes its .net file); networkx's Louvain method on
    the same directed graph if infomap is not installed (the method says so).
    Communities are numbered in order of their first area."""
    W = np.asarray(W, float)
    n = len(areas)
    try:
        import infomap
    except ImportError:
        import networkx as nx
        G = nx.DiGraph()
        G.add_nodes_from(areas)
        G.add_weighted_edges_from((areas[j], areas[i], float(W[i, j]))
                                  for i in range(n) for j in range(n) if W[i, j] > 0)
        parts = nx.community.louvain_communities(G, weight='weight', seed=seed)
        lookup = {a: k for k, p in enumerate(parts) for a in p}
        return (_numbered([lookup[a] for a in areas]),
                'Louvain (networkx), not the map equation: infomap is not installed')
    im = infomap.Infomap(f'--directed --two-level --silent --seed {seed}')
    for i in range(n):
        for j in range(n):
            if W[i, j] > 0:
                im.add_link(j, i, float(W[i, j]))          # from source j to target i
    modules = dict(im.run().modules())
    return _numbered([modules[i] for i in range(n)]), f'map equation (infomap {infomap.__version__})'


def structural_connectivity(M) -> np.ndarray:
    """Fig. 8's structural connectivity (areas, areas): the area-level in-degree
    K_areas[target][source] relative to the target's total in-degree (external input
    and the area itself included in the total, as upstream's sum over K_areas)."""
    areas = list(M.area_list)
    return np.array([[M.K_areas[t][s] / sum(M.K_areas[t].values()) for s in areas] for t in areas])


def fc_correlation(a, b) -> float:
    """Fig. 8 D: Pearson correlation of two FC (or connectivity) matrices over all
    entries with the diagonals set to 0 (upstream: np.corrcoef of the flattened
    zero_diagonal matrices; statistics.fc_similarity uses the upper triangle only)."""
    return float(np.corrcoef(zero_diagonal(a).ravel(), zero_diagonal(b).ravel())[0, 1])


def alluvial_data(partitions: dict, areas) -> dict:
    """Data of Fig. 8's alluvial diagrams between partitions of the areas.

    ``partitions``: {name: {area: cluster}} in the order of the diagram's columns
    (upstream: map equation of the structure, Louvain of the simulated FC, Louvain of
    the experimental FC). Returns {'table': [[area, cluster per partition...], ...]
    (upstream's alluvial_input.txt), 'flows': {'A -> B': [{'from', 'to', 'count',
    'areas'}, ...]} for each pair of neighbouring columns, largest flows first}.
    """
    names, areas = list(partitions), list(areas)
    missing = [(n, a) for n in names for a in areas if a not in partitions[n]]
    if missing:
        raise KeyError(f"partition {missing[0][0]!r} has no cluster for area {missing[0][1]!r}")
    table = [[a] + [partitions[n][a] for n in names] for a in areas]
    flows = {}
    for left, right in zip(names, names[1:]):
        groups = {}
        for a in areas:
            groups.setdefault((partitions[left][a], partitions[right][a]), []).append(a)
        flows[f'{left} -> {right}'] = sorted(
            ({'from': k[0], 'to': k[1], 'count': len(v), 'areas': v} for k, v in groups.items()),
            key=lambda f: (-f['count'], str(f['from']), str(f['to'])))
    return {'columns': ['area'] + names, 'table': table, 'flows': flows}
