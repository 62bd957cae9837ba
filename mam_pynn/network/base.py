"""The seam between the network plan and a simulator: what every backend provides.

A backend turns the entries of a :class:`~mam_pynn.network.plan.NetworkPlan`
into simulator objects and runs them. ``NestBackend`` (nest_fast.py) does it with
NEST's native connection rules and devices under pyNN.nest populations;
``PyNNBackend`` (generic.py) uses only the PyNN API, for any PyNN simulator.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
import warnings

import numpy as np

# pyNN.setup needs a maximum delay up front on NEURON and Brian2 (NEST sizes it itself);
# the MAM's delays, local and inter-area, stay far below it
MAX_DELAY_MS = 1000.0

# The Python-side backends (NEURON, Brian2, generic PyNN on NEST) hold per-synapse arrays
# in numpy and, on NEURON and nest-generic, one Python object per synapse: meant for
# small subsets. Plans with more synapses are refused before anything is built (the
# NEST fast path keeps synapses out of Python). Override per backend with
# ``max_synapses=`` or by changing this constant.
MAX_SYNAPSES_PYTHON_BACKENDS = 2_000_000


# What importing pyNN.nest prints that is harmless here: pyNN tries to compile its optional
# NEST extension (stochastic synapses, which the MAM does not use) with cmake at every import
# and warns when it cannot; NEST 3.10 warns that pyNN uses a deprecated verbosity call.
_HARMLESS_IMPORT_WARNINGS = ('Cannot find nest-config', 'Problem running cmake',
                             'Unable to (compile|install) NEST extensions',
                             r'\s*Provided for backward compatibility only')


@contextlib.contextmanager
def _without_nest_config():
    """PATH without the folders holding nest-config: pyNN then skips building its extension."""
    path = os.environ.get('PATH', '')
    kept = [d for d in path.split(os.pathsep) if not os.path.isfile(os.path.join(d, 'nest-config'))]
    os.environ['PATH'] = os.pathsep.join(kept)
    try:
        yield
    finally:
        os.environ['PATH'] = path


# What pyNN imports but pyNN.nest never uses: libNeuroML, for the morphologies of
# multi-compartment cells (pyNN.morphology, which pyNN.standardmodels imports): ~24 MB
# resident. Hidden while pyNN.nest is imported (pyNN then runs without it), not after.
_NOT_FOR_PYNN_NEST = ('neuroml',)


@contextlib.contextmanager
def _hidden_modules(names):
    """``import`` of these (not yet imported) modules fails inside the block."""
    hidden = [n for n in names if n not in sys.modules]
    for name in hidden:
        sys.modules[name] = None
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def import_pynn(simulator: str):
    """``pyNN.<simulator>``, imported without the harmless noise of pyNN.nest's import
    (its extension build, NEST's deprecation note; the NEST banner is silenced by
    ``PYNEST_QUIET``, which ``mam`` sets) and the modules it does not need; real warnings
    stay visible."""
    if simulator != 'nest':
        return importlib.import_module(f'pyNN.{simulator}')
    with warnings.catch_warnings(), _without_nest_config(), _hidden_modules(_NOT_FOR_PYNN_NEST):
        for message in _HARMLESS_IMPORT_WARNINGS:
            warnings.filterwarnings('ignore', message=message, category=UserWarning)
        return importlib.import_module('pyNN.nest')


def check_python_synapse_limit(plan, backend: str, limit: int | None = None) -> None:
    """Refuse a plan with more synapses than a Python-side backend is meant to build."""
    limit = MAX_SYNAPSES_PYTHON_BACKENDS if limit is None else int(limit)
    if plan.n_synapses > limit:
        raise ValueError(
            f"the {backend} backend builds synapses in Python and is meant for small subsets: "
            f"this network has {plan.n_synapses:,} synapses, above the limit of {limit:,} "
            f"(mam_pynn.network.base.MAX_SYNAPSES_PYTHON_BACKENDS); use backend nest, "
            f"or fewer areas or a smaller scaling")


class Backend:
    """Interface; handles returned by ``create_population`` are backend-specific."""
    name = 'abstract'
    # merge Poisson inputs of equal target, weight and delay (see plan.merged_poisson)
    merge_poisson = False

    def check_plan(self, plan) -> None:
        """Refuse, before anything is built, what this backend cannot build."""

    def setup(self, dt: float, seed: int, threads: int) -> None:
        raise NotImplementedError

    def create_population(self, spec, neuron_params: dict, v0_mean: float, v0_sd: float):
        """One IF_curr_exp population; ``neuron_params`` in NEST units (pA, pF, ms, mV)."""
        raise NotImplementedError

    def connect(self, spec, pre, post) -> None:
        """Exactly ``spec.n`` synapses, sources and targets drawn with replacement."""
        raise NotImplementedError

    def add_poisson(self, spec, post) -> None:
        """An independent Poisson train of ``spec.rate_hz`` into every neuron of ``post``."""
        raise NotImplementedError

    def add_step_current(self, spec, post) -> None:
        raise NotImplementedError

    def reserve_recorders(self, areas: list, start_ms: float) -> None:
        """Called before any population is created, with the areas whose spikes will be
        recorded (NEST creates its recorders there, see nest_fast.RECORDER_SYNAPSE)."""

    def record_spikes(self, area: str, pops: list, start_ms: float) -> None:
        """Record all neurons of ``pops`` (handles, structure order) of one area."""
        raise NotImplementedError

    def record_vm(self, area: str, pops_and_counts: list, vm_dict: dict) -> None:
        """Record the membrane potential of the first n neurons of each (handle, n)."""
        raise NotImplementedError

    def finish_build(self) -> None:
        """Called once after everything is created and connected (build time)."""

    def prepare(self) -> None:
        """Called once before the first ``run``."""

    def run(self, duration_ms: float) -> int:
        """Advance by ``duration_ms``; return the spikes emitted meanwhile by all neurons
        on this process, or -1 when the backend cannot count them cheaply."""
        raise NotImplementedError

    def cleanup(self) -> None:
        """Called once after the last ``run``."""

    def spikes(self, area: str):
        """(node ids local to the area, times in ms) of the recorded spikes, unsorted."""
        raise NotImplementedError

    def vm(self, area: str):
        """(node ids local to the area, times, V_m) of the recorded potentials, or None."""
        return None

    def count_connections(self) -> int:
        raise NotImplementedError

    def pynn_population(self, handle):
        """The PyNN population (or view) of a handle from ``create_population``, for users."""
        return handle

    def recorders(self) -> dict:
        """{area: this backend's spike recorder of the area} (simulator objects)."""
        return dict(self._recorded)

    def connections(self, spec, pre, post) -> dict:
        """The synapses of one planned projection as :func:`connection_arrays`, read from
        the simulator."""
        raise NotImplementedError(f"the {self.name} backend cannot report its connections")

    def stimulus_weight_na(self, weight_pa: float) -> float:
        """A PyNN synaptic weight (nA) that has the effect of ``weight_pa`` in the model."""
        from ..units import pa_to_na
        return float(pa_to_na(weight_pa))

    def process_info(self) -> tuple[int, int]:
        """(number of MPI processes, threads per process)."""
        return 1, 1

    def end(self) -> None:
        pass

    def _area_index(self, area: str, pops: list) -> 'AreaIndex':
        """The :class:`AreaIndex` of ``area``, made from its population handles on first use."""
        index = self.__dict__.setdefault('_index', {})
        if area not in index:
            idx = AreaIndex()
            for pop in pops:
                idx.add(pop.first_id, pop.size)
            index[area] = idx
        return index[area]


def connection_arrays(sources, targets, weights_pa, delays_ms) -> dict:
    """Connections as numpy arrays: source and target indices within their populations,
    weights in pA (signed, the model's unit), delays in ms."""
    return {'sources': np.asarray(sources, np.int64), 'targets': np.asarray(targets, np.int64),
            'weights_pa': np.asarray(weights_pa, float), 'delays_ms': np.asarray(delays_ms, float)}


def lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    """(mu, sigma) of the underlying normal of a lognormal with this mean and SD."""
    mean = abs(mean)
    sigma2 = np.log1p((sd / mean) ** 2)
    return float(np.log(mean) - sigma2 / 2), float(np.sqrt(sigma2))


class AreaIndex:
    """Maps global neuron ids of one area's populations to area-local node ids.

    Populations are stacked in structure order: node id = offset of the
    population in the area + index in the population.
    """

    def __init__(self):
        self.first_gids, self.offsets, self.sizes = [], [], []
        self.size = 0

    def add(self, first_gid: int, size: int) -> None:
        self.first_gids.append(int(first_gid))
        self.offsets.append(self.size)
        self.sizes.append(int(size))
        self.size += int(size)

    def local_ids(self, gids: np.ndarray) -> np.ndarray:
        gids = np.asarray(gids, dtype=np.int64)
        order = np.argsort(self.first_gids)
        firsts = np.asarray(self.first_gids, dtype=np.int64)[order]
        offs = np.asarray(self.offsets, dtype=np.int64)[order]
        k = np.searchsorted(firsts, gids, side='right') - 1
        return (gids - firsts[k] + offs[k]).astype(np.uint64)
