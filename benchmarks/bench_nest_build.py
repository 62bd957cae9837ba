"""mam_pynn on NEST versus a minimal direct-NEST builder of the same network.

The whole 32-area model at N_scaling = K_scaling = 0.01 (41,174 neurons and
2,409,156 synapses: the "neurons" and "synapses" of a run's summary.json), simulated
for 1 s with 1 and 2 threads. Each run is a separate subprocess, so peak memory
(ru_maxrss) is clean. Reports build time, simulation time and peak memory of both,
and mam_pynn / direct-NEST ratios (goal: build <= 1.10x, simulation <= 1.02x,
memory <= 1.25x).

    python benchmarks/bench_nest_build.py [--t-sim 1000] [--threads 1 2] [--scaling 0.01]
                                          [--repeat 1]

Both builders compute the Model first (not timed) and record the spikes of all
neurons; build time counts from the kernel reset to the last connection (as
upstream, after importing the simulator: ``import nest`` here, ``pyNN.nest`` in
mam_pynn, reported apart), simulation time is the state propagation alone. Wall-clock and CPU
times (``time.process_time``, all threads) are both reported: on a shared, loaded
machine the CPU times are the meaningful comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def model(scaling: float):
    from mam_pynn.model import MultiAreaModel
    return MultiAreaModel({'N_scaling': scaling, 'K_scaling': scaling,
                           'fullscale_rates': 'fullscale_rates.json'})


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_mam(scaling: float, t_sim: float, threads: int, seed: int) -> dict:
    from mam_pynn.simulation import Simulation
    M = model(scaling)
    sim = Simulation(M, {'t_sim': t_sim, 'local_num_threads': threads, 'rng_seed': seed})
    with tempfile.TemporaryDirectory() as tmp:
        s = sim.simulate(out_dir=os.path.join(tmp, 'run'), progress=False)
    return {'build_s': s['build_s'], 'sim_s': s['sim_s'], 'peak_mb': s['peak_rss_sim_mb'],
            'build_cpu_s': s['build_cpu_s'], 'sim_cpu_s': s['sim_cpu_s'], 'import_s': s['import_s'],
            'neurons': s['neurons'], 'synapses': s['synapses'], 'spikes': s['spikes']}


def run_direct_nest(scaling: float, t_sim: float, threads: int, seed: int) -> dict:
    """Upstream's construction, written directly against NEST 3 (no PyNN, no mam_pynn.network)."""
    import numpy as np
    M = model(scaling)
    ti = time.perf_counter()
    import nest
    t_import = time.perf_counter() - ti
    p = M.params
    nrn, delays = p['neuron_params'], p['delay_params']
    rate_ext = p['input_params']['rate_ext']
    dt = 0.1
    t0, cpu0 = time.perf_counter(), time.process_time()
    nest.set_verbosity('M_ERROR')
    nest.ResetKernel()
    nest.SetKernelStatus({'resolution': dt, 'local_num_threads': threads, 'rng_seed': seed})
    nest.SetDefaults('iaf_psc_exp', nrn['single_neuron_dict'])
    rows = {name: i for i, name in enumerate(M.structure_vec)}
    gids = {}
    for area in M.area_list:
        for pop in M.structure[area]:
            i = rows[f'{area}-{pop}']
            nodes = nest.Create('iaf_psc_exp', int(M.N_vec[i]))
            nodes.set({'I_e': float(M.add_DC_drive[i]),
                       'V_m': nest.random.normal(nrn['V0_mean'], nrn['V0_sd'])})
            gids[(area, pop)] = nodes
    for area in M.area_list:
        for pop in M.structure[area]:
            i = rows[f'{area}-{pop}']
            pg = nest.Create('poisson_generator', params={'rate': rate_ext * M.K_matrix[i, -1]})
            nest.Connect(pg, gids[(area, pop)], syn_spec={'weight': M.W_matrix[i, -1]})
    recorders = {}
    for area in M.area_list:
        recorders[area] = nest.Create('spike_recorder')
        for pop in M.structure[area]:
            nest.Connect(gids[(area, pop)], recorders[area])
    for ta in M.area_list:
        for sa in M.area_list:
            for tp in M.structure[ta]:
                for sp in M.structure[sa]:
                    i, j = rows[f'{ta}-{tp}'], rows[f'{sa}-{sp}']
                    n = int(M.syn_matrix[i, j])
                    if n <= 0:
                        continue
                    if ta == sa:
                        d = delays['delay_e'] if 'E' in sp else delays['delay_i']
                    else:
                        d = M.distances[ta][sa] / delays['interarea_speed']
                    w_min, w_max = (0., np.inf) if M.W_matrix[i, j] > 0 else (-np.inf, 0.)
                    nest.Connect(gids[(sa, sp)], gids[(ta, tp)],
                                 {'rule': 'fixed_total_number', 'N': n},
                                 {'synapse_model': 'static_synapse',
                                  'weight': nest.math.redraw(
                                      nest.random.normal(M.W_matrix[i, j], M.W_sd_matrix[i, j]),
                                      min=w_min, max=w_max),
                                  'delay': nest.math.redraw(
                                      nest.random.normal(d, d * delays['delay_rel']),
                                      min=dt, max=np.inf)})
    t1, cpu1 = time.perf_counter(), time.process_time()
    nest.Simulate(t_sim)
    t2, cpu2 = time.perf_counter(), time.process_time()
    spikes = sum(int(r.n_events) for r in recorders.values())
    return {'build_s': t1 - t0, 'sim_s': t2 - t1, 'peak_mb': peak_mb(),
            'build_cpu_s': cpu1 - cpu0, 'sim_cpu_s': cpu2 - cpu1, 'import_s': t_import,
            'neurons': int(sum(int(n) for n in M.N_vec)),
            'synapses': int(np.floor(M.syn_matrix[:, :-1]).clip(0).sum()), 'spikes': spikes}


def worker(args) -> None:
    fn = run_mam if args.worker == 'mam' else run_direct_nest
    result = fn(args.scaling, args.t_sim, args.threads[0], args.seed)
    print('RESULT ' + json.dumps(result), flush=True)


def spawn(kind: str, args, threads: int) -> dict:
    cmd = [sys.executable, __file__, '--worker', kind, '--threads', str(threads),
           '--t-sim', str(args.t_sim), '--scaling', str(args.scaling), '--seed', str(args.seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    for line in out.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[7:])
    raise RuntimeError(f"{kind} worker failed:\n{out.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--t-sim', type=float, default=1000.)
    ap.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--scaling', type=float, default=0.01)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--repeat', type=int, default=1,
                    help='runs per builder and thread count, alternating; the minimum of each '
                         'measurement is reported (robust on a shared machine)')
    ap.add_argument('--timeout', type=float, default=1800.)
    ap.add_argument('--worker', choices=['mam', 'nest'], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    print(f"32 areas, N_scaling = K_scaling = {args.scaling}, t_sim = {args.t_sim:g} ms",
          flush=True)
    header = (f"{'threads':>7} {'builder':>8} {'neurons':>8} {'synapses':>9} {'build s':>8} "
              f"{'sim s':>8} {'peak MB':>8} {'spikes':>8} {'build cpu':>9} {'sim cpu':>8} {'import s':>8}")
    print(header)
    for threads in args.threads:
        runs = {'nest': [], 'mam': []}
        for _ in range(args.repeat):
            for kind in ('nest', 'mam'):
                r = spawn(kind, args, threads)
                runs[kind].append(r)
                print(f"{threads:>7} {kind:>8} {r['neurons']:>8} {r['synapses']:>9} "
                      f"{r['build_s']:>8.2f} {r['sim_s']:>8.2f} {r['peak_mb']:>8.0f} "
                      f"{r['spikes']:>8} {r['build_cpu_s']:>9.2f} {r['sim_cpu_s']:>8.2f} "
                      f"{r['import_s']:>8.2f}", flush=True)
        keys = ('build_s', 'sim_s', 'peak_mb', 'build_cpu_s', 'sim_cpu_s')
        best = {k: {m: min(r[m] for r in rs) for m in keys} for k, rs in runs.items()}
        ratio = {m: best['mam'][m] / best['nest'][m] for m in keys}
        label = 'ratio' if args.repeat == 1 else 'ratio*'
        print(f"{threads:>7} {label:>8} {'':>8} {'':>9} {ratio['build_s']:>7.2f}x "
              f"{ratio['sim_s']:>7.2f}x {ratio['peak_mb']:>7.2f}x {'':>8} "
              f"{ratio['build_cpu_s']:>8.2f}x {ratio['sim_cpu_s']:>7.2f}x", flush=True)
    if args.repeat > 1:
        print(f"ratio*: of the minima over {args.repeat} runs each")
    print("goal: build <= 1.10x, sim <= 1.02x, memory <= 1.25x of direct NEST; CPU-time "
          "ratios are the robust ones on a shared machine")


if __name__ == '__main__':
    main()
