"""Brian2 backend: one pyNN.brian2 population, bulk connections, exact Poisson drive.

What this adds to the generic PyNN path, and why (found with pyNN 0.13, Brian2
2.9.0 and Cython 3; no timing below is measured by a script here):

- pyNN.brian2 makes one ``NeuronGroup`` per population and one ``Synapses``
  per projection; Brian2 generates and compiles code per object, and the code
  names the object, so the first run of a V1+V2 subset would compile hundreds
  of code objects (each compiled on its own) and every step would call each one. Here
  all simulated neurons are ONE ``IF_curr_exp`` population (per-neuron
  ``i_offset``; the model's populations are index ranges of it), all recurrent
  synapses are two projections (excitatory, inhibitory), all Poisson drive one
  group: a fixed handful of code objects whose names do not depend on the
  network, compiled once into the user cache (``<cache>/brian2-cython``) and
  reused by every later run of any subset.
- pyNN.brian2's Projection connects one target at a time (3000 code-object
  runs for 3000 targets) and sets weights per synapse with ``var[i, j] = w``,
  which gives all multapses of a pair the same (last) weight. Here each
  projection is connected in one call with per-synapse arrays drawn in numpy
  (:mod:`.drawing`: NEST's rules, delays on the time grid).
- pyNN.brian2's ``SpikeSourcePoisson`` draws at most one spike per time step
  (``rand() < rate*dt``): rates above 1/dt (10 kHz at 0.1 ms) saturate, and
  the MAM's external drive is 10-25 kHz per neuron. Here every drive group
  draws an exact Poisson count per step (``k = poisson(rate*dt)``) and adds
  ``k * w`` to the target's synaptic current from the group's delay on, as NEST's
  ``poisson_generator`` does; inputs with equal weight and delay are merged
  (exact).
- Brian2 derives the exact integrator of IF_curr_exp with sympy in every
  process (seconds, a large part of a small build): it is kept on disk
  (``<cache>/brian2-stateupdaters``, keyed by the equations and the kinds of
  their variables), so later runs read it.
- ``$MAM_BRIAN2_TARGET`` = ``cython`` (default when Cython is installed) or
  ``numpy`` (no compiler needed, slower per step) picks the code generation target.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from ..units import if_curr_exp_params, pa_to_na
from .base import MAX_DELAY_MS, connection_arrays
from ..connectivity import cache_dir
from .drawing import draw_projection, on_grid
from .generic import PyNNBackend


TARGETS = ('cython', 'numpy')


def configure_brian2(target: str | None = None) -> str:
    """Code generation target (``target``, else ``$MAM_BRIAN2_TARGET``, else cython when
    Cython is installed) and its persistent cache; returns the target name."""
    import brian2
    import logging
    brian2.prefs.codegen.runtime.cython.cache_dir = str(cache_dir('brian2-cython'))
    target = target or os.environ.get('MAM_BRIAN2_TARGET') or None
    if target is not None and target not in TARGETS:
        raise ValueError(f"Brian2 code generation target {target!r}; valid: {', '.join(TARGETS)}")
    if target is None:
        try:
            import Cython  # noqa: F401
            target = 'cython'
        except ImportError:
            print("Brian2: Cython not available, using the numpy target", file=sys.stderr, flush=True)
            target = 'numpy'
    brian2.prefs.codegen.target = target
    _install_stateupdater_cache()
    brian2.prefs.codegen.loop_invariant_optimisations = True
    logging.getLogger('brian2').setLevel(logging.WARNING)
    brian2.BrianLogger.suppress_hierarchy('brian2.stateupdaters.base.method_choice')
    return target


def _install_stateupdater_cache() -> None:
    """Replace Brian2's 'exact' (linear) state updater by one that keeps its results on disk."""
    import hashlib
    import brian2
    from brian2.stateupdaters.base import StateUpdateMethod
    from brian2.stateupdaters.exact import LinearStateUpdater
    if isinstance(StateUpdateMethod.stateupdaters.get('exact'), LinearStateUpdater) and \
            getattr(StateUpdateMethod.stateupdaters['exact'], 'disk_cached', False):
        return
    folder = cache_dir('brian2-stateupdaters')

    class DiskCachedLinearStateUpdater(LinearStateUpdater):
        disk_cached = True

        def __call__(self, equations, variables=None, method_options=None):
            variables = variables or {}
            kinds = []
            for name in sorted(set(equations.identifiers) | set(equations.names) | {'dt', 't'}):
                var = variables.get(name)
                kinds.append((name, type(var).__name__, str(getattr(var, 'dim', None)),
                              getattr(var, 'scalar', None), getattr(var, 'constant', None)))
            key = hashlib.sha256(repr((brian2.__version__, str(equations), kinds,
                                       sorted((method_options or {}).items()))).encode()).hexdigest()[:24]
            path = folder / f'{key}.txt'
            if path.exists():
                return path.read_text()
            code = LinearStateUpdater.__call__(self, equations, variables, method_options)
            tmp = path.with_suffix(f'.{os.getpid()}.tmp')
            tmp.write_text(code)
            os.replace(tmp, path)
            return code

    cached = DiskCachedLinearStateUpdater()
    for name in ('exact', 'linear'):
        if name in StateUpdateMethod.stateupdaters:
            StateUpdateMethod.stateupdaters[name] = cached


@dataclass
class Slot:
    """A model population inside the one Brian2 population: neurons offset..offset+size."""
    offset: int
    size: int
    label: str
    first_id: int = 0

    def __post_init__(self):
        self.first_id = self.offset


def bulk_connector_class():
    from pyNN.connectors import Connector

    class BulkConnector(Connector):
        """Given per-synapse arrays (nA, ms), connected in one Brian2 call."""
        parameter_names = ()

        def __init__(self, sources, targets, weights_na, delays_ms):
            super().__init__(safe=False)
            self.args = (sources, targets, weights_na, delays_ms)

        def connect(self, projection):
            import brian2
            sources, targets, weights, delays = self.args
            syn = projection._brian2_synapses[0][0]
            syn.connect(i=np.asarray(sources, np.int32), j=np.asarray(targets, np.int32))
            syn.weight[:] = np.asarray(weights, float) * brian2.nA
            syn.delay[:] = np.asarray(delays, float) * brian2.ms
            projection._n_connections = len(sources)

    return BulkConnector


class Brian2Backend(PyNNBackend):
    """pyNN.brian2 for small subsets (see the module docstring)."""

    def __init__(self, target: str | None = None, max_synapses: int | None = None):
        self.codegen_target = configure_brian2(target)
        super().__init__('brian2', max_synapses)
        self.name = 'brian2'
        self._BulkConnector = bulk_connector_class()
        self._slots, self._i_offset, self._neuron_params = [], [], None
        self._syn = {'excitatory': [], 'inhibitory': []}
        self._ranges, self._bulk = {}, {}   # pair -> (receptor, first synapse, n); receptor -> Projection
        self._poisson, self._currents, self._vm_requests = {}, [], {}
        self._built = False
        self.pop = self.spike_monitor = None
        self._objects = []

    # ------------------------------------------------------------ plan entries

    def check_plan(self, plan) -> None:
        """Refuse what this path cannot build, before anything is built."""
        super().check_plan(plan)
        for spec in plan.currents:
            if np.any(np.diff(np.asarray(spec.times_ms, float)) <= 0):
                raise ValueError(f"step current into {spec.target}: times must increase")

    def setup(self, dt, seed, threads):
        import brian2
        from ..mpi import mpi_rank_size
        n_ranks = mpi_rank_size()[1]
        if n_ranks > 1:
            raise RuntimeError(f"the brian2 backend runs in one process; the launcher's environment "
                               f"says {n_ranks} MPI ranks (mam_pynn.mpi.RANK_ENV): use the nest backend")
        if int(threads) > 1:
            print(f"brian2 backend: runs on one thread (local_num_threads = {threads} is ignored)",
                  file=sys.stderr, flush=True)
        self.sim.setup(timestep=dt, min_delay=dt, max_delay=MAX_DELAY_MS, rng_seed=int(seed))
        brian2.seed(int(seed))
        self.dt = float(dt)
        self.rng = self._NumpyRNG(seed=int(seed))
        self.np_rng = np.random.default_rng([int(seed), 0xB2])

    def create_population(self, spec, neuron_params, v0_mean, v0_sd):
        if self._built:
            raise RuntimeError("Brian2Backend: populations must be created before the first run")
        if self._neuron_params is None:
            self._neuron_params, self._v0 = dict(neuron_params), (float(v0_mean), float(v0_sd))
        elif dict(neuron_params) != self._neuron_params:
            raise ValueError("Brian2Backend needs the same neuron parameters for all populations")
        offset = sum(s.size for s in self._slots)
        slot = Slot(offset, int(spec.size), f"{spec.area}-{spec.pop}")
        self._slots.append(slot)
        self._i_offset.append(np.full(slot.size, pa_to_na(spec.i_offset_pa)))
        return slot

    def connect(self, spec, pre, post):
        d = draw_projection(spec, pre.size, post.size, self.dt, self.np_rng)
        parts = self._syn[self._receptor(spec.sign)]
        self._ranges[(spec.source, spec.target)] = (self._receptor(spec.sign),
                                                    sum(len(q[0]) for q in parts), len(d.sources))
        parts.append((d.sources + pre.offset, d.targets + post.offset, pa_to_na(d.weights_pa),
                      d.delays_ms))

    def connections(self, spec, pre, post):
        """The synapses of one planned projection, read from the Brian2 Synapses that
        hold it (all projections of a receptor type are one object, in build order)."""
        receptor, first, n = self._ranges[(spec.source, spec.target)]
        syn = self._bulk[receptor]._brian2_synapses[0][0]
        part = slice(first, first + n)
        return connection_arrays(np.asarray(syn.i[:])[part] - pre.offset,
                                 np.asarray(syn.j[:])[part] - post.offset,
                                 np.asarray(syn.weight_[:])[part] * 1e12,     # A -> pA
                                 np.asarray(syn.delay_[:])[part] * 1e3)       # s -> ms

    def pynn_population(self, handle):
        self.finish_build()
        return self.pop[handle.offset:handle.offset + handle.size]

    def recorders(self):
        return {area: self.spike_monitor for area in self._recorded}

    def add_poisson(self, spec, post):
        self._poisson.setdefault(post.offset, (post, []))[1].append(spec)

    def add_step_current(self, spec, post):
        self._currents.append((spec, post))

    def record_spikes(self, area, pops, start_ms):
        self._area_index(area, pops)
        self._recorded[area] = list(pops)
        self._spike_start[area] = float(start_ms)

    def record_vm(self, area, pops_and_counts, vm_dict):
        self._area_index(area, [p for p, _ in pops_and_counts])
        self._vm_requests[area] = ([(p, n) for p, n in pops_and_counts if n > 0], dict(vm_dict))

    # ------------------------------------------------------------ building

    def finish_build(self):
        """Create the Brian2 objects of everything planned, and generate their code."""
        if self._built:
            return
        import brian2
        sim = self.sim
        n = sum(s.size for s in self._slots)
        params = if_curr_exp_params(self._neuron_params)
        params['i_offset'] = np.concatenate(self._i_offset) if self._i_offset else np.zeros(0)
        v0_mean, v0_sd = self._v0
        v0 = self.np_rng.normal(v0_mean, v0_sd, n) if v0_sd > 0 else np.full(n, v0_mean)
        self.pop = sim.Population(n, sim.IF_curr_exp(**params), initial_values={'v': v0},
                                  label='mam')
        group = self.pop.brian2_group
        for receptor, parts in self._syn.items():
            if parts:
                arrays = [np.concatenate([p[k] for p in parts]) for k in range(4)]
                self._bulk[receptor] = sim.Projection(self.pop, self.pop, self._BulkConnector(*arrays),
                                                      sim.StaticSynapse(), receptor_type=receptor)
        self._syn = {k: [] for k in self._syn}
        self._build_poisson(group)
        for spec, slot in self._currents:
            source = sim.StepCurrentSource(times=np.asarray(spec.times_ms, float),
                                           amplitudes=pa_to_na(np.asarray(spec.amplitudes_pa, float)))
            source.inject_into(self.pop[slot.offset:slot.offset + slot.size])
        net = sim.simulator.state.network
        self.spike_monitor = brian2.SpikeMonitor(group, name='mam_spikes')
        net.add(self.spike_monitor)
        self._vm_monitors = {}
        for area, (requests, vm_dict) in self._vm_requests.items():
            idx = np.concatenate([np.arange(p.offset, p.offset + k) for p, k in requests]) \
                if requests else np.zeros(0, int)
            if idx.size:
                mon = brian2.StateMonitor(group, 'v', record=idx, dt=float(vm_dict['interval']) * brian2.ms,
                                          name=f'mam_vm_{len(self._vm_monitors)}')
                net.add(mon)
                self._vm_monitors[area] = (idx, mon, vm_dict)
        self._built = True
        self._counted = 0
        sim.simulator.state.run(0.0)    # code generation and compilation happen here

    def _build_poisson(self, group):
        """One Brian2 group of Poisson counters for every (target neuron, input); the
        builder has merged inputs of equal weight and delay already."""
        import brian2
        lam, targets, weights, delays = [], [], [], []
        for post, specs in self._poisson.values():
            for spec in specs:
                if spec.rate_hz <= 0:
                    continue
                rate, w, d = spec.rate_hz, spec.weight_pa, on_grid([spec.delay_ms], self.dt)[0]
                lam.append(np.full(post.size, rate * self.dt * 1e-3))
                targets.append(np.arange(post.offset, post.offset + post.size))
                weights.append(np.full(post.size, pa_to_na(w)))
                delays.append(np.full(post.size, d))
        self._poisson = {}
        if not lam:
            return
        lam, targets = np.concatenate(lam), np.concatenate(targets)
        weights, delays = np.concatenate(weights), np.concatenate(delays)
        net, clock = self.sim.simulator.state.network, self.sim.simulator.state.network.clock
        # Brian2 reads k_pre when an event is delivered, not when it was sent, so the
        # synapses have no delay; the group's delay d instead sets its onset: counts drawn
        # from t = d - dt on reach the neurons from t = d on, as in NEST. For a stationary
        # Poisson train this is the same process as a delayed one.
        drive = brian2.NeuronGroup(len(lam), 'lam : 1 (constant)\nonset : second (constant)\n'
                                   'k : integer', threshold='k > 0', reset='',
                                   clock=clock, name='mam_poisson')
        drive.lam = lam
        drive.onset = (delays - self.dt) * brian2.ms
        drive.run_regularly('k = poisson(lam) * int(t >= onset - 1e-6*ms)', when='start',
                            name='mam_poisson_draw')
        objects = [drive]
        psv = self.pop.celltype.post_synaptic_variables
        for negative, receptor in ((False, 'excitatory'), (True, 'inhibitory')):
            sel = np.flatnonzero((weights < 0) == negative)
            if sel.size == 0:
                continue
            syn = brian2.Synapses(drive, group, model='w : amp', on_pre=f'{psv[receptor]}_post += w * k_pre',
                                  clock=clock, name=f'mam_poisson_{receptor}')
            syn.connect(i=sel.astype(np.int32), j=targets[sel].astype(np.int32))
            syn.w[:] = weights[sel] * brian2.nA
            objects.append(syn)
        for obj in objects:
            net.add(obj)
        self._objects += objects

    def prepare(self):
        self.finish_build()

    # ------------------------------------------------------------ running, results

    def run(self, duration_ms):
        self.finish_build()
        self.sim.run(float(duration_ms))
        total = int(self.spike_monitor.num_spikes)
        new, self._counted = total - self._counted, total
        return new, self.pop.size

    def spikes(self, area):
        idx = self._index[area]
        i = np.asarray(self.spike_monitor.i[:], dtype=np.int64)
        t = np.asarray(self.spike_monitor.t_[:], dtype=np.float64) * 1e3
        keep = np.zeros(len(i), bool)
        for slot in self._recorded[area]:
            keep |= (i >= slot.offset) & (i < slot.offset + slot.size)
        keep &= t >= self._spike_start[area]
        return idx.local_ids(i[keep]), t[keep]

    def vm(self, area):
        if area not in self._vm_monitors:
            return None
        idx_global, mon, vm_dict = self._vm_monitors[area]
        t = np.asarray(mon.t_[:]) * 1e3
        v = np.asarray(mon.v_[:]).T * 1e3          # (times, neurons) in mV
        keep = (t >= vm_dict['start']) & (t < vm_dict['stop'])
        local = self._index[area].local_ids(idx_global)
        n_t = int(keep.sum())
        return (np.tile(local, n_t), np.repeat(t[keep], len(local)), v[keep].ravel())

    def count_connections(self):
        """Synapses between model neurons, counted from Brian2's Synapses objects."""
        import brian2
        return int(sum(len(obj) for obj in self.sim.simulator.state.network.objects
                       if isinstance(obj, brian2.Synapses) and not obj.name.startswith('mam_poisson')))
