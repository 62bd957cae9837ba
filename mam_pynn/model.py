"""The Model: one object holding everything later stages read (upstream's ``MultiAreaModel``).

``MultiAreaModel(network_params)`` resolves the parameters strictly over the
defaults, takes the full-scale connectivity (derived from the raw data, cached on
disk), applies the stabilized in-degrees ``K_stable`` and the down-scaling, and
exposes upstream's attributes: nested dicts ``N``, ``K``, ``synapses``, ``W``,
``W_sd``, ``distances`` and the vectorised ``N_vec``, ``K_matrix``, ``syn_matrix``,
``W_matrix``, ``W_sd_matrix``, ``J_matrix``, ``add_DC_drive`` (rows: target
populations, columns: source populations then external).

The ``label`` is a content hash of the parameters and of N, K and the DC drive
(file-valued parameters count through what they change); the resolved parameters are stored under the user cache so that
``MultiAreaModel(label)`` rebuilds the same model.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
import pprint
import sys
from collections import OrderedDict
from functools import cached_property
from pathlib import Path

import numpy as np

from . import connectivity as _conn
from .params import content_hash, network_defaults, resolve
from .structure import (dict_to_vector, matrix_to_dict, structure_vec, vector_to_dict,
                        zero_tiny)

LABEL_SIG_DIGITS = 10  # N and K enter the label rounded to this many significant digits


# --------------------------------------------------------------------------------------
# helpers

def _file_param(value, name: str) -> Path | None:
    """Path of a file-valued parameter: a name in the data directory, or a path."""
    if value is None:
        return None
    if value is True and name == 'connection_params.K_stable':
        raise AssertionError('K_stable=True is resolved by _stabilized_K_path')
    if not isinstance(value, (str, Path)):
        raise TypeError(f"{name} must be a file name or path (store arrays in a file), "
                        f"got {type(value).__name__}")
    from .data import data_dir, data_file, registry
    if str(value) in registry():
        return data_file(str(value))
    path = Path(value).expanduser()
    if path.is_file():
        return path
    candidate = data_dir() / str(value)
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(f"{name}: no file {str(value)!r} (neither a path nor a file in "
                            f"the data directory {data_dir()})")


def _theory_fingerprint() -> str:
    """Hash of the mean-field code (mam_pynn/theory/*.py) that computes K'."""
    h = hashlib.sha256()
    for path in sorted((Path(__file__).parent / 'theory').glob('*.py')):
        h.update(path.name.encode() + b'\0' + path.read_bytes())
    return h.hexdigest()


def _stabilized_K_path(params: dict) -> Path:
    """K' computed by the mean-field stabilization (K_stable=True), cached on disk.

    The stabilization runs on the full-scale network with the raw in-degrees and the
    same other parameters; it takes minutes, so its result is kept under the cache
    directory, keyed by those parameters, the connectivity's cache key (data files and
    derivation code) and the theory code: changing any of them recomputes K'.
    """
    from .io import atomic_path
    base = copy.deepcopy(params)
    base['connection_params']['K_stable'] = None
    base['N_scaling'] = base['K_scaling'] = 1.
    base['fullscale_rates'] = None
    key = content_hash({'params': base, 'connectivity': _conn.cache_key(base),
                        'theory': _theory_fingerprint()})
    path = _conn.cache_dir('K_stable') / f"{key}.npy"
    if not path.is_file():
        from .theory import stabilize
        print(f"K_stable=True: stabilizing the in-degrees (mean-field theory; cached at {path})",
              file=sys.stderr)
        K_prime = stabilize(MultiAreaModel(base))
        with atomic_path(path) as tmp:
            np.save(tmp, K_prime)
    return path


def _array_digest(a: np.ndarray, sig: int = LABEL_SIG_DIGITS) -> str:
    """Platform-independent digest of an array rounded to ``sig`` significant digits."""
    a = np.asarray(a, dtype=float)
    finite = np.isfinite(a) & (a != 0)
    exponent = np.zeros(a.shape, dtype=np.int64)
    exponent[finite] = np.floor(np.log10(np.abs(a[finite]))).astype(np.int64)
    mantissa = np.zeros(a.shape, dtype=np.int64)
    mantissa[finite] = np.rint(a[finite] / 10.0 ** (exponent[finite] - sig + 1)).astype(np.int64)
    h = hashlib.sha256()
    for part in (np.array(a.shape, dtype='<i8'), mantissa.astype('<i8'), exponent.astype('<i8'),
                 np.isnan(a).astype('u1')):
        h.update(part.tobytes())
    return h.hexdigest()


def _positive_number(params: dict, name: str) -> float:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def model_store() -> Path:
    """Folder of the stored model parameters (one ``<label>.json`` per model)."""
    return _conn.cache_dir() / 'models'


def _is_data_file_name(value) -> bool:
    """A file parameter naming a file of the (checksummed) data directory, e.g.
    'fullscale_rates.json': it resolves again from any data directory."""
    from .data import registry
    return isinstance(value, str) and value in registry()


def _stored_copy(path: Path) -> str:
    """Content-addressed copy of a user's file in the model store (its path)."""
    from .io import atomic_path
    data = path.read_bytes()
    dest = model_store() / 'files' / f"{hashlib.sha256(data).hexdigest()}{path.suffix}"
    if not dest.is_file():
        with atomic_path(dest) as tmp:
            tmp.write_bytes(data)
    return str(dest)


def known_labels() -> list[str]:
    return sorted(p.stem for p in model_store().glob('*.json'))


# --------------------------------------------------------------------------------------

class MultiAreaModel:
    """An instance of the multi-area model for given network parameters (or a stored label)."""

    def __init__(self, network_params: dict | str | None = None, theory: bool = False,
                 simulation: bool = False, analysis: bool = False, sim_spec: dict | None = None,
                 theory_spec: dict | None = None, backend: str = 'nest',
                 ana_spec: dict | None = None, use_cache: bool = True):
        """Build the model.

        network_params: overrides of the network defaults (an unknown key is a
            KeyError), or the label of a model made before (stored in ``model_store()``).
        theory / simulation / analysis: also create ``M.theory``
            (``mam_pynn.theory.Theory(M, theory_spec)``), ``M.simulation``
            (``mam_pynn.simulation.Simulation(M, sim_spec, backend=backend)``) and
            ``M.analysis`` (needs the simulation).
        use_cache: read and write the on-disk cache of the full-scale connectivity.
        """
        if isinstance(network_params, str):
            requested_label = network_params
            custom = self._load_stored(network_params)
        elif network_params is None or isinstance(network_params, dict):
            requested_label = None
            custom = copy.deepcopy(network_params or {})
        else:
            raise TypeError(f"network_params must be a dict or a model label (str), "
                            f"got {type(network_params).__name__}")
        self.custom_params = custom
        self.params = resolve(custom, network_defaults())
        self._check_params()

        full = _conn.full_scale_connectivity(self.params, use_cache=use_cache)
        self.area_list = list(full.area_list)
        self.structure = OrderedDict((a, list(full.structure[a])) for a in self.area_list)
        self.structure_reversed = OrderedDict((a, pops[::-1]) for a, pops in self.structure.items())
        self.structure_vec = structure_vec(self.area_list, self.structure)
        self.av_indegree_V1 = full.av_indegree_V1
        self._full = full

        self.N_vec = full.N_vec.copy()
        self.syn_matrix = full.syn_matrix.copy()
        self.K_matrix = full.K_matrix
        self.W_matrix = full.W_matrix.copy()
        self.W_sd_matrix = full.W_sd_matrix.copy()
        if self.K_stable_path is not None:
            self._apply_K_stable()
        self.J_matrix = self.W_matrix * _conn.psc_to_psp_factor(self._neuron)
        self.add_DC_drive = np.zeros_like(self.N_vec)
        self.scaled = self.params['N_scaling'] != 1. or self.params['K_scaling'] != 1.
        if self.scaled:
            self._scale_network()

        self.label = self._make_label()
        if requested_label is not None and requested_label != self.label:
            raise ValueError(
                f"model {requested_label!r}: its stored parameters now give label {self.label!r} "
                f"(the data or the code changed since it was made)")
        self._store()

        if theory:
            self.init_theory(theory_spec or {})
        if simulation:
            self.init_simulation(sim_spec or {}, backend=backend)
        if analysis:
            self.init_analysis(ana_spec or {})

    # ---------------------------------------------------------------- parameters

    @property
    def _neuron(self) -> dict:
        return self.params['neuron_params']['single_neuron_dict']

    def _check_params(self) -> None:
        p = self.params
        _positive_number(p, 'N_scaling')
        _positive_number(p, 'K_scaling')
        _positive_number(p, 'surface')
        _conn._check_derivation_params(p)  # before K_stable=True may start a stabilization
        _conn.check_number(p['input_params']['rate_ext'], 'input_params.rate_ext', '>= 0')
        for holder, key in ((p['connection_params'], 'K_stable'), (p, 'fullscale_rates')):
            if isinstance(holder[key], Path):  # keep the parameters JSON-able
                holder[key] = str(holder[key])
        if p['connection_params']['K_stable'] is True:
            self.K_stable_path = _stabilized_K_path(p)
        else:
            self.K_stable_path = _file_param(p['connection_params']['K_stable'],
                                              'connection_params.K_stable')
        self.fullscale_rates_path = _file_param(p['fullscale_rates'], 'fullscale_rates')
        if (p['N_scaling'] != 1. or p['K_scaling'] != 1.) and self.fullscale_rates_path is None:
            raise ValueError("down-scaling (N_scaling or K_scaling != 1) needs 'fullscale_rates': "
                             "a JSON file of full-scale population rates, e.g. "
                             "'fullscale_rates.json' from the data directory")

    def check_areas(self, areas, what: str = 'area') -> list:
        """Return ``areas`` as a list, or raise ValueError naming an unknown area."""
        if isinstance(areas, str):
            areas = [areas]
        for area in areas:
            if area not in self.area_list:
                close = difflib.get_close_matches(str(area), self.area_list, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else \
                    f"; known areas: {', '.join(self.area_list)}"
                raise ValueError(f"unknown {what} {area!r}{hint}")
        return list(areas)

    # ---------------------------------------------------------------- K_stable, scaling

    def _apply_K_stable(self) -> None:
        """Replace the in-degrees between populations by the stabilized matrix K'."""
        try:
            K_stable = np.load(self.K_stable_path, allow_pickle=False)
        except Exception as err:
            raise ValueError(f"connection_params.K_stable: cannot read {self.K_stable_path} "
                             f"as a .npy array ({err})") from err
        n = len(self.N_vec)
        if K_stable.shape != (n, n):
            raise ValueError(f"connection_params.K_stable must be a ({n}, {n}) matrix "
                             f"(target x source populations), got shape {K_stable.shape}")
        if not np.all(np.isfinite(K_stable)) or np.any(K_stable < 0):
            raise ValueError("connection_params.K_stable must hold finite, non-negative in-degrees")
        self.K_matrix[:, :n] = zero_tiny(K_stable)
        self.syn_matrix = self.K_matrix * self.N_vec[:, None]

    def _scale_network(self) -> None:
        """Down-scale like upstream: N, then weights (with DC compensation), then K and synapses."""
        N_s, K_s = float(self.params['N_scaling']), float(self.params['K_scaling'])
        n = float(np.sum(self.N_vec)) * N_s          # Python floats: inf, not a warning
        syn = float(np.sum(self.syn_matrix)) * N_s * K_s
        if not max(n, syn) < 2.0 ** 63:
            raise ValueError(f"N_scaling = {N_s:g} and K_scaling = {K_s:g} give {n:.3g} neurons "
                             f"and {syn:.3g} synapses: more than a simulator can count (2**63)")
        self.N_vec = self.N_vec * self.params['N_scaling']
        self._adjust_weights_to_K()
        self.K_matrix = self.K_matrix * self.params['K_scaling']
        self.syn_matrix = self.syn_matrix * (self.params['K_scaling'] * self.params['N_scaling'])

    def load_fullscale_rates(self) -> np.ndarray | None:
        """(n,) full-scale population rates (spikes/s) from ``fullscale_rates``, or None."""
        if self.fullscale_rates_path is None:
            return None
        try:
            with open(self.fullscale_rates_path) as f:
                rates = json.load(f)
            return dict_to_vector(rates, self.area_list, self.structure)
        except (KeyError, TypeError, IndexError, ValueError) as err:
            raise ValueError(f"fullscale_rates {self.fullscale_rates_path}: needs a rate for every "
                             f"population of every area ({err!r} missing or invalid)") from err

    def _adjust_weights_to_K(self) -> None:
        """J /= sqrt(K_scaling); a DC drive restores the full-scale mean input.

        Mean input of the full-scale network at the given rates (recurrent plus
        external), times (1 - sqrt(K_scaling)), becomes a constant current, so that
        mean and variance of the input stay as at full scale.
        """
        neuron = self._neuron
        tau_m, C_m = neuron['tau_m'], neuron['C_m']
        rates = self.load_fullscale_rates()
        rate_ext = self.params['input_params']['rate_ext']
        J, K = self.J_matrix, self.K_matrix
        mean_ext = 1e-3 * tau_m * J[:, -1] * K[:, -1] * rate_ext
        mean_rec = 1e-3 * tau_m * (J[:, :-1] * K[:, :-1]) @ rates
        sqrt_K = np.sqrt(self.params['K_scaling'])
        self.J_matrix = J / sqrt_K
        self.add_DC_drive = C_m / tau_m * ((1. - sqrt_K) * (mean_rec + mean_ext))
        self.W_matrix = 1. / _conn.psc_to_psp_factor(neuron) * self.J_matrix

    # ---------------------------------------------------------------- label and store

    def _make_label(self) -> str:
        """Hash of the parameters and of N, K and the DC drive.

        File-valued parameters enter through what they change (K, the DC drive),
        so a copied or moved file gives the same label.
        """
        p = copy.deepcopy(self.params)
        p['connection_params']['K_stable'] = 'stabilized' if self.K_stable_path else None
        p['fullscale_rates'] = None
        return content_hash({'params': p, 'N': _array_digest(self.N_vec),
                             'K': _array_digest(self.K_matrix),
                             'DC': _array_digest(self.add_DC_drive), 'structure': self.structure})

    def _store(self) -> None:
        """Store the parameters under the label so that ``MultiAreaModel(label)`` rebuilds it.

        A user's file parameter (a K_stable matrix, full-scale rates) is stored by content
        (``models/files/<sha256><suffix>``), never by its path: the label ignores paths, so
        the file may since have been moved or deleted. A stored record that differs (an
        older store holding paths) is refreshed.
        """
        path = model_store() / f'{self.label}.json'
        params = copy.deepcopy(self.params)
        for keys, resolved in ((('connection_params', 'K_stable'), self.K_stable_path),
                               (('fullscale_rates',), self.fullscale_rates_path)):
            holder = params
            for k in keys[:-1]:
                holder = holder[k]
            if resolved is not None and holder[keys[-1]] is not True \
                    and not _is_data_file_name(holder[keys[-1]]):
                holder[keys[-1]] = _stored_copy(Path(resolved))
        record = {'label': self.label, 'network_params': params}
        try:
            if path.is_file() and json.loads(path.read_text()) == record:
                return
        except (OSError, ValueError):
            pass  # unreadable or corrupt: rewrite it
        try:
            from .io import atomic_write_json
            atomic_write_json(path, record)
        except OSError:
            pass  # a read-only cache only costs the reload-by-label feature

    @staticmethod
    def _load_stored(label: str) -> dict:
        path = model_store() / f'{label}.json'
        if not path.is_file():
            close = difflib.get_close_matches(label, known_labels(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ''
            raise ValueError(f"no model with label {label!r} in {model_store()}{hint}")
        with open(path) as f:
            return json.load(f)['network_params']

    # ---------------------------------------------------------------- nested dicts

    @cached_property
    def N(self) -> dict:
        """Neurons per population (all 8 per area, 0 where absent) and per area ('total')."""
        d = vector_to_dict(self.N_vec, self.area_list, self.structure)
        if not self.scaled:  # upstream keeps the data's area totals at full scale
            for area, total in zip(self.area_list, self._full.N_total.tolist()):
                d[area]['total'] = total
        return d

    @cached_property
    def K(self) -> dict:
        return matrix_to_dict(self.K_matrix, self.area_list, self.structure, zero=self.scaled)

    @cached_property
    def synapses(self) -> dict:
        return matrix_to_dict(self.syn_matrix, self.area_list, self.structure, zero=self.scaled)

    @cached_property
    def W(self) -> dict:
        return matrix_to_dict(self.W_matrix, self.area_list, self.structure, zero=False)

    @cached_property
    def W_sd(self) -> dict:
        return matrix_to_dict(self.W_sd_matrix, self.area_list, self.structure, external=False,
                              zero=False)

    @cached_property
    def distances(self) -> dict:
        """Median distances between areas in mm (all areas of the data)."""
        return self._full.distances_dict()

    @property
    def distance_matrix(self) -> np.ndarray:
        """(32, 32) distances between the model's areas in mm."""
        return self._full.distance_matrix

    @cached_property
    def K_areas(self) -> dict:
        """Area-level in-degrees: synapses from each source area per neuron of the target area."""
        n = len(self.N_vec)
        areas = np.repeat(np.arange(len(self.area_list)),
                          [len(self.structure[a]) for a in self.area_list])
        onehot = np.zeros((n, len(self.area_list)))
        onehot[np.arange(n), areas] = 1.0
        syn = self.K_matrix * self.N_vec[:, None]
        area_syn = onehot.T @ syn[:, :n] @ onehot
        ext = onehot.T @ syn[:, n]
        totals = np.array([self.N[a]['total'] for a in self.area_list])
        out = {}
        for i, ta in enumerate(self.area_list):
            row = dict(zip(self.area_list, (area_syn[i] / totals[i]).tolist()))
            row['external'] = float(ext[i] / totals[i])
            out[ta] = row
        return out

    # ---------------------------------------------------------------- members

    def init_theory(self, theory_spec: dict | None = None) -> None:
        from .theory import Theory
        self.theory = Theory(self, theory_spec or {})

    def init_simulation(self, sim_spec: dict | None = None, backend: str = 'nest') -> None:
        sim_spec = sim_spec or {}
        if 'areas_simulated' in sim_spec:
            self.check_areas(sim_spec['areas_simulated'], 'area in sim_params.areas_simulated')
        recorded = sim_spec.get('recording_dict', {}).get('areas_recorded')
        if recorded is not None:
            self.check_areas(recorded, 'area in recording_dict.areas_recorded')
        from .simulation import Simulation
        self.simulation = Simulation(self, sim_spec, backend=backend)

    def init_analysis(self, ana_spec: dict | None = None) -> None:
        if not hasattr(self, 'simulation'):
            raise ValueError("analysis=True needs simulation=True (the analysis reads its run)")
        from .analysis import Analysis
        ana_spec = ana_spec or {}
        self.analysis = Analysis(self, self.simulation,
                                 data_list=ana_spec.get('data_list', ['spikes']),
                                 load_areas=ana_spec.get('load_areas'))

    # ---------------------------------------------------------------- misc

    @property
    def n_populations(self) -> int:
        return len(self.N_vec)

    def __str__(self) -> str:
        return f"Multi-area network {self.label} with parameters:\n" + \
            pprint.pformat(self.params, width=1)

    def __repr__(self) -> str:
        return (f"MultiAreaModel(label={self.label!r}, populations={len(self.N_vec)}, "
                f"neurons={self.N_vec.sum():.6g}, synapses={self.syn_matrix[:, :-1].sum():.6g})")

    def __eq__(self, other) -> bool:
        return isinstance(other, MultiAreaModel) and self.label == other.label

    def __hash__(self) -> int:
        return hash(self.label)
