"""Files in and out. Output is atomic: written to a temporary sibling, then renamed, so a
crash never leaves a half-written file that looks finished, and a failed write raises an
OSError naming the file (:class:`mam_pynn.faults.WriteError`). Input read through
:func:`read_json` / :func:`read_yaml` / :func:`read_h5` names the file it could not read.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from pathlib import Path

import yaml

from .faults import WriteError, reading, writing


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
    with writing(path):
        _mkdir(path.parent, path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                   suffix=suffix if suffix is not None else path.suffix)
        os.close(fd)
    try:
        with writing(path):
            yield Path(tmp)
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual file mode
            with open(tmp, 'r+b') as f:  # writable: Windows' fsync needs it
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj, **kwargs) -> Path:
    kwargs.setdefault('indent', 1)
    return atomic_write_text(path, json.dumps(obj, **kwargs) + '\n')


def _mkdir(folder: Path, target: Path) -> None:
    """``mkdir -p folder`` for writing ``target``; a regular file in the way is named."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        if blocker is None:
            raise
        raise WriteError(errno.ENOTDIR, f"{blocker} is a file, not a folder", str(target)) from err


def make_dir(path: str | os.PathLike) -> Path:
    """``mkdir -p path``; a failure raises an OSError naming ``path``."""
    with writing(path):
        _mkdir(Path(path), Path(path))
    return Path(path)


# ------------------------------------------------------------------ reading

class _Loader(yaml.SafeLoader):
    """YAML as people write it: numbers by YAML 1.2 (``2e-3`` and ``1.0e+308`` are
    numbers; YAML 1.1, PyYAML's default, reads them as text) and a key written twice
    in one mapping refused (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == 'tag:yaml.org,2002:merge':   # '<<': merged keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice in one mapping (lines "
                        f"{seen[key]} and {line}); keep one", key_node.start_mark)
                seen[key] = line
            except TypeError:   # an unhashable key: SafeLoader's own error follows
                continue
        return super().construct_mapping(node, deep)


_FLOAT = 'tag:yaml.org,2002:float'
_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != _FLOAT]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_FLOAT, re.compile(r"""^(?:
      [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    | [-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    | [-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    | [-+]?\.(?:inf|Inf|INF)
    | \.(?:nan|NaN|NAN))$""", re.X), list('-+0123456789.'))


def load_yaml(text: str):
    """``yaml.safe_load`` with YAML 1.2 numbers and duplicate keys refused."""
    return yaml.load(text, Loader=_Loader)


def read_yaml(path: str | os.PathLike):
    """The YAML file ``path`` (see :func:`load_yaml`); a damaged file raises
    :class:`~mam_pynn.faults.DamagedFileError` naming it."""
    with reading(path):
        return load_yaml(Path(path).read_text())


def read_json(path: str | os.PathLike):
    with reading(path):
        return json.loads(Path(path).read_text())


def read_h5(path: str | os.PathLike):
    """``h5py.File(path, 'r')``; a file that is not HDF5 raises DamagedFileError naming it.
    Read its contents inside ``with reading(path):`` to name it for later errors too."""
    import h5py
    with reading(path):
        return h5py.File(path, 'r')


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


def h5_create(path: str | os.PathLike):
    """``h5py.File(path, 'w')`` that writes data when told (no sieve buffer, no chunk
    cache): a write that fails (disk full, file too large) then fails in the call, inside
    :func:`atomic_path`; with the caches, it failed later, when h5py freed the dataset,
    and left HDF5 (2.0) with a dataset that crashes the interpreter at exit."""
    import h5py
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_sieve_buf_size(0)
    fapl.set_cache(0, 0, 0, 0.75)      # metadata elements (unused), chunk slots, bytes, w0
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
    return h5py.File(h5py.h5f.create(os.fsencode(str(path)), h5py.h5f.ACC_TRUNC, fapl=fapl))


def write_sonata_spikes(path: str | os.PathLike, area_spikes) -> int:
    """Write ``{population: (node_ids, times_ms)}`` (or an iterable of such pairs, made
    one population at a time) as a SONATA spike file, each population sorted by time
    (then node id), atomically; return the spike count."""
    import numpy as np
    total = 0
    items = area_spikes.items() if hasattr(area_spikes, 'items') else area_spikes
    with atomic_path(path) as tmp, h5_create(tmp) as f:
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
