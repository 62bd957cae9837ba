"""The SONATA index groups (node_id_to_ranges, range_to_edge_id) in bounded memory:
edges sorted by target get theirs from counts; source_to_target comes from a bucket
sort of packed (source, edge id) keys over temporary files.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np

from ._files import _new_dataset, _new_group, _write_slice

_KEY_BITS = 40                       # edge ids below 2**40, source ids below 2**24 in a key
_EID_MASK = np.uint64((1 << _KEY_BITS) - 1)


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
