"""Distributed runs: memory planner, cluster job scripts, MPI run helpers.

- :func:`plan` predicts the peak memory of one NEST rank from the counts of the network
  a configuration builds (neurons, synapses, device connections, recorded spikes) and
  per-item costs measured here with NEST 3.10 (``hpc/calibrate_memory.py``), and the
  minimum number of nodes for a given memory per node.
- :func:`jobscript` writes a Slurm script that runs ``mam simulate`` over MPI ranks and
  OpenMP threads with pinning.
- :func:`run_distributed` runs one simulation under ``mpirun``: each rank writes its own
  part into ``RUN_DIR/ranks/<rank>/``; rank 0 then merges the parts (spikes streamed in
  time windows, nothing of size "all spikes" held at once) into the run directory of
  DESIGN.md, with per-phase times as the maximum over ranks and memory per rank.
"""
from __future__ import annotations

import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from .io import (atomic_path, atomic_write_json, atomic_write_text, mark_sorted_by_time,
                 sonata_file_attrs)
from .mpi import mpi_rank_size   # hpc.mpi_rank_size: patched by the tests
from .network.nest_fast import NEST_MAX_CONNECTIONS_PER_VP, min_virtual_processes

# --------------------------------------------------------------------------- memory model
#
# Peak resident memory of one rank (MB = 2**20 bytes) =
#     base + per_thread * T
#   + local neurons * (neuron + ring_slot * ring buffer slots)
#   + local recorded neurons * recorded_neuron
#   + local synapses (recurrent + device -> neuron) * synapse
#   + local neurons * target-table entries * target
#   + recorded spikes held on the rank * spike
# NEST places neurons round-robin over virtual processes and a synapse on the VP of its
# target, so a rank holds 1/P of neurons and synapses. Measured here with NEST 3.10:
# - the ring buffers of iaf_psc_exp cost ~32 bytes per neuron and delay slot
#   ((min_delay + max_delay) / dt slots; 10k neurons at 15 vs 385 slots);
# - a neuron connected to a spike_recorder costs ~33 kB: NEST keeps, per neuron, a
#   connector for its connections to devices, whose first block holds 1024 connections
#   (10k/20k recorded neurons: +330/+680 MB at Prepare). Recording fewer areas saves it.
# - a Target of the presynaptic table is one 64-bit word per (neuron, VP with targets).
# base, neuron, synapse and recorded-neuron costs: least squares over 10 real runs of
# 0.2-6 GB, 1 rank x 1 thread, NEST 3.10 wheel (hpc/calibrate_memory.py --fit; table in
# hpc/results/memory_calibration.json; every size within 2.2 %, leave-one-out within 4.5 % but
# for the smallest, base-only run: +15 %). Checked on 2 MPI ranks (within 7 %, low) and
# 2 threads (within 1 %): hpc/results/README.md. Not checkable here: P x T > 2, where
# MPI buffers and target tables across many VPs grow.
MEMORY_COSTS = {
    'base_mb': 207.0,            # Python, numpy, pyNN, NEST, mam_pynn, the model
    'per_thread_mb': 8.0,        # per OpenMP thread (NEST's per-thread containers)
    'neuron_bytes': 3600.0,      # node, per-neuron tables (one slot per synapse type)
    'ring_slot_bytes': 32.0,     # per neuron and delay slot (measured)
    'recorded_neuron_bytes': 32900.0,   # connector to the spike recorder (measured)
    'synapse_bytes': 40.3,       # static_synapse with weight and delay + source table
    'target_bytes': 8.0,         # one Target word (NEST source)
    'spike_bytes': 80.0,         # recorder event in NEST + the copies made when written
}
USABLE_FRACTION = 0.9            # of a node's memory, for the OS and MPI buffers
MAX_DELAY_SIGMAS = None          # None: sqrt(2 ln n) standard deviations (max of n normals)


NEST_MPI_VERSION = '3.10.0'


def nest_mpi_prefix() -> Path:
    """Where hpc/build_nest_mpi.sh installs NEST with MPI: $MAM_NEST_PREFIX, else
    nest-<version>-mpi in the package's cache folder (the scripts use the same rule)."""
    from .connectivity import cache_dir
    env = os.environ.get('MAM_NEST_PREFIX')
    return Path(env) if env else cache_dir() / f'nest-{NEST_MPI_VERSION}-mpi'


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def expected_max_delay_ms(projections, dt: float, fixed_delays=()) -> float:
    """Largest delay NEST will see: the maximum of each projection's n normal draws
    and of the fixed delays (inputs).

    Delays are normal (mean, sd), redrawn below dt; the maximum of n draws lies about
    sqrt(2 ln n) standard deviations above the mean.
    """
    best = max([dt] + [float(d) for d in fixed_delays])
    for p in projections:
        if p.delay_sd_ms > 0 and p.n > 1:
            k = MAX_DELAY_SIGMAS if MAX_DELAY_SIGMAS is not None else math.sqrt(2 * math.log(p.n))
            best = max(best, p.delay_mean_ms + k * p.delay_sd_ms)
        else:
            best = max(best, p.delay_mean_ms)
    return float(best)


def expected_rate_hz(M, areas) -> float:
    """Neuron-weighted mean of the data's full-scale rates, 10 spikes/s without them."""
    try:
        from .data import data_file
        rates = json.loads(data_file('fullscale_rates.json').read_text())
    except Exception:   # no data file: a typical cortical rate
        return 10.0
    total = weight = 0.0
    for name, n in zip(M.structure_vec, np.asarray(M.N_vec, float)):
        area, pop = name.split('-', 1)
        if area in areas and pop in rates.get(area, {}):
            total += float(rates[area][pop]) * n
            weight += n
    return total / weight if weight else 10.0


def network_counts(network_params: dict | None = None, sim_params: dict | None = None,
                   rate_hz: float | None = None) -> dict:
    """Neurons, synapses, devices and delays of the network a configuration builds.

    ``rate_hz``: the mean rate assumed for the recorded spikes (default: the data's
    full-scale rates, see :func:`expected_rate_hz`).
    """
    from .model import MultiAreaModel
    from .network.plan import make_plan
    from .params import resolve, sim_defaults
    sp = resolve(sim_params or {}, sim_defaults())
    M = MultiAreaModel(network_params or {})
    net = make_plan(M, sp)
    rec = sp['recording_dict']
    recorded = [a for a in net.areas if a in set(rec['areas_recorded'])]
    size = {p.key: p.size for p in net.populations}
    recorded_neurons = sum(p.size for p in net.populations if p.area in recorded)
    device_conns = sum(size[s.target] for s in net.poisson) + sum(size[s.target] for s in net.currents)
    start = float(rec['spike_dict'].get('start', 0.))
    window_s = max(float(sp['t_sim']) - start, 0.) / 1000.
    rate = expected_rate_hz(M, net.areas) if rate_hz is None else float(rate_hz)
    if not rate >= 0:
        raise ValueError(f"rate_hz must be >= 0, got {rate_hz!r}")
    max_delay = expected_max_delay_ms(net.projections, net.dt, [s.delay_ms for s in net.poisson])
    min_delay = min([max(p.delay_mean_ms, net.dt) if p.delay_sd_ms <= 0 else net.dt
                     for p in net.projections] + [1.0])
    out_degree = net.n_synapses / net.n_neurons if net.n_neurons else 0.0
    return {
        'label': M.label,
        'areas': list(net.areas),
        'neurons': int(net.n_neurons),
        'synapses': int(net.n_synapses),
        'device_connections': int(device_conns),
        'recorder_connections': int(recorded_neurons),
        'devices': len(net.poisson) + len(net.currents) + len(recorded),
        'recorded_neurons': int(recorded_neurons),
        'mean_out_degree': float(out_degree),
        'dt_ms': float(net.dt),
        'max_delay_ms': max_delay,
        'ring_buffer_slots': int(math.ceil((max_delay + min_delay) / net.dt)),
        'expected_rate_hz': float(rate),
        'expected_spikes': float(recorded_neurons * rate * window_s),
        't_sim_ms': float(sp['t_sim']),
        'num_processes': int(sp['num_processes']),
        'threads': int(sp['local_num_threads']),
    }


def rank_memory_mb(counts: dict, processes: int, threads: int, costs: dict | None = None) -> dict:
    """Predicted peak memory of one of ``processes`` ranks, by item (MB)."""
    c = {**MEMORY_COSTS, **(costs or {})}
    P, T = _positive_int(processes, 'processes'), _positive_int(threads, 'threads')
    vps = P * T
    n_local = counts['neurons'] / P
    syn_local = (counts['synapses'] + counts['device_connections']) / P
    # a neuron's targets spread over the VPs: expected number of VPs holding >= 1 of them
    k = counts['mean_out_degree']
    entries = vps * (1.0 - math.exp(-k / vps)) if k > 0 else 0.0
    MB = 2.0 ** 20
    parts = {
        'base': c['base_mb'],
        'threads': c['per_thread_mb'] * T,
        'neurons': n_local * c['neuron_bytes'] / MB,
        'ring_buffers': n_local * c['ring_slot_bytes'] * counts['ring_buffer_slots'] / MB,
        'recording': counts['recorded_neurons'] / P * c['recorded_neuron_bytes'] / MB,
        'synapses': syn_local * c['synapse_bytes'] / MB,
        'target_table': n_local * entries * c['target_bytes'] / MB,
        'spikes': counts['expected_spikes'] / P * c['spike_bytes'] / MB,
    }
    parts['total'] = sum(parts.values())
    return parts


def min_nodes(counts: dict, memory_per_node_gb: float, ranks_per_node: int = 1,
              threads: int = 1, costs: dict | None = None, max_nodes: int = 1 << 20) -> int | None:
    """Fewest nodes whose ranks each fit into their share of a node's usable memory."""
    if not memory_per_node_gb or memory_per_node_gb <= 0:
        raise ValueError(f"memory_per_node_gb must be > 0, got {memory_per_node_gb!r}")
    R = _positive_int(ranks_per_node, 'ranks_per_node')
    budget_mb = memory_per_node_gb * 1024.0 * USABLE_FRACTION / R

    def fits(n):
        return rank_memory_mb(counts, n * R, threads, costs)['total'] <= budget_mb

    if not fits(max_nodes):
        return None
    lo, hi = 1, 1
    while not fits(hi):     # memory per rank falls with the rank count: double, then bisect
        lo, hi = hi + 1, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def plan(network_params: dict | None = None, sim_params: dict | None = None,
         memory_per_node_gb: float | None = None, ranks_per_node: int = 1,
         costs: dict | None = None, rate_hz: float | None = None) -> dict:
    """Counts, predicted peak memory per rank for the configured ranks x threads, and
    (with ``memory_per_node_gb``) the minimum nodes at ``ranks_per_node`` ranks each.

    ``costs`` overrides entries of ``MEMORY_COSTS``; ``rate_hz`` the assumed mean rate
    of the recorded neurons. Returns a JSON-able dict; :func:`plan_text` formats it.
    """
    counts = network_counts(network_params, sim_params, rate_hz)
    P, T = counts['num_processes'], counts['threads']
    per_rank = rank_memory_mb(counts, P, T, costs)
    result = {**counts, 'memory_costs': {**MEMORY_COSTS, **(costs or {})},
              'per_rank_mb': per_rank, 'peak_per_rank_mb': per_rank['total'],
              'peak_total_gb': per_rank['total'] * P / 1024.0,
              'memory_per_node_gb': memory_per_node_gb, 'ranks_per_node': int(ranks_per_node),
              'usable_fraction': USABLE_FRACTION, 'min_nodes': None, 'fits': None,
              'min_virtual_processes': min_virtual_processes(counts['synapses'])}
    if memory_per_node_gb is not None:
        n = min_nodes(counts, memory_per_node_gb, ranks_per_node, T, costs)
        result['min_nodes'] = n
        budget = memory_per_node_gb * 1024.0 * USABLE_FRACTION / ranks_per_node
        result['fits'] = bool(per_rank['total'] <= budget)
        if n is not None:
            result['per_rank_mb_at_min_nodes'] = rank_memory_mb(counts, n * ranks_per_node, T,
                                                                costs)['total']
    return result


def largest_scale(memory_gb: float, network_params: dict | None = None,
                  sim_params: dict | None = None, lo: float = 1e-3, hi: float = 1.0,
                  steps: int = 12, rate_hz: float | None = None) -> dict:
    """Largest ``s`` with ``N_scaling = K_scaling = s`` (times the given scalings) whose
    predicted peak per rank fits ``memory_gb`` x ``USABLE_FRACTION``: bisection in log s.

    Returns the plan of that configuration with ``scale`` added, or raises ValueError when
    even ``lo`` does not fit. Down-scaling needs ``fullscale_rates`` (set when missing).
    """
    base = dict(network_params or {})
    base.setdefault('fullscale_rates', 'fullscale_rates.json')
    budget_mb = memory_gb * 1024.0 * USABLE_FRACTION

    def at(scale):
        net = {**base, 'N_scaling': base.get('N_scaling', 1.0) * scale,
               'K_scaling': base.get('K_scaling', 1.0) * scale}
        return net, plan(net, sim_params, rate_hz=rate_hz)

    net, p_lo = at(lo)
    if p_lo['peak_per_rank_mb'] > budget_mb:
        raise ValueError(f"even scale {lo:g} needs {p_lo['peak_per_rank_mb']:.0f} MB per rank, "
                         f"more than {budget_mb:.0f} MB")
    net, p_hi = at(hi)
    if p_hi['peak_per_rank_mb'] <= budget_mb:
        return {**p_hi, 'scale': hi, 'network_params': net}
    best = (lo, *at(lo))
    a, b = math.log(lo), math.log(hi)
    for _ in range(steps):
        mid = math.exp((a + b) / 2)
        net, p = at(mid)
        if p['peak_per_rank_mb'] <= budget_mb:
            a, best = math.log(mid), (mid, net, p)
        else:
            b = math.log(mid)
    scale, net, p = best
    return {**p, 'scale': scale, 'network_params': net}


def plan_text(result: dict) -> str:
    """Human-readable plan; the last line is the one-line summary."""
    r = result
    lines = [
        f"model {r['label']}: {len(r['areas'])} areas, {r['neurons']:,} neurons, "
        f"{r['synapses']:,} synapses, {r['device_connections']:,} input connections, "
        f"{r['devices']} devices",
        f"delays up to ~{r['max_delay_ms']:.1f} ms -> {r['ring_buffer_slots']} ring-buffer slots; "
        f"~{r['expected_spikes']:,.0f} recorded spikes expected "
        f"({r['expected_rate_hz']:.1f} spikes/s for {r['t_sim_ms']:g} ms)",
        f"per rank at {r['num_processes']} rank(s) x {r['threads']} thread(s):",
    ]
    for k, v in r['per_rank_mb'].items():
        if k != 'total':
            lines.append(f"  {k:<13} {v:>12,.0f} MB")
    summary = (f"plan: peak {r['peak_per_rank_mb']:,.0f} MB per rank x {r['num_processes']} "
               f"= {r['peak_total_gb']:,.2f} GB")
    if r.get('memory_per_node_gb') is not None:
        if r['min_nodes'] is None:
            summary += f"; does not fit any number of {r['memory_per_node_gb']:g} GB nodes"
        else:
            summary += (f"; needs >= {r['min_nodes']} node(s) of {r['memory_per_node_gb']:g} GB "
                        f"at {r['ranks_per_node']} rank(s)/node "
                        f"({r['per_rank_mb_at_min_nodes']:,.0f} MB per rank there)")
    if r['num_processes'] * r['threads'] < r['min_virtual_processes']:
        lines.append(f"WARNING: NEST holds at most {NEST_MAX_CONNECTIONS_PER_VP:,} connections per "
                     f"virtual process: use >= {r['min_virtual_processes']} ranks x threads "
                     f"(configured: {r['num_processes']} x {r['threads']})")
    lines.append(summary)
    return '\n'.join(lines)


# --------------------------------------------------------------------------- job scripts

SLURM_TEMPLATE = """\
#!/bin/bash
#SBATCH --job-name={job_name}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node={ranks_per_node}
#SBATCH --cpus-per-task={threads}
#SBATCH --time={time}
#SBATCH --output={job_name}-%j.out
#SBATCH --exclusive
{sbatch_extra}\
# generated by `mam jobscript` (mam_pynn.hpc.jobscript):
# {nodes} node(s) x {ranks_per_node} MPI rank(s) x {threads} thread(s) = {ranks} rank(s)
set -euo pipefail
{module_lines}{setup}\
# one OpenMP thread per core of the task, kept on its core; srun passes the cores on
export OMP_NUM_THREADS={threads}
export OMP_PROC_BIND=close
export OMP_PLACES=cores
export SRUN_CPUS_PER_TASK={threads}

{launcher} {mam} simulate --config {config} --out {out_dir} \\
    --set sim_params.num_processes={ranks} --set sim_params.local_num_threads={threads}{extra_args}
"""

LAUNCHERS = {
    'srun': 'srun --cpu-bind=cores --distribution=block:block',
    'mpirun': 'mpirun -n {ranks} --bind-to core --map-by ppr:{ranks_per_node}:node:pe={threads}',  # Open MPI
    'mpiexec': 'mpiexec -n {ranks} -ppn {ranks_per_node} -bind-to core:{threads}',             # MPICH
}

JOB_DEFAULTS = {
    'job_name': 'mam',
    'account': None,            # -> #SBATCH --account
    'partition': None,          # -> #SBATCH --partition
    'time': '01:00:00',
    'modules': (),              # e.g. ('Stages/2025', 'GCC', 'ParaStationMPI', 'NEST')
    'setup': '',                # extra shell lines, e.g. 'source hpc/env.sh'
    'launcher': 'srun',         # a LAUNCHERS key or a command prefix ({ranks} etc. filled in)
    'mam': 'mam',               # the command (e.g. 'python -m mam_pynn.cli')
    'memory': None,             # -> #SBATCH --mem (e.g. '0' for all of the node)
    'extra_args': '',           # appended to `mam simulate`
}


def jobscript(config_path, nodes: int, ranks_per_node: int, threads: int,
              scheduler: str = 'slurm', out_dir=None, **template_vars) -> str:
    """A ready job script running ``mam simulate --config config_path`` on
    ``nodes`` x ``ranks_per_node`` MPI ranks with ``threads`` OpenMP threads each.

    ``template_vars`` (see ``JOB_DEFAULTS``): job_name, account, partition, time,
    modules, setup, launcher, mam, memory, extra_args. ``out_dir`` defaults to
    ``runs/<config stem>_<nodes>n<ranks>r<threads>t``.
    """
    if scheduler != 'slurm':
        raise ValueError(f"unknown scheduler {scheduler!r}; supported: slurm")
    nodes = _positive_int(nodes, 'nodes')
    ranks_per_node = _positive_int(ranks_per_node, 'ranks_per_node')
    threads = _positive_int(threads, 'threads')
    unknown = set(template_vars) - set(JOB_DEFAULTS)
    if unknown:
        raise KeyError(f"unknown job script variable {sorted(unknown)[0]!r}; "
                       f"valid: {', '.join(JOB_DEFAULTS)}")
    v = {**JOB_DEFAULTS, **template_vars}
    if config_path is None:
        raise ValueError("a job script needs a config file (--config FILE) to run")
    config = Path(config_path)
    if not config.is_file():
        raise FileNotFoundError(f"config file {config} does not exist")
    if out_dir is None:
        out_dir = Path('runs') / f"{config.stem}_{nodes}n{ranks_per_node}r{threads}t"
    ranks = nodes * ranks_per_node
    modules = v['modules']
    if isinstance(modules, str):
        modules = modules.split()
    extra = [f"#SBATCH --account={v['account']}"] if v['account'] else []
    if v['partition']:
        extra.append(f"#SBATCH --partition={v['partition']}")
    if v['memory'] is not None:
        extra.append(f"#SBATCH --mem={v['memory']}")
    launcher = LAUNCHERS.get(v['launcher'], v['launcher']).format(
        ranks=ranks, ranks_per_node=ranks_per_node, threads=threads)
    return SLURM_TEMPLATE.format(
        job_name=v['job_name'], nodes=nodes, ranks_per_node=ranks_per_node, threads=threads,
        ranks=ranks, time=v['time'], sbatch_extra=''.join(f"{x}\n" for x in extra),
        module_lines=''.join(f"{x}\n" for x in ['module purge'] + [f"module load {m}" for m in modules])
        if modules else '',
        setup=f"{v['setup']}\n" if v['setup'] else '', launcher=launcher, mam=v['mam'],
        config=shlex.quote(str(config.resolve())), out_dir=shlex.quote(str(out_dir)),
        extra_args=f" {v['extra_args']}" if v['extra_args'] else '')


# --------------------------------------------------------------------------- MPI runs

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
    from .simulation import check_run_dir
    rank, size = mpi_rank_size()
    out_dir = Path(out_dir)
    def write_kernel(d):
        atomic_write_json(Path(d) / 'nest_kernel.json', nest_kernel_info())
    kernel = write_kernel if simulation.backend.startswith('nest') else None
    if size == 1:
        return simulation.simulate(out_dir, before_summary=kernel)
    # the ranks create ranks/<r>/ concurrently: each checks its own part in simulate()
    check_run_dir(out_dir, ignore=('ranks',))
    if kernel is not None:
        check_nest_mpi(size)
    summary = simulation.simulate(rank_dir(out_dir, rank), progress=(rank == 0), figures=False,
                                  before_summary=kernel)
    if rank != 0:
        return summary
    return merge_run(out_dir, size, timeout_s=timeout_s)


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
        with atomic_path(out_path) as tmp, h5py.File(tmp, 'w') as out:
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
    from .simulation import mean_rate_hz, real_time_factor
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
    from .simulation import draw_raster, publish_summary, summary_line
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
    from .config import load_config
    from .model import MultiAreaModel
    ap = argparse.ArgumentParser(prog='python -m mam_pynn.hpc', description=main.__doc__)
    ap.add_argument('--config')
    ap.add_argument('--set', action='append', default=[], dest='overrides')
    ap.add_argument('--backend')
    ap.add_argument('--out', required=True)
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    backend = args.backend or cfg.get('backend', 'nest')
    M = MultiAreaModel(cfg.get('network_params', {}), simulation=True,
                       sim_spec=cfg.get('sim_params', {}), backend=backend)
    summary = run_distributed(M.simulation, args.out)
    return 3 if summary.get('watchdog_stopped') else 0


if __name__ == '__main__':
    sys.exit(main())
