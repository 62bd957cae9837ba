"""Benchmark: full analysis of a 32-area synthetic run, in one process and over processes.

Default: shaped like N_scaling = K_scaling = 0.01 (about 41k neurons at 1-30 spikes/s,
10 s of activity after a 500 ms transient); ``--neurons-per-area 129000`` is shaped like
the full model (4.19 M neurons, ~215 M spikes, 3.4 GB of spikes.h5). Measures: writing
the synthetic run, then ``python -m mam_pynn.analysis`` (= `mam analyze`) in a fresh
process: statistics with 1 worker and with ``--workers`` (default: as many as
analyze_run chooses: CPUs, memory), with figures, a cached rerun; the wall time and the
peak memory of each (the summed proportional set size, PSS, of the process and its
workers, sampled every 0.1 s: memory shared by forked workers counts once), whether the
parallel results equal the serial ones exactly, and, as a reference in the same
run, Elephant's per-train LvR (with building the Neo SpikeTrains) on a sample,
extrapolated to every neuron, against the columnar numpy LvR of all neurons. Goals
(issue 24, full-model shape): under 60 s and 1 GB on 2 cores, under 30 s with more.

    python benchmarks/bench_analysis.py [--neurons-per-area 1290] [--activity-ms 10000]
        [--dir /tmp] [--run EXISTING_RUN] [--keep] [--workers N] [--no-figures]
        [--no-elephant] [--json FILE]

The synthetic run is written under --dir (default: the system's temporary folder) and
deleted afterwards unless --keep; --run analyses an existing one (never deleted).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np


class PeakMemory:
    """Peak of the summed PSS (MB) of this process's children (and theirs) while in the block."""

    def __init__(self, every_s: float = 0.1):
        import psutil
        self.me, self.every, self.peak_mb = psutil.Process(), every_s, 0.
        self._stop = threading.Event()

    def _total_mb(self) -> float:
        total = 0
        for p in self.me.children(recursive=True):
            try:
                total += p.memory_full_info().pss
            except Exception:       # a worker that just ended
                pass
        return total / 2 ** 20

    def _loop(self):
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._total_mb())
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def analyze(run: Path, *options: str) -> tuple[float, float, float, str]:
    """``python -m mam_pynn.analysis RUN OPTIONS`` (what `mam analyze` runs) in a fresh
    process: (wall s, CPU s of it and its workers, peak MB of them, its summary line)."""
    cmd = [sys.executable, '-m', 'mam_pynn.analysis', str(run), '--t-min', '500', *options]
    cpu0 = children_cpu_s()
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, children_cpu_s() - cpu0, mem.peak_mb, proc.stdout.strip().splitlines()[-1]


def results(run: Path) -> tuple[str, dict]:
    """The stored statistics (without the cache key) and arrays of the run's analysis."""
    stats = json.loads((run / 'analysis' / 'statistics.json').read_text())
    stats.pop('key')
    with np.load(run / 'analysis' / 'series.npz') as z:
        arrays = {k: z[k] for k in z.files if k != 'cache_key'}
    return json.dumps(stats, sort_keys=True), arrays


def same_results(a, b) -> bool:
    return a[0] == b[0] and a[1].keys() == b[1].keys() and all(
        np.array_equal(a[1][k], b[1][k], equal_nan=a[1][k].dtype.kind == 'f') for k in a[1])


def elephant_reference(run: Path, t_min: float, sample: int) -> dict:
    """Columnar numpy LvR of all neurons against Elephant's per train on a sample."""
    import quantities as pq
    from elephant.statistics import isi, lvr

    from mam_pynn.analysis import statistics as st
    from mam_pynn.analysis.spikes import iter_areas, read_run_info, sample_neurons, spike_trains
    info = read_run_info(run)
    t0 = time.perf_counter()
    n_lvr = 0
    for _, pops in iter_areas(info, t_min):
        for ps in pops.values():
            st.lvr(ps.neuron, ps.times, ps.size, t_ref=info.t_ref)
            n_lvr += ps.size
    t_numpy = time.perf_counter() - t0  # includes reading and splitting the spikes
    _, pops = next(iter_areas(info, t_min))
    biggest = max(pops.values(), key=lambda p: p.size)
    chosen = sample_neurons(biggest, sample, active_only=True)
    t0 = time.perf_counter()
    trains = spike_trains(biggest, chosen)
    t_neo = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for tr in trains:
            if len(tr) >= 3:
                lvr(isi(tr), R=info.t_ref * pq.ms)
    t_el = time.perf_counter() - t0
    per_train = (t_neo + t_el) / max(len(trains), 1)
    return {'neurons': n_lvr, 'numpy_s': t_numpy, 'trains': len(trains), 'neo_s': t_neo,
            'elephant_s': t_el, 'per_train_ms': 1e3 * per_train,
            'extrapolated_s': per_train * n_lvr, 'ratio': per_train * n_lvr / t_numpy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--neurons-per-area', type=int, default=1290)
    parser.add_argument('--activity-ms', type=float, default=10000.)
    parser.add_argument('--dir', help='folder for the synthetic run (default: temporary folder)')
    parser.add_argument('--run', help='analyse this existing run instead of writing one')
    parser.add_argument('--keep', action='store_true', help='keep the synthetic run')
    parser.add_argument('--workers', type=int, default=None,
                        help="processes of the parallel analysis (default: analyze_run's choice)")
    parser.add_argument('--no-figures', action='store_true', help='skip the figures and cached rerun')
    parser.add_argument('--no-elephant', action='store_true', help='skip the Elephant reference')
    parser.add_argument('--elephant-sample', type=int, default=2000)
    parser.add_argument('--json', help='also write the measurements here')
    args = parser.parse_args()

    from mam_pynn.analysis.run import default_workers
    from mam_pynn.analysis.spikes import read_run_info
    from mam_pynn.analysis.synthetic import default_layout, make_run_dir
    from mam_pynn.mpi import available_cpus

    t_min = 500.
    out = {'command': ' '.join(['benchmarks/bench_analysis.py'] + sys.argv[1:]),
           'cpus': available_cpus()}
    tmp = None
    if args.run:
        run = Path(args.run)
        t_make = float('nan')
    else:
        base = args.dir or tempfile.gettempdir()
        free_gb = shutil.disk_usage(base).free / 2 ** 30
        need_gb = 3.4 * args.neurons_per_area / 129000 * (t_min + args.activity_ms) / 10500 + 0.5
        if free_gb < need_gb:
            raise SystemExit(f"bench_analysis: {base} has {free_gb:.1f} GB free, the run needs "
                             f"~{need_gb:.1f} GB; choose another --dir")
        tmp = Path(tempfile.mkdtemp(prefix='bench_analysis_', dir=base))
        run = tmp / 'run'
        t0 = time.perf_counter()
        make_run_dir(run, default_layout(args.neurons_per_area), t_sim=t_min + args.activity_ms, seed=0)
        t_make = time.perf_counter() - t0
    try:
        workers = args.workers or default_workers(read_run_info(run))
        t_serial, cpu_serial, mem_serial, _ = analyze(run, '--force', '--no-figures', '--workers', '1')
        serial = results(run)
        t_par, cpu_par, mem_par, _ = analyze(run, '--force', '--no-figures', '--workers', str(workers))
        same = same_results(serial, results(run))
        stats = json.loads(serial[0])
        net = {k: float('nan') if v is None else v for k, v in stats['network'].items()}
        print(f"run: {len(stats['areas'])} areas, {net['neurons']} neurons, {net['spikes']} spikes, "
              f"{args.activity_ms:g} ms analysed, mean rate {net['rate']:.2f} spikes/s, "
              f"spikes.h5 {(run / 'spikes.h5').stat().st_size / 2 ** 30:.2f} GiB; {out['cpus']} CPUs")
        print(f"{'':<40} {'wall s':>7} {'CPU s':>7} {'peak MB':>8}")
        print(f"{'write synthetic run':<40} {t_make:7.2f}")
        print(f"{'mam analyze --no-figures, 1 worker':<40} {t_serial:7.2f} {cpu_serial:7.2f} {mem_serial:8.0f}")
        print(f"{f'mam analyze --no-figures, {workers} workers':<40} {t_par:7.2f} {cpu_par:7.2f} "
              f"{mem_par:8.0f}   (goal < 60 s and < 1 GB on 2 cores, < 30 s with more)")
        print(f"parallel == serial statistics and arrays: {same}")
        out.update(neurons=net['neurons'], spikes=net['spikes'], write_s=t_make,
                   serial_s=t_serial, serial_cpu_s=cpu_serial, serial_peak_mb=mem_serial,
                   workers=workers, parallel_s=t_par, parallel_cpu_s=cpu_par,
                   parallel_peak_mb=mem_par, parallel_equals_serial=same)
        if not args.no_figures:
            t_full, cpu_full, mem_full, _ = analyze(run, '--force', '--workers', str(workers))
            t_cached, _, _, line = analyze(run)
            assert line.endswith('(cached)'), line
            print(f"{f'mam analyze with figures, {workers} workers':<40} {t_full:7.2f} {cpu_full:7.2f} "
                  f"{mem_full:8.0f}")
            print(f"{'cached rerun':<40} {t_cached:7.2f}")
            out.update(full_s=t_full, full_cpu_s=cpu_full, full_peak_mb=mem_full, cached_s=t_cached)
        if not args.no_elephant:
            ref = elephant_reference(run, t_min, args.elephant_sample)
            print(f"numpy LvR, all {ref['neurons']} neurons (with reading): {ref['numpy_s']:.2f} s")
            print(f"Elephant LvR on {ref['trains']} Neo trains: {ref['neo_s']:.2f} s building + "
                  f"{ref['elephant_s']:.2f} s lvr = {ref['per_train_ms']:.2f} ms/train -> "
                  f"{ref['extrapolated_s']:.1f} s extrapolated to all neurons "
                  f"(ratio Elephant/numpy {ref['ratio']:.0f}x)")
            out['elephant'] = ref
        fc = stats['functional_connectivity'].get('similarity_exp')
        print(f"check: network LvR {net['lvr']:.3f}, CV {net['cv_isi']:.3f}, "
              f"FC vs fMRI r={fc if fc is not None else float('nan'):.3f}")
        out['load_average_end'] = os.getloadavg()[0]
        if args.json:
            from mam_pynn.io import atomic_write_json
            atomic_write_json(args.json, out)
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp is not None:
            print(f"kept {run}")


if __name__ == '__main__':
    np.seterr(all='ignore')
    main()
