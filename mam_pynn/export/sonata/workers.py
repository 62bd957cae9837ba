"""The edges of all target areas written by parallel processes, one edges_to_<T>.h5 per
target area; every area pair draws from its own random stream, so the circuit does
not depend on the number of processes.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...mpi import available_cpus
from .._tables import NetworkTables
from ._files import _AtomicH5, _Progress
from .writer import _write_area_pair


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
    return available_cpus()


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
