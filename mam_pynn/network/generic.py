"""Generic PyNN path: only the PyNN API, so any PyNN simulator can run the plan.

Synapses are drawn by PyNN in Python (``FixedTotalNumberConnector`` and
``RandomDistribution``): fine for small subsets on NEURON or Brian2, slow for the
full model (use the NEST fast path there). Units are converted to PyNN's (nA, nF)
through :mod:`mam_pynn.units`; current-based inhibitory weights are negative.
"""
from __future__ import annotations


import numpy as np

from ..units import if_curr_exp_params, na_to_pa, pa_to_na
from .base import (Backend, check_python_synapse_limit, connection_arrays, import_pynn,
                   lognormal_params)


def _negated_distribution_class():
    from pyNN.random import RandomDistribution

    class NegatedDistribution(RandomDistribution):
        """-X for X drawn from the named distribution (negative lognormal weights)."""

        def next(self, n=None, mask=None):
            return -super().next(n, mask)

    return NegatedDistribution


class PyNNBackend(Backend):
    """Any ``pyNN.<simulator>`` module through the common PyNN API."""
    merge_poisson = True   # one source neuron per target neuron and input: keep them few

    def __init__(self, simulator: str, max_synapses: int | None = None):
        self.name = simulator if simulator != 'nest' else 'nest-generic'
        self.max_synapses = max_synapses   # None: base.MAX_SYNAPSES_PYTHON_BACKENDS
        self.simulator = simulator
        self.sim = import_pynn(simulator)
        from pyNN.random import NumpyRNG, RandomDistribution
        self._NumpyRNG, self._RD = NumpyRNG, RandomDistribution
        self._recorded, self._vm_recorded, self._index = {}, {}, {}
        self._counted = 0
        self._spike_start = {}
        self._pairs = {}           # (source key, target key) -> PyNN Projection

    def check_plan(self, plan) -> None:
        """Refuse, before anything is built, a bad dt or a network too large for Python."""
        if plan.dt <= 0:
            raise ValueError(f"dt must be > 0, got {plan.dt}")
        check_python_synapse_limit(plan, self.name, self.max_synapses)

    def setup(self, dt, seed, threads):
        extra = {'rng_seed': int(seed)}
        if self.simulator == 'nest':  # NEST adapts min and max delay to the connections
            extra.update(spike_precision='on_grid', verbosity='error', threads=int(threads),
                         min_delay='auto', max_delay='auto')
        else:
            extra.update(min_delay=dt)
        self.sim.setup(timestep=dt, **extra)
        self.dt = float(dt)
        self.rng = self._NumpyRNG(seed=int(seed))

    def create_population(self, spec, neuron_params, v0_mean, v0_sd):
        params = if_curr_exp_params({**neuron_params, 'I_e': spec.i_offset_pa})
        v0 = self._RD('normal', mu=v0_mean, sigma=v0_sd, rng=self.rng) if v0_sd > 0 else v0_mean
        return self.sim.Population(int(spec.size), self.sim.IF_curr_exp(**params),
                                   initial_values={'v': v0}, label=f"{spec.area}-{spec.pop}")

    def _weight(self, spec):
        mean, sd = pa_to_na(spec.weight_mean_pa), pa_to_na(spec.weight_sd_pa)
        if spec.lognormal:
            mu, sigma = lognormal_params(mean, sd)
            cls = _negated_distribution_class() if spec.sign < 0 else self._RD
            return cls('lognormal', mu=mu, sigma=sigma, rng=self.rng)
        if sd <= 0:
            return mean
        lo, hi = (0.0, np.inf) if spec.sign > 0 else (-np.inf, 0.0)
        return self._RD('normal_clipped', mu=mean, sigma=sd, low=lo, high=hi, rng=self.rng)

    def _delay(self, spec):
        if spec.delay_sd_ms <= 0:
            return max(spec.delay_mean_ms, self.dt)
        return self._RD('normal_clipped', mu=spec.delay_mean_ms, sigma=spec.delay_sd_ms,
                        low=self.dt, high=np.inf, rng=self.rng)

    @staticmethod
    def _receptor(weight_sign: float) -> str:
        return 'inhibitory' if weight_sign < 0 else 'excitatory'

    def connect(self, spec, pre, post):
        sim = self.sim
        connector = sim.FixedTotalNumberConnector(int(spec.n), allow_self_connections=True,
                                                  with_replacement=True, rng=self.rng)
        synapse = sim.StaticSynapse(weight=self._weight(spec), delay=self._delay(spec))
        self._pairs[(spec.source, spec.target)] = sim.Projection(
            pre, post, connector, synapse, receptor_type=self._receptor(spec.sign))

    def connections(self, spec, pre, post):
        """The synapses of one planned projection, read from its PyNN Projection."""
        conns = self._pairs[(spec.source, spec.target)].get(
            ['weight', 'delay'], format='list', with_address=True, gather=False)
        i, j, w, d = (np.asarray(c, float) for c in zip(*conns)) if len(conns) else ([],) * 4
        return connection_arrays(i, j, self._model_weight_pa(np.asarray(w, float)), d)

    def _model_weight_pa(self, weights_na):
        """PyNN weights (nA) back in the model's pA."""
        return na_to_pa(np.asarray(weights_na, float))

    def add_poisson(self, spec, post):
        sim = self.sim
        src = sim.Population(post.size, sim.SpikeSourcePoisson(rate=float(spec.rate_hz)),
                             label=f"{post.label}<-{spec.source}")
        sim.Projection(src, post, sim.OneToOneConnector(),
                       sim.StaticSynapse(weight=pa_to_na(spec.weight_pa),
                                         delay=max(float(spec.delay_ms), self.dt)),
                       receptor_type=self._receptor(np.sign(spec.weight_pa) or 1.0))

    def add_step_current(self, spec, post):
        source = self.sim.StepCurrentSource(times=np.asarray(spec.times_ms, float),
                                            amplitudes=pa_to_na(np.asarray(spec.amplitudes_pa)))
        source.inject_into(post)

    def record_spikes(self, area, pops, start_ms):
        self._area_index(area, pops)
        for pop in pops:
            pop.record('spikes')
        self._recorded[area] = list(pops)
        self._spike_start[area] = float(start_ms)

    def record_vm(self, area, pops_and_counts, vm_dict):
        self._area_index(area, [p for p, _ in pops_and_counts])
        views = []
        for pop, n in pops_and_counts:
            if n > 0:
                view = pop[:n]
                view.record('v', sampling_interval=float(vm_dict['interval']))
                views.append((pop, view))
        self._vm_recorded[area] = (views, vm_dict)

    def run(self, duration_ms):
        """Spikes of this process's neurons (not gathered: PyNN gathers to rank 0 only,
        so the ranks would disagree; the simulation sums the counts over ranks)."""
        self.sim.run(float(duration_ms))
        pops = [p for ps in self._recorded.values() for p in ps]
        if not pops:
            return -1, 0
        total = sum(int(sum(p.get_spike_counts(gather=False).values())) for p in pops)
        new, self._counted = total - self._counted, total
        return new, sum(p.size for p in pops)

    def spikes(self, area):
        """This process's recorded spikes: under MPI every rank writes its own and the run
        merges them (PyNN's default gather would give each rank everyone's, counted twice)."""
        idx = self._index[area]
        ids, times = [], []
        for k, pop in enumerate(self._recorded[area]):
            for st in pop.get_data('spikes', gather=False, clear=False).segments[0].spiketrains:
                t = np.asarray(st.rescale('ms').magnitude, dtype=np.float64)
                t = t[t >= self._spike_start[area]]
                ids.append(np.full(len(t), idx.offsets[k] + int(st.annotations['source_index']),
                                   dtype=np.uint64))
                times.append(t)
        if not ids:
            return np.zeros(0, np.uint64), np.zeros(0, np.float64)
        return np.concatenate(ids), np.concatenate(times)

    def vm(self, area):
        if area not in self._vm_recorded:
            return None
        views, vm_dict = self._vm_recorded[area]
        idx = self._index[area]
        ids, times, values = [], [], []
        for pop, view in views:      # this process's neurons only, as for spikes()
            k = idx.first_gids.index(int(pop.first_id))
            signals = view.get_data('v', gather=False, clear=False).segments[0].analogsignals
            if not signals:          # none of the recorded neurons lives on this rank
                continue
            sig = signals[0]
            t = np.asarray(sig.times.rescale('ms').magnitude)
            keep = (t >= vm_dict['start']) & (t < vm_dict['stop'])
            v = np.asarray(sig.magnitude)[keep]
            src = np.asarray(sig.array_annotations['channel_index'], dtype=np.int64)
            ids.append(np.repeat(idx.offsets[k] + src[None, :], keep.sum(), axis=0).ravel())
            times.append(np.repeat(t[keep], v.shape[1]))
            values.append(v.ravel())
        if not ids:
            return None
        return (np.concatenate(ids).astype(np.uint64), np.concatenate(times),
                np.concatenate(values))

    def count_connections(self):
        return -1

    def process_info(self):
        threads = 1
        if self.simulator == 'nest':
            import nest
            threads = int(nest.local_num_threads)
        return int(self.sim.num_processes()), threads

    def end(self):
        self.sim.end()
