"""Build a :class:`NetworkPlan` on a backend, with progress and phase timings.

Order: the spike recorders (NEST connects neurons to them most cheaply when they come
first: nest_fast.RECORDER_SYNAPSE), all neurons, inputs, recording connections, then
synapses — within areas first, then between them.
"""
from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field

from ..params import AREA_LIST
from .plan import merged_poisson

BACKENDS = {
    'nest': 'NEST fast path: pyNN.nest populations, native NEST connections (default)',
    'nest-generic': 'pyNN.nest through the generic PyNN API (slow; for comparisons)',
    'neuron': 'pyNN.neuron, synapses drawn in numpy (network/neuron_backend.py; small subsets)',
    'brian2': 'pyNN.brian2, synapses drawn in numpy (network/brian2_backend.py; small subsets)',
}


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}")
    return name


def make_backend(name: str):
    """The backend adapter for ``name`` (see ``BACKENDS``): the one seam."""
    check_backend(name)
    if name == 'nest':
        from .nest_fast import NestBackend
        return NestBackend()
    if name == 'neuron':
        from .neuron_backend import NeuronBackend
        return NeuronBackend()
    if name == 'brian2':
        from .brian2_backend import Brian2Backend
        return Brian2Backend()
    from .generic import PyNNBackend
    return PyNNBackend('nest')


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class BuiltNetwork:
    backend: object
    plan: object
    populations: dict                      # (area, pop) -> backend handle
    recorded_areas: list
    timings: dict = field(default_factory=dict)


def build_network(plan, backend, recorded_areas=(), spike_start_ms=0.0, vm=None,
                  progress=_stderr) -> BuiltNetwork:
    """Create populations, inputs, recorders and connections of ``plan`` on ``backend``.

    ``recorded_areas``: areas whose spikes are recorded; those not simulated are skipped,
    with a warning unless ``recorded_areas`` lists every area of the model (the default
    of ``recording_dict.areas_recorded``: record whatever is simulated).
    ``vm``: None or {'fraction': f, 'dict': vm_dict} to record V_m of the first
    int(f * size) neurons of each population of the recorded areas.
    ``progress``: callable taking a line of text (None for silence).
    """
    say = progress or (lambda msg: None)
    backend.check_plan(plan)
    t0 = time.perf_counter()
    recorded = [a for a in plan.areas if a in set(recorded_areas)]
    backend.reserve_recorders(recorded, spike_start_ms)
    pops = {}
    for spec in plan.populations:
        pops[spec.key] = backend.create_population(spec, plan.neuron_params,
                                                   plan.v0_mean, plan.v0_sd)
    poisson = merged_poisson(plan.poisson, plan.dt) if backend.merge_poisson else plan.poisson
    for spec in poisson:
        backend.add_poisson(spec, pops[spec.target])
    for spec in plan.currents:
        backend.add_step_current(spec, pops[spec.target])
    unsimulated = [a for a in recorded_areas if a not in set(plan.areas)]
    if unsimulated and not set(AREA_LIST) <= set(recorded_areas):   # all areas: the default
        warnings.warn(f"areas_recorded {', '.join(unsimulated)} not simulated "
                      f"(areas_simulated: {', '.join(plan.areas)}); nothing is recorded there",
                      stacklevel=2)
    for area in recorded:
        area_pops = [pops[(area, p)] for p in plan.structure[area]]
        backend.record_spikes(area, area_pops, spike_start_ms)
        if vm:
            counts = [int(vm['fraction'] * pops[(area, p)].size) for p in plan.structure[area]]
            backend.record_vm(area, list(zip(area_pops, counts)), vm['dict'])
    t1 = time.perf_counter()
    say(f"created {plan.n_neurons} neurons in {len(plan.populations)} populations, "
        f"{len(poisson)} Poisson and {len(plan.currents)} current inputs "
        f"in {t1 - t0:.2f} s")

    by_target = {a: ([], []) for a in plan.areas}
    for spec in plan.projections:
        by_target[spec.target[0]][spec.cortico_cortical].append(spec)
    made = 0
    for k, area in enumerate(plan.areas, 1):
        for spec in by_target[area][0]:
            backend.connect(spec, pops[spec.source], pops[spec.target])
            made += spec.n
        say(f"local connections: {k}/{len(plan.areas)} areas ({area}), {made} synapses")
    t2 = time.perf_counter()
    for k, area in enumerate(plan.areas, 1):
        if not by_target[area][1]:
            say(f"cortico-cortical connections: {k}/{len(plan.areas)} target areas ({area}): "
                f"none (it receives no cortico-cortical synapses from the simulated areas)")
            continue
        for spec in by_target[area][1]:
            backend.connect(spec, pops[spec.source], pops[spec.target])
            made += spec.n
        say(f"cortico-cortical connections: {k}/{len(plan.areas)} target areas ({area}), "
            f"{made} synapses")
    t3 = time.perf_counter()
    backend.finish_build()      # NEURON's pending inputs, Brian2's objects and code generation
    t4 = time.perf_counter()
    timings = {'network_creation_s': t1 - t0, 'local_connections_s': t2 - t1,
               'cortico_cortical_connections_s': t3 - t2, 'finish_build_s': t4 - t3}
    return BuiltNetwork(backend, plan, pops, recorded, timings)
