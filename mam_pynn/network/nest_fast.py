"""NEST fast path: pyNN.nest populations, native NEST connections and devices.

Costs of pyNN.nest this path avoids (NEST 3.10, pyNN 0.13; not measured by a script
here, benchmarks/bench_nest_build.py compares the whole build with direct NEST):
- ``Population`` makes one ``ID`` and one ``NodeCollection`` per neuron and
  pushes default initial values one ``set`` at a time (seconds and hundreds
  of MB for 100k neurons), and creates a spike recorder and a multimeter per
  population up front; ``NativePopulation`` creates the NEST nodes in one call, keeps the ids
  as one integer array and makes recording devices only when asked;
- ``FixedTotalNumberConnector`` draws every synapse in Python (orders of magnitude
  slower than NEST's ``fixed_total_number`` rule), and ``Projection`` calls
  ``GetConnections(...).sources()`` (a status dict per connection) and uses a
  labelled synapse model (more memory per synapse): here one ``nest.Connect``
  per population pair with a plain ``static_synapse`` and weights and delays
  drawn inside NEST, so nothing of the size "number of synapses" enters Python.
Weights are passed to NEST in pA (the model's unit), delays in ms.

Recording every neuron costs more memory than anything but the synapses (see
``RECORDER_SYNAPSE``): the neurons reach the spike recorders through the smallest
connection NEST 3.10 has, and the recorders are created before the neurons to allow it.
"""
from __future__ import annotations

import numpy as np

from ..units import if_curr_exp_params
from .base import Backend, connection_arrays, import_pynn, lognormal_params

NEURON_MODEL = 'iaf_psc_exp'   # what pyNN.nest's IF_curr_exp is with on-grid spikes

# How neurons reach the spike recorders. NEST 3.10 gives every neuron connected to a device
# a connector of its own whose first block holds 1024 connections, so a recorded neuron
# costs 1024 x the synapse model's ``sizeof`` (plus ~0.8 kB): static_synapse 32 B (33 kB
# per neuron, measured), static_synapse_hom_w 24 B (24.6 kB), static_synapse_hom_w_hpc 8 B
# (9.0 kB), the smallest NEST has. The weight means nothing to a recorder; an _hpc model
# stores its target as an index among the nodes of the target's thread, which must stay
# below HPC_MAX_THREAD_NODES: true for recorders created before the neurons.
RECORDER_SYNAPSE = 'static_synapse_hom_w_hpc'
RECORDER_SYNAPSE_ANY_TARGET = 'static_synapse_hom_w'   # the smallest for any thread index
HPC_MAX_THREAD_NODES = 65534


def late_recorder_synapse() -> str:
    """The cheapest synapse model to a recorder created now, after other nodes: the _hpc
    model while the whole network has fewer nodes than an _hpc target index allows
    (a node's index on its thread is below the number of nodes)."""
    import nest
    return RECORDER_SYNAPSE if nest.network_size < HPC_MAX_THREAD_NODES else RECORDER_SYNAPSE_ANY_TARGET


def _pynn_nest():
    return import_pynn('nest')


def native_population_class():
    """``pyNN.nest.Population`` without per-neuron Python objects (made on first use)."""
    from collections import defaultdict

    import nest
    from pyNN import common, recording, space
    from pyNN.nest import simulator
    from pyNN.nest.recording import Multimeter, Recorder
    from pyNN.parameters import LazyArray
    sim = _pynn_nest()
    SpikeDetector = cheap_spike_detector_class()

    class LazyRecorder(Recorder):
        """pyNN.nest's Recorder, whose two NEST devices are created on first use
        (not one spike recorder and one multimeter per population up front)."""

        def __init__(self, population, file=None):
            self._interval = None
            recording.Recorder.__init__(self, population, file)
            self.recorded_all = defaultdict(set)

        def __getattr__(self, name):
            if name == '_multimeter':
                self._multimeter = Multimeter()
                Recorder._set_sampling_interval(self, self._interval)
                return self._multimeter
            if name == '_spike_detector':
                self._spike_detector = SpikeDetector()
                return self._spike_detector
            raise AttributeError(name)

        def record(self, variables, ids, sampling_interval=None, locations=None):
            # PyNN's recorder needs ID objects: made here, for the recorded cells only
            ids = [i if hasattr(i, 'parent') else self.population.cell_id(i) for i in ids]
            super().record(variables, ids, sampling_interval, locations)

        def _get_interval(self):
            if '_multimeter' in self.__dict__:
                return Recorder._get_sampling_interval(self)
            return self._interval

        def _set_interval(self, value):
            self._interval = value
            if '_multimeter' in self.__dict__:
                Recorder._set_sampling_interval(self, value)

        sampling_interval = property(_get_interval, _set_interval)

    class NativePopulation(sim.Population):
        """A pyNN.nest Population whose NEST nodes are created and initialised natively.

        ``native_init`` maps NEST parameter names to values or ``nest.Parameter``s
        set in one call after creation (e.g. random initial potentials).
        """

        _recorder_class = LazyRecorder

        def __init__(self, size, celltype, label=None, native_init=None, nest_defaults=None):
            # what common.Population.__init__ sets, without its per-population recorder
            # devices and the one-by-one push of default initial values
            self._native_init = native_init or {}
            self._nest_defaults = nest_defaults
            self.size = int(size)
            self.label = label or f'population{common.Population._nPop}'
            self._structure = space.Line()
            self._positions = None
            self._is_sorted = True
            self.celltype = celltype
            self.annotations = {}
            self._recorder = None
            self._deferred_parrot_connections = False
            self._create_cells()
            self.first_id, self.last_id = self.all_cells[0], self.all_cells[-1]
            self.initial_values = {name: LazyArray(value, shape=(self.size,), dtype=float)
                                   for name, value in celltype.default_initial_values.items()}
            for name, value in self._native_init.items():   # the state NEST really holds
                pynn_name = {'V_m': 'v'}.get(name)
                if pynn_name and not isinstance(value, nest.Parameter):
                    self.initial_values[pynn_name] = LazyArray(value, shape=(self.size,), dtype=float)
            common.Population._nPop += 1
            self._simulator.state.populations.append(self)

        @property
        def recorder(self):
            if self._recorder is None:
                self._recorder = LazyRecorder(self)
            return self._recorder

        def _create_cells(self):
            defaults = self._nest_defaults
            if defaults is None:  # translate the PyNN parameters (homogeneous)
                native = self.celltype.native_parameters
                native.shape = (1,)
                native.evaluate(simplify=True)
                defaults = native.as_dict()
            nest.SetDefaults(NEURON_MODEL, defaults)
            first = nest.network_size + 1
            self.node_collection = nest.Create(NEURON_MODEL, self.size)
            if self._native_init:
                self.node_collection.set(self._native_init)
            if self._simulator.state.num_processes > 1:
                self._mask_local = np.array(self.node_collection.local)
            else:
                self._mask_local = np.ones(self.size, dtype=bool)
            self.all_cells = np.arange(first, first + self.size, dtype=np.int64)

        def with_pynn_ids(self):
            """Give the population PyNN's per-neuron ``ID`` objects (what a plain pyNN.nest
            Population makes up front), so that every PyNN call works on it: current
            sources, projections from PyNN populations, views. Made once, on demand."""
            if self.all_cells.dtype != object:
                self.all_cells = np.array([self.cell_id(g) for g in self.all_cells], simulator.ID)
                self.first_id, self.last_id = self.all_cells[0], self.all_cells[-1]
            return self

        def cell_id(self, gid):
            """A PyNN ``ID`` object for one neuron (made on demand, never for all)."""
            cell = simulator.ID(int(gid))
            cell.parent = self
            cell.node_collection = nest.NodeCollection([int(gid)])
            return cell

    return NativePopulation


def cheap_spike_detector_class():
    """pyNN.nest's SpikeDetector connecting the cells with :func:`late_recorder_synapse`
    instead of static_synapse (same spikes, a quarter to three quarters of the memory)."""
    import nest
    from pyNN.nest import simulator
    from pyNN.nest.recording import SpikeDetector

    class CheapSpikeDetector(SpikeDetector):
        def connect_to_cells(self):
            assert not self._connected
            if len(self._all_ids) > 0:
                nest.Connect(nest.NodeCollection(sorted(self._all_ids)), self.device,
                             {'rule': 'all_to_all'},
                             {'synapse_model': late_recorder_synapse(),
                              'delay': simulator.state.min_delay})
            self._connected = True

    return CheapSpikeDetector


# NEST 3.10: "at most 134217726 connections supported per virtual process and synapse model"
NEST_MAX_CONNECTIONS_PER_VP = 134_217_726


def min_virtual_processes(n_synapses: int, margin: float = 1.02) -> int:
    """Fewest NEST virtual processes that can hold ``n_synapses`` (with a 2% margin for
    the uneven spread of targets over virtual processes)."""
    return max(1, -(-int(n_synapses * margin) // NEST_MAX_CONNECTIONS_PER_VP))


class NestBackend(Backend):
    """pyNN.nest populations; NEST-native connections, inputs and recorders."""
    name = 'nest'
    # True: record as this backend did before issue 24 (recorders created after the
    # neurons, static_synapse): for the benchmark and the test that compare the two
    legacy_recording = False

    def __init__(self):
        import nest
        self.nest = nest
        self.sim = _pynn_nest()
        self._Population = native_population_class()
        self._spike_recorders, self._voltmeters, self._index = {}, {}, {}
        self._n_neurons = 0
        self._native_defaults = {}
        self._running = False

    def setup(self, dt, seed, threads):
        self.sim.setup(timestep=dt, min_delay='auto', max_delay='auto', threads=int(threads),
                       rng_seed=int(seed), spike_precision='on_grid', verbosity='error')
        self.dt = float(dt)

    def check_plan(self, plan):
        # NEST stores connections per virtual process and synapse model, with a hard limit;
        # targets (and so synapses) are spread evenly over the virtual processes
        vps = int(self.nest.total_num_virtual_procs)
        needed = min_virtual_processes(plan.n_synapses)
        if needed > vps:
            raise ValueError(
                f"{plan.n_synapses:,} synapses need at least {needed} NEST virtual processes "
                f"(NEST stores at most {NEST_MAX_CONNECTIONS_PER_VP:,} connections per virtual "
                f"process and synapse model); this run has {vps}: raise "
                f"sim_params.local_num_threads or the number of MPI ranks")

    def create_population(self, spec, neuron_params, v0_mean, v0_sd):
        params = if_curr_exp_params({**neuron_params, 'I_e': spec.i_offset_pa})
        celltype = self.sim.IF_curr_exp(**params)
        key = tuple(sorted(neuron_params.items()))
        if key not in self._native_defaults:  # translated once; populations differ in I_e only
            native = celltype.native_parameters
            native.shape = (1,)
            native.evaluate(simplify=True)
            self._native_defaults[key] = native.as_dict()
        defaults = {**self._native_defaults[key], 'I_e': float(spec.i_offset_pa)}
        v0 = self.nest.random.normal(mean=v0_mean, std=v0_sd) if v0_sd > 0 else v0_mean
        pop = self._Population(spec.size, celltype, label=f"{spec.area}-{spec.pop}",
                               native_init={'V_m': v0}, nest_defaults=defaults)
        self._n_neurons += spec.size
        return pop

    def _weight(self, spec):
        if spec.lognormal:
            mu, sigma = lognormal_params(spec.weight_mean_pa, spec.weight_sd_pa)
            w = self.nest.random.lognormal(mean=mu, std=sigma)
            return -1.0 * w if spec.sign < 0 else w
        if spec.weight_sd_pa <= 0:
            return spec.weight_mean_pa
        lo, hi = (0.0, np.inf) if spec.sign > 0 else (-np.inf, 0.0)
        return self.nest.math.redraw(self.nest.random.normal(mean=spec.weight_mean_pa,
                                                             std=spec.weight_sd_pa), min=lo, max=hi)

    def _delay(self, spec):
        if spec.delay_sd_ms <= 0:
            return max(spec.delay_mean_ms, self.dt)
        return self.nest.math.redraw(self.nest.random.normal(mean=spec.delay_mean_ms,
                                                             std=spec.delay_sd_ms),
                                     min=self.dt, max=np.inf)

    def connect(self, spec, pre, post):
        self.nest.Connect(pre.node_collection, post.node_collection,
                          {'rule': 'fixed_total_number', 'N': int(spec.n),
                           'allow_autapses': True, 'allow_multapses': True},
                          {'synapse_model': 'static_synapse',
                           'weight': self._weight(spec), 'delay': self._delay(spec)})

    def add_poisson(self, spec, post):
        pg = self.nest.Create('poisson_generator', params={'rate': float(spec.rate_hz)})
        self.nest.Connect(pg, post.node_collection, 'all_to_all',
                          {'synapse_model': 'static_synapse', 'weight': float(spec.weight_pa),
                           'delay': max(float(spec.delay_ms), self.dt)})

    def add_step_current(self, spec, post):
        # the plan's times are arrival times; NEST adds the connection's delay of one step
        gen = self.nest.Create('step_current_generator', params={
            'amplitude_times': (np.asarray(spec.times_ms, float) - self.dt).round(10).tolist(),
            'amplitude_values': np.asarray(spec.amplitudes_pa, float).tolist()})
        self.nest.Connect(gen, post.node_collection, 'all_to_all',
                          {'synapse_model': 'static_synapse', 'weight': 1.0, 'delay': self.dt})

    def reserve_recorders(self, areas, start_ms):
        """The spike recorders of ``areas``, created before any neuron so that their index
        on every thread is small enough for RECORDER_SYNAPSE. NEST puts node id g on
        virtual process g mod VPs: parrot neurons (never connected) pad the recorders
        to a multiple of the VPs, so every neuron sits where it would without them and
        draws the same random numbers (the same network, the same spikes)."""
        if self.legacy_recording or not areas:
            return
        for area in areas:
            self._spike_recorders[area] = self.nest.Create('spike_recorder',
                                                           params={'start': float(start_ms)})
        pad = -len(areas) % int(self.nest.total_num_virtual_procs)
        if pad:
            self.nest.Create('parrot_neuron', pad)

    def record_spikes(self, area, pops, start_ms):
        self._area_index(area, pops)
        sr = self._spike_recorders.get(area)
        if sr is None:
            sr = self._spike_recorders[area] = self.nest.Create(
                'spike_recorder', params={'start': float(start_ms)})
            model = 'static_synapse' if self.legacy_recording else late_recorder_synapse()
        else:
            model = RECORDER_SYNAPSE
        # one Connect per area, not per population (each Connect call has a fixed cost)
        nodes = pops[0].node_collection
        for pop in pops[1:]:
            nodes = nodes + pop.node_collection
        self.nest.Connect(nodes, sr, syn_spec={'synapse_model': model})

    def record_vm(self, area, pops_and_counts, vm_dict):
        self._area_index(area, [p for p, _ in pops_and_counts])
        vm = self.nest.Create('voltmeter', params={
            'start': float(vm_dict['start']), 'stop': float(vm_dict['stop']),
            'interval': float(vm_dict['interval'])})
        for pop, n in pops_and_counts:
            if n > 0:
                self.nest.Connect(vm, pop.node_collection[:n])
        self._voltmeters[area] = vm

    def prepare(self):
        # what pyNN.nest's run() does first, for PyNN objects a user added after the build
        state = self.sim.simulator.state
        for population in state.populations:
            if population._deferred_parrot_connections:
                population._connect_parrot_neurons()
        for device in state.recording_devices:
            if not device._connected:
                device.connect_to_cells()
                device._local_files_merged = False
        state.running = True
        self.nest.Prepare()
        self._running = True
        self._t_done = 0.0

    def run(self, duration_ms):
        self.nest.Run(float(duration_ms))
        self._t_done += float(duration_ms)
        # this rank's spikes; the simulation sums them over ranks for the watchdog
        return int(self.nest.local_spike_counter), self._n_neurons

    def cleanup(self):
        if self._running:
            if self.sim.simulator.state.recording_devices:
                # PyNN reads its recorders up to t = NEST's time - min_delay (pyNN.nest
                # simulates one min_delay past each first run): one more min_delay makes
                # the user's PyNN recordings complete; this run's own data stop at t
                self.nest.Run(float(self.sim.simulator.state.min_delay))
            self.nest.Cleanup()
            self._running = False

    def _before_end(self, times):
        """Events up to the simulated time only (see cleanup)."""
        return times <= getattr(self, '_t_done', np.inf) + 1e-9

    def spikes(self, area):
        ev = self._spike_recorders[area].get('events')
        gids = np.asarray(ev['senders'], dtype=np.int64)
        times = np.asarray(ev['times'], dtype=np.float64)
        keep = self._before_end(times)
        return self._index[area].local_ids(gids[keep]), times[keep]

    def vm(self, area):
        if area not in self._voltmeters:
            return None
        ev = self._voltmeters[area].get('events')
        times = np.asarray(ev['times'], np.float64)
        keep = self._before_end(times)
        gids = np.asarray(ev['senders'], dtype=np.int64)[keep]
        return (self._index[area].local_ids(gids), times[keep],
                np.asarray(ev['V_m'], np.float64)[keep])

    def pynn_population(self, handle):
        return handle.with_pynn_ids()

    def recorders(self):
        return dict(self._spike_recorders)

    def connections(self, spec, pre, post):
        """The synapses of one planned projection, read from NEST for this pair of
        populations only (static_synapse: the model's; a user's other synapse models
        between the same populations are left out)."""
        conns = self.nest.GetConnections(source=pre.node_collection, target=post.node_collection,
                                         synapse_model='static_synapse')
        if len(conns) == 0:
            return connection_arrays([], [], [], [])
        v = conns.get(['source', 'target', 'weight', 'delay'])
        return connection_arrays(np.atleast_1d(v['source']) - int(pre.first_id),
                                 np.atleast_1d(v['target']) - int(post.first_id),
                                 np.atleast_1d(v['weight']), np.atleast_1d(v['delay']))

    def count_connections(self):
        return int(self.nest.num_connections)

    def process_info(self):
        return int(self.nest.NumProcesses()), int(self.nest.local_num_threads)

    def end(self):
        self.cleanup()
        self.sim.end()

