"""SONATA export of the multi-area model, and the way back.

Layout written by :func:`export_sonata` (see exports/README.md for the full mapping)::

    circuit_config.json  simulation_config.json  node_sets.json  mam_export.json
    bmtk_config.json            the same for bmtk (which resolves paths differently)
    network/nodes.h5            one node population per simulated area (node ids local to it)
    network/node_types.csv      one node type per (area, population): nest:iaf_psc_exp + JSON
    network/edges_to_<T>.h5     per target area T: one edge population '<source>_to_<T>'
                                per source area (written by parallel processes, see workers)
    network/edge_types_to_<T>.csv  its edge types: one per (source population, target population)
    network/external_*.{h5,csv} Poisson drive and replaced areas (see ``external``)
    components/point_neuron_models/*.json, components/synaptic_models/static_synapse.json
    inputs/external_spikes.h5   pre-drawn Poisson spike trains (``external='spikes'`` only)

Edges follow the network's statistics (upstream's NEST rules): a fixed total number per
population pair with sources and targets drawn uniformly with replacement, weights
N(W, W_sd) redrawn until their sign is that of the source (excitatory >= 0, inhibitory
<= 0, cortico-cortical >= 0), delays N(d, delay_rel d) redrawn below dt. They are drawn
target block by target block (first the number of synapses per target neuron, as a
multinomial, then the sources), so each block comes out sorted by target, and written
in chunks into preallocated datasets: memory stays bounded by ``chunk_edges`` (per
process). The source_to_target index is built by a bucket sort over temporary files of
packed (source, edge id) keys, also in bounded memory. Every area pair has its own random
stream, so the circuit does not depend on the number of processes.
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
from dataclasses import asdict, dataclass
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


_H5 = {}   # per process: one dataset-creation property list and HDF5 type per dtype


def _h5_type(dtype: np.dtype):
    if dtype not in _H5:
        _H5[dtype] = h5py.h5t.py_create(dtype, logical=1)
    return _H5[dtype]


def _new_dataset(g: h5py.Group, name: str, shape, dtype, data: np.ndarray | None = None):
    """``g.create_dataset(name, shape, dtype[, data]).id`` (contiguous, as h5py creates it)
    through the low-level API: an export creates 11 datasets per edge population, and for
    small ones h5py's high-level checks are a large share of the time."""
    if 'dcpl' not in _H5:
        _H5['dcpl'] = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        _H5['dcpl'].set_obj_track_times(False)
    dtype = np.dtype(dtype)
    dsid = h5py.h5d.create(g.id, name.encode(), _h5_type(dtype), h5py.h5s.create_simple(tuple(shape)),
                           dcpl=_H5['dcpl'])
    if data is not None:
        _write_slice(dsid, 0, data)
    return dsid


def _set_str_attr(obj_id, name: str, value: str) -> None:
    """``obj.attrs[name] = value`` (a scalar UTF-8 variable-length string, as h5py writes it)."""
    str_dtype = h5py.string_dtype('utf-8')
    aid = h5py.h5a.create(obj_id, name.encode(), _h5_type(str_dtype), h5py.h5s.create(h5py.h5s.SCALAR))
    aid.write(np.array(value, dtype=str_dtype))


def _write_slice(dsid, start: int, data: np.ndarray) -> None:
    """``ds[start:start + len(data)] = data`` on a low-level dataset id: for the many small
    writes of an export, h5py's slicing machinery is a large share of the time; naming the
    memory type (as the file's) spares h5py and HDF5 their type-conversion path."""
    dtype = dsid.dtype
    data = np.ascontiguousarray(data, dtype=dtype)
    if data.shape[0] == 0:
        return
    if start == 0 and data.shape == dsid.shape:   # the whole dataset: no selection
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, data, mtype=_h5_type(dtype))
        return
    fspace = dsid.get_space()
    fspace.select_hyperslab((start,) + (0,) * (data.ndim - 1), data.shape)
    dsid.write(h5py.h5s.create_simple(data.shape), fspace, data, mtype=_h5_type(dtype))


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
        self.bucket_of = np.repeat(np.arange(self.n_buckets, dtype=np.uint8 if self.n_buckets <= 256 else np.uint16),
                                   np.diff(self.bounds))   # 8-bit ids: a one-pass radix sort in add()
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


def _index_from_groups(eids: np.ndarray, counts: np.ndarray, merge: bool = True):
    """node_id_to_ranges rows and range_to_edge_id rows from edge ids grouped by node
    (``counts`` per node, increasing within a node): consecutive edge ids of one node
    form one range; nodes without edges get an empty range [r, r).

    ``merge=False``: one range per edge, which SONATA allows as well. For the source index
    of target-sorted edges hardly two edges of a source are consecutive, so merging saves
    no space and would cost more than the rest of the index."""
    n = eids.size
    node_end = np.cumsum(counts)
    node_start = node_end - counts
    if n == 0:
        return np.zeros((counts.size, 2), np.uint64), np.zeros((0, 2), np.uint64)
    if not merge:
        ranges = np.empty((n, 2), np.uint64)
        ranges[:, 0] = eids
        np.add(ranges[:, 0], np.uint64(1), out=ranges[:, 1])
        return np.stack([node_start, node_end], axis=1).astype(np.uint64), ranges
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


def _new_group(parent, name: str) -> h5py.Group:
    """``parent.create_group(name)`` (intermediate groups included) through the low-level API."""
    if 'lcpl' not in _H5:
        _H5['lcpl'] = h5py.h5p.create(h5py.h5p.LINK_CREATE)
        _H5['lcpl'].set_create_intermediate_group(True)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), lcpl=_H5['lcpl']))


def _write_index(g: h5py.Group, name: str, n2r: np.ndarray, ranges: np.ndarray) -> None:
    """indices/<name>: node_id_to_ranges (+ the hard link node_id_to_range, the name bmtk's
    reader looks for) and range_to_edge_id, written at once."""
    ig = _new_group(g, f'indices/{name}')
    d = _new_dataset(ig, 'node_id_to_ranges', n2r.shape, np.uint64, n2r)
    h5py.h5o.link(d, ig.id, b'node_id_to_range')
    _new_dataset(ig, 'range_to_edge_id', ranges.shape, np.uint64, ranges)


def _write_index_parts(g: h5py.Group, name: str, n_nodes: int, n_ranges: int, parts) -> None:
    """indices/<name> from (first node, node_id_to_ranges rows, range_to_edge_id rows) parts
    in node order, the rows' range numbers counted from the part's first; ``n_ranges`` in all."""
    ig = _new_group(g, f'indices/{name}')
    n2r = _new_dataset(ig, 'node_id_to_ranges', (n_nodes, 2), np.uint64)
    h5py.h5o.link(n2r, ig.id, b'node_id_to_range')
    r2e = _new_dataset(ig, 'range_to_edge_id', (n_ranges, 2), np.uint64)
    done = 0
    for first, rows, ranges in parts:
        rows += np.uint64(done)
        _write_slice(n2r, first, rows)
        _write_slice(r2e, done, ranges)
        done += len(ranges)
    assert done == n_ranges, (name, done, n_ranges)


def _write_target_index(g: h5py.Group, counts: np.ndarray) -> None:
    """indices/target_to_source of edges sorted by target, from the edges per target."""
    _write_index(g, 'target_to_source', *_index_from_counts(counts))


class _Progress:
    """Edges written so far, counted in a ``multiprocessing`` Value that the export's worker
    processes share; printed every ``every_s`` by the process that calls :meth:`report`."""

    def __init__(self, total: int, counter, every_s: float = 2.0, reporter: bool = True):
        self.total, self.counter, self.every, self.reporter = total, counter, every_s, reporter
        self.t0 = self.last = time.perf_counter()

    def add(self, n: int, what: str = '') -> None:
        with self.counter.get_lock():
            self.counter.value += n
        if self.reporter:
            self.report(what)

    def report(self, what: str = '', force: bool = False) -> None:
        now, done = time.perf_counter(), self.counter.value
        if force or now - self.last >= self.every:
            self.last = now
            rate = done / max(now - self.t0, 1e-9)
            _log(f"edges {done / 1e6:.2f}M / {self.total / 1e6:.2f}M "
                 f"({100 * done / max(self.total, 1):.0f}%), {rate / 1e6:.1f}M edges/s {what}")


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


# --------------------------------------------------------------------------- configs

def _write_configs(t: NetworkTables, out: Path, inputs: dict, edge_pops_into: dict[str, list[str]],
                   external_edge_pops: list[str], mode: str) -> None:
    # 'populations' (SONATA circuit config 2.x) is what libsonata lists populations from
    def pops(names, kind):
        return {n: {'type': kind} for n in names}
    nodes = [{'nodes_file': '$NETWORK_DIR/nodes.h5', 'node_types_file': '$NETWORK_DIR/node_types.csv',
              'populations': pops(t.areas, 'point_neuron')}]
    edges = [{'edges_file': f'$NETWORK_DIR/{edges_file_name(ta)}',
              'edge_types_file': f'$NETWORK_DIR/{edge_types_file_name(ta)}',
              'populations': pops(edge_pops, 'chemical')} for ta, edge_pops in edge_pops_into.items()]
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


# --------------------------------------------------------------------------- edges in parallel

def _stream(seed: int, *key) -> np.random.Generator:
    """One independent random stream per purpose (and area pair) of an export."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0x50A7A,) + key)))


def edges_file_name(target_area: str) -> str:
    """The file (in network/) holding every edge population into ``target_area``."""
    return f'edges_to_{target_area}.h5'


def edge_types_file_name(target_area: str) -> str:
    """Its edge types table (type ids are unique across the circuit; readers such as bmtk
    refuse a type listed twice, so each file gets only its own types)."""
    return f'edge_types_to_{target_area}.csv'


@dataclass
class _EdgeJob:
    """What every edge-writing process needs (inherited by forked workers)."""
    t: NetworkTables
    et_ids: dict
    chunk_edges: int
    out: Path
    counter: object          # multiprocessing Value: edges written by all processes
    reporter: bool = True    # this process prints the progress


_JOB: _EdgeJob | None = None
# forked workers inherit the network tables at no cost; elsewhere (macOS, Windows) fork is
# unsafe or absent and the job is sent to freshly started interpreters
_START_METHOD = 'fork' if sys.platform.startswith('linux') else 'spawn'


def _init_edge_worker(job: _EdgeJob) -> None:
    global _JOB
    _JOB = job


def _write_edges_into(ta: str, job: _EdgeJob | None = None) -> tuple[str, dict[str, int]]:
    """Write network/edges_to_<ta>.h5: the edges from every exported area into area ``ta``
    (one edge population per source area), atomically. Returns (ta, edges per population)."""
    job = job or _JOB
    t = job.t
    progress = _Progress(sum(t.n_edges(ta, sa) for sa in t.areas), job.counter, reporter=job.reporter)
    counts = {}
    with _AtomicH5(job.out / 'network' / edges_file_name(ta)) as f:
        for sa in t.areas:
            if not t.n_edges(ta, sa):
                continue
            # keyed by the areas' places in the model: a pair's edges do not depend on
            # which other areas are exported, nor on the process that writes them
            rng = _stream(t.seed, 2, t.row[(ta, t.structure[ta][0])], t.row[(sa, t.structure[sa][0])])
            n = _write_area_pair(f, t, ta, sa, job.et_ids, rng, job.chunk_edges, job.out, progress)
            if n:
                counts[f'{sa}_to_{ta}'] = n
    return ta, counts


def _remove_leftovers(out: Path) -> None:
    """Temporary edge files and source-index buckets of an export that failed."""
    for tmp in (out / 'network').glob('.edges_to_*.tmp'):
        tmp.unlink(missing_ok=True)
    for bucket_dir in out.glob('.srcidx*'):
        shutil.rmtree(bucket_dir, ignore_errors=True)


def default_workers() -> int:
    """Processes for writing edges: the CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)


def _write_all_edges(t: NetworkTables, out: Path, et_ids: dict, chunk_edges: int, workers: int) -> dict:
    """Every target area's edge file, by ``workers`` processes (largest first); returns
    {target area: {edge population: edges}} for the areas that receive edges."""
    import multiprocessing as mp
    targets = sorted((a for a in t.areas if sum(t.n_edges(a, sa) for sa in t.areas)),
                     key=lambda a: -sum(t.n_edges(a, sa) for sa in t.areas))
    total = sum(t.n_edges(ta, sa) for ta in targets for sa in t.areas)
    workers = max(1, min(workers, len(targets)))
    ctx = mp.get_context(_START_METHOD)
    counter = ctx.Value('q', 0)
    progress = _Progress(total, counter)
    job = _EdgeJob(t, et_ids, chunk_edges, out, counter, reporter=workers == 1)
    done = {}
    try:
        if workers == 1:
            for ta in targets:
                done.update([_write_edges_into(ta, job)])
        else:
            from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_edge_worker,
                                     initargs=(job,)) as pool:
                pending = {pool.submit(_write_edges_into, ta) for ta in targets}
                try:
                    while pending:
                        finished, pending = wait(pending, timeout=progress.every, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            ta, counts = fut.result()   # a worker's error is raised here
                            done[ta] = counts
                            progress.report(f'({len(done)}/{len(targets)} areas done)')
                        progress.report(f'({workers} processes)')
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    except BaseException:
        _remove_leftovers(out)   # e.g. of a worker that was killed and could not clean up
        raise
    progress.report('', force=True)
    return {ta: done[ta] for ta in t.areas if ta in done}


# --------------------------------------------------------------------------- entry point

def export_sonata(M, sim_params: dict | None, out_dir, seed: int | None = None,
                  chunk_edges: int = 1_000_000, external: str = 'poisson_generator',
                  workers: int | None = None, overwrite: bool = False) -> dict:
    """Write the network of Model ``M`` (areas of ``sim_params['areas_simulated']``) as SONATA.

    ``external``: 'poisson_generator' (one nest:poisson_generator node per input channel,
    for NEST-based readers: bmtk PointNet, nest.SonataNetwork, our loader) or 'spikes'
    (virtual nodes with pre-drawn spike trains: any SONATA simulator; small networks only).
    The same ``seed`` (default: sim_params['rng_seed']) and ``chunk_edges`` give the same
    circuit, whatever the number of ``workers`` (processes writing edge files in parallel;
    default: the CPUs available; forked on Linux, spawned elsewhere, where a calling script
    needs the usual ``if __name__ == '__main__':`` guard); the edges between two areas do not
    depend on which other areas are exported. A finished export in ``out_dir`` (its
    mam_export.json) is replaced only with ``overwrite=True``. Returns a summary dict (also
    written to mam_export.json).
    """
    if chunk_edges < 1:
        raise ValueError(f"chunk_edges must be positive, got {chunk_edges}")
    if external not in ('poisson_generator', 'spikes'):
        raise ValueError(f"external must be 'poisson_generator' or 'spikes', got {external!r}")
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out = Path(out_dir)
    if (out / 'mam_export.json').exists() and not overwrite:
        raise FileExistsError(f"{out} already holds a finished SONATA export (mam_export.json); "
                              f"pass overwrite=True (mam export --overwrite) to replace it")
    t0 = time.perf_counter()
    t = network_tables(M, sim_params, seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'mam_export.json').unlink(missing_ok=True)   # written again when complete
    for old in [*(out / 'network').glob('edges*.h5'), *(out / 'network').glob('edge_types*.csv')]:
        old.unlink()   # edge files of an earlier export here
    _write_nodes(t, out, _stream(t.seed, 0))
    _write_json(out / 'components' / 'synaptic_models' / 'static_synapse.json', {})
    et_ids, et_rows = _edge_type_table(t)
    n_total = sum(t.n_edges(ta, sa) for sa in t.areas for ta in t.areas)
    _log(f"{len(t.areas)} areas, {sum(t.area_size(a) for a in t.areas)} neurons, "
         f"{n_total / 1e6:.2f}M edges -> {out} ({min(workers, len(t.areas))} processes)")
    t_edges = time.perf_counter()
    per_file = _write_all_edges(t, out, et_ids, chunk_edges, workers)
    t_edges = time.perf_counter() - t_edges
    counts = {name: n for pops in per_file.values() for name, n in pops.items()}
    for ta in per_file:
        _write_types_csv(out / 'network' / edge_types_file_name(ta), [r for r in et_rows if r['target_area'] == ta])
    inputs = _write_external(t, out, _stream(t.seed, 1), external)
    _write_configs(t, out, inputs, {ta: list(pops) for ta, pops in per_file.items()},
                   [f'external_to_{a}' for a in t.areas] if t.channels else [], external)
    elapsed = time.perf_counter() - t0
    summary = {
        'format': 'SONATA', 'label': getattr(M, 'label', None), 'seed': t.seed,
        'areas': t.areas, 'neurons': int(sum(t.area_size(a) for a in t.areas)),
        'edges': int(n_total), 'edge_populations': counts, 'external': external,
        'channels': [asdict(c) for c in t.channels], 'chunk_edges': chunk_edges,
        't_sim_ms': t.t_sim, 'dt_ms': t.dt, 'seconds': elapsed, 'edge_seconds': t_edges,
        'workers': min(workers, len(per_file) or 1),
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


def _area_edge_files(config: dict) -> list[Path]:
    return [_resolve(config, e['edges_file']) for e in config['networks']['edges']
            if Path(e['edges_file']).name != 'external_edges.h5']


def edge_files(circuit_dir) -> list[Path]:
    """The files of edges between areas of a circuit written by :func:`export_sonata`
    (one per target area; the external inputs' file excluded), from its circuit_config.json."""
    circuit_dir = Path(circuit_dir)
    config = json.loads((circuit_dir / 'circuit_config.json').read_text())
    config['manifest'] = {**config['manifest'], '$BASE_DIR': str(circuit_dir)}
    return _area_edge_files(config)


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
        meta_path = self.dir / 'mam_export.json'
        self.meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        order = self.meta.get('areas') or sorted(self.structure)
        self.areas = [a for a in order if a in self.structure]
        self.offsets = {a: dict(zip(self.structure[a], np.cumsum(
            [0] + [self.sizes[(a, p)] for p in self.structure[a]])[:-1].tolist())) for a in self.areas}
        nparams = self.meta.get('params', {}).get('neuron_params', {})
        dt = run.get('dt', self.meta.get('dt_ms'))
        if dt is None:
            raise ValueError(f"{self.dir}: neither simulation_config.json (run.dt) nor mam_export.json "
                             f"(dt_ms) gives the resolution the delays were drawn for")
        self.plan = NetworkPlan(areas=self.areas, structure={a: self.structure[a] for a in self.areas},
                                neuron_params=neuron, v0_mean=float(nparams.get('V0_mean', neuron['E_L'])),
                                v0_sd=float(nparams.get('V0_sd', 0.0)), dt=float(dt),
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
        edges = next((e for e in self.config['networks']['edges']
                      if Path(e['edges_file']).name == 'external_edges.h5'), None)
        if edges is None:
            raise ValueError(f"{self.dir}/circuit_config.json lists external_nodes.h5 but not "
                             f"external_edges.h5: the circuit is incomplete")
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
        for path in self.edge_files():
            yield from self._iter_file_edges(path)

    def n_edges(self) -> int:
        """Edges between areas, from the files' shapes (nothing read)."""
        total = 0
        for path in self.edge_files():
            with h5py.File(path, 'r') as f:
                total += sum(g['target_node_id'].shape[0] for g in f['edges'].values())
        return total

    def edge_files(self) -> list[Path]:
        """The circuit's files of edges between areas (all but the external inputs')."""
        return _area_edge_files(self.config)

    def _iter_file_edges(self, path: Path):
        with h5py.File(path, 'r') as f:
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


MAX_EDGES_FROM_LIST = 5_000_000


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
        n_edges = circuit.n_edges()
        if n_edges > MAX_EDGES_FROM_LIST:
            raise ValueError(f"{n_edges:,} SONATA edges on backend {getattr(backend, 'name', '?')!r}: PyNN's "
                             f"FromListConnector handles each one in Python (limit {MAX_EDGES_FROM_LIST:,}); "
                             f"run large circuits with backend='nest'")
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
    meta = circuit.meta
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
