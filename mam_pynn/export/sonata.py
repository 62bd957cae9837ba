"""SONATA export of the multi-area model, and the way back.

Layout written by :func:`export_sonata` (see exports/README.md for the full mapping)::

    circuit_config.json  simulation_config.json  node_sets.json  mam_export.json
    bmtk_config.json            the same for bmtk (which resolves paths differently)
    network/nodes.h5            one node population per simulated area (node ids local to it)
    network/node_types.csv      one node type per (area, population): nest:iaf_psc_exp + JSON
    network/edges.h5            one edge population '<source>_to_<target>' per connected area pair
    network/edge_types.csv      one edge type per (source population, target population)
    network/external_*.{h5,csv} Poisson drive and replaced areas (see ``external``)
    components/point_neuron_models/*.json, components/synaptic_models/static_synapse.json
    inputs/external_spikes.h5   pre-drawn Poisson spike trains (``external='spikes'`` only)

Edges follow the network's statistics (upstream's NEST rules): a fixed total number per
population pair with sources and targets drawn uniformly with replacement, weights
N(W, W_sd) redrawn until their sign is that of the source (excitatory >= 0, inhibitory
<= 0, cortico-cortical >= 0), delays N(d, delay_rel d) redrawn below dt. They are drawn
target block by target block (first the number of synapses per target neuron, as a
multinomial, then the sources), so each block comes out sorted by target, and written
in chunks into preallocated datasets: memory stays bounded by ``chunk_edges``. The
source_to_target index is built by a bucket sort over temporary files of packed
(source, edge id) keys, also in bounded memory.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np

from ..io import atomic_write_text, write_sonata_spikes
from ._tables import NetworkTables, network_tables

CELL_TEMPLATE = 'nest:iaf_psc_exp'
SYNAPSE_TEMPLATE = 'static_synapse'
_KEY_BITS = 40                       # edge ids below 2**40, source ids below 2**24 in a key
_EID_MASK = np.uint64((1 << _KEY_BITS) - 1)


def _log(msg: str) -> None:
    print(f"[sonata] {msg}", file=sys.stderr, flush=True)


def _write_text_atomic(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def _write_json(path: Path, obj) -> None:
    _write_text_atomic(path, json.dumps(obj, indent=2, default=str) + '\n')


def _write_component(path: Path, obj) -> None:
    """Small parameter files (hundreds of them): plain writes, the export is only
    complete once mam_export.json is written (atomically, last)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) + '\n')


def _write_types_csv(path: Path, rows: list[dict]) -> None:
    """SONATA types tables are space-delimited CSV (NEST reads them with sep=r'\\s+')."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter=' ', lineterminator='\n')
    w.writeheader()
    w.writerows(rows)
    _write_text_atomic(path, buf.getvalue())


class _AtomicH5:
    """h5py.File written to a temporary name and renamed on success."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = self.path.with_name('.' + self.path.name + '.tmp')

    def __enter__(self) -> h5py.File:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = h5py.File(self.tmp, 'w')
        self.f.attrs['version'] = np.array([0, 1], dtype=np.uint32)
        self.f.attrs['magic'] = np.uint32(0x0A7A)
        return self.f

    def __exit__(self, exc_type, *_):
        self.f.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


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


def _new_dataset(g: h5py.Group, name: str, shape, dtype, data: np.ndarray | None = None) -> h5py.Dataset:
    """``g.create_dataset(name, shape, dtype[, data])`` (contiguous, as h5py creates it) through
    the low-level API: an export creates about a dozen datasets per edge population, and
    h5py's checks cost more than HDF5's own work."""
    if '/' in name:
        parent, name = name.rsplit('/', 1)
        g = g.require_group(parent)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_obj_track_times(False)
    dtype = np.dtype(dtype)
    dsid = h5py.h5d.create(g.id, name.encode(), h5py.h5t.py_create(dtype, logical=1),
                           h5py.h5s.create_simple(tuple(shape)), dcpl=dcpl)
    if data is not None and data.size:
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data, dtype=dtype))
    return h5py.Dataset(dsid)


def _write_slice(ds: h5py.Dataset, start: int, data: np.ndarray) -> None:
    """``ds[start:start + len(data)] = data`` through h5py's low-level API: for the many
    small writes of an export, h5py's slicing machinery costs more than the copy."""
    data = np.ascontiguousarray(data, dtype=ds.id.dtype)
    if data.shape[0] == 0:
        return
    fspace = ds.id.get_space()
    fspace.select_hyperslab((start,) + (0,) * (data.ndim - 1), data.shape)
    ds.id.write(h5py.h5s.create_simple(data.shape), fspace, data)


class _SourceIndexBuckets:
    """Packed (source id << 40 | edge id) keys, spilled to bucket files by source-id range.

    Bucket bounds follow the expected number of edges per source population, so each
    bucket holds about ``chunk_edges`` keys (at most ``MAX_BUCKETS`` files per edge
    population: beyond 512 x chunk_edges edges in one population buckets grow) and fewer
    than 2**16 source ids, so it is sorted by a stable radix sort on 16-bit local source
    ids (edge ids arrive in increasing order: the result is sorted by (source, edge id)).
    """
    MAX_BUCKETS = 512

    def __init__(self, pop_first: list, pop_size: list, pop_edges: list, chunk_edges: int,
                 tmpdir: Path):
        self.n_sources = int(sum(pop_size))
        n_edges = int(sum(pop_edges))
        if self.n_sources >= 1 << (64 - _KEY_BITS) or n_edges >= 1 << _KEY_BITS:
            raise ValueError(f"edge population too large for the index keys: {self.n_sources} sources "
                             f"(max {(1 << (64 - _KEY_BITS)) - 1}), {n_edges} edges (max {(1 << _KEY_BITS) - 1})")
        per_bucket = max(chunk_edges, -(-n_edges // self.MAX_BUCKETS))
        if n_edges <= per_bucket and self.n_sources <= 0xFFFF:
            self.bounds = np.array([0, self.n_sources], np.int64)
        else:
            bounds = []
            for first, size, e in zip(pop_first, pop_size, pop_edges):
                k = max(1, -(-int(e) // per_bucket), -(-int(size) // 0xFFFF))
                bounds.extend((first + np.round(np.linspace(0, size, k + 1))[:-1]).astype(np.int64))
            self.bounds = np.unique(np.append(bounds, self.n_sources).astype(np.int64))
        self.n_buckets = len(self.bounds) - 1
        # bucket of every source id: one gather per key instead of a binary search
        self.bucket_of = np.repeat(np.arange(self.n_buckets, dtype=np.uint16), np.diff(self.bounds))
        self.mem = [] if self.n_buckets == 1 else None
        if self.mem is None:
            self.dir = Path(tempfile.mkdtemp(dir=tmpdir, prefix='.srcidx'))
            self.files = [open(self.dir / f'{b}.bin', 'wb') for b in range(self.n_buckets)]

    def add(self, src: np.ndarray, first_eid: int) -> None:
        """Source ids (int64) of the edges ``first_eid``, ``first_eid + 1``, ..."""
        if self.mem is not None:   # one bucket: edge ids are the positions, in arrival order
            self.mem.append(src.astype(np.uint16))
            return
        bucket = self.bucket_of[src]
        order = np.argsort(bucket, kind='stable')          # radix sort: O(n)
        cuts = np.cumsum(np.bincount(bucket, minlength=self.n_buckets))[:-1]
        keys = src[order].view(np.uint64)
        keys <<= np.uint64(_KEY_BITS)
        keys |= order.view(np.uint64) + np.uint64(first_eid)   # the edge ids
        for b, part in enumerate(np.split(keys, cuts)):
            if part.size:
                part.tofile(self.files[b])

    @staticmethod
    def _grouped(local: np.ndarray, n_nodes: int, eids: np.ndarray | None = None):
        """Edge ids grouped by local source id (a stable radix sort of 16-bit ids: edge ids
        stay increasing within a source) and the number of edges per source."""
        order = np.argsort(local, kind='stable')
        counts = np.bincount(local, minlength=n_nodes)
        if eids is None:
            return order, counts
        eids = eids[order]
        eids &= _EID_MASK
        return eids, counts

    def buckets(self):
        """(first source id, edge ids grouped by source, edges per source) per bucket."""
        if self.mem is not None:
            local = np.concatenate(self.mem) if self.mem else np.zeros(0, np.uint16)
            self.mem = None
            yield (0, *self._grouped(local, self.n_sources))
            return
        for f in self.files:
            f.close()
        for b in range(self.n_buckets):
            path = self.dir / f'{b}.bin'
            keys = np.fromfile(path, dtype=np.uint64)
            path.unlink()
            first = int(self.bounds[b])
            # fewer than 2**16 sources per bucket: the local id is the source id modulo 2**16
            local = (keys >> np.uint64(_KEY_BITS)).astype(np.uint16)
            local -= np.uint16(first & 0xFFFF)
            yield (first, *self._grouped(local, int(self.bounds[b + 1]) - first, keys))
        shutil.rmtree(self.dir, ignore_errors=True)


def _index_from_groups(eids: np.ndarray, counts: np.ndarray):
    """node_id_to_ranges rows and range_to_edge_id rows from edge ids grouped by node
    (``counts`` per node, increasing within a node): consecutive edge ids of one node
    form one range; nodes without edges get an empty range [r, r)."""
    n = eids.size
    node_end = np.cumsum(counts)
    node_start = node_end - counts
    if n == 0:
        return np.zeros((counts.size, 2), np.uint64), np.zeros((0, 2), np.uint64)
    new = np.empty(n, bool)
    new[0] = True
    np.not_equal(np.diff(eids), 1, out=new[1:])
    new[node_start[counts > 0]] = True
    starts = np.flatnonzero(new)
    ranges = np.empty((starts.size, 2), np.uint64)
    ranges[:, 0] = eids[starts]
    ranges[:-1, 1] = eids[starts[1:] - 1]
    ranges[-1, 1] = eids[-1]
    ranges[:, 1] += np.uint64(1)
    n2r = np.empty((counts.size, 2), np.uint64)   # ranges started before a node's first edge
    n2r[:, 0] = np.searchsorted(starts, node_start)
    n2r[:, 1] = np.searchsorted(starts, node_end)
    return n2r, ranges


def _index_from_counts(counts: np.ndarray):
    """node_id_to_ranges and range_to_edge_id of edges sorted by node (the target index):
    one range per node with edges, an empty range [r, r) for the others."""
    ends = np.cumsum(counts, dtype=np.uint64)
    has = counts > 0
    ranges = np.empty((int(has.sum()), 2), np.uint64)
    ranges[:, 1] = ends[has]
    ranges[:, 0] = ranges[:, 1] - counts[has].astype(np.uint64)
    n2r = np.empty((counts.size, 2), np.uint64)
    np.cumsum(has, out=n2r[:, 1])
    n2r[:, 0] = n2r[:, 1] - has
    return n2r, ranges


def _write_index(g: h5py.Group, name: str, n_nodes: int, parts) -> None:
    """Write indices/<name> from an iterator of (first node, node_id_to_ranges rows,
    range_to_edge_id rows) parts, the rows' range numbers counted from the part's first."""
    ig = g.create_group(f'indices/{name}')
    n2r = _new_dataset(ig, 'node_id_to_ranges', (n_nodes, 2), np.uint64)
    ig['node_id_to_range'] = n2r   # hard link: the name bmtk's reader looks for
    r2e, n_ranges = None, 0
    for first, rows, ranges in parts:
        rows += np.uint64(n_ranges)
        _write_slice(n2r, first, rows)
        if r2e is None:
            r2e = ig.create_dataset('range_to_edge_id', data=ranges, maxshape=(None, 2),
                                    chunks=(max(1, min(1 << 16, len(ranges))), 2))
        elif ranges.size:
            r2e.resize(n_ranges + len(ranges), axis=0)
            _write_slice(r2e, n_ranges, ranges)
        n_ranges += len(ranges)


def _write_target_index(g: h5py.Group, counts: np.ndarray) -> None:
    """indices/target_to_source of edges sorted by target, from the edges per target."""
    ig = g.create_group('indices/target_to_source')
    n2r, ranges = _index_from_counts(counts)
    ig['node_id_to_range'] = _new_dataset(ig, 'node_id_to_ranges', n2r.shape, np.uint64, n2r)  # + hard link
    _new_dataset(ig, 'range_to_edge_id', ranges.shape, np.uint64, ranges)


class _Progress:
    def __init__(self, total: int, every_s: float = 2.0):
        self.total, self.done, self.t0, self.every = total, 0, time.perf_counter(), every_s
        self.last = self.t0

    def add(self, n: int, what: str = '') -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            _log(f"edges {self.done / 1e6:.2f}M / {self.total / 1e6:.2f}M "
                 f"({100 * self.done / max(self.total, 1):.0f}%), {rate / 1e6:.1f}M edges/s {what}")


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
    g = f.create_group(f'edges/{name}')
    ds = {}
    for key, dtype, pop in (('source_node_id', np.uint64, src_pop), ('target_node_id', np.uint64, tgt_pop)):
        ds[key] = _new_dataset(g, key, (n,), dtype)
        ds[key].attrs['node_population'] = pop
    ds['edge_type_id'] = _new_dataset(g, 'edge_type_id', (n,), np.uint32)
    ds['edge_group_id'] = _new_dataset(g, 'edge_group_id', (n,), np.uint32)
    ds['edge_group_index'] = _new_dataset(g, 'edge_group_index', (n,), np.uint64)
    ds['syn_weight'] = _new_dataset(g, '0/syn_weight', (n,), np.float32)
    ds['delay'] = _new_dataset(g, '0/delay', (n,), np.float32)
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
        sl = slice(self.pos, self.pos + self.n)
        for key, d in self.ds.items():
            _write_slice(d, sl.start, self.parts[0][key] if len(self.parts) == 1 else
                         np.concatenate([p[key] for p in self.parts]))
        self.pos += self.n
        self.parts, self.n = [], 0


def _uniform_counts(rng, n: int, n_bins: int, chunk: int) -> np.ndarray:
    """How many of ``n`` uniform draws with replacement fall on each of ``n_bins`` targets
    (memory O(n_bins + chunk): a multinomial beyond ``chunk`` draws)."""
    if n == 0:
        return np.zeros(n_bins, np.int64)
    if n <= chunk:   # direct draws are cheaper than n_bins binomials
        return np.bincount(rng.integers(0, n_bins, n), minlength=n_bins)
    return rng.multinomial(n, np.full(n_bins, 1.0 / n_bins))


def _write_area_pair(f, t: NetworkTables, ta: str, sa: str, et_ids: dict, rng, chunk_edges: int,
                     tmpdir: Path, progress: _Progress) -> int:
    """Draw and write all edges from area ``sa`` to area ``ta`` (one edge population)."""
    n_total = t.n_edges(ta, sa)
    if n_total == 0:
        return 0
    name = f'{sa}_to_{ta}'
    g, ds = _create_edge_population(f, name, sa, ta, n_total)
    s_pops, s_off = t.structure[sa], t.area_offsets(sa)
    t_off = t.area_offsets(ta)
    s_first = np.array([s_off[p] for p in s_pops], np.int64)
    s_size = np.array([t.n[(sa, p)] for p in s_pops], np.float64)
    d_mean = np.array([t.mean_delay(ta, sa, p) for p in s_pops], np.float32)
    d_sd = d_mean * np.float32(t.delay_params['delay_rel'])
    # inhibitory (within the area) weights stay <= 0, all others >= 0
    sign = np.array([-1 if (sa == ta and p.endswith('I')) else 1 for p in s_pops], np.float32)
    # all >= 0: the same test (x * 1 < 0 is x < 0) without the product
    w_low, w_sign = (np.float32(0), None) if (sign > 0).all() else (None, sign)
    dt = np.float32(t.dt)
    n_src_area, n_tgt_area = t.area_size(sa), t.area_size(ta)
    rows = [t.row[(ta, p)] for p in t.structure[ta]]
    pop_edges = [int(t.syn[rows, t.row[(sa, p)]].sum()) for p in s_pops]
    src_index = _SourceIndexBuckets(s_first.tolist(), s_size.astype(np.int64).tolist(), pop_edges,
                                    chunk_edges, tmpdir)
    tgt_counts = np.zeros(n_tgt_area, np.int64)
    pos = 0
    buf = _WriteBuffer(ds)
    for tp in t.structure[ta]:
        r = t.row[(ta, tp)]
        n_t = t.n[(ta, tp)]
        cols = [t.row[(sa, p)] for p in s_pops]
        syn = t.syn[r, cols]
        if syn.sum() == 0 or n_t == 0:
            continue
        W = t.W[r, cols].astype(np.float32)
        W_sd = np.nan_to_num(t.W_sd[r, cols]).astype(np.float32)
        et = np.array([et_ids.get((ta, tp, sa, p), 0) for p in s_pops], np.uint32)
        # synapses per (target neuron, source population): multinomial over targets
        counts = np.stack([_uniform_counts(rng, int(s), n_t, chunk_edges) for s in syn], axis=1)
        per_target = counts.sum(axis=1)
        tgt_counts[t_off[tp]:t_off[tp] + n_t] = per_target
        cum = np.concatenate([[0], np.cumsum(per_target)])
        a = 0
        while a < n_t:   # blocks of target neurons holding about chunk_edges edges
            b = int(np.searchsorted(cum, cum[a] + chunk_edges, side='right')) - 1
            b = min(max(b, a + 1), n_t)
            reps = counts[a:b].ravel()   # edges per (target, source population), in write order
            n = int(cum[b] - cum[a])

            def per_edge(v, array=False):
                """A source population's value for every edge (a scalar where all are equal)."""
                if not array and (v == v[0]).all():
                    return v[0]
                return np.repeat(np.tile(v, b - a), reps)
            tgt = np.repeat(np.arange(a, b, dtype=np.uint64) + np.uint64(t_off[tp]), per_target[a:b])
            u = rng.random(n)
            u *= per_edge(s_size)
            src = u.astype(np.int64)
            del u
            src += per_edge(s_first)   # int64: numpy indexes with it without a conversion
            w = _normal_redraw(rng, n, per_edge(W), per_edge(W_sd), low=w_low,
                               sign=None if w_sign is None else per_edge(w_sign))
            dl = _normal_redraw(rng, n, per_edge(d_mean), per_edge(d_sd), low=dt)
            if buf.n + n > chunk_edges:   # keep at most about chunk_edges edges buffered
                buf.flush()
            buf.add(source_node_id=src.view(np.uint64), target_node_id=tgt, edge_type_id=per_edge(et, array=True),
                    syn_weight=w, delay=dl,
                    edge_group_id=np.zeros(n, np.uint32),
                    edge_group_index=np.arange(pos, pos + n, dtype=np.uint64))
            src_index.add(src, pos)
            pos += n
            progress.add(n, name)
            a = b
    buf.flush()
    assert pos == n_total == buf.pos, (name, pos, n_total)
    # indices: target_to_source straight from the counts (edges are sorted by target)
    _write_target_index(g, tgt_counts)
    _write_index(g, 'source_to_target', n_src_area,
                 ((first, *_index_from_groups(eids, counts)) for first, eids, counts in src_index.buckets()))
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
            ds['source_node_id'][:] = src
            ds['target_node_id'][:] = tgt
            ds['edge_type_id'][:] = np.concatenate(et)[order]
            ds['syn_weight'][:] = np.concatenate(w)[order]
            ds['delay'][:] = np.concatenate(d)[order]
            ds['edge_group_id'][:] = 0
            eids = np.arange(tgt.size, dtype=np.int64)
            ds['edge_group_index'][:] = eids
            _write_index(g, 'target_to_source', t.area_size(area),
                         [(0, *_index_from_groups(eids, np.bincount(tgt.astype(np.int64),
                                                                    minlength=t.area_size(area))))])
            src64 = src.astype(np.int64)
            _write_index(g, 'source_to_target', n_nodes,
                         [(0, *_index_from_groups(eids[np.argsort(src64, kind='stable')],
                                                  np.bincount(src64, minlength=n_nodes)))])
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


def _write_spike_trains(path: Path, pop: str, rates_hz: np.ndarray, t_sim: float, dt: float, rng) -> None:
    """Stationary Poisson trains in (dt, t_sim], sorted by time (SONATA spikes file)."""
    counts = rng.poisson(rates_hz * t_sim * 1e-3)
    node_ids = np.repeat(np.arange(rates_hz.size, dtype=np.uint64), counts)
    times = dt + rng.random(node_ids.size) * (t_sim - dt)
    write_sonata_spikes(path, {pop: (node_ids, times)})


# --------------------------------------------------------------------------- configs

def _write_configs(t: NetworkTables, out: Path, inputs: dict, edge_pops: list[str],
                   external_edge_pops: list[str], mode: str) -> None:
    # 'populations' (SONATA circuit config 2.x) is what libsonata lists populations from
    def pops(names, kind):
        return {n: {'type': kind} for n in names}
    nodes = [{'nodes_file': '$NETWORK_DIR/nodes.h5', 'node_types_file': '$NETWORK_DIR/node_types.csv',
              'populations': pops(t.areas, 'point_neuron')}]
    edges = [{'edges_file': '$NETWORK_DIR/edges.h5', 'edge_types_file': '$NETWORK_DIR/edge_types.csv',
              'populations': pops(edge_pops, 'chemical')}]
    has_external = bool(external_edge_pops)
    if has_external:
        kind = 'virtual' if mode == 'spikes' else 'point_neuron'
        nodes.append({'nodes_file': '$NETWORK_DIR/external_nodes.h5',
                      'node_types_file': '$NETWORK_DIR/external_node_types.csv',
                      'populations': pops(['external'], kind)})
        edges.append({'edges_file': '$NETWORK_DIR/external_edges.h5',
                      'edge_types_file': '$NETWORK_DIR/external_edge_types.csv',
                      'populations': pops(external_edge_pops, 'chemical')})
    circuit = {
        'manifest': {'$BASE_DIR': '.', '$NETWORK_DIR': '$BASE_DIR/network',
                     '$COMPONENTS_DIR': '$BASE_DIR/components'},
        'components': {'point_neuron_models_dir': '$COMPONENTS_DIR/point_neuron_models',
                       'synaptic_models_dir': '$COMPONENTS_DIR/synaptic_models'},
        'networks': {'nodes': nodes, 'edges': edges},
    }
    _write_json(out / 'circuit_config.json', circuit)
    node_sets = {'cortex': {'population': list(t.areas)}}
    node_sets.update({a: {'population': a} for a in t.areas})
    if has_external:
        node_sets['external'] = {'population': 'external'}
    _write_json(out / 'node_sets.json', node_sets)
    simulation = {
        'manifest': {'$BASE_DIR': '.', '$OUTPUT_DIR': '$BASE_DIR/output'},
        'target_simulator': 'NEST',
        'network': '$BASE_DIR/circuit_config.json',
        'node_sets_file': '$BASE_DIR/node_sets.json',
        'run': {'tstart': 0.0, 'tstop': t.t_sim, 'dt': t.dt, 'random_seed': t.seed},
        'conditions': {},
        'inputs': inputs,
        'output': {'output_dir': '$OUTPUT_DIR', 'log_file': 'log.txt', 'spikes_file': 'spikes.h5',
                   'spikes_sort_order': 'by_time', 'overwrite_output_dir': True},
        'reports': {},
    }
    _write_json(out / 'simulation_config.json', simulation)
    # bmtk resolves '.' against the working directory, not the config's; it knows
    # '${configdir}' (which NEST and libsonata do not): one merged config for bmtk
    bmtk = {**simulation, **{k: circuit[k] for k in ('components', 'networks')}}
    bmtk['manifest'] = {**circuit['manifest'], **simulation['manifest'], '$BASE_DIR': '${configdir}'}
    bmtk.pop('network')
    _write_json(out / 'bmtk_config.json', bmtk)


# --------------------------------------------------------------------------- entry point

def export_sonata(M, sim_params: dict | None, out_dir, seed: int | None = None,
                  chunk_edges: int = 1_000_000, external: str = 'poisson_generator') -> dict:
    """Write the network of Model ``M`` (areas of ``sim_params['areas_simulated']``) as SONATA.

    ``external``: 'poisson_generator' (one nest:poisson_generator node per input channel,
    for NEST-based readers: bmtk PointNet, nest.SonataNetwork, our loader) or 'spikes'
    (virtual nodes with pre-drawn spike trains: any SONATA simulator; small networks only).
    The same ``seed`` (default: sim_params['rng_seed']) and ``chunk_edges`` give the same
    circuit; the edges between two areas do not depend on which other areas are exported. Returns a summary dict (also written to mam_export.json).
    """
    if chunk_edges < 1:
        raise ValueError(f"chunk_edges must be positive, got {chunk_edges}")
    if external not in ('poisson_generator', 'spikes'):
        raise ValueError(f"external must be 'poisson_generator' or 'spikes', got {external!r}")
    t0 = time.perf_counter()
    t = network_tables(M, sim_params, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'mam_export.json').unlink(missing_ok=True)   # written again when complete
    def stream(*key):   # one independent random stream per purpose (and area pair)
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(t.seed, spawn_key=(0x50A7A,) + key)))
    node_rng, ext_rng = stream(0), stream(1)
    _write_nodes(t, out, node_rng)
    _write_json(out / 'components' / 'synaptic_models' / 'static_synapse.json', {})
    et_ids, et_rows = _edge_type_table(t)
    pairs = [(ta, sa) for sa in t.areas for ta in t.areas]
    n_total = sum(t.n_edges(ta, sa) for ta, sa in pairs)
    _log(f"{len(t.areas)} areas, {sum(t.area_size(a) for a in t.areas)} neurons, "
         f"{n_total / 1e6:.2f}M edges -> {out}")
    progress = _Progress(n_total)
    counts = {}
    t_edges = time.perf_counter()
    with _AtomicH5(out / 'network' / 'edges.h5') as f:
        for ta, sa in pairs:
            # keyed by the areas' places in the model: a pair's edges do not depend on
            # which other areas are exported
            rng = stream(2, t.row[(ta, t.structure[ta][0])], t.row[(sa, t.structure[sa][0])])
            n = _write_area_pair(f, t, ta, sa, et_ids, rng, chunk_edges, out, progress)
            if n:
                counts[f'{sa}_to_{ta}'] = n
    t_edges = time.perf_counter() - t_edges
    _write_types_csv(out / 'network' / 'edge_types.csv', et_rows)
    inputs = _write_external(t, out, ext_rng, external)
    _write_configs(t, out, inputs, list(counts), [f'external_to_{a}' for a in t.areas] if t.channels else [],
                   external)
    elapsed = time.perf_counter() - t0
    summary = {
        'format': 'SONATA', 'label': getattr(M, 'label', None), 'seed': t.seed,
        'areas': t.areas, 'neurons': int(sum(t.area_size(a) for a in t.areas)),
        'edges': int(n_total), 'edge_populations': counts, 'external': external,
        'channels': [asdict(c) for c in t.channels], 'chunk_edges': chunk_edges,
        't_sim_ms': t.t_sim, 'dt_ms': t.dt, 'seconds': elapsed, 'edge_seconds': t_edges,
        'edges_per_s': n_total / max(t_edges, 1e-9), 'params': M.params,
    }
    _write_json(out / 'mam_export.json', summary)
    _log(f"done: {summary['neurons']} neurons, {n_total} edges in {elapsed:.1f} s "
         f"({summary['edges_per_s'] / 1e6:.1f}M edges/s) -> {out}")
    return summary


# =========================================================================== the way back

_NEST_CELL_KEYS = ('E_L', 'V_th', 'V_reset', 'C_m', 'tau_m', 'tau_syn_ex', 'tau_syn_in', 't_ref')


def _read_types(path: Path) -> dict[int, dict]:
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter=' '))
    return {int(r.pop('node_type_id' if 'node_type_id' in r else 'edge_type_id')): r for r in rows}


def _resolve(cfg: dict, value: str) -> Path:
    manifest = cfg['manifest']
    for _ in range(5):
        for k, v in manifest.items():
            value = value.replace(k, v)
    return Path(value)


class SonataCircuit:
    """A SONATA circuit written by :func:`export_sonata`, read back as a network plan.

    ``plan`` is a :class:`mam_pynn.network.plan.NetworkPlan` holding the populations
    (cell parameters and DC drive from the node types) and the Poisson inputs (from the
    poisson_generator nodes) but no statistical projections: the synapses are the
    explicit edges, read in chunks by :meth:`iter_edges`.
    """

    def __init__(self, circuit_dir, chunk_edges: int = 1_000_000):
        from ..network.plan import NetworkPlan, PoissonSpec, PopulationSpec
        self.dir = Path(circuit_dir)
        cfg_path = self.dir / 'circuit_config.json'
        if not cfg_path.exists():
            raise FileNotFoundError(f"{cfg_path} not found: not a SONATA circuit directory")
        self.config = json.loads(cfg_path.read_text())
        self.config['manifest'] = {k: v.replace('$BASE_DIR', str(self.dir)) if k != '$BASE_DIR'
                                   else str(self.dir) for k, v in self.config['manifest'].items()}
        sim_path = self.dir / 'simulation_config.json'
        self.sim_config = json.loads(sim_path.read_text()) if sim_path.exists() else {}
        self.chunk_edges = chunk_edges
        models_dir = _resolve(self.config, self.config['components']['point_neuron_models_dir'])
        nodes = self.config['networks']['nodes']
        main = next((n for n in nodes if Path(n['nodes_file']).name == 'nodes.h5'), None)
        if main is None:
            raise ValueError(f"{cfg_path} lists no network/nodes.h5: not a circuit written by mam_pynn")
        types = _read_types(_resolve(self.config, main['node_types_file']))
        if not all('area' in r and 'population' in r for r in types.values()):
            raise ValueError("node types lack the 'area'/'population' columns of a mam_pynn export")
        run = self.sim_config.get('run', {})
        self.areas, self.structure, self.sizes, self.v_init = [], {}, {}, {}
        pops, neuron = [], None
        with h5py.File(_resolve(self.config, main['nodes_file']), 'r') as f:
            for area in f['nodes']:
                g = f['nodes'][area]
                tid = g['node_type_id'][:]
                self.v_init[area] = g['0/V_m_init'][:] if '0/V_m_init' in g else None
                cuts = np.flatnonzero(np.diff(tid)) + 1
                starts = np.concatenate([[0], cuts])
                ends = np.concatenate([cuts, [tid.size]])
                self.structure[area] = []
                for s, e in zip(starts, ends):
                    row = types[int(tid[s])]
                    if row['area'] != area:
                        raise ValueError(f"node type {tid[s]} of population {area} names area {row['area']}")
                    params = json.loads((models_dir / row['dynamics_params']).read_text())
                    neuron = neuron or {k: float(params[k]) for k in _NEST_CELL_KEYS}
                    pop = row['population']
                    self.structure[area].append(pop)
                    self.sizes[(area, pop)] = int(e - s)
                    pops.append(PopulationSpec(area, pop, int(e - s), float(params.get('I_e', 0.0))))
        order = [a for a in json.loads((self.dir / 'mam_export.json').read_text())['areas']] \
            if (self.dir / 'mam_export.json').exists() else sorted(self.structure)
        self.areas = [a for a in order if a in self.structure]
        self.offsets = {a: dict(zip(self.structure[a], np.cumsum(
            [0] + [self.sizes[(a, p)] for p in self.structure[a]])[:-1].tolist())) for a in self.areas}
        meta = json.loads((self.dir / 'mam_export.json').read_text()) if \
            (self.dir / 'mam_export.json').exists() else {}
        nparams = meta.get('params', {}).get('neuron_params', {})
        self.plan = NetworkPlan(areas=self.areas, structure={a: self.structure[a] for a in self.areas},
                                neuron_params=neuron, v0_mean=float(nparams.get('V0_mean', neuron['E_L'])),
                                v0_sd=float(nparams.get('V0_sd', 0.0)), dt=float(run.get('dt', 0.1)),
                                populations=[p for a in self.areas for p in pops if p.area == a])
        self.plan.poisson = self._read_generators(models_dir, PoissonSpec)
        self.t_sim = float(run.get('tstop', 0.0))

    def _read_generators(self, models_dir, PoissonSpec) -> list:
        """poisson_generator nodes and their (one weight, one delay) edges -> Poisson inputs."""
        ext = [n for n in self.config['networks']['nodes'] if Path(n['nodes_file']).name == 'external_nodes.h5']
        if not ext:
            return []
        types = _read_types(_resolve(self.config, ext[0]['node_types_file']))
        if any(r.get('model_template') != 'nest:poisson_generator' for r in types.values()):
            raise NotImplementedError("external inputs as virtual nodes with spike trains "
                                      "(external='spikes') are not loaded back; export with "
                                      "external='poisson_generator'")
        out = []
        with h5py.File(_resolve(self.config, ext[0]['nodes_file']), 'r') as f:
            tid = f['nodes/external/node_type_id'][:]
        edges = next(e for e in self.config['networks']['edges']
                     if Path(e['edges_file']).name == 'external_edges.h5')
        with h5py.File(_resolve(self.config, edges['edges_file']), 'r') as f:
            for name in f['edges']:
                g = f['edges'][name]
                area = g['target_node_id'].attrs['node_population']
                area = area.decode() if isinstance(area, bytes) else area
                src, tgt = g['source_node_id'][:], g['target_node_id'][:]
                w, d = g['0/syn_weight'][:], g['0/delay'][:]
                for node in np.unique(src):
                    sel = src == node
                    row = types[int(tid[node])]
                    pop = row['target_pop']
                    first = self.offsets[area][pop]
                    ids = np.sort(tgt[sel]) - first
                    if not np.array_equal(ids, np.arange(self.sizes[(area, pop)])):
                        raise ValueError(f"generator node {node} does not drive every neuron of {area}/{pop}")
                    rate = json.loads((models_dir / row['dynamics_params']).read_text())['rate']
                    out.append(PoissonSpec((area, pop), float(rate), float(w[sel][0]), float(d[sel][0]),
                                           row.get('origin', 'external')))
        return out

    def _pop_of(self, area: str, local_ids: np.ndarray) -> np.ndarray:
        bounds = np.array([self.offsets[area][p] for p in self.structure[area]])
        return np.searchsorted(bounds, local_ids, side='right') - 1

    def iter_edges(self):
        """Yield (source key, target key, source index, target index, weight pA, delay ms)
        per population pair and chunk; indices are positions within the populations."""
        edges = next(e for e in self.config['networks']['edges'] if Path(e['edges_file']).name == 'edges.h5')
        with h5py.File(_resolve(self.config, edges['edges_file']), 'r') as f:
            for name in f['edges']:
                g = f['edges'][name]
                sa = g['source_node_id'].attrs['node_population']
                ta = g['target_node_id'].attrs['node_population']
                sa, ta = (x.decode() if isinstance(x, bytes) else x for x in (sa, ta))
                if sa not in self.offsets or ta not in self.offsets:
                    continue
                n = g['source_node_id'].shape[0]
                for a in range(0, n, self.chunk_edges):
                    sl = slice(a, min(n, a + self.chunk_edges))
                    src = g['source_node_id'][sl].astype(np.int64)
                    tgt = g['target_node_id'][sl].astype(np.int64)
                    w, d = g['0/syn_weight'][sl], g['0/delay'][sl]
                    sp, tp = self._pop_of(sa, src), self._pop_of(ta, tgt)
                    key = sp * 64 + tp
                    order = np.argsort(key, kind='stable')
                    key = key[order]
                    cuts = np.flatnonzero(np.diff(key)) + 1
                    for s, e in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [key.size]])):
                        idx = order[s:e]
                        spop = self.structure[sa][sp[idx[0]]]
                        tpop = self.structure[ta][tp[idx[0]]]
                        yield ((sa, spop), (ta, tpop), src[idx] - self.offsets[sa][spop],
                               tgt[idx] - self.offsets[ta][tpop], w[idx], d[idx])

    def connectivity(self) -> dict:
        """{(target key, source key): {'n', 'w_mean', 'w_sd', 'd_mean', 'd_sd'}} of the edges."""
        acc = {}
        for s, t, _, _, w, d in self.iter_edges():
            a = acc.setdefault((t, s), np.zeros(5))
            w, d = w.astype(np.float64), d.astype(np.float64)
            a += [w.size, w.sum(), (w * w).sum(), d.sum(), (d * d).sum()]
        return {k: _moments(v) for k, v in acc.items()}


def _moments(a) -> dict:
    n = a[0]
    wm, dm = a[1] / n, a[3] / n
    return {'n': int(n), 'w_mean': wm, 'w_sd': float(np.sqrt(max(a[2] / n - wm * wm, 0))),
            'd_mean': dm, 'd_sd': float(np.sqrt(max(a[4] / n - dm * dm, 0)))}


def load_sonata(circuit_dir, chunk_edges: int = 1_000_000) -> SonataCircuit:
    """Read a circuit written by :func:`export_sonata` (plan + explicit edges)."""
    return SonataCircuit(circuit_dir, chunk_edges)


def connect_edges(circuit: SonataCircuit, backend, populations: dict, progress=None) -> int:
    """Create the circuit's explicit edges on a built backend (mam_pynn.network backends).

    NEST fast path: one ``nest.Connect`` (one_to_one, plain static_synapse, pA) per pair
    and chunk; any other PyNN backend: a ``Projection`` with ``FromListConnector`` (nA).
    """
    say = progress or (lambda msg: None)
    made = 0
    if getattr(backend, 'name', '') == 'nest':
        nest = backend.nest
        for s, t, si, ti, w, d in circuit.iter_edges():
            pre, post = populations[s], populations[t]
            nest.Connect(pre.all_cells[si], post.all_cells[ti], 'one_to_one',
                         {'synapse_model': 'static_synapse', 'weight': w.astype(np.float64),
                          'delay': np.maximum(d.astype(np.float64), backend.dt)})
            made += w.size
    else:
        from ..units import pa_to_na
        sim = backend.sim
        for s, t, si, ti, w, d in circuit.iter_edges():
            conn = np.column_stack([si, ti, pa_to_na(w.astype(np.float64)),
                                    np.maximum(d.astype(np.float64), backend.dt)])
            receptor = 'inhibitory' if w[0] < 0 else 'excitatory'
            sim.Projection(populations[s], populations[t], sim.FromListConnector(conn),
                           sim.StaticSynapse(), receptor_type=receptor)
            made += w.size
    say(f"connected {made} SONATA edges")
    return made


def simulate_sonata(circuit_dir, sim_params: dict | None = None, backend: str = 'nest',
                    out_dir=None, progress: bool = True) -> dict:
    """``mam simulate --sonata DIR``: build the circuit with a mam_pynn backend, run it and
    write a run directory (config.yaml, spikes.h5, summary.json).

    From ``sim_params`` only ``t_sim`` (default: the circuit's run.tstop), ``rng_seed`` and
    ``local_num_threads`` apply; dt is the circuit's (its delays were drawn against it).
    """
    import resource

    import yaml

    from ..io import atomic_write_json, atomic_write_text
    from ..network.builder import build_network, make_backend
    from ..params import content_hash
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else None
    circuit = load_sonata(circuit_dir)
    sim_params = dict(sim_params or {})
    T = float(sim_params.get('t_sim') or circuit.t_sim)
    if not T > 0:
        raise ValueError(f"t_sim must be > 0 (from sim_params or the circuit's run.tstop), got {T}")
    seed = int(sim_params.get('rng_seed', 1))
    threads = int(sim_params.get('local_num_threads', 1))
    meta = json.loads((circuit.dir / 'mam_export.json').read_text()) \
        if (circuit.dir / 'mam_export.json').exists() else {}
    config = {'label': meta.get('label'), 'source': 'sonata', 'sonata_dir': str(Path(circuit_dir).resolve()),
              'backend': backend, 'network_params': meta.get('params'),
              'sim_params': {'t_sim': T, 'dt': circuit.plan.dt, 'rng_seed': seed, 'local_num_threads': threads},
              'populations': {a: {p: {'first_id': int(circuit.offsets[a][p]), 'size': circuit.sizes[(a, p)]}
                                  for p in circuit.structure[a]} for a in circuit.areas}}
    out = Path(out_dir) if out_dir is not None else Path('runs') / f"sonata-{content_hash(config)}"
    if (out / 'summary.json').exists():
        raise FileExistsError(f"run directory {out} already holds a finished run (summary.json)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / 'config.yaml', yaml.safe_dump(json.loads(json.dumps(config, default=str)),
                                                          sort_keys=False))
    t0 = time.perf_counter()
    be = make_backend(backend)
    be.setup(circuit.plan.dt, seed, threads)
    built = build_network(circuit.plan, be, circuit.areas, progress=say)
    n_edges = connect_edges(circuit, be, built.populations, say)
    _set_initial_potentials(circuit, be, built.populations)
    build_s = time.perf_counter() - t0
    be.prepare()
    t1 = time.perf_counter()
    be.run(T)
    sim_s = time.perf_counter() - t1
    be.cleanup()
    total = write_sonata_spikes(out / 'spikes.h5', {area: be.spikes(area) for area in circuit.areas})
    n_proc, n_threads = be.process_info()
    n_neurons = circuit.plan.n_neurons
    summary = {'backend': backend, 'label': meta.get('label'), 'source': 'sonata',
               'sonata_dir': config['sonata_dir'], 'neurons': n_neurons, 'synapses': n_edges,
               'areas_simulated': circuit.areas, 't_sim_ms': T, 'build_s': build_s, 'sim_s': sim_s,
               'rtf': sim_s / (T / 1000.),
               'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               'num_processes': n_proc, 'threads': n_threads, 'spikes': total,
               'mean_rate_hz': total / n_neurons / (T / 1000.)}
    atomic_write_json(out / 'summary.json', summary)
    be.end()
    if progress:
        _log(f"simulated SONATA circuit: {n_neurons} neurons, {n_edges} edges, {T:g} ms, "
             f"build {build_s:.1f} s, sim {sim_s:.1f} s, {summary['mean_rate_hz']:.2f} spikes/s -> {out}")
    return summary


def _set_initial_potentials(circuit: SonataCircuit, backend, populations) -> None:
    """Initial V_m of every neuron from the circuit (node attribute V_m_init)."""
    for area in circuit.areas:
        v = circuit.v_init.get(area)
        if v is None:
            continue
        for pop in circuit.structure[area]:
            first = circuit.offsets[area][pop]
            vals = v[first:first + circuit.sizes[(area, pop)]].astype(np.float64)
            h = populations[(area, pop)]
            if getattr(backend, 'name', '') == 'nest':
                h.node_collection.set({'V_m': vals})
            else:
                h.initialize(v=vals)
