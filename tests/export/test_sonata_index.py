"""The fast paths of the SONATA writer against plain reference implementations: the
index builders (from counts, from edge ids grouped by node), the bucketed source index,
and the low-level dataset helpers."""
import h5py
import numpy as np
import pytest
from scipy import stats

from mam_pynn.export.sonata import _files, index, writer


def _brute_index(node_of_edge: np.ndarray, n_nodes: int, merge: bool = True):
    """node_id_to_ranges and range_to_edge_id by a loop over nodes: the ranges of a node
    are its runs of consecutive edge ids (``merge``) or its single edges."""
    n2r, ranges = [], []
    for node in range(n_nodes):
        eids = np.flatnonzero(node_of_edge == node)
        first = len(ranges)
        if eids.size:
            breaks = np.flatnonzero(np.diff(eids) != 1) + 1 if merge else np.arange(1, eids.size)
            for run in np.split(eids, breaks):
                ranges.append((run[0], run[-1] + 1))
        n2r.append((first, len(ranges)))
    return np.array(n2r, np.uint64).reshape(-1, 2), np.array(ranges, np.uint64).reshape(-1, 2)


def _grouped(node_of_edge, n_nodes):
    order = np.argsort(node_of_edge, kind='stable')
    return order, np.bincount(node_of_edge, minlength=n_nodes)


@pytest.mark.parametrize('merge', [True, False])
@pytest.mark.parametrize('n_nodes,n_edges', [(7, 0), (1, 5), (50, 400), (300, 200)])
def test_index_from_groups_matches_brute_force(n_nodes, n_edges, merge):
    rng = np.random.default_rng(n_nodes + n_edges)
    # runs of one node (consecutive edge ids) and nodes without edges both occur
    node_of_edge = np.repeat(rng.integers(0, n_nodes, n_edges), rng.integers(1, 4, n_edges))[:n_edges]
    n2r, ranges = index._index_from_groups(*_grouped(node_of_edge, n_nodes), merge=merge)
    ref_n2r, ref_ranges = _brute_index(node_of_edge, n_nodes, merge)
    assert n2r.dtype == ranges.dtype == np.uint64
    assert np.array_equal(n2r, ref_n2r) and np.array_equal(ranges, ref_ranges)


def test_index_from_counts_matches_brute_force():
    counts = np.array([0, 3, 1, 0, 0, 5, 2, 0])
    node_of_edge = np.repeat(np.arange(counts.size), counts)
    n2r, ranges = index._index_from_counts(counts)
    ref_n2r, ref_ranges = _brute_index(node_of_edge, counts.size)
    assert np.array_equal(n2r, ref_n2r) and np.array_equal(ranges, ref_ranges)


@pytest.mark.parametrize('chunk_edges', [50, 10_000])
def test_bucketed_source_index_groups_edges_by_source(tmp_path, chunk_edges):
    """Spilled to many bucket files (small chunks) or kept in memory (one bucket), the
    source index gives every source its edge ids in increasing order."""
    rng = np.random.default_rng(3)
    sizes, first = [120, 80, 200], [0, 120, 200]
    src = rng.integers(0, 400, 3000)
    idx = index._SourceIndexBuckets(first, sizes, [1000, 1000, 1000], chunk_edges, tmp_path)
    assert (idx.n_buckets > 1) == (chunk_edges == 50)
    for a in range(0, src.size, 700):
        idx.add(src[a:a + 700], a)
    parts = list(idx.buckets())
    assert [p[0] for p in parts] == idx.bounds[:-1].tolist()
    eids = np.concatenate([p[1] for p in parts]).astype(np.int64)
    counts = np.concatenate([p[2] for p in parts])
    order, ref_counts = _grouped(src.astype(np.int64), 400)
    assert np.array_equal(counts, ref_counts) and np.array_equal(eids, order)
    assert not any(tmp_path.glob('.srcidx*/*'))   # bucket files are removed


def test_low_level_datasets_match_h5py(tmp_path):
    data = np.arange(12, dtype=np.uint64).reshape(6, 2)
    with h5py.File(tmp_path / 'x.h5', 'w') as f:
        g0 = _files._new_group(f, 'g/0')   # intermediate groups too
        a = _files._new_dataset(g0, 'a', (10,), np.float32)
        _files._write_slice(a, 3, np.array([1.5, 2.5], np.float32))
        b = _files._new_dataset(f['g'], 'b', data.shape, np.uint64, data)   # whole dataset at once
        _files._write_slice(b, 0, np.zeros((0, 2), np.uint64))   # empty writes are no-ops
        _files._set_str_attr(b, 'node_population', 'V1')
        ref = f.create_dataset('ref', shape=(10,), dtype=np.float32)
        ref.attrs['node_population'] = 'V1'
        a = h5py.Dataset(a)
        assert a.dtype == ref.dtype and a.chunks is None and a.maxshape == ref.maxshape
        assert not a.id.get_create_plist().get_obj_track_times()   # no time stamps: reproducible files
        assert h5py.Dataset(b).attrs.get_id('node_population').dtype == ref.attrs.get_id('node_population').dtype
    with h5py.File(tmp_path / 'x.h5') as f:
        assert np.array_equal(f['g/0/a'][:], [0, 0, 0, 1.5, 2.5, 0, 0, 0, 0, 0])
        assert np.array_equal(f['g/b'][:], data) and f['g/b'].dtype == np.uint64
        assert f['g/b'].attrs['node_population'] == 'V1'


def test_normal_redraw_keeps_signs_and_bounds():
    rng = np.random.default_rng(0)
    sign = np.where(np.arange(20_000) % 2, np.float32(-1), np.float32(1))
    w = writer._normal_redraw(rng, sign.size, sign * np.float32(0.5), np.float32(1.0), sign=sign)
    assert w.dtype == np.float32 and np.all(w * sign >= 0)
    d = writer._normal_redraw(rng, 20_000, np.float32(1.0), np.full(20_000, 2.0, np.float32), low=np.float32(0.1))
    assert np.all(d >= np.float32(0.1))
    # redrawing below 0.1 truncates N(1, 2) there: P(d > 3) = P(x > 3) / P(x > 0.1)
    expected = stats.norm.sf(3, 1, 2) / stats.norm.sf(0.1, 1, 2)
    assert abs(np.mean(d > 3) - expected) < 0.02
