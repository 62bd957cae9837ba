"""Conditional Granger causality between population rates and its significant channels
(Schmidt et al. 2018, Fig. 9; upstream's figures/Schmidt2018_dyn/
compute_granger_causality.py and Fig9_significant_channels.py, Fig9_laminar_interactions.py).

For a target population, a vector autoregressive model (statsmodels VAR, order 25, with
constant) is fitted to the mean-free rates of the target and of every population that
sends it more than one synapse per neuron (K > 1); for each source, the same model
without that source. The conditional Granger causality source -> target is the log ratio
of the target's residual variances (reduced / full), its significance the p-value of
Levene's test (scipy, median-centred) between the two residual series, each scaled by
sqrt((n - 1) / (n - k)) for its k = variables x order parameters.
"""
from __future__ import annotations

import numpy as np

from ..anatomy import structural_gradient

#: upstream's VAR order (selected_order) and significance level
ORDER = 25
ALPHA = 0.05
#: sources with in-degree K <= this are not tested (upstream: "indegree > 1")
MIN_INDEGREE = 1.
GRADIENTS = ('HL', 'HZ', 'LH', 'same-area')


def _residuals(data: np.ndarray, order: int) -> np.ndarray:
    from statsmodels.tsa.vector_ar.var_model import VAR
    return np.asarray(VAR(data).fit(order).resid)


def conditional_granger(target: np.ndarray, sources: np.ndarray, order: int = ORDER):
    """(gc, p), each (sources,): conditional Granger causality of each source on the
    target given all other sources, and its Levene p-value. ``target`` (bins,),
    ``sources`` (k, bins): rate series (their means are removed here)."""
    target = np.asarray(target, float)
    sources = np.atleast_2d(np.asarray(sources, float))
    if sources.shape[-1] != target.size:
        raise ValueError(f"sources {sources.shape} and target ({target.size},) differ in length")
    data = np.column_stack([target, sources.T])
    data = data - data.mean(axis=0)
    full = _residuals(data, order)
    n = full.shape[0]
    variance = np.var(full[:, 0], ddof=1)
    scaled_full = np.sqrt((n - 1.) / (n - data.shape[1] * order)) * full[:, 0]
    gc, p = np.empty(sources.shape[0]), np.empty(sources.shape[0])
    from scipy.stats import levene
    for i in range(sources.shape[0]):
        reduced = _residuals(np.delete(data, i + 1, axis=1), order)[:, 0]
        gc[i] = np.log(np.var(reduced, ddof=1) / variance)
        k_reduced = (data.shape[1] - 1) * order
        p[i] = levene(scaled_full, np.sqrt((n - 1.) / (n - k_reduced)) * reduced).pvalue
    return gc, p


def population_granger(target, labels, series: np.ndarray, indegrees: np.ndarray,
                       order: int = ORDER, min_indegree: float = MIN_INDEGREE) -> dict:
    """Upstream's granger_causality_<area>_<pop>.json for ``target`` = (area, pop):
    {area: {pop: (gc, p)}} for every source with K > min_indegree (every area of
    ``labels`` a key, empty where none), {} if the target is not among ``labels``.

    ``labels``: (area, pop) of the rows of ``series`` (bins); ``indegrees``: K[target,
    source] for those rows (external input excluded). The target itself is not listed
    (upstream stores (nan, nan) for it when it is the last population with K > 1).
    """
    labels = [tuple(x) for x in labels]
    if tuple(target) not in labels:
        return {}
    series = np.asarray(series, float)
    chosen = [i for i, (lab, k) in enumerate(zip(labels, indegrees))
              if k > min_indegree and lab != tuple(target)]
    out = {area: {} for area in dict.fromkeys(a for a, _ in labels)}
    if not chosen:
        return out
    gc, p = conditional_granger(series[labels.index(tuple(target))], series[chosen], order)
    for i, g, q in zip(chosen, gc, p):
        out[labels[i][0]][labels[i][1]] = (float(g), float(q))
    return out


def gradient(target_area: str, source_area: str, arch_types: dict) -> str:
    """'same-area', or the structural gradient of the architectural types (HL, LH, HZ)."""
    if target_area == source_area:
        return 'same-area'
    return structural_gradient(arch_types[target_area], arch_types[source_area])


def significant_channels(gc: dict, arch_types: dict, areas=None, alpha: float = ALPHA) -> dict:
    """Upstream's Fig9_<label>_significant_channels.json: {gradient: [(source_pop,
    target_pop), ...]}, one entry per area pair and population pair with p < alpha,
    grouped by the structural gradient; ``gc`` = {target_area: {target_pop: that
    target's population_granger dict}}; ``areas``: the order (default: gc's)."""
    areas = list(areas or gc)
    out = {g: [] for g in GRADIENTS}
    for source_area in areas:
        for target_area in areas:
            grad = gradient(target_area, source_area, arch_types)
            for target_pop, sources in gc[target_area].items():
                for source_pop, (_, p) in sources.get(source_area, {}).items():
                    if p < alpha:
                        out[grad].append((source_pop, target_pop))
    return out


def channel_counts(channels: dict) -> dict:
    """{gradient: {(source_pop, target_pop): count}}: how often each laminar channel is
    significant (the line widths of Fig. 9's path diagrams, upstream's write_out_lw)."""
    from collections import Counter
    return {g: dict(Counter(map(tuple, pairs))) for g, pairs in channels.items()}


def significant_fraction(gc: dict, arch_types: dict, alpha: float = ALPHA) -> dict:
    """Fig. 9 C: {gradient: {'total', 'significant'}} counts of tested and significant
    source-target population pairs, and 'all' over every gradient."""
    out = {g: {'total': 0, 'significant': 0} for g in GRADIENTS}
    for target_area, pops in gc.items():
        for sources in pops.values():
            for source_area, entries in sources.items():
                grad = gradient(target_area, source_area, arch_types)
                out[grad]['total'] += len(entries)
                out[grad]['significant'] += sum(p < alpha for _, p in entries.values())
    out['all'] = {k: sum(out[g][k] for g in GRADIENTS) for k in ('total', 'significant')}
    return out


def target_balance(channels: dict, gradients=('HL', 'HZ', 'LH')) -> dict:
    """Fig. 9 D: {gradient: {'E', 'I'}}: fractions of the distinct significant channels
    that end on excitatory and on inhibitory populations, and 'all' over ``gradients``.
    (Upstream's script loops over ('HL', 'HZ', 'HL'): HL twice and LH never; here each
    of the three once.)"""
    out, n_all = {}, {'E': 0, 'I': 0}
    for g in gradients:
        distinct = set(map(tuple, channels[g]))
        n = {'E': sum(t.endswith('E') for _, t in distinct), 'I': sum(t.endswith('I') for _, t in distinct)}
        total = n['E'] + n['I']
        out[g] = {k: (v / total if total else float('nan')) for k, v in n.items()}
        n_all = {k: n_all[k] + n[k] for k in n}
    total = n_all['E'] + n_all['I']
    out['all'] = {k: (v / total if total else float('nan')) for k, v in n_all.items()}
    return out


def indegree_table(gc: dict, K) -> list[dict]:
    """Fig. 9 E: one row per tested pair {target, source ('area-pop'), K (relative
    in-degree: K / the sum of K over the target's tested sources), GC, p, local}."""
    rows = []
    for target_area, pops in gc.items():
        for target_pop, sources in pops.items():
            total = sum(K[target_area][target_pop][sa][sp] for sa, e in sources.items() for sp in e)
            for source_area, entries in sources.items():
                for source_pop, (g, p) in entries.items():
                    rows.append({'target': f'{target_area}-{target_pop}',
                                 'source': f'{source_area}-{source_pop}',
                                 'K': K[target_area][target_pop][source_area][source_pop] / total,
                                 'GC': g, 'p': p, 'local': source_area == target_area})
    return rows
