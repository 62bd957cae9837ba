#!/usr/bin/env python
"""Measure the peak memory of real `mam simulate` runs and fit the planner's per-item costs.

Each size runs in a fresh process (optionally under `mpirun -n P`) through the real path
(MultiAreaModel -> Simulation on NEST); its peak RSS per rank is compared with
`mam_pynn.hpc.rank_memory_mb`. With --fit, base/neuron/synapse costs are fitted by least
squares (ring-buffer and target-table costs fixed from NEST's source) and printed in the
form of `mam_pynn.hpc.MEMORY_COSTS`; the table and fit go to --out (JSON).

    .venv/bin/python hpc/calibrate_memory.py --fit --out hpc/results/memory_calibration.json
    .venv/bin/python hpc/calibrate_memory.py --loo hpc/results/memory_calibration.json   # no runs

--loo FILE refits the rows of an earlier --out file (counts recomputed with today's code),
once with all rows and once without each row, and prints the errors (the leave-one-out
column of hpc/results/memory_calibration.md); it runs no simulation.
    source hpc/env.sh && python hpc/calibrate_memory.py --ranks 2 --out hpc/memory_check_2ranks.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOWN = {'fullscale_rates': 'fullscale_rates.json',
        'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}}

# name: (areas or None for all, N_scaling, K_scaling, areas recorded or None for all);
# chosen to vary neurons, recorded neurons, synapses, input connections and delay slots
# independently, all below ~3.5 GB.
SIZES = {
    'tiny_V1':        (['V1'], 0.002, 0.002, None),
    'V1_neurons':     (['V1'], 0.3, 0.01, None),
    'V1_synapses':    (['V1'], 0.2, 0.5, None),
    'V1V2':           (['V1', 'V2'], 0.05, 0.1, None),
    'all_1pc':        (None, 0.01, 0.01, None),
    'all_neurons':    (None, 0.03, 0.003, None),
    'all_synapses':   (None, 0.02, 0.05, None),
    'V1_neurons_norec': (['V1'], 0.3, 0.01, ['V2']),
    'all_neurons_rec_V1': (None, 0.03, 0.003, ['V1']),
    'V1_synapses_norec': (['V1'], 0.2, 0.5, ['V2']),
}


def config_of(name: str, t_sim: float, ranks: int, threads: int) -> tuple[dict, dict]:
    areas, n, k, recorded = SIZES[name]
    net = {**DOWN, 'N_scaling': n, 'K_scaling': k}
    sim = {'t_sim': t_sim, 'num_processes': ranks, 'local_num_threads': threads}
    if areas:
        sim['areas_simulated'] = areas
    if recorded:
        sim['recording_dict'] = {'areas_recorded': recorded}
    return net, sim


def worker(spec: str) -> None:
    """One run (on every rank when under mpirun); rank 0 prints one JSON line."""
    s = json.loads(spec)
    from mam_pynn.hpc import mpi_rank_size, run_distributed
    from mam_pynn.model import MultiAreaModel
    M = MultiAreaModel(s['net'], simulation=True, sim_spec=s['sim'], backend='nest')
    summary = run_distributed(M.simulation, s['out'])
    import nest
    kernel = nest.GetKernelStatus(['max_delay', 'min_delay'])
    rank, _ = mpi_rank_size()
    if rank == 0:
        print('RESULT ' + json.dumps({'summary': summary, 'max_delay': kernel[0],
                                      'min_delay': kernel[1]}), flush=True)


def run_size(name: str, args) -> dict:
    from mam_pynn.hpc import network_counts, rank_memory_mb
    net, sim = config_of(name, args.t_sim, args.ranks, args.threads)
    counts = network_counts(net, sim)
    with tempfile.TemporaryDirectory(prefix='mam_mem_') as tmp:
        spec = json.dumps({'net': net, 'sim': sim, 'out': str(Path(tmp) / 'run')})
        cmd = [sys.executable, __file__, '--worker', spec]
        if args.ranks > 1:
            cmd = [args.mpirun, '-n', str(args.ranks)] + cmd
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        wall = time.perf_counter() - t0
    lines = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{name}: run failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(lines[-1][7:])
    s = res['summary']
    per_rank = s.get('peak_rss_mb_per_rank', [s['peak_rss_mb']])
    pred = rank_memory_mb(counts, args.ranks, args.threads)
    return {'name': name, 'net': net, 'sim': sim, 'counts': counts, 'wall_s': wall,
            'measured_peak_mb_per_rank': per_rank, 'measured_peak_mb': max(per_rank),
            'nest_max_delay_ms': res['max_delay'], 'nest_min_delay_ms': res['min_delay'],
            'predicted_mb': pred, 'build_s': s['build_s'], 'sim_s': s['sim_s'],
            'spikes': s['spikes']}


FITTED = ('base_mb', 'neuron_bytes', 'synapse_bytes', 'recorded_neuron_bytes')


def fit(rows: list[dict]) -> dict:
    """Least-squares costs of FITTED (relative errors weighted equally), others fixed."""
    import numpy as np
    from mam_pynn.hpc import rank_memory_mb
    zero = {k: 0.0 for k in FITTED}
    A, b = [], []
    for r in rows:
        c, P, T = r['counts'], r['sim']['num_processes'], r['sim']['local_num_threads']
        rest = rank_memory_mb(c, P, T, zero)['total']
        cols = []
        for k in FITTED:   # the model is linear in each cost: its column is the unit response
            cols.append(rank_memory_mb(c, P, T, {**zero, k: 1.0})['total'] - rest)
        A.append(cols)
        b.append(r['measured_peak_mb'] - rest)
    w = 1.0 / np.array([r['measured_peak_mb'] for r in rows])
    x, *_ = np.linalg.lstsq(np.array(A) * w[:, None], np.array(b) * w, rcond=None)
    return dict(zip(FITTED, (float(v) for v in x)))


def leave_one_out(rows: list[dict]) -> list[dict]:
    """Per row: measured, predicted with MEMORY_COSTS (the rounded fit), by the fit on
    all rows, and by the fit without that row."""
    from mam_pynn.hpc import rank_memory_mb
    full = fit(rows)
    out = []
    for i, r in enumerate(rows):
        P, T = r['sim']['num_processes'], r['sim']['local_num_threads']
        left_out = fit(rows[:i] + rows[i + 1:])
        out.append({'name': r['name'], 'measured_mb': r['measured_peak_mb'],
                    'memory_costs_mb': rank_memory_mb(r['counts'], P, T)['total'],
                    'fit_mb': rank_memory_mb(r['counts'], P, T, full)['total'],
                    'loo_mb': rank_memory_mb(r['counts'], P, T, left_out)['total']})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--worker', help=argparse.SUPPRESS)
    ap.add_argument('--sizes', default=','.join(SIZES), help='comma-separated subset of: ' + ', '.join(SIZES))
    ap.add_argument('--ranks', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--t-sim', type=float, default=100.)
    ap.add_argument('--mpirun', default=str(Path(sys.executable).parent / 'mpirun'))
    ap.add_argument('--timeout', type=float, default=900.)
    ap.add_argument('--fit', action='store_true', help='fit base, neuron and synapse costs')
    ap.add_argument('--out', help='write the table (and fit) as JSON here')
    ap.add_argument('--add', action='append', default=[], metavar='JSON',
                    help='also use the rows of an earlier --out file (same ranks x threads)')
    ap.add_argument('--loo', metavar='JSON', help='leave-one-out errors of the fit to the rows of '
                    'an earlier --out file (no simulation); --out writes them as JSON')
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    from mam_pynn.hpc import network_counts, rank_memory_mb
    if args.loo:
        rows = json.loads(Path(args.loo).read_text())['rows']
        if len(rows) < 5:
            ap.error(f"{args.loo}: leave-one-out needs at least 5 rows for 4 fitted costs, got {len(rows)}")
        for r in rows:
            r['counts'] = network_counts(r['net'], r['sim'])   # with today's count fields
        loo = leave_one_out(rows)
        print('| size | measured MB | MEMORY_COSTS MB | error | fit on all MB | error | left out MB | error |')
        print('| --- |' + ' ---: |' * 7)
        for r in loo:
            for k in ('memory_costs', 'fit', 'loo'):
                r[f'{k}_error'] = r[f'{k}_mb'] / r['measured_mb'] - 1
            print(f"| {r['name']} | {r['measured_mb']:,.0f} | " + ' | '.join(
                f"{r[f'{k}_mb']:,.0f} | {100 * r[f'{k}_error']:+.1f}%" for k in ('memory_costs', 'fit', 'loo'))
                + ' |')
        print('max |error|: ' + ', '.join(f"{label} {100 * max(abs(r[f'{k}_error']) for r in loo):.1f}%"
                                          for k, label in (('memory_costs', 'MEMORY_COSTS'),
                                                           ('fit', 'fit on all'), ('loo', 'left out'))))
        if args.out:
            from mam_pynn.io import atomic_write_json
            atomic_write_json(args.out, {'source': args.loo, 'fit': fit(rows), 'rows': loo})
        return 0
    rows = []
    for path in args.add:
        for r in json.loads(Path(path).read_text())['rows']:
            r['counts'] = network_counts(r['net'], r['sim'])   # with today's count fields
            r['predicted_mb'] = rank_memory_mb(r['counts'], args.ranks, args.threads)
            rows.append(r)
    names = [s for s in args.sizes.split(',') if s]
    for k, name in enumerate(names, 1):
        if name not in SIZES:
            ap.error(f"unknown size {name!r}; valid: {', '.join(SIZES)}")
        r = run_size(name, args)
        rows.append(r)
        c = r['counts']
        print(f"[{k}/{len(names)}] {name}: {c['neurons']} neurons, {c['synapses']} synapses, "
              f"{c['device_connections']} input conns, slots {c['ring_buffer_slots']} "
              f"(NEST max delay {r['nest_max_delay_ms']:.2f} ms vs planned {c['max_delay_ms']:.2f}): "
              f"measured {r['measured_peak_mb']:.0f} MB, predicted {r['predicted_mb']['total']:.0f} MB",
              file=sys.stderr, flush=True)
    result = {'ranks': args.ranks, 'threads': args.threads, 't_sim_ms': args.t_sim, 'rows': rows}
    if args.fit and len(rows) >= 3:
        costs = fit(rows)
        result['fit'] = costs
        print('fitted costs: ' + json.dumps(costs), file=sys.stderr)
        for r in rows:
            r['refit_predicted_mb'] = rank_memory_mb(r['counts'], args.ranks, args.threads, costs)['total']
    key = 'refit_predicted_mb' if 'fit' in result else None
    errs = []
    for r in rows:
        pred = r[key] if key else r['predicted_mb']['total']
        errs.append(pred / r['measured_peak_mb'] - 1)
    result['max_abs_rel_error'] = max(abs(e) for e in errs) if errs else None
    if args.out:
        from mam_pynn.io import atomic_write_json
        atomic_write_json(args.out, result)
    print(f"calibration: {len(rows)} sizes at {args.ranks} rank(s) x {args.threads} thread(s); "
          f"max |prediction/measured - 1| = {100 * result['max_abs_rel_error']:.1f}%"
          + (f"; fit {json.dumps({k: round(v, 1) for k, v in result['fit'].items()})}" if 'fit' in result else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
