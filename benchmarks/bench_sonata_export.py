"""SONATA export speed and memory: edges written per second and peak memory, for the
32-area model at N_scaling = K_scaling = 0.01 and for larger configurations.

Each configuration is exported in its own process, so its peak RSS is its own; the
RSS before the export (Model built, libraries loaded) is printed beside it, so the
export's own share shows. Peak memory should not grow with the number of edges
(it is bounded by ``--chunk-edges``).

    .venv/bin/python benchmarks/bench_sonata_export.py [--scales 0.01,0.03] [--areas V1,V2] \
        [--workers 1,2] [--chunk-edges 1000000] [--keep DIR | --dir /dev/shm] [--baseline OLD_SONATA_PY]

``--workers`` lists the numbers of edge-writing processes to measure (default: 1 and all
CPUs); peak memory is given for the main process and for the largest worker process (the
export's total stays below main + workers x worker).

``--baseline`` also measures an earlier, single-file sonata.py (the export was one module up
to commit da9417a: ``git show da9417a:mam_pynn/export/sonata.py > /tmp/old.py``) at every
scale, in the same run, and prints the speed-up.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {tests!r})
import standin
M = standin.model({scale}, {scale}, {{'connection_params': {{'replace_non_simulated_areas': 'hom_poisson_stat'}}}})
if {module!r}:   # an earlier version of sonata.py, measured in the same run
    import importlib.util
    spec = importlib.util.spec_from_file_location('mam_pynn.export._sonata_baseline', {module!r})
    S = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(S)
else:
    import mam_pynn.export.sonata as S
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0, c0 = time.perf_counter(), time.process_time()
kw = {{'workers': {workers}}} if {workers} else {{}}
s = S.export_sonata(M, {sim!r}, {out!r}, chunk_edges={chunk}, **kw)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
ch = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu += ch.ru_utime + ch.ru_stime
print(json.dumps({{'model': type(M).__name__, 'edges': s['edges'], 'neurons': s['neurons'],
                   'edge_populations': len(s['edge_populations']), 'wall_s': wall,
                   'edge_s': s['edge_seconds'], 'edges_per_s': s['edges_per_s'], 'cpu_s': cpu,
                   'rss_before_mb': rss0, 'workers': s.get('workers', 1),
                   'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   'worker_peak_rss_mb': ch.ru_maxrss / 1024}}))
"""


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob('*') if f.is_file())


def hdf5_dataset_cost_us(parent: Path, n: int = 3000, size: int = 4000) -> float:
    """Microseconds to create and first write one small contiguous dataset with the exporter's
    own low-level helper: the fixed cost per dataset that bounds exports of many small edge
    populations (11 datasets each)."""
    import h5py
    import numpy as np

    from mam_pynn.export.sonata._files import _new_dataset, _new_group
    data = np.zeros(size, np.uint64)
    path = parent / 'hdf5_floor.h5'
    with h5py.File(path, 'w') as f:
        t0 = time.perf_counter()
        for i in range(n // 10):
            g = _new_group(f, f'g{i}')
            for j in range(10):
                _new_dataset(g, f'd{j}', data.shape, data.dtype, data)
        per = (time.perf_counter() - t0) / n * 1e6
    path.unlink()
    return per


def _line(r: dict) -> str:
    mem = f"peak RSS {r['peak_rss_mb']:.0f} MB main process (before export {r['rss_before_mb']:.0f} MB)"
    if r['workers'] > 1:
        mem += f", {r['worker_peak_rss_mb']:.0f} MB largest worker"
    return (f"edges written in {r['edge_s']:.2f} s ({r['edges_per_s'] / 1e6:.2f}M edges/s), whole export "
            f"{r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU ({r['edges'] / r['cpu_s'] / 1e6:.2f}M edges "
            f"per CPU-s), {mem}, {r['bytes_per_edge']:.0f} B/edge on disk, load {os.getloadavg()[0]:.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--scales', default='0.01,0.03', help='N_scaling = K_scaling values')
    ap.add_argument('--areas', default='all', help="comma-separated areas, or 'all'")
    ap.add_argument('--workers', default=None, help='comma-separated process counts (default: 1 and all CPUs)')
    ap.add_argument('--chunk-edges', type=int, default=1_000_000)
    ap.add_argument('--keep', default=None, help='export into this directory and keep it')
    ap.add_argument('--dir', default=None, help='parent of the temporary export directory '
                    '(e.g. /dev/shm, to take the disk out of the measurement)')
    ap.add_argument('--baseline', default=None, help='an earlier sonata.py to measure beside this one')
    ap.add_argument('--json', default=None, metavar='FILE', help='also write every measurement (and the command) here')
    args = ap.parse_args(argv)
    from mam_pynn.mpi import available_cpus
    cpus = available_cpus()
    workers = [int(w) for w in args.workers.split(',')] if args.workers else sorted({1, cpus})
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix='bench_sonata_', dir=args.dir))
    sim = {'t_sim': 100.}
    if args.areas != 'all':
        sim['areas_simulated'] = args.areas.split(',')
    rows = {w: [] for w in workers}
    print(f"load average {os.getloadavg()[0]:.1f} on {cpus} CPUs (wall times suffer when "
          f"the machine is shared; CPU seconds less so)", flush=True)
    try:
        for scale in [float(x) for x in args.scales.split(',')]:
            runs = ([(0, str(Path(args.baseline).resolve()))] if args.baseline else []) + [(w, '') for w in workers]
            first = None
            for w, module in runs:
                out = base / f'scale_{scale:g}_w{w}'
                shutil.rmtree(out, ignore_errors=True)
                code = CHILD.format(tests=str(ROOT / 'tests' / 'export'), scale=scale, sim=sim, workers=w,
                                    out=str(out), chunk=args.chunk_edges, module=module)
                res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
                if res.returncode:
                    print(res.stderr[-3000:], file=sys.stderr)
                    return 1
                r = json.loads(res.stdout.strip().splitlines()[-1])
                r['scale'] = scale
                r['bytes_per_edge'] = du(out) / max(r['edges'], 1)
                if not args.keep:
                    shutil.rmtree(out, ignore_errors=True)
                if module:
                    print(f"scale {scale:g} [baseline {module}]: {_line(r)}", flush=True)
                else:
                    rows[w].append(r)
                    if first is None:
                        print(f"scale {scale:g}: {r['neurons']} neurons, {r['edges'] / 1e6:.2f}M edges in "
                              f"{r['edge_populations']} edge populations [{r['model']}]", flush=True)
                    print(f"  {w} process{'es' if w > 1 else ''}: {_line(r)}", flush=True)
                if first is None:
                    first = r
                else:
                    print(f"    x{r['edges_per_s'] / first['edges_per_s']:.2f} the edges/s of "
                          f"{'the baseline' if args.baseline else '1 process'}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    for w, rs in rows.items():
        if len(rs) > 1:
            a, b = rs[0], rs[-1]
            workers_mem = (f", largest worker {a['worker_peak_rss_mb']:.0f} -> {b['worker_peak_rss_mb']:.0f} MB"
                           if w > 1 else '')
            print(f"summary, {w} process{'es' if w > 1 else ''}: {b['edges'] / a['edges']:.1f}x the edges -> "
                  f"main process peak RSS {a['peak_rss_mb']:.0f} -> {b['peak_rss_mb']:.0f} MB{workers_mem}; "
                  f"throughput {a['edges_per_s'] / 1e6:.2f} -> {b['edges_per_s'] / 1e6:.2f}M edges/s")
    base.mkdir(parents=True, exist_ok=True)
    floor_us = hdf5_dataset_cost_us(base)
    print(f"HDF5: {floor_us:.0f} µs to create and write one dataset of 4,000 uint64 (x 11 per edge population)")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        from mam_pynn.io import atomic_write_json
        atomic_write_json(Path(args.json), {
            'command': 'benchmarks/bench_sonata_export.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
            'cpus': cpus, 'load_average_end': os.getloadavg()[0], 'hdf5_us_per_dataset': floor_us,
            'runs': [dict(r, workers_requested=w) for w, rs in rows.items() for r in rs]})
        print(f"measurements written to {args.json}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
