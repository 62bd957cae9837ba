"""The edge populations of an export, whichever of its edge files holds them."""
from contextlib import ExitStack, contextmanager

import h5py

from mam_pynn.export.sonata import edge_files


@contextmanager
def edge_populations(circuit_dir):
    """{name: h5py group} of every edge population between areas (files open for reading)."""
    with ExitStack() as stack:
        groups = {}
        for path in edge_files(circuit_dir):
            f = stack.enter_context(h5py.File(path, 'r'))
            assert not set(f['edges']) & set(groups), f"edge population names repeat in {path}"
            groups.update(f['edges'].items())
        yield groups
