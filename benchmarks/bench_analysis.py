"""Benchmark: full analysis of a 32-area synthetic run shaped like N_scaling = K_scaling = 0.01.

About 41k neurons at 1-30 spikes/s, 10 s of activity after a 500 ms transient.
Measures: writing the synthetic run, statistics alone, figures, a cached rerun,
and, as a reference in the same run, Elephant's per-train LvR (with building the
Neo SpikeTrains) on a sample, extrapolated to every neuron, against the columnar
numpy LvR of all neurons. Goal: full analysis under 60 s on the 2-core machine.

    .venv/bin/python benchmarks/bench_analysis.py [--keep DIR] [--activity-ms 10000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--keep', metavar='DIR', help='write the run here and keep it')
    parser.add_argument('--activity-ms', type=float, default=10000.)
    parser.add_argument('--neurons-per-area', type=int, default=1290)
    parser.add_argument('--elephant-sample', type=int, default=2000)
    args = parser.parse_args()

    from mam_pynn.analysis import analyze_run
    from mam_pynn.analysis import statistics as st
    from mam_pynn.analysis.spikes import iter_areas, read_run_info, sample_neurons, spike_trains
    from mam_pynn.analysis.synthetic import default_layout, make_run_dir

    tmp = None
    if args.keep:
        run = Path(args.keep)
    else:
        tmp = tempfile.TemporaryDirectory(prefix='bench_analysis_')
        run = Path(tmp.name) / 'run'
    t_min = 500.
    t0 = time.perf_counter()
    make_run_dir(run, default_layout(args.neurons_per_area), t_sim=t_min + args.activity_ms, seed=0)
    t_make = time.perf_counter() - t0

    t0 = time.perf_counter()
    res = analyze_run(run, t_min=t_min, figures=False, force=True, verbose=False)
    t_stats = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = analyze_run(run, t_min=t_min, figures=True, force=True, verbose=False)
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    cached = analyze_run(run, t_min=t_min, verbose=False)
    t_cached = time.perf_counter() - t0
    assert cached['from_cache']

    # reference: Elephant per train vs columnar numpy, same data
    info = read_run_info(run)
    t0 = time.perf_counter()
    n_lvr = 0
    for _, pops in iter_areas(info, t_min):
        for ps in pops.values():
            st.lvr(ps.neuron, ps.times, ps.size, t_ref=info.t_ref)
            n_lvr += ps.size
    t_numpy_lvr = time.perf_counter() - t0  # includes reading and splitting the spikes
    from elephant.statistics import isi, lvr
    import quantities as pq
    _, pops = next(iter_areas(info, t_min))
    biggest = max(pops.values(), key=lambda p: p.size)
    sample = sample_neurons(biggest, args.elephant_sample, active_only=True)
    t0 = time.perf_counter()
    trains = spike_trains(biggest, sample)
    t_neo = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for tr in trains:
            if len(tr) >= 3:
                lvr(isi(tr), R=info.t_ref * pq.ms)
    t_el = time.perf_counter() - t0
    per_train = (t_neo + t_el) / max(len(trains), 1)

    net = {k: float('nan') if v is None else v for k, v in res['network'].items()}  # null: undefined
    print(f"run: {len(info.areas)} areas, {net['neurons']} neurons, {net['spikes']} spikes, "
          f"{args.activity_ms:g} ms analysed, mean rate {net['rate']:.2f} spikes/s")
    print(f"write synthetic run      {t_make:7.2f} s")
    print(f"statistics (no figures)  {t_stats:7.2f} s")
    print(f"full analysis + figures  {t_full:7.2f} s   (goal < 60 s)")
    print(f"cached rerun             {t_cached:7.2f} s")
    print(f"numpy LvR, all {n_lvr} neurons (with reading): {t_numpy_lvr:.2f} s")
    print(f"Elephant LvR on {len(trains)} Neo trains: {t_neo:.2f} s building + {t_el:.2f} s lvr "
          f"= {1e3 * per_train:.2f} ms/train -> {per_train * n_lvr:.1f} s extrapolated to all neurons "
          f"(ratio Elephant/numpy {per_train * n_lvr / t_numpy_lvr:.0f}x)")
    print(f"check: network LvR {net['lvr']:.3f}, CV {net['cv_isi']:.3f}, "
          f"FC vs fMRI r={res['functional_connectivity'].get('similarity_exp') or float('nan'):.3f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == '__main__':
    np.seterr(all='ignore')
    main()
