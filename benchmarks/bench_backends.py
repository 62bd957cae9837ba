"""The same MAM subset on NEST, NEURON and Brian2: build time, simulation time, peak memory.

Each run is a fresh process through ``mam_pynn.simulation.Simulation`` (what
``mam simulate`` does), so imports, code generation and compilation count as they
would for a user. Ratios are against NEST measured in the same invocation.

``--cold`` first runs NEURON and Brian2 once with an empty compiled-code cache
(a temporary ``MAM_CACHE_DIR``) to show what the first run ever costs; the timed
runs that follow use the normal user cache, and a second warm run per backend
shows that no later run compiles anything.

    python benchmarks/bench_backends.py                      # V1+V2, N_scaling 0.004, 1 s
    python benchmarks/bench_backends.py --cold --t-sim 500
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BACKENDS = ('nest', 'neuron', 'brian2')
GOAL = 5.0   # NEURON and Brian2 within this factor of NEST

_RUN = """
import json, sys, time
t0 = time.perf_counter()
from mam_pynn.model import MultiAreaModel
from mam_pynn.simulation import Simulation
cfg, backend, run_dir = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
M = MultiAreaModel(cfg['network_params'])
s = Simulation(M, cfg['sim_params'], backend=backend).simulate(run_dir, progress=False)
s['process_s'] = time.perf_counter() - t0
print('RESULT' + json.dumps({k: s[k] for k in ('build_s', 'sim_s', 'rtf', 'peak_rss_mb', 'neurons',
                                               'synapses', 'mean_rate_hz', 'process_s')}))
"""


def config(args) -> dict:
    return {'network_params': {'N_scaling': args.n_scaling, 'K_scaling': args.k_scaling,
                               'fullscale_rates': 'fullscale_rates.json',
                               'connection_params': {'replace_non_simulated_areas': 'het_poisson_stat',
                                                     'replace_cc_input_source': 'fullscale_rates.json'}},
            'sim_params': {'t_sim': args.t_sim, 'areas_simulated': args.areas, 'rng_seed': 1,
                           'recording_dict': {'areas_recorded': args.areas}}}


def run(cfg: dict, backend: str, env: dict | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix='bench-') as tmp:
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, '-c', _RUN, json.dumps(cfg), backend, str(Path(tmp) / 'run')],
                             capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"{backend} run failed:\n{res.stderr[-3000:]}")
        out = json.loads([ln for ln in res.stdout.splitlines() if ln.startswith('RESULT')][-1][6:])
        out['wall_s'] = time.perf_counter() - t0
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--areas', nargs='+', default=['V1', 'V2'])
    ap.add_argument('--n-scaling', type=float, default=0.004)
    ap.add_argument('--k-scaling', type=float, default=0.01)
    ap.add_argument('--t-sim', type=float, default=1000.)
    ap.add_argument('--cold', action='store_true', help='also time a first run with an empty code cache')
    ap.add_argument('--repeats', type=int, default=2, help='warm runs per backend (the best is reported)')
    args = ap.parse_args(argv)
    cfg = config(args)
    say = lambda m: print(m, file=sys.stderr, flush=True)
    rows = {}
    if args.cold:
        with tempfile.TemporaryDirectory(prefix='mam-cold-cache-') as cache:
            env = dict(os.environ, MAM_CACHE_DIR=cache)
            for b in ('neuron', 'brian2'):
                say(f"{b}: first run with an empty code cache ...")
                rows[f'{b} (cold cache)'] = run(cfg, b, env)
    for b in BACKENDS:
        warm = []
        for k in range(args.repeats):
            say(f"{b}: warm run {k + 1}/{args.repeats} ...")
            warm.append(run(cfg, b))
        rows[b] = min(warm, key=lambda r: r['build_s'] + r['sim_s'])
        rows[b]['build_s_runs'] = [round(r['build_s'], 2) for r in warm]
    ref = rows['nest']
    print(f"\n{', '.join(args.areas)}: {ref['neurons']} neurons, {ref['synapses']} synapses, "
          f"N_scaling {args.n_scaling}, K_scaling {args.k_scaling}, {args.t_sim:g} ms, 1 thread\n")
    head = (f"{'backend':<22}{'build s':>9}{'sim s':>9}{'RTF':>8}{'peak MB':>9}{'process s':>11}"
            f"{'rate/s':>8}   {'build/NEST':>10}{'sim/NEST':>9}{'mem/NEST':>9}")
    print(head)
    print('-' * len(head))
    for name, r in rows.items():
        print(f"{name:<22}{r['build_s']:9.2f}{r['sim_s']:9.2f}{r['rtf']:8.2f}{r['peak_rss_mb']:9.0f}"
              f"{r['process_s']:11.2f}{r['mean_rate_hz']:8.2f}   {r['build_s'] / ref['build_s']:10.2f}"
              f"{r['sim_s'] / ref['sim_s']:9.2f}{r['peak_rss_mb'] / ref['peak_rss_mb']:9.2f}")
    print()
    for b in ('neuron', 'brian2'):
        total = (rows[b]['build_s'] + rows[b]['sim_s']) / (ref['build_s'] + ref['sim_s'])
        print(f"{b}: build+sim = {total:.2f} x NEST ({'within' if total <= GOAL else 'OUTSIDE'} the "
              f"{GOAL:g}x goal); warm build times {rows[b]['build_s_runs']} s (no compilation after the first run)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
