"""NEURON backend: pyNN.neuron with mechanisms compiled once, numpy-drawn synapses.

What this adds to the generic PyNN path, and why (found with pyNN 0.13 and
NEURON 9.0.2; no timing below is measured by a script here):

- pyNN.neuron compiles its NMODL files (``nrnivmodl``, tens of seconds) into its own
  install directory on first import, which fails on a read-only install. Here
  they are compiled once into the user cache (keyed by the NEURON version and
  the .mod sources) and loaded before ``pyNN.neuron`` is imported, so no run
  after the first compiles anything.
- pyNN.neuron seeds every ``SpikeSourcePoisson`` with ``native_rng_baseseed``
  (default 0), not with PyNN's ``rng_seed``: without passing the master seed,
  every run would get the same Poisson drive whatever its seed.
- NEURON integrates the membrane with fixed-step backward Euler while the
  exponential synaptic current decays exactly (``cnexp``): one input of weight w
  then injects the charge w dt / (1 - exp(-dt/tau_syn)) instead of w tau_syn,
  10 % more at dt = 0.1 ms, tau_syn = 0.5 ms, so the mean input current is 10 % too
  large (validation/v1_v2_neuron_uncorrected/report.json, V1+V2 over 5 seeds, without
  the correction: population rates 1.3 to 2.2 times NEST's, 1.6 times on average,
  while the corrected run agrees, validation/v1_v2). Weights are therefore scaled by
  tau_syn (1 - exp(-dt/tau_syn)) / dt, which makes the charge per input, and so
  the mean and variance of the input current, those of the exact solution that
  NEST and Brian2 compute. ``NeuronBackend(charge_correction=False)`` or the
  environment variable ``MAM_NEURON_CHARGE_CORRECTION=0`` turns it off (to see the
  difference, e.g. with ``mam validate``).
- NEURON fires on an upward crossing of the threshold only: a neuron whose
  initial V_m (drawn from N(V0_mean, V0_sd)) lies at or above threshold would
  not fire until it first dropped below, whereas NEST and Brian2 fire it in the
  first step and reset it. Such neurons start at V_reset here, the state right
  after that first spike (the spike itself, at t = dt, is not emitted; about 2 %
  of neurons with the MAM's defaults, inside the initial transient); the count is
  printed.
- Synapses are drawn in numpy (:mod:`.drawing`: NEST's rules, delays on the
  time grid) and connected one target at a time; Poisson inputs of a population
  with equal weight and delay are merged into one train of the summed rate
  (exact), so each population gets one source population per input kind.
- pyNN.neuron's Poisson sources share one random stream per rank, seeded with the rank:
  their spikes would change with the number of ranks. Each source gets its own Random123
  stream keyed by its global id and the seed instead, so 1 and 2 ranks give the same
  spikes (tests/mpi), as on NEST.
- Under MPI, NEURON's ``pc.psolve`` refuses connections between ranks whose delay is
  not longer than dt; every delay gets a margin of ``DELAY_MARGIN_MS`` (1e-6 ms), which
  moves no spike (see the constant).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..units import if_curr_exp_params, pa_to_na
from .base import MAX_DELAY_MS
from ..connectivity import cache_dir
from .drawing import draw_projection, on_grid
from .generic import PyNNBackend

# NEURON's parallel solver (pc.psolve, fixed step) refuses a minimum delay between ranks
# that is not longer than dt (it tests mindelay - 1e-10 < dt: "mindelay is 0 (or less
# than dt for fixed step method)"), while delays here lie on the dt grid down to dt
# itself, as in NEST. Every delay is lengthened by this margin, far below dt / 2, so each
# event still arrives in the same time step (tests/network/test_backends.py checks that
# spikes are identical with and without it).
DELAY_MARGIN_MS = 1e-6


def _pynn_mechanism_dir() -> Path:
    spec = importlib.util.find_spec('pyNN')
    if spec is None or spec.origin is None:
        raise ImportError("pyNN is not installed; the neuron backend needs pyNN 0.13 and NEURON")
    return Path(spec.origin).parent / 'neuron' / 'nmodl'


def _compiled_lib(path: Path):
    for arch in (platform.machine(), 'x86_64', 'arm64', 'aarch64', 'i686'):
        lib = path / arch / 'libnrnmech.so'
        if lib.exists():
            return lib
    return None


def _nrnivmodl() -> str:
    exe = Path(sys.executable).parent / 'nrnivmodl'
    found = str(exe) if exe.exists() else shutil.which('nrnivmodl')
    if not found:
        raise RuntimeError("nrnivmodl (part of NEURON) not found next to the Python "
                           "interpreter nor on PATH; cannot compile pyNN's NEURON mechanisms")
    return found


def mechanisms_dir() -> Path:
    """The directory holding pyNN's mechanisms compiled for this NEURON (compiled on first use)."""
    import neuron
    src = _pynn_mechanism_dir()
    mods = sorted(src.glob('*.mod'))
    digest = hashlib.sha256(neuron.__version__.encode())
    for mod in mods:
        digest.update(mod.name.encode() + mod.read_bytes())
    target = cache_dir('neuron-mechanisms') / digest.hexdigest()[:16]
    if _compiled_lib(target):
        return target
    print(f"compiling pyNN's NEURON mechanisms once into {target} (may take a minute)",
          file=sys.stderr, flush=True)
    work = Path(tempfile.mkdtemp(prefix='build-', dir=target.parent))
    try:
        for mod in mods:
            shutil.copy2(mod, work / mod.name)
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        res = subprocess.run([_nrnivmodl()], cwd=work, env=env, capture_output=True, text=True)
        if res.returncode != 0 or not _compiled_lib(work):
            raise RuntimeError(f"nrnivmodl failed in {work}:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
        os.chmod(work, 0o755)               # mkdtemp made it private
        try:
            os.replace(work, target)        # atomic: a concurrent build may have won
        except OSError:
            if not _compiled_lib(target):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def load_mechanisms() -> None:
    """Load pyNN's mechanisms from the cache so that importing pyNN.neuron compiles nothing."""
    import neuron
    if 'pyNN.neuron.simulator' in sys.modules:      # pyNN already loaded its own
        return
    src = str(_pynn_mechanism_dir())
    if src in neuron.nrn_dll_loaded:
        return
    if _compiled_lib(Path(src)):                    # compiled in the install: pyNN loads it
        return
    path = str(mechanisms_dir())
    if path not in neuron.nrn_dll_loaded and not neuron.load_mechanisms(path):
        raise RuntimeError(f"could not load NEURON mechanisms from {path}")
    neuron.nrn_dll_loaded.append(src)               # tell pyNN they are loaded


def charge_factor(tau_syn_ms: float, dt_ms: float) -> float:
    """Weight scale that makes NEURON's fixed-step charge per input equal w * tau_syn."""
    return float(tau_syn_ms * -np.expm1(-dt_ms / tau_syn_ms) / dt_ms)


def drawn_connector_class():
    """A PyNN connector that makes exactly the given (source, target, weight, delay) lists."""
    from pyNN.connectors import Connector

    class DrawnConnector(Connector):
        """Connections given as arrays (PyNN units: nA, ms), connected per target."""
        parameter_names = ()

        def __init__(self, sources, targets, weights, delays):
            super().__init__(safe=False)
            self.sources, self.targets = np.asarray(sources), np.asarray(targets)
            self.weights = np.asarray(weights, float)
            self.delays = np.asarray(delays, float) + DELAY_MARGIN_MS

        def connect(self, projection):
            local = np.asarray(projection.post._mask_local, bool)   # MPI: this rank's targets
            order = np.argsort(self.targets, kind='stable')
            tgt = self.targets[order]
            bounds = np.flatnonzero(np.diff(tgt)) + 1
            for chunk in np.split(order, bounds):
                if chunk.size and local[self.targets[chunk[0]]]:
                    projection._convergent_connect(self.sources[chunk], int(self.targets[chunk[0]]),
                                                   weight=self.weights[chunk],
                                                   delay=self.delays[chunk])

    return DrawnConnector


#: third Random123 key of the Poisson sources' streams (first: global id, second: seed)
POISSON_STREAM_ID = 0x504F


class NeuronBackend(PyNNBackend):
    """pyNN.neuron for small subsets (see the module docstring)."""

    def __init__(self, charge_correction: bool | None = None, max_synapses: int | None = None):
        if charge_correction is None:
            flag = os.environ.get('MAM_NEURON_CHARGE_CORRECTION', '1').strip().lower()
            if flag not in ('0', '1', 'true', 'false', 'on', 'off'):
                raise ValueError(f"MAM_NEURON_CHARGE_CORRECTION={flag!r}; use 1 or 0")
            charge_correction = flag in ('1', 'true', 'on')
        try:      # as pyNN.neuron does: MPI (if any) is initialised before NEURON is imported
            from mpi4py import MPI  # noqa: F401
        except ImportError:
            pass
        load_mechanisms()
        with contextlib.redirect_stdout(io.StringIO()):  # "Mechanisms already loaded" notice
            super().__init__('neuron', max_synapses)
        self.name = 'neuron'
        self.charge_correction = bool(charge_correction)
        self._DrawnConnector = drawn_connector_class()
        self._pending_poisson = {}
        self._tau_syn = None
        self._projections = []
        self._started_at_reset = [0, 0]
        self._poisson_streams = []   # NEURON's Random objects must outlive the run

    def setup(self, dt, seed, threads):
        if int(threads) > 1:
            print(f"neuron backend: runs on one thread per process (local_num_threads = {threads} "
                  "is ignored)", file=sys.stderr, flush=True)
        # PyNN's rng_seed does not reach NEURON's NetStims: native_rng_baseseed does
        self.sim.setup(timestep=dt, min_delay=dt, max_delay=MAX_DELAY_MS,
                       native_rng_baseseed=int(seed), rng_seed=int(seed))
        self.dt = float(dt)
        self.seed = int(seed)
        self.rng = self._NumpyRNG(seed=int(seed))
        self.np_rng = np.random.default_rng([int(seed), 0x4E52])

    def create_population(self, spec, neuron_params, v0_mean, v0_sd):
        self._tau_syn = (float(neuron_params['tau_syn_ex']), float(neuron_params['tau_syn_in']))
        params = if_curr_exp_params({**neuron_params, 'I_e': spec.i_offset_pa})
        n = int(spec.size)
        v0 = self.np_rng.normal(v0_mean, v0_sd, n) if v0_sd > 0 else np.full(n, float(v0_mean))
        above = v0 >= params['v_thresh']
        v0[above] = params['v_reset']
        self._started_at_reset[0] += int(above.sum())
        self._started_at_reset[1] += n
        return self.sim.Population(n, self.sim.IF_curr_exp(**params), initial_values={'v': v0},
                                   label=f"{spec.area}-{spec.pop}")

    def _charge_factors(self, weights):
        """Per weight, the charge correction of its receptor (by sign; 1 when off)."""
        if not self.charge_correction:
            return np.ones(np.shape(weights))
        fe, fi = (charge_factor(t, self.dt) for t in self._tau_syn)
        return np.where(np.asarray(weights) < 0, fi, fe)

    def _weights_na(self, weights_pa):
        """pA -> nA, times the fixed-step charge correction of the receptor (by sign)."""
        w = pa_to_na(np.asarray(weights_pa, float))
        return w * self._charge_factors(w)

    def _model_weight_pa(self, weights_na):
        """NEURON's corrected weights (nA) back in the model's pA."""
        return super()._model_weight_pa(np.asarray(weights_na, float) / self._charge_factors(weights_na))

    def stimulus_weight_na(self, weight_pa):
        return float(self._weights_na([weight_pa])[0])

    def connections(self, spec, pre, post):
        c = super().connections(spec, pre, post)
        c['delays_ms'] = c['delays_ms'] - DELAY_MARGIN_MS
        return c

    def connect(self, spec, pre, post):
        self._flush_poisson()
        drawn = draw_projection(spec, pre.size, post.size, self.dt, self.np_rng)
        conn = self._DrawnConnector(drawn.sources, drawn.targets, self._weights_na(drawn.weights_pa),
                                    drawn.delays_ms)
        self._projections.append(self.sim.Projection(pre, post, conn, self.sim.StaticSynapse(),
                                                     receptor_type=self._receptor(spec.sign)))
        self._pairs[(spec.source, spec.target)] = self._projections[-1]

    def count_connections(self):
        """Synapses between model neurons, counted from pyNN.neuron's connection objects."""
        return int(sum(len(p) for p in self._projections))

    def add_poisson(self, spec, post):
        key = id(post)
        self._pending_poisson.setdefault(key, (post, []))[1].append(spec)

    def _flush_poisson(self):
        """One SpikeSourcePoisson population per target and weight sign, made of all its
        inputs (already merged by the builder; neuron k of input g drives target neuron k)."""
        for post, specs in self._pending_poisson.values():
            rates = np.array([s.rate_hz for s in specs], float)
            weights = np.array([s.weight_pa for s in specs], float)
            delays = on_grid([s.delay_ms for s in specs], self.dt)
            for negative in (False, True):
                sel = np.flatnonzero(((weights < 0) == negative) & (rates > 0))
                if sel.size == 0:
                    continue
                n = post.size
                src = self.sim.Population(n * sel.size,
                                          self.sim.SpikeSourcePoisson(rate=np.repeat(rates[sel], n)),
                                          label=f"{post.label}<-poisson")
                self._own_streams(src)
                conn = self._DrawnConnector(np.arange(n * sel.size), np.tile(np.arange(n), sel.size),
                                            np.repeat(self._weights_na(weights[sel]), n),
                                            np.repeat(delays[sel], n))
                self.sim.Projection(src, post, conn, self.sim.StaticSynapse(),
                                    receptor_type=self._receptor(-1.0 if negative else 1.0))
        self._pending_poisson = {}

    def _own_streams(self, sources):
        """Give each local Poisson source its own Random123 stream, keyed by its global id
        and the master seed: pyNN.neuron makes all sources of a rank share one stream seeded
        by the rank, so spikes would depend on how the network is split over ranks."""
        from neuron import h
        for cell_id in sources.local_cells:
            stream = h.Random()
            stream.Random123(int(cell_id), self.seed, POISSON_STREAM_ID)
            stream.negexp(1)
            cell_id._cell.noiseFromRandom(stream)
            self._poisson_streams.append(stream)

    def finish_build(self):
        self._flush_poisson()
        moved, total = self._started_at_reset
        if moved:
            print(f"neuron backend: {moved} of {total} neurons start at V_reset, their initial V_m "
                  f"being at or above threshold (NEURON fires on upward crossings only)",
                  file=sys.stderr, flush=True)
            self._started_at_reset = [0, 0]

    def prepare(self):
        self._flush_poisson()

    def process_info(self):
        return int(self.sim.num_processes()), 1
