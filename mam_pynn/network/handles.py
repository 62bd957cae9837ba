"""The built network as the user sees it: named handles, extension, provenance.

``Simulation.build()`` returns a :class:`Network`. Its ``populations[area, pop]`` are
PyNN populations (on the NEST fast path the native populations, given PyNN's
per-neuron IDs on first access; on Brian2 views of the one Brian2 population), so
PyNN current sources, projections and ``record`` work on them; ``projections`` report
their synapses as numpy arrays read from the simulator; ``inputs`` are the planned
drives, ``recorders`` the simulator's spike recorders. What is added through the
``add_*``/``record`` helpers, or seen in PyNN's own counts, is written into the run's
provenance (``extensions`` in config.yaml and summary.json).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# the most synapses one projection hands to Python at once (4 arrays of 8 bytes each)
MAX_REPORTED_CONNECTIONS = 2_000_000


def _key(key) -> tuple:
    if isinstance(key, str) and '-' in key:
        return tuple(key.split('-', 1))
    return tuple(key)


class Populations(Mapping):
    """(area, pop) or 'area-pop' -> the PyNN population, made usable on first access."""

    def __init__(self, backend, handles: dict):
        self._backend, self._handles, self._pynn = backend, handles, {}

    def __getitem__(self, key):
        key = _key(key)
        if key not in self._handles:
            raise KeyError(f"no population {key!r} in the built network; it has "
                           f"{', '.join('-'.join(k) for k in list(self._handles)[:12])}, ...")
        if key not in self._pynn:
            self._pynn[key] = self._backend.pynn_population(self._handles[key])
        return self._pynn[key]

    def __iter__(self):
        return iter(self._handles)

    def __len__(self):
        return len(self._handles)

    def accessed(self) -> dict:
        return dict(self._pynn)


class Projection:
    """One planned projection (``spec``: a :class:`~mam_pynn.network.plan.ProjectionSpec`)
    and its synapses on the simulator."""

    def __init__(self, spec, backend, pre, post):
        self.spec, self._backend, self._pre, self._post = spec, backend, pre, post
        self.source, self.target, self.n = spec.source, spec.target, spec.n

    def __repr__(self):
        return (f"Projection({'-'.join(self.source)} -> {'-'.join(self.target)}, {self.n} synapses, "
                f"W = {self.spec.weight_mean_pa:.4g} pA, W_sd = {self.spec.weight_sd_pa:.4g} pA)")

    def connections(self, max_connections: int = MAX_REPORTED_CONNECTIONS) -> dict:
        """{'sources', 'targets' (indices within the populations), 'weights_pa', 'delays_ms'}
        as numpy arrays; refused above ``max_connections`` synapses."""
        if self.n > max_connections:
            raise ValueError(f"projection {'-'.join(self.source)} -> {'-'.join(self.target)} has "
                             f"{self.n:,} synapses, above max_connections = {max_connections:,} "
                             f"(mam_pynn.network.handles.MAX_REPORTED_CONNECTIONS); pass a larger "
                             f"max_connections if the memory allows")
        return self._backend.connections(self.spec, self._pre, self._post)


class Network:
    """A built network of one :class:`~mam_pynn.simulation.Simulation`; ``run()`` runs it
    once and writes the run directory."""

    def __init__(self, simulation, built, build_info: dict):
        self.simulation, self.built, self.plan = simulation, built, built.plan
        self.backend = built.backend
        self.sim = self.backend.sim              # the pyNN.<simulator> module
        self.build_info = build_info
        self.populations = Populations(self.backend, built.populations)
        self.projections = {(s.source, s.target): Projection(s, self.backend, built.populations[s.source],
                                                             built.populations[s.target])
                            for s in self.plan.projections}
        self.inputs = list(self.plan.poisson) + list(self.plan.currents)
        self.recorders = self.backend.recorders()
        self.extensions: list = []
        self._recordings: dict = {}               # (area, pop) -> (view, variables)
        self._counts_at_build = None
        self._by_helpers: dict = {}
        self.ran = False

    def __repr__(self):
        return (f"Network({len(self.populations)} populations, {len(self.projections)} projections, "
                f"{len(self.inputs)} inputs, backend {self.backend.name})")

    def mark_built(self) -> None:
        """PyNN's object counts once the model (and its configured stimuli) is built."""
        self._counts_at_build, self._by_helpers = _pynn_counts(), {}

    # ------------------------------------------------------------ extending

    def note(self, added: str, **details) -> None:
        """Record in the provenance something added directly through PyNN."""
        self.extensions.append({'added': added, **details})

    def add_stimulus(self, entry: dict, source: str = 'api') -> list:
        """A stimulus as in ``sim_params.stimulus`` (one entry); returns the PyNN objects."""
        from ..stimulus import apply_stimulus, check_stimuli
        entry = check_stimuli([entry], self.plan.structure, 'stimulus')[0]
        before = _pynn_counts()
        made = apply_stimulus(self, entry, self.simulation.external_weight_pa)
        for k, v in _pynn_counts().items():   # noted here: not counted again as unnamed
            self._by_helpers[k] = self._by_helpers.get(k, 0) + v - before[k]
        self.note('stimulus', source=source, **{k: (['-'.join(t) for t in v] if k == 'targets' else v)
                                                for k, v in entry.items()})
        return made

    def inject(self, current_source, key) -> None:
        """``current_source.inject_into(populations[key])``, listed in the provenance."""
        current_source.inject_into(self.populations[key])
        params = current_source.get_parameters()      # a PyNN ParameterSpace (PyNN units)
        params.shape = (1,)
        params.evaluate(simplify=True)
        params = {k: np.asarray(v).tolist() for k, v in params.as_dict().items()}
        self.note('current_source', type=type(current_source).__name__, target='-'.join(_key(key)),
                  parameters=params)

    def record(self, key, variables, n: int | None = None) -> None:
        """Record ``variables`` (PyNN names: 'v', 'spikes', ...) of the first ``n`` neurons
        (all when None) of one population; written to ``recordings.h5`` by ``run``."""
        key = _key(key)
        pop = self.populations[key]
        view = pop if n is None else pop[:int(n)]
        variables = [variables] if isinstance(variables, str) else list(variables)
        view.record(variables)
        self._recordings[key] = (view, variables)
        self.note('recorder', target='-'.join(key), variables=variables,
                  neurons=int(view.size))

    # ------------------------------------------------------------ running

    def run(self, t_sim: float | None = None, out_dir=None, **kwargs) -> dict:
        """Run for ``t_sim`` ms (default ``sim_params.t_sim``) and write the run directory
        (see :meth:`mam_pynn.simulation.Simulation.run`)."""
        return self.simulation.run(out_dir=out_dir, t_sim=t_sim, network=self, **kwargs)

    def provenance(self) -> list:
        """What was added to the model's network: the helpers' notes, and PyNN objects
        made after the build that no note covers (counted)."""
        out = list(self.extensions)
        if self._counts_at_build is not None:
            now = _pynn_counts()
            added = {k: now[k] - self._counts_at_build[k] - self._by_helpers.get(k, 0) for k in now}
            if any(added.values()):
                out.append({'added': 'pynn_objects_after_build', **added})
        return out

    def write_recordings(self, path) -> bool:
        """The variables asked for with :meth:`record`, as HDF5 (atomically); False if none."""
        if not self._recordings:
            return False
        from ..io import atomic_path, h5_create
        with atomic_path(path) as tmp, h5_create(tmp) as f:
            for (area, pop), (view, variables) in self._recordings.items():
                g = f.require_group(f'{area}/{pop}')
                seg = view.get_data(variables, clear=False).segments[0]
                # PyNN's indices are within the underlying Population; the handle of a
                # model population may be a view of it (Brian2): indices within the handle
                handle = self.populations[area, pop]
                first = int(handle.index_in_grandparent([0])[0]) if hasattr(handle, 'parent') else 0
                if 'spikes' in variables:
                    ids = np.concatenate([np.full(len(st), int(st.annotations['source_index']) - first)
                                          for st in seg.spiketrains] or [np.zeros(0)])
                    times = np.concatenate([st.rescale('ms').magnitude for st in seg.spiketrains]
                                           or [np.zeros(0)])
                    s = g.create_group('spikes')
                    s.create_dataset('node_ids', data=ids.astype(np.uint64))
                    s.create_dataset('times', data=times).attrs['units'] = 'ms'
                for sig in seg.analogsignals:
                    s = g.create_group(sig.name)
                    s.create_dataset('times', data=sig.times.rescale('ms').magnitude).attrs['units'] = 'ms'
                    s.create_dataset('values', data=np.asarray(sig.magnitude)).attrs['units'] = \
                        str(sig.units.dimensionality)
                    ids = np.asarray(sig.array_annotations['channel_index'], np.int64) - first
                    s.create_dataset('node_ids', data=ids.astype(np.uint64))
        return True


def _pynn_counts() -> dict:
    from pyNN.common import Population, Projection as PyNNProjection
    return {'populations': int(Population._nPop), 'projections': int(PyNNProjection._nProj)}
