"""Simulate an exported circuit on a PyNN backend: its nodes as populations, its edges
connected from the files.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ...io import make_dir, write_sonata_spikes
from ._files import _log
from .loader import SonataCircuit, load_sonata


MAX_EDGES_FROM_LIST = 5_000_000


def connect_edges(circuit: SonataCircuit, backend, populations: dict, progress=None) -> int:
    """Create the circuit's explicit edges on a built backend (mam_pynn.network backends).

    NEST fast path: one ``nest.Connect`` (one_to_one, plain static_synapse, pA) per pair
    and chunk; any other PyNN backend: a ``Projection`` with ``FromListConnector`` (nA).
    """
    say = progress or (lambda msg: None)
    made = 0
    if getattr(backend, 'name', '') == 'nest':
        nest = backend.nest
        for s, t, si, ti, w, d in circuit.iter_edges():
            pre, post = populations[s], populations[t]
            nest.Connect(pre.all_cells[si], post.all_cells[ti], 'one_to_one',
                         {'synapse_model': 'static_synapse', 'weight': w.astype(np.float64),
                          'delay': np.maximum(d.astype(np.float64), backend.dt)})
            made += w.size
    else:
        from ...units import pa_to_na
        n_edges = circuit.n_edges()
        if n_edges > MAX_EDGES_FROM_LIST:
            raise ValueError(f"{n_edges:,} SONATA edges on backend {getattr(backend, 'name', '?')!r}: PyNN's "
                             f"FromListConnector handles each one in Python (limit {MAX_EDGES_FROM_LIST:,}); "
                             f"run large circuits with backend='nest'")
        sim = backend.sim
        for s, t, si, ti, w, d in circuit.iter_edges():
            conn = np.column_stack([si, ti, pa_to_na(w.astype(np.float64)),
                                    np.maximum(d.astype(np.float64), backend.dt)])
            receptor = 'inhibitory' if w[0] < 0 else 'excitatory'
            sim.Projection(populations[s], populations[t], sim.FromListConnector(conn),
                           sim.StaticSynapse(), receptor_type=receptor)
            made += w.size
    say(f"connected {made} SONATA edges")
    return made


def simulate_sonata(circuit_dir, sim_params: dict | None = None, backend: str = 'nest',
                    out_dir=None, progress: bool = True) -> dict:
    """``mam simulate --sonata DIR``: build the circuit with a mam_pynn backend, run it and
    write a run directory (config.yaml, spikes.h5, summary.json).

    From ``sim_params`` only ``t_sim`` (default: the circuit's run.tstop), ``rng_seed`` and
    ``local_num_threads`` apply; dt is the circuit's (its delays were drawn against it).
    """
    import resource

    import yaml

    from ...io import atomic_write_text
    from ...network.builder import build_network, make_backend
    from ...params import content_hash
    from ...simulation import check_run_dir, publish_summary
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else None
    circuit = load_sonata(circuit_dir)
    sim_params = dict(sim_params or {})
    T = float(sim_params.get('t_sim') or circuit.t_sim)
    if not T > 0:
        raise ValueError(f"t_sim must be > 0 (from sim_params or the circuit's run.tstop), got {T}")
    seed = int(sim_params.get('rng_seed', 1))
    threads = int(sim_params.get('local_num_threads', 1))
    meta = circuit.meta
    config = {'label': meta.get('label'), 'source': 'sonata', 'sonata_dir': str(Path(circuit_dir).resolve()),
              'backend': backend, 'network_params': meta.get('params'),
              'sim_params': {'t_sim': T, 'dt': circuit.plan.dt, 'rng_seed': seed, 'local_num_threads': threads},
              'populations': {a: {p: {'first_id': int(circuit.offsets[a][p]), 'size': circuit.sizes[(a, p)]}
                                  for p in circuit.structure[a]} for a in circuit.areas}}
    out = Path(out_dir) if out_dir is not None else Path('runs') / f"sonata-{content_hash(config)}"
    check_run_dir(out)     # neither a finished run nor an unfinished one's leftovers
    make_dir(out)
    atomic_write_text(out / 'config.yaml', yaml.safe_dump(json.loads(json.dumps(config, default=str)),
                                                          sort_keys=False))
    t0 = time.perf_counter()
    be = make_backend(backend)
    be.setup(circuit.plan.dt, seed, threads)
    built = build_network(circuit.plan, be, circuit.areas, progress=say)
    n_edges = connect_edges(circuit, be, built.populations, say)
    _set_initial_potentials(circuit, be, built.populations)
    build_s = time.perf_counter() - t0
    be.prepare()
    t1 = time.perf_counter()
    be.run(T)
    sim_s = time.perf_counter() - t1
    be.cleanup()
    total = write_sonata_spikes(out / 'spikes.h5', {area: be.spikes(area) for area in circuit.areas})
    n_proc, n_threads = be.process_info()
    n_neurons = circuit.plan.n_neurons
    summary = {'backend': backend, 'label': meta.get('label'), 'source': 'sonata',
               'sonata_dir': config['sonata_dir'], 'neurons': n_neurons, 'synapses': n_edges,
               'areas_simulated': circuit.areas, 't_sim_ms': T, 'build_s': build_s, 'sim_s': sim_s,
               'rtf': sim_s / (T / 1000.),
               'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               'num_processes': n_proc, 'threads': n_threads, 'spikes': total,
               'mean_rate_hz': total / n_neurons / (T / 1000.)}
    publish_summary(out, summary)
    be.end()
    if progress:
        _log(f"simulated SONATA circuit: {n_neurons} neurons, {n_edges} edges, {T:g} ms, "
             f"build {build_s:.1f} s, sim {sim_s:.1f} s, {summary['mean_rate_hz']:.2f} spikes/s -> {out}")
    return summary


def _set_initial_potentials(circuit: SonataCircuit, backend, populations) -> None:
    """Initial V_m of every neuron from the circuit (node attribute V_m_init)."""
    for area in circuit.areas:
        v = circuit.v_init.get(area)
        if v is None:
            continue
        for pop in circuit.structure[area]:
            first = circuit.offsets[area][pop]
            vals = v[first:first + circuit.sizes[(area, pop)]].astype(np.float64)
            h = populations[(area, pop)]
            if getattr(backend, 'name', '') == 'nest':
                h.node_collection.set({'V_m': vals})
            else:
                h.initialize(v=vals)
