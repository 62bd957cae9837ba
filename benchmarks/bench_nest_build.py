"""mam_pynn on NEST versus a minimal direct-NEST builder of the same network.

The whole 32-area model at N_scaling = K_scaling = s (s = 0.01: 41,174 neurons and
2,409,156 synapses; 0.03: 123,774 and 21,710,024: the "neurons" and "synapses" of a
run's summary.json), simulated for 1 s with 1 and 2 threads, by three builders, each in
a separate subprocess so that peak memory (ru_maxrss) is clean:
  nest        the reference: upstream's construction written directly against NEST 3
              (every neuron connected to its area's spike_recorder with static_synapse);
  mam-before  mam_pynn as before issue 24 (NestBackend.legacy_recording: recorders
              created after the neurons, static_synapse);
  mam         mam_pynn as it is (nest_fast.RECORDER_SYNAPSE, recorders first).
Reports build time, simulation time and peak memory of each, the ratios to direct NEST
(goals: build <= 1.10x, simulation <= 1.02x, memory <= 1.0x at s = 0.01 and <= 0.9x at
s = 0.03) and whether mam and mam-before recorded identical spikes (senders and times).

    python benchmarks/bench_nest_build.py [--scaling 0.01 0.03] [--t-sim 1000]
                                          [--threads 1 2] [--builders nest mam-before mam]
                                          [--repeat 1] [--json FILE]

Both builders compute the Model first (not timed) and record the spikes of all
neurons; build time counts from the kernel reset to the last connection (as
upstream, after importing the simulator: ``import nest`` here, ``pyNN.nest`` in
mam_pynn, reported apart), simulation time is the state propagation alone. Wall-clock and CPU
times (``time.process_time``, all threads) are both reported: on a shared, loaded
machine the CPU times are the meaningful comparison. Runs go one at a time; before each,
the script waits (up to --wait-s) until the memory the planner predicts for the largest
builder (mam_pynn.hpc.plan, recording at static_synapse's cost) plus 1 GB is available.
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


def spikes_digest(area_spikes: dict) -> str:
    """SHA-256 of every area's (local id, time) pairs in (area, time, id) order."""
    import hashlib
    import numpy as np
    h = hashlib.sha256()
    for area in sorted(area_spikes):
        ids, times = (np.asarray(a) for a in area_spikes[area])
        order = np.lexsort((ids, times))
        h.update(area.encode())
        h.update(ids[order].astype(np.int64).tobytes())
        h.update(times[order].astype(np.float64).tobytes())
    return h.hexdigest()[:16]


def run_mam(scaling: float, t_sim: float, threads: int, seed: int, legacy: bool = False) -> dict:
    from mam_pynn.network.nest_fast import NestBackend
    from mam_pynn.simulation import Simulation
    NestBackend.legacy_recording = legacy
    M = model(scaling)
    sim = Simulation(M, {'t_sim': t_sim, 'local_num_threads': threads, 'rng_seed': seed})
    with tempfile.TemporaryDirectory() as tmp:
        s = sim.simulate(out_dir=os.path.join(tmp, 'run'), progress=False, figures=False)
    return {'build_s': s['build_s'], 'sim_s': s['sim_s'], 'peak_mb': s['peak_rss_sim_mb'],
            'build_cpu_s': s['build_cpu_s'], 'sim_cpu_s': s['sim_cpu_s'], 'import_s': s['import_s'],
            'neurons': s['neurons'], 'synapses': s['synapses'], 'spikes': s['spikes'],
            'digest': spikes_digest(sim.spikes)}


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


BUILDERS = ('nest', 'mam-before', 'mam')


def worker(args) -> None:
    if args.worker == 'nest':
        result = run_direct_nest(args.scaling[0], args.t_sim, args.threads[0], args.seed)
    else:
        result = run_mam(args.scaling[0], args.t_sim, args.threads[0], args.seed,
                         legacy=args.worker == 'mam-before')
    print('RESULT ' + json.dumps(result), flush=True)


def available_mb() -> float:
    with open('/proc/meminfo') as f:
        info = dict(line.split(':', 1) for line in f)
    return int(info['MemAvailable'].split()[0]) / 1024.


def needed_mb(scaling: float, threads: int) -> float:
    """The planner's peak for the legacy recording (the largest builder), plus 1 GB."""
    from mam_pynn.hpc import plan
    p = plan({'N_scaling': scaling, 'K_scaling': scaling, 'fullscale_rates': 'fullscale_rates.json'},
             {'local_num_threads': threads}, costs={'recorded_neuron_bytes': 32900.0})
    return p['peak_per_rank_mb'] + 1024.


def wait_for_memory(need_mb: float, wait_s: float) -> None:
    t0 = time.perf_counter()
    while available_mb() < need_mb:
        if time.perf_counter() - t0 > wait_s:
            raise SystemExit(f"bench_nest_build: {available_mb():.0f} MB available, {need_mb:.0f} MB "
                             f"needed; gave up after {wait_s:g} s (other jobs hold the memory)")
        print(f"waiting: {available_mb():.0f} MB available, {need_mb:.0f} MB needed", flush=True)
        time.sleep(30)


def spawn(kind: str, args, scaling: float, threads: int) -> dict:
    cmd = [sys.executable, __file__, '--worker', kind, '--threads', str(threads),
           '--t-sim', str(args.t_sim), '--scaling', str(scaling), '--seed', str(args.seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    for line in out.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[7:])
    raise RuntimeError(f"{kind} worker failed:\n{out.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--t-sim', type=float, default=1000.)
    ap.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--scaling', type=float, nargs='+', default=[0.01])
    ap.add_argument('--builders', nargs='+', choices=BUILDERS, default=list(BUILDERS))
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--repeat', type=int, default=1,
                    help='runs per builder and thread count, alternating; the minimum of each '
                         'measurement is reported (robust on a shared machine)')
    ap.add_argument('--timeout', type=float, default=1800.)
    ap.add_argument('--wait-s', type=float, default=3600.,
                    help='longest wait for enough free memory before a run')
    ap.add_argument('--json', help='also write the runs and ratios here')
    ap.add_argument('--worker', choices=BUILDERS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    header = (f"{'threads':>7} {'builder':>10} {'neurons':>8} {'synapses':>9} {'build s':>8} "
              f"{'sim s':>8} {'peak MB':>8} {'spikes':>8} {'build cpu':>9} {'sim cpu':>8} "
              f"{'import s':>8} {'digest':>16}")
    keys = ('build_s', 'sim_s', 'peak_mb', 'build_cpu_s', 'sim_cpu_s')
    report = {'command': ' '.join(['benchmarks/bench_nest_build.py'] + sys.argv[1:]),
              'cpus': os.cpu_count(), 't_sim_ms': args.t_sim, 'cases': []}
    for scaling in args.scaling:
        print(f"32 areas, N_scaling = K_scaling = {scaling}, t_sim = {args.t_sim:g} ms", flush=True)
        print(header)
        for threads in args.threads:
            need = needed_mb(scaling, threads)
            runs = {k: [] for k in args.builders}
            for _ in range(args.repeat):
                for kind in args.builders:
                    wait_for_memory(need, args.wait_s)
                    r = spawn(kind, args, scaling, threads)
                    runs[kind].append(r)
                    print(f"{threads:>7} {kind:>10} {r['neurons']:>8} {r['synapses']:>9} "
                          f"{r['build_s']:>8.2f} {r['sim_s']:>8.2f} {r['peak_mb']:>8.0f} "
                          f"{r['spikes']:>8} {r['build_cpu_s']:>9.2f} {r['sim_cpu_s']:>8.2f} "
                          f"{r['import_s']:>8.2f} {r.get('digest', ''):>16}", flush=True)
            best = {k: {m: min(r[m] for r in rs) for m in keys} for k, rs in runs.items()}
            case = {'scaling': scaling, 'threads': threads, 'runs': runs, 'ratios': {}}
            for kind in [k for k in args.builders if k != 'nest' and 'nest' in best]:
                ratio = {m: best[kind][m] / best['nest'][m] for m in keys}
                case['ratios'][kind] = ratio
                label = f"{kind}/nest" if args.repeat == 1 else f"{kind}/nest*"
                print(f"{threads:>7} {label:>10} {'':>8} {'':>9} {ratio['build_s']:>7.2f}x "
                      f"{ratio['sim_s']:>7.2f}x {ratio['peak_mb']:>7.2f}x {'':>8} "
                      f"{ratio['build_cpu_s']:>8.2f}x {ratio['sim_cpu_s']:>7.2f}x", flush=True)
            if 'mam' in runs and 'mam-before' in runs:
                digests = {r['digest'] for k in ('mam', 'mam-before') for r in runs[k]}
                case['spikes_identical'] = len(digests) == 1
                print(f"{threads:>7} spikes of mam and mam-before "
                      f"{'identical' if len(digests) == 1 else 'DIFFER'}", flush=True)
            report['cases'].append(case)
    if args.repeat > 1:
        print(f"*: of the minima over {args.repeat} runs each")
    print("goal: build <= 1.10x, sim <= 1.02x, memory <= 1.0x (s = 0.01) and <= 0.9x (s = 0.03) of "
          "direct NEST, spikes identical; CPU-time ratios are the robust ones on a shared machine")
    if args.json:
        from mam_pynn.io import atomic_write_json
        report['load_average_end'] = os.getloadavg()[0]
        atomic_write_json(args.json, report)


if __name__ == '__main__':
    main()
