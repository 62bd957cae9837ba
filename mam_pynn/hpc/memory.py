"""Memory planner: the peak memory of one NEST rank and the nodes a run needs.

:func:`plan` predicts the peak memory of one rank from the counts of the network a
configuration builds (neurons, synapses, device connections, recorded spikes) and per-item
costs measured here with NEST 3.10 (``hpc/calibrate_memory.py``), and the minimum number
of nodes for a given memory per node. Reads the model, writes nothing.
"""
from __future__ import annotations

import json
import math

import numpy as np

from ..network.nest_fast import NEST_MAX_CONNECTIONS_PER_VP, min_virtual_processes


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
# - a neuron connected to a spike_recorder costs 1024 x the synapse's size + ~0.8 kB: NEST
#   keeps, per neuron, a connector for its connections to devices, whose first block holds
#   1024 connections: ~33 kB with static_synapse (10k/20k recorded neurons: +330/+680 MB
#   at Prepare), ~9 kB with the static_synapse_hom_w_hpc the NEST fast path uses
#   (nest_fast.RECORDER_SYNAPSE; the fit gives 9.1 kB). Recording fewer areas saves it.
# - a Target of the presynaptic table is one 64-bit word per (neuron, VP with targets).
# base, neuron, synapse and recorded-neuron costs: least squares over 10 real runs of
# 0.2-3.3 GB, 1 rank x 1 thread, NEST 3.10 wheel, recording as built since issue 24
# (hpc/calibrate_memory.py --fit; table in hpc/results/memory_calibration.json; every size
# within 5.7 %, leave-one-out within 6.8 %). Checked, with the recording of before issue 24,
# on 2 MPI ranks (within 7 %, low) and 2 threads (within 1 %): hpc/results/README.md. Not
# checkable here: P x T > 2, where MPI buffers and target tables across many VPs grow.
MEMORY_COSTS = {
    'base_mb': 203.0,            # Python, numpy, pyNN, NEST, mam_pynn, the model
    'per_thread_mb': 8.0,        # per OpenMP thread (NEST's per-thread containers)
    'neuron_bytes': 3880.0,      # node, per-neuron tables (one slot per synapse type)
    'ring_slot_bytes': 32.0,     # per neuron and delay slot (measured)
    'recorded_neuron_bytes': 9110.0,    # connector to the spike recorder (_hpc synapses)
    'synapse_bytes': 39.6,       # static_synapse with weight and delay + source table
    'target_bytes': 8.0,         # one Target word (NEST source)
    'spike_bytes': 80.0,         # recorder event in NEST + the copies made when written
}
USABLE_FRACTION = 0.9            # of a node's memory, for the OS and MPI buffers
MAX_DELAY_SIGMAS = None          # None: sqrt(2 ln n) standard deviations (max of n normals)


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
        from ..data import data_file
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


def expected_spikes(recorded_neurons: float, rate_hz: float, t_sim_ms: float,
                    start_ms: float = 0.) -> float:
    """Recorded spikes of a run: neurons x rate x the recorded window (NEST holds them all
    in memory until the run writes them)."""
    return float(recorded_neurons) * float(rate_hz) * max(float(t_sim_ms) - float(start_ms), 0.) / 1000.


def network_counts(network_params: dict | None = None, sim_params: dict | None = None,
                   rate_hz: float | None = None) -> dict:
    """Neurons, synapses, devices and delays of the network a configuration builds.

    ``rate_hz``: the mean rate assumed for the recorded spikes (default: the data's
    full-scale rates, see :func:`expected_rate_hz`).
    """
    from ..model import MultiAreaModel
    from ..network.plan import make_plan
    from ..params import resolve, sim_defaults
    sp = resolve(sim_params or {}, sim_defaults())
    M = MultiAreaModel(network_params or {})
    net = make_plan(M, sp)
    rec = sp['recording_dict']
    recorded = [a for a in net.areas if a in set(rec['areas_recorded'])]
    size = {p.key: p.size for p in net.populations}
    recorded_neurons = sum(p.size for p in net.populations if p.area in recorded)
    device_conns = sum(size[s.target] for s in net.poisson) + sum(size[s.target] for s in net.currents)
    start = float(rec['spike_dict'].get('start', 0.))
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
        'expected_spikes': expected_spikes(recorded_neurons, rate, sp['t_sim'], start),
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
