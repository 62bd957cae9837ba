"""Low-level writing shared by the SONATA writer: atomic text/JSON/CSV files, HDF5 files
renamed into place when complete, datasets written in chunks through the low-level
h5py API (fast for many small groups), and the export's progress line.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from ...faults import write_error, writing
from ...io import atomic_write_text, h5_create


CELL_TEMPLATE = 'nest:iaf_psc_exp'
SYNAPSE_TEMPLATE = 'static_synapse'


def _log(msg: str) -> None:
    print(f"[sonata] {msg}", file=sys.stderr, flush=True)


def _write_text_atomic(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def _write_json(path: Path, obj) -> None:
    _write_text_atomic(path, json.dumps(obj, indent=2, default=str) + '\n')


def _write_component(path: Path, obj) -> None:
    """Small parameter files (hundreds of them): plain writes, the export is only
    complete once mam_export.json is written (atomically, last)."""
    with writing(path):
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
        with writing(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.f = h5_create(self.tmp)
            self.f.attrs['version'] = np.array([0, 1], dtype=np.uint32)
            self.f.attrs['magic'] = np.uint32(0x0A7A)
        return self.f

    def __exit__(self, exc_type, exc, tb):
        try:
            with writing(self.path):
                self.f.close()
                if exc_type is None:
                    os.replace(self.tmp, self.path)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        if exc is not None:
            self.tmp.unlink(missing_ok=True)
            failed = write_error(self.path, exc)   # a failed write names the file
            if failed is not None and failed is not exc:
                raise failed from exc


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


def _new_group(parent, name: str) -> h5py.Group:
    """``parent.create_group(name)`` (intermediate groups included) through the low-level API."""
    if 'lcpl' not in _H5:
        _H5['lcpl'] = h5py.h5p.create(h5py.h5p.LINK_CREATE)
        _H5['lcpl'].set_create_intermediate_group(True)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), lcpl=_H5['lcpl']))


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
