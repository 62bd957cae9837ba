"""What the export writes per area: node populations and types, the edges of one area
pair (drawn target block by target block, as upstream's NEST rules draw them, and
written in chunks), and the external input (Poisson drive, replaced areas).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ...io import write_sonata_spikes
from .._tables import NetworkTables
from ._files import (CELL_TEMPLATE, SYNAPSE_TEMPLATE, _AtomicH5, _Progress, _new_dataset,
                     _new_group, _set_str_attr, _write_component, _write_slice, _write_types_csv)
from .index import (_SourceIndexBuckets, _index_from_groups, _write_index, _write_index_parts,
                    _write_target_index)


# --------------------------------------------------------------------------- nodes

def nest_cell_params(t: NetworkTables, area: str, pop: str) -> dict:
    """NEST iaf_psc_exp parameters of one population (pA, pF, mV, ms), DC drive included."""
    d = {k: float(v) for k, v in t.neuron.items()}
    d['I_e'] = float(t.dc_pa[(area, pop)])
    d['V_m'] = t.V0_mean   # readers without per-node state start here; ours use V_m_init
    return d


def _node_type_id(t: NetworkTables, area: str, pop: str) -> int:
    return 100 + t.row[(area, pop)]


def _write_nodes(t: NetworkTables, out: Path, rng: np.random.Generator) -> None:
    rows = []
    models = out / 'components' / 'point_neuron_models'
    with _AtomicH5(out / 'network' / 'nodes.h5') as f:
        for area in t.areas:
            g = f.create_group(f'nodes/{area}')
            type_ids = np.concatenate([np.full(t.n[(area, p)], _node_type_id(t, area, p), np.uint32)
                                       for p in t.structure[area]])
            n = type_ids.size
            g.create_dataset('node_id', data=np.arange(n, dtype=np.uint64))  # bmtk needs it
            g.create_dataset('node_type_id', data=type_ids)
            g.create_dataset('node_group_id', data=np.zeros(n, np.uint32))
            g.create_dataset('node_group_index', data=np.arange(n, dtype=np.uint64))
            v0 = rng.normal(t.V0_mean, t.V0_sd, n).astype(np.float32)
            g.create_dataset('0/V_m_init', data=v0)
            for p in t.structure[area]:
                name = f'{area}_{p}.json'
                _write_component(models / name, nest_cell_params(t, area, p))
                rows.append({'node_type_id': _node_type_id(t, area, p), 'model_type': 'point_neuron',
                             'model_template': CELL_TEMPLATE, 'dynamics_params': name,
                             'pynn_cell_type': 'IF_curr_exp', 'area': area, 'population': p})
    _write_types_csv(out / 'network' / 'node_types.csv', rows)


# --------------------------------------------------------------------------- edges

def _at(v, idx):
    """``v[idx]`` for a per-element array, ``v`` itself for a scalar (the same for all)."""
    return v[idx] if np.ndim(v) else v


def _normal_redraw(rng, n: int, mean, sd, low=None, sign=None):
    """``n`` draws of N(mean, sd) (float32), redrawn where below ``low`` or where
    ``x * sign < 0`` (``sign`` +1/-1: the sign a weight must keep). ``mean``, ``sd`` and
    ``sign`` are per-element arrays or float32 scalars; only failing elements are redrawn."""
    def bad_of(x, idx=None):
        bad = None if low is None else x < low
        if sign is not None:
            wrong = (x * (sign if idx is None else _at(sign, idx))) < 0
            bad = wrong if bad is None else bad | wrong
        return bad
    x = rng.standard_normal(n, dtype=np.float32)
    x *= sd
    x += mean
    idx = np.flatnonzero(bad_of(x))
    while idx.size:
        x[idx] = _at(mean, idx) + _at(sd, idx) * rng.standard_normal(idx.size, dtype=np.float32)
        idx = idx[bad_of(x[idx], idx)]
    return x


def _edge_type_table(t: NetworkTables):
    """edge_type_id per (target area, target pop, source area, source pop) with synapses."""
    ids, rows = {}, []
    for ta in t.areas:
        for tp in t.structure[ta]:
            for sa in t.areas:
                for sp in t.structure[sa]:
                    if t.syn[t.row[(ta, tp)], t.row[(sa, sp)]] > 0:
                        et = len(rows)
                        ids[(ta, tp, sa, sp)] = et
                        rows.append({'edge_type_id': et, 'model_template': SYNAPSE_TEMPLATE,
                                     'dynamics_params': 'static_synapse.json',
                                     'source_area': sa, 'source_pop': sp,
                                     'target_area': ta, 'target_pop': tp})
    return ids, rows


def _create_edge_population(f: h5py.File, name: str, src_pop: str, tgt_pop: str, n: int):
    g = _new_group(f, f'edges/{name}')
    group0 = _new_group(g, '0')
    ds = {}
    for key, dtype, pop in (('source_node_id', np.uint64, src_pop), ('target_node_id', np.uint64, tgt_pop)):
        ds[key] = _new_dataset(g, key, (n,), dtype)
        _set_str_attr(ds[key], 'node_population', pop)
    ds['edge_type_id'] = _new_dataset(g, 'edge_type_id', (n,), np.uint32)
    ds['edge_group_id'] = _new_dataset(g, 'edge_group_id', (n,), np.uint32)
    ds['edge_group_index'] = _new_dataset(g, 'edge_group_index', (n,), np.uint64)
    ds['syn_weight'] = _new_dataset(group0, 'syn_weight', (n,), np.float32)
    ds['delay'] = _new_dataset(group0, 'delay', (n,), np.float32)
    return g, ds


class _WriteBuffer:
    """Collects edge arrays and writes them in large slices (few h5py calls)."""

    def __init__(self, datasets: dict):
        self.ds, self.parts, self.n, self.pos = datasets, [], 0, 0

    def add(self, **arrays) -> None:
        self.parts.append(arrays)
        self.n += len(next(iter(arrays.values())))

    def flush(self) -> None:
        if not self.parts:
            return
        for key, d in self.ds.items():
            _write_slice(d, self.pos, self.parts[0][key] if len(self.parts) == 1 else
                         np.concatenate([p[key] for p in self.parts]))
        self.pos += self.n
        self.parts, self.n = [], 0


def _edge_counts(rng, syn: np.ndarray, t_size: np.ndarray, chunk: int) -> np.ndarray:
    """Edges per (target neuron, source population): ``syn[tp, sp]`` targets drawn uniformly
    with replacement among the ``t_size[tp]`` neurons of each target population.

    Up to ``chunk`` edges in all: every target drawn at once (one vectorised draw for the
    whole area pair); beyond: a multinomial per population pair (memory O(neurons))."""
    n_tp, n_sp = syn.shape
    n_tgt = int(t_size.sum())
    t_first = np.concatenate([[0], np.cumsum(t_size)[:-1]])
    total = int(syn.sum())
    if total <= chunk:
        pair = np.flatnonzero(syn.ravel())
        n_pair = syn.ravel()[pair]
        tp, sp = np.divmod(pair, n_sp)
        x = rng.random(total)
        x *= np.repeat(t_size[tp].astype(np.float64), n_pair)
        key = x.astype(np.int64)
        key += np.repeat(t_first[tp], n_pair)
        key *= n_sp
        key += np.repeat(sp, n_pair)
        return np.bincount(key, minlength=n_tgt * n_sp).reshape(n_tgt, n_sp)
    counts = np.zeros((n_tgt, n_sp), np.int64)
    for tp in range(n_tp):
        rows = slice(t_first[tp], t_first[tp] + t_size[tp])
        for sp in range(n_sp):
            n = int(syn[tp, sp])
            if n and t_size[tp]:
                counts[rows, sp] = rng.multinomial(n, np.full(t_size[tp], 1.0 / t_size[tp])) \
                    if n > chunk else np.bincount(rng.integers(0, t_size[tp], n), minlength=t_size[tp])
    return counts


def _write_area_pair(f, t: NetworkTables, ta: str, sa: str, et_ids: dict, rng, chunk_edges: int,
                     tmpdir: Path, progress: _Progress) -> int:
    """Draw and write all edges from area ``sa`` to area ``ta`` (one edge population).

    Target neurons are taken in blocks of about ``chunk_edges`` edges; each edge's
    parameters come from tables over (target population, source population)."""
    n_total = t.n_edges(ta, sa)
    if n_total == 0:
        return 0
    name = f'{sa}_to_{ta}'
    g, ds = _create_edge_population(f, name, sa, ta, n_total)
    s_pops, t_pops = t.structure[sa], t.structure[ta]
    n_sp = len(s_pops)
    s_off = t.area_offsets(sa)
    rows = [t.row[(ta, p)] for p in t_pops]
    cols = [t.row[(sa, p)] for p in s_pops]
    syn = t.syn[np.ix_(rows, cols)].astype(np.int64)
    t_size = np.array([t.n[(ta, p)] for p in t_pops], np.int64)
    # per (target population, source population), flattened: the edge parameters
    s_first = np.tile(np.array([s_off[p] for p in s_pops], np.int64), len(t_pops))
    s_size = np.tile(np.array([t.n[(sa, p)] for p in s_pops], np.float64), len(t_pops))
    pair = np.ix_(rows, cols)
    W = t.W[pair].astype(np.float32).ravel()
    W_sd = np.nan_to_num(t.W_sd[pair]).astype(np.float32).ravel()
    et = np.array([et_ids.get((ta, tp, sa, sp), 0) for tp in t_pops for sp in s_pops], np.uint32)
    d_mean = t.d_mean[pair].astype(np.float32).ravel()
    d_sd = t.d_sd[pair].astype(np.float32).ravel()
    # a weight keeps the sign of its mean: inhibitory <= 0, all others >= 0
    sign = np.where(W < 0, np.float32(-1), np.float32(1))
    # all >= 0: the same test (x * 1 < 0 is x < 0) without the product
    w_low, w_sign = (np.float32(0), None) if (sign > 0).all() else (None, sign)
    dt = np.float32(t.dt)
    pop_edges = syn.sum(axis=0).tolist()
    src_index = _SourceIndexBuckets([s_off[p] for p in s_pops], [t.n[(sa, p)] for p in s_pops], pop_edges,
                                    chunk_edges, tmpdir)
    counts = _edge_counts(rng, syn, t_size, chunk_edges)   # (target neuron, source population)
    per_target = counts.sum(axis=1)
    cum = np.concatenate([[0], np.cumsum(per_target)])
    # the (target population, source population) cell of every (target neuron, source population)
    cell = (np.repeat(np.arange(len(t_pops)), t_size)[:, None] * n_sp + np.arange(n_sp)).astype(np.uint8)
    n_tgt = int(t_size.sum())
    pos, a = 0, 0
    buf = _WriteBuffer(ds)
    while a < n_tgt:   # blocks of target neurons holding about chunk_edges edges
        b = int(np.searchsorted(cum, cum[a] + chunk_edges, side='right')) - 1
        b = min(max(b, a + 1), n_tgt)
        n = int(cum[b] - cum[a])
        if n == 0:
            a = b
            continue
        cell_e = np.repeat(cell[a:b].ravel(), counts[a:b].ravel())   # in write order

        def per_edge(v, array=False):
            """The table's value for every edge (one scalar where all are equal)."""
            if not array and (v == v[0]).all():
                return v[0]
            return v[cell_e]
        tgt = np.repeat(np.arange(a, b, dtype=np.uint64), per_target[a:b])
        u = rng.random(n)
        u *= per_edge(s_size)
        src = u.astype(np.int64)
        del u
        src += per_edge(s_first)
        w = _normal_redraw(rng, n, per_edge(W), per_edge(W_sd), low=w_low,
                           sign=None if w_sign is None else per_edge(w_sign))
        dl = _normal_redraw(rng, n, per_edge(d_mean), per_edge(d_sd), low=dt)
        if buf.n + n > chunk_edges:   # keep at most about chunk_edges edges buffered
            buf.flush()
        buf.add(source_node_id=src.view(np.uint64), target_node_id=tgt, edge_type_id=per_edge(et, array=True),
                syn_weight=w, delay=dl, edge_group_id=np.zeros(n, np.uint32),
                edge_group_index=np.arange(pos, pos + n, dtype=np.uint64))
        src_index.add(src, pos)
        pos += n
        progress.add(n, name)
        a = b
    buf.flush()
    assert pos == n_total == buf.pos, (name, pos, n_total)
    # indices: target_to_source straight from the counts (edges are sorted by target)
    _write_target_index(g, per_target)
    _write_index_parts(g, 'source_to_target', t.area_size(sa), n_total,   # one range per edge
                       ((first, *_index_from_groups(eids, counts, merge=False))
                        for first, eids, counts in src_index.buckets()))
    return n_total


# --------------------------------------------------------------------------- inputs

def _write_external(t: NetworkTables, out: Path, rng, mode: str) -> dict:
    """Poisson drive and replaced areas: generator nodes or virtual nodes + spike trains."""
    net = out / 'network'
    chans = t.channels
    if not chans:
        return {}
    if mode == 'poisson_generator':
        type_rows = []
        for i, ch in enumerate(chans):
            name = f'poisson_{i}.json'
            _write_component(out / 'components' / 'point_neuron_models' / name, {'rate': float(ch.rate_hz)})
            type_rows.append({'node_type_id': i, 'model_type': 'point_neuron',
                              'model_template': 'nest:poisson_generator', 'dynamics_params': name,
                              'target_area': ch.area, 'target_pop': ch.pop, 'origin': ch.origin})
        # one generator node per channel; NEST generators send each target its own train
        node_channel = np.arange(len(chans))
    elif mode == 'spikes':
        # no model_template column: bmtk reads 'NONE' as None and then fails on it
        type_rows = [{'node_type_id': 0, 'model_type': 'virtual'}]
        # one virtual node per (channel, target neuron)
        node_channel = np.concatenate([np.full(t.n[(c.area, c.pop)], i) for i, c in enumerate(chans)])
    else:
        raise ValueError(f"external must be 'poisson_generator' or 'spikes', got {mode!r}")
    n_nodes = node_channel.size
    with _AtomicH5(net / 'external_nodes.h5') as f:
        g = f.create_group('nodes/external')
        g.create_dataset('node_id', data=np.arange(n_nodes, dtype=np.uint64))
        g.create_dataset('node_type_id', data=(node_channel if mode == 'poisson_generator'
                                               else np.zeros(n_nodes)).astype(np.uint32))
        g.create_dataset('node_group_id', data=np.zeros(n_nodes, np.uint32))
        g.create_dataset('node_group_index', data=np.arange(n_nodes, dtype=np.uint64))
        g.create_dataset('0/channel', data=node_channel.astype(np.uint32))
    _write_types_csv(net / 'external_node_types.csv', type_rows)

    # edges: external -> each simulated area (sorted by target), weight/delay of the channel
    edge_rows = {}
    with _AtomicH5(net / 'external_edges.h5') as f:
        first_node = np.concatenate([[0], np.cumsum([t.n[(c.area, c.pop)] for c in chans])])
        for area in t.areas:
            off = t.area_offsets(area)
            src, tgt, w, d, et = [], [], [], [], []
            for i, c in enumerate(chans):
                if c.area != area:
                    continue
                n = t.n[(c.area, c.pop)]
                tgt.append(np.arange(off[c.pop], off[c.pop] + n, dtype=np.uint64))
                src.append(np.full(n, i, np.uint64) if mode == 'poisson_generator'
                           else np.arange(first_node[i], first_node[i] + n, dtype=np.uint64))
                w.append(np.full(n, c.weight_pa, np.float32))
                d.append(np.full(n, c.delay_ms, np.float32))
                key = ('external', c.pop, area)
                edge_rows.setdefault(key, len(edge_rows) + 1_000_000)
                et.append(np.full(n, edge_rows[key], np.uint32))
            if not tgt:
                continue
            tgt = np.concatenate(tgt)
            order = np.argsort(tgt, kind='stable')
            src, tgt = np.concatenate(src)[order], tgt[order]
            g, ds = _create_edge_population(f, f'external_to_{area}', 'external', area, tgt.size)
            eids = np.arange(tgt.size, dtype=np.int64)
            for key, values in (('source_node_id', src), ('target_node_id', tgt),
                                ('edge_type_id', np.concatenate(et)[order]),
                                ('syn_weight', np.concatenate(w)[order]), ('delay', np.concatenate(d)[order]),
                                ('edge_group_id', np.zeros(tgt.size, np.uint32)), ('edge_group_index', eids)):
                _write_slice(ds[key], 0, values)
            _write_index(g, 'target_to_source', *_index_from_groups(
                eids, np.bincount(tgt.astype(np.int64), minlength=t.area_size(area))))
            src64 = src.astype(np.int64)
            _write_index(g, 'source_to_target', *_index_from_groups(
                eids[np.argsort(src64, kind='stable')], np.bincount(src64, minlength=n_nodes)))
    rows = [{'edge_type_id': et_id, 'model_template': SYNAPSE_TEMPLATE,
             'dynamics_params': 'static_synapse.json', 'source_area': 'external', 'source_pop': 'external',
             'target_area': area, 'target_pop': pop} for (_, pop, area), et_id in edge_rows.items()]
    _write_types_csv(net / 'external_edge_types.csv', rows)

    inputs = {}
    if mode == 'spikes':
        _write_spike_trains(out / 'inputs' / 'external_spikes.h5', 'external',
                            np.array([c.rate_hz for c in chans])[node_channel], t.t_sim, t.dt, rng)
        inputs = {'external_spikes': {'input_type': 'spikes', 'module': 'sonata',
                                      'input_file': '$BASE_DIR/inputs/external_spikes.h5',
                                      'node_set': 'external'}}
    return inputs


MAX_INPUT_SPIKES = 50_000_000   # external='spikes' holds every input spike in memory at once


def _write_spike_trains(path: Path, pop: str, rates_hz: np.ndarray, t_sim: float, dt: float, rng) -> None:
    """Stationary Poisson trains in (dt, t_sim], sorted by time (SONATA spikes file)."""
    expected = float(rates_hz.sum()) * t_sim * 1e-3
    if expected > MAX_INPUT_SPIKES:
        raise ValueError(f"external='spikes' would pre-draw ~{expected:,.0f} input spikes (more than "
                         f"{MAX_INPUT_SPIKES:,}): export fewer areas, a shorter t_sim, or use "
                         f"external='poisson_generator'")
    counts = rng.poisson(rates_hz * t_sim * 1e-3)
    node_ids = np.repeat(np.arange(rates_hz.size, dtype=np.uint64), counts)
    times = dt + rng.random(node_ids.size) * (t_sim - dt)
    write_sonata_spikes(path, {pop: (node_ids, times)})
