"""Atomic file output: write to a temporary sibling, then rename.

A crash never leaves a half-written file that looks finished.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# read once at import: setting the umask later, while other threads create files,
# would give their files mode 0o666 for that moment
_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary file is flushed to disk (fsync) before the rename, so after a
    crash ``path`` holds either the old or the complete new content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=suffix if suffix is not None else path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual file mode
        with open(tmp, 'r+b') as f:  # writable: Windows' fsync needs it
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj, **kwargs) -> Path:
    kwargs.setdefault('indent', 1)
    return atomic_write_text(path, json.dumps(obj, **kwargs) + '\n')


# SONATA spike files (spec: /spikes/<population>/{node_ids,timestamps}, file attributes
# magic and version, group attribute 'sorting' as an enum)
SONATA_MAGIC = 0x0A7A
SONATA_SORTING = {'none': 0, 'by_id': 1, 'by_time': 2}


def sonata_file_attrs(f) -> None:
    """The root attributes of a SONATA HDF5 file (h5py.File ``f``)."""
    import numpy as np
    f.attrs['magic'] = np.uint32(SONATA_MAGIC)
    f.attrs['version'] = np.array([0, 1], dtype=np.uint32)


def mark_sorted_by_time(group) -> None:
    """The 'sorting' attribute of a SONATA spikes group, as the enum libsonata expects."""
    import h5py
    kind = h5py.enum_dtype(SONATA_SORTING, basetype='u1')
    group.attrs.create('sorting', SONATA_SORTING['by_time'], dtype=kind)


def write_sonata_spikes(path: str | os.PathLike, area_spikes) -> int:
    """Write ``{population: (node_ids, times_ms)}`` (or an iterable of such pairs, made
    one population at a time) as a SONATA spike file, each population sorted by time
    (then node id), atomically; return the spike count."""
    import h5py
    import numpy as np
    total = 0
    items = area_spikes.items() if hasattr(area_spikes, 'items') else area_spikes
    with atomic_path(path) as tmp, h5py.File(tmp, 'w') as f:
        sonata_file_attrs(f)
        root = f.create_group('spikes')
        for name, (ids, times) in items:
            ids, times = np.asarray(ids), np.asarray(times, dtype=np.float64)
            order = np.lexsort((ids, times))
            g = root.create_group(name)
            mark_sorted_by_time(g)
            g.create_dataset('node_ids', data=ids[order].astype(np.uint64))
            g.create_dataset('timestamps', data=times[order]).attrs['units'] = 'ms'
            total += int(ids.size)
    return total
