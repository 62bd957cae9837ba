"""Distributed runs: one simulation under ``mpirun``, its parts merged into one run directory.

Each rank writes its own part into ``RUN_DIR/ranks/<rank>/``; rank 0 then merges the parts
(spikes streamed in time windows, nothing of size "all spikes" held at once) into the run
directory of DESIGN.md, with per-phase times as the maximum over ranks and memory per rank.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..io import (atomic_path, atomic_write_json, atomic_write_text, h5_create,
                  mark_sorted_by_time, sonata_file_attrs)
from ..mpi import mpi_rank_size   # distributed.mpi_rank_size: patched by the tests


NEST_MPI_VERSION = '3.10.0'


def nest_mpi_prefix() -> Path:
    """Where hpc/build_nest_mpi.sh installs NEST with MPI: $MAM_NEST_PREFIX, else
    nest-<version>-mpi in the package's cache folder (the scripts use the same rule)."""
    from ..connectivity import cache_dir
    env = os.environ.get('MAM_NEST_PREFIX')
    return Path(env) if env else cache_dir() / f'nest-{NEST_MPI_VERSION}-mpi'


def rank_dir(run_dir, rank: int) -> Path:
    return Path(run_dir) / 'ranks' / f'{rank:05d}'


def check_nest_mpi(size: int) -> None:
    """Refuse to run P independent copies: the imported NEST must see all ranks."""
    import nest
    if nest.NumProcesses() != size:
        have_mpi = nest.GetKernelStatus('build_info').get('have_mpi')
        raise RuntimeError(
            f"launched on {size} MPI ranks but NEST sees {nest.NumProcesses()} process(es) "
            f"(NEST built {'with' if have_mpi else 'without'} MPI, from {nest.__file__}); "
            f"build NEST with MPI (hpc/build_nest_mpi.sh) and `source hpc/env.sh`")


def nest_kernel_info() -> dict:
    """This rank's NEST timers (seconds; the maximum over threads), delays and counts."""
    import nest
    status = nest.GetKernelStatus()
    out = {}
    for key, value in status.items():
        if key.startswith('time_') and not key.endswith('_cpu'):
            out[key] = float(np.max(value)) if np.size(value) else 0.0
    for key in ('min_delay', 'max_delay', 'local_num_threads', 'num_processes',
                'num_connections', 'local_spike_counter'):
        if key in status:
            out[key] = status[key].item() if hasattr(status[key], 'item') else status[key]
    out['rank'] = int(nest.Rank())
    out['detailed_timers'] = 'time_update' in status
    return out


def run_distributed(simulation, out_dir, timeout_s: float = 3600.) -> dict:
    """Run ``simulation`` (a :class:`mam_pynn.simulation.Simulation`) on this rank.

    With one rank this is ``simulation.simulate(out_dir)``. With P ranks, every rank
    writes ``out_dir/ranks/<rank>/`` and rank 0 merges them into ``out_dir`` (see
    :func:`merge_run`); every rank returns its own summary, rank 0 the merged one.
    NEST runs also leave the kernel's timers in ``nest_kernel.json`` (per rank), written
    before ``summary.json``.
    """
    from ..simulation import check_run_dir
    rank, size = mpi_rank_size()
    out_dir = Path(out_dir)
    def write_kernel(d):
        atomic_write_json(Path(d) / 'nest_kernel.json', nest_kernel_info())
    kernel = write_kernel if simulation.backend.startswith('nest') else None
    if size == 1:
        return simulation.simulate(out_dir, before_summary=kernel)
    # mpirun's messages name processes by pid: this line maps them to ranks
    print(f"rank {rank} of {size} (pid {os.getpid()}): {rank_dir(out_dir, rank)}",
          file=sys.stderr, flush=True)
    try:
        # the ranks create ranks/<r>/ concurrently: each checks its own part in simulate()
        check_run_dir(out_dir, ignore=('ranks',))
        if kernel is not None:
            check_nest_mpi(size)
        summary = simulation.simulate(rank_dir(out_dir, rank), progress=(rank == 0),
                                      figures=False, before_summary=kernel)
        if rank != 0:
            return summary
        return merge_run(out_dir, size, timeout_s=timeout_s)
    except BaseException as err:
        stop_all_ranks(err, rank, size, out_dir)


def stop_all_ranks(err: BaseException, rank: int, size: int, out_dir) -> None:
    """One rank failed (an error, a bug, SIGTERM, Ctrl-C): say which and why in one line
    (a bug: its traceback first), then end every rank with MPI_Abort, so that none waits
    forever for it and no merged ``summary.json`` appears. Does not return."""
    import traceback

    from ..faults import debug_wanted, describe, exit_code
    code = exit_code(err)
    if code is None or debug_wanted():
        traceback.print_exception(err)
    print(f"mam simulate: error: rank {rank} of {size}: {describe(err)}; stopping all {size} "
          f"ranks: run directory {out_dir} is left unfinished (no summary.json)",
          file=sys.stderr, flush=True)
    try:
        from mpi4py import MPI
        MPI.COMM_WORLD.Abort(code or 1)
    finally:   # no mpi4py: end this rank; mpirun ends the others
        os._exit(code or 1)


def _wait_for(paths, timeout_s: float) -> None:
    t0 = time.monotonic()
    while True:
        missing = [p for p in paths if not p.exists()]
        if not missing:
            return
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"{len(missing)} rank(s) did not finish within {timeout_s:g} s "
                               f"(first missing: {missing[0]})")
        time.sleep(0.2)


def merge_spike_files(parts, out_path, window_ms: float = 1000.) -> int:
    """Merge per-rank SONATA spike files (sorted by time) into one, sorted by time then id.

    Streams each area in windows of ``window_ms``: at most one window of spikes of all
    ranks is in memory. Returns the number of spikes written.
    """
    import h5py
    parts = [Path(p) for p in parts]
    files = [h5py.File(p, 'r') for p in parts]
    total = 0
    try:
        areas = []
        for f in files:    # areas in the order the first file that has them lists them
            for a in f.get('spikes', {}):
                if a not in areas:
                    areas.append(a)
        t_end = 0.0
        for f in files:
            for a in f.get('spikes', {}):
                ts = f['spikes'][a]['timestamps']
                if len(ts):
                    t_end = max(t_end, float(ts[-1]))
        with atomic_path(out_path) as tmp, h5_create(tmp) as out:
            sonata_file_attrs(out)
            grp = out.create_group('spikes')
            for area in areas:
                g = grp.create_group(area)
                mark_sorted_by_time(g)
                ids_out = g.create_dataset('node_ids', shape=(0,), maxshape=(None,), dtype='u8',
                                           chunks=True)
                ts_out = g.create_dataset('timestamps', shape=(0,), maxshape=(None,), dtype='f8',
                                          chunks=True)
                ts_out.attrs['units'] = 'ms'
                srcs = [(f['spikes'][area]['node_ids'], f['spikes'][area]['timestamps'])
                        for f in files if area in f.get('spikes', {})]
                cursors = [0] * len(srcs)
                edge = window_ms
                while True:
                    chunk_ids, chunk_ts = [], []
                    for k, (ids, ts) in enumerate(srcs):
                        lo = cursors[k]
                        hi = _first_index_at_or_after(ts, edge, lo)
                        if hi > lo:
                            chunk_ids.append(ids[lo:hi])
                            chunk_ts.append(ts[lo:hi])
                        cursors[k] = hi
                    if chunk_ts:
                        ids = np.concatenate(chunk_ids).astype(np.uint64)
                        ts = np.concatenate(chunk_ts).astype(np.float64)
                        order = np.lexsort((ids, ts))
                        n0 = ids_out.shape[0]
                        ids_out.resize((n0 + len(ids),))
                        ts_out.resize((n0 + len(ids),))
                        ids_out[n0:] = ids[order]
                        ts_out[n0:] = ts[order]
                        total += len(ids)
                    if all(c >= len(ts) for c, (_, ts) in zip(cursors, srcs)) or edge > t_end + window_ms:
                        break
                    edge += window_ms
    finally:
        for f in files:
            f.close()
    return total


def _first_index_at_or_after(ts, t: float, lo: int) -> int:
    """Binary search on an h5py dataset sorted ascending (reads O(log n) values)."""
    hi = len(ts)
    while lo < hi:
        mid = (lo + hi) // 2
        if ts[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


# summary fields that add up over ranks; per-rank times, CPU times and memory (the
# maximum over ranks: the slowest or largest rank bounds the run)
_SUM_FIELDS = ('spikes',)
_MAX_FIELDS = ('build_s', 'sim_s', 'setup_s', 'network_creation_s', 'local_connections_s',
               'cortico_cortical_connections_s', 'finish_build_s', 'state_propagation_s', 'write_s', 'import_s',
               'build_cpu_s', 'sim_cpu_s', 'peak_rss_build_mb', 'peak_rss_sim_mb')


def merge_summaries(summaries: list[dict]) -> dict:
    """One run summary from the per-rank ones: counts summed, times and memory the
    maximum over ranks, peak memory also listed per rank; rate and RTF recomputed."""
    from ..simulation import mean_rate_hz, real_time_factor
    if not summaries:
        raise ValueError("no rank summaries to merge")
    s = dict(summaries[0])
    for k in _SUM_FIELDS:
        s[k] = int(sum(int(x.get(k, 0)) for x in summaries))
    for k in _MAX_FIELDS:
        if k in s:
            s[k] = max(float(x[k]) for x in summaries)
    s['peak_rss_mb_per_rank'] = [float(x['peak_rss_mb']) for x in summaries]
    s['peak_rss_mb'] = max(s['peak_rss_mb_per_rank'])
    s['num_processes'] = len(summaries)
    if 'sim_s' in s and 't_sim_ms' in s:
        s['rtf'] = real_time_factor(s['sim_s'], float(s['t_sim_ms']))
    if 'mean_rate_hz' in s:
        s['mean_rate_hz'] = mean_rate_hz(s['spikes'], s['recorded_neurons'], s['t_sim_ms'],
                                         s['spike_start_ms'])
    s['watchdog_stopped'] = any(x.get('watchdog_stopped', False) for x in summaries)
    return s


def merge_run(run_dir, n_ranks: int, timeout_s: float = 3600., keep_parts: bool = False) -> dict:
    """Rank 0's step after a distributed run: wait for all ranks, then write
    ``config.yaml``, the merged ``spikes.h5``, the raster and (last) ``summary.json`` in
    ``run_dir``; the parts' spike files are removed after that.

    A part's ``summary.json`` is its last file: once all exist, every part is complete."""
    from ..simulation import draw_raster, publish_summary, summary_line
    run_dir = Path(run_dir)
    parts = [rank_dir(run_dir, r) for r in range(n_ranks)]
    _wait_for([p / 'summary.json' for p in parts], timeout_s)
    atomic_write_text(run_dir / 'config.yaml', (parts[0] / 'config.yaml').read_text())
    spike_parts = [p / 'spikes.h5' for p in parts if (p / 'spikes.h5').exists()]
    n = merge_spike_files(spike_parts, run_dir / 'spikes.h5') if spike_parts else 0
    summaries = [json.loads((p / 'summary.json').read_text()) for p in parts]
    summary = merge_summaries(summaries)
    kernel_files = [p / 'nest_kernel.json' for p in parts]
    if all(k.exists() for k in kernel_files):
        infos = [json.loads(k.read_text()) for k in kernel_files]
        summary['nest_timers'] = {k: max(i[k] for i in infos) for k in infos[0]
                                  if k.startswith('time_')}
        atomic_write_json(run_dir / 'nest_kernel.json', {'ranks': infos,
                                                         'max_over_ranks': summary['nest_timers']})
    if n != summary['spikes']:
        raise RuntimeError(f"merged {n} spikes but the ranks report {summary['spikes']}")
    if (run_dir / 'spikes.h5').exists():
        draw_raster(run_dir, float(summary['t_sim_ms']))
    publish_summary(run_dir, summary)
    if not keep_parts:
        for p in spike_parts:
            p.unlink()
    print(f"{summary_line(summary)} [{n_ranks} ranks merged]", flush=True)
    return summary


def main(argv=None) -> int:
    """``python -m mam_pynn.hpc --config F --out RUN_DIR``: ``mam simulate`` through
    :func:`run_distributed` (works with and without ``mpirun``)."""
    import argparse
    from ..config import load_config
    from ..faults import EXIT_WATCHDOG, run_command
    from ..model import MultiAreaModel
    ap = argparse.ArgumentParser(prog='python -m mam_pynn.hpc', description=main.__doc__)
    ap.add_argument('--config')
    ap.add_argument('--set', action='append', default=[], dest='overrides')
    ap.add_argument('--backend')
    ap.add_argument('--out', required=True)
    args = ap.parse_args(argv)

    def command():
        cfg = load_config(args.config, args.overrides)
        backend = args.backend or cfg.get('backend', 'nest')
        M = MultiAreaModel(cfg.get('network_params', {}), simulation=True,
                           sim_spec=cfg.get('sim_params', {}), backend=backend)
        summary = run_distributed(M.simulation, args.out)
        return EXIT_WATCHDOG if summary.get('watchdog_stopped') else 0
    return run_command('python -m mam_pynn.hpc', command, unfinished=lambda: (
        f"run directory {args.out} is left unfinished (no summary.json)"))

