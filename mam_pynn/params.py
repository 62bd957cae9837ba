"""Default parameters (upstream's names and nesting), deep update, strict validation.

One place for every default. Users pass nested dicts that are deep-updated over
these defaults; an unknown key is a KeyError naming the key and the closest
valid one. File-valued parameters (``K_stable``, ``fullscale_rates``) accept a
name inside the data directory or a path.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
from typing import Any

import numpy as np

AREA_LIST = ['V1', 'V2', 'VP', 'V3', 'V3A', 'MT', 'V4t', 'V4', 'VOT', 'MSTd',
             'PIP', 'PO', 'DP', 'MIP', 'MDP', 'VIP', 'LIP', 'PITv', 'PITd',
             'MSTl', 'CITv', 'CITd', 'FEF', 'TF', 'AITv', 'FST', '7a', 'STPp',
             'STPa', '46', 'AITd', 'TH']
complete_area_list = AREA_LIST  # upstream's name
POPULATION_LIST = ['23E', '23I', '4E', '4I', '5E', '5I', '6E', '6I']
population_list = POPULATION_LIST

SINGLE_NEURON_DICT = {
    'E_L': -65.0,      # mV
    'V_th': -50.0,     # mV
    'V_reset': -65.0,  # mV
    'C_m': 250.0,      # pF
    'tau_m': 10.0,     # ms
    'tau_syn_ex': 0.5,  # ms
    'tau_syn_in': 0.5,  # ms
    't_ref': 2.0,      # ms
}

NEURON_PARAMS = {
    'neuron_model': 'iaf_psc_exp',
    'single_neuron_dict': SINGLE_NEURON_DICT,
    'V0_mean': -150.,
    'V0_sd': 50.,
}

CONNECTION_PARAMS = {
    # name of a .npy file in the data directory, a path, or None (use the raw K)
    'K_stable': 'K_prime_original.npy',
    'replace_cc': False,
    'replace_non_simulated_areas': None,
    'replace_cc_input_source': None,
    'E_specificity': True,
    'g': -11.,
    # None: the mean of the Cragg and O'Kusky estimates, computed from the raw data
    'av_indegree_V1': None,
    'rho_syn': 'constant',
    'fac_nu_ext_5E': 1.125,
    'fac_nu_ext_6E': 1.41666667,
    'fac_nu_ext_TH': 1.2,
    'PSP_e': 0.15,
    'PSP_e_23_4': 0.3,
    'PSP_ext': 0.15,
    'PSC_rel_sd_normal': 0.1,
    'PSC_rel_sd_lognormal': 3.0,
    'cc_weights_factor': 1.9,
    'cc_weights_I_factor': 2.,
    'lognormal_weights': False,
    'lognormal_EE_only': False,
}

DELAY_PARAMS = {
    'delay_e': 1.5,   # ms
    'delay_i': 0.75,  # ms
    'delay_rel': 0.5,
    'interarea_speed': 3.5,  # mm/ms
}

INPUT_PARAMS = {
    'poisson_input': True,
    'syn_type_ext': 'static_synapse',
    'rate_ext': 10.,  # spikes/s
    'dc_stimulus': False,
}

NETWORK_PARAMS = {
    'surface': 1.0,
    'N_scaling': 1.,
    'K_scaling': 1.,
    # name of a JSON file in the data directory or a path; needed when down-scaling
    'fullscale_rates': None,
    'neuron_params': NEURON_PARAMS,
    'connection_params': CONNECTION_PARAMS,
    'delay_params': DELAY_PARAMS,
    'input_params': INPUT_PARAMS,
}

RECORDING_DICT = {
    'areas_recorded': AREA_LIST,
    'record_vm': False,
    'Nrec_vm_fraction': 0.01,
    'spike_dict': {'label': 'spikes', 'start': 0.},
    'vm_dict': {'label': 'vm', 'start': 0., 'stop': 1000., 'interval': 0.1},
}

SIM_PARAMS = {
    'rng_seed': 1,
    'dt': 0.1,          # ms
    't_sim': 10.0,      # ms
    'num_processes': 1,
    'local_num_threads': 1,
    'areas_simulated': AREA_LIST,
    'recording_dict': RECORDING_DICT,
    # mam_pynn additions
    'chunk_ms': 100.,           # simulate in chunks of this length (progress, watchdog)
    'max_mean_rate': 200.,      # spikes/s; above it over a chunk the watchdog stops the run
    'stimulus': [],             # transient stimuli into chosen populations (mam_pynn.stimulus)
}

THEORY_PARAMS = {
    'neuron_params': NEURON_PARAMS,
    'initial_rates': None,
    'initial_rates_iter': None,
    'initial_rates_max': 1000.,
    'T': 50.,
    'dt': 0.1,
    'rec_interval': None,
}

# Keys whose value is a dict of free-form content (not checked key by key).
_FREE_FORM = {'structure'}


def network_defaults() -> dict:
    return copy.deepcopy(NETWORK_PARAMS)


def sim_defaults() -> dict:
    return copy.deepcopy(SIM_PARAMS)


def theory_defaults() -> dict:
    return copy.deepcopy(THEORY_PARAMS)


_NUMBER = (int, float, np.integer, np.floating)
_PATH = (str, os.PathLike)
#: parameters that take other types than their default's (by key name)
_TYPES = {
    'K_stable': (type(None), bool) + _PATH,
    'fullscale_rates': (type(None),) + _PATH,
    'replace_cc_input_source': (type(None),) + _PATH,
    'replace_cc': (bool, str),
    'replace_non_simulated_areas': (type(None), str),
    'av_indegree_V1': (type(None),) + _NUMBER,
    'initial_rates': (type(None), str, list, tuple, np.ndarray),
    'initial_rates_iter': (type(None), int, np.integer),
    'rec_interval': (type(None),) + _NUMBER,
}


def _allowed_types(key, default) -> tuple | None:
    """Types a value of ``key`` may have (None: not checked)."""
    if key in _TYPES:
        return _TYPES[key]
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, _NUMBER):
        return _NUMBER
    if isinstance(default, str):
        return (str,)
    if isinstance(default, (list, tuple)):
        return (list, tuple)
    return None


def _check_type(key, value, default, where: str) -> None:
    types = _allowed_types(key, default)
    if types is None or isinstance(value, types) and not (
            isinstance(value, bool) and bool not in types):
        return
    names = sorted({'null' if t is type(None) else 'number' if t in _NUMBER else
                    'path' if t is os.PathLike else {'str': 'string', 'bool': 'true/false',
                                                     'tuple': 'list'}.get(t.__name__, t.__name__)
                    for t in types})
    raise TypeError(f"parameter {where!r} must be {' or '.join(names)}, "
                    f"got {type(value).__name__} {value!r}")


def check_keys(custom: dict, defaults: dict, path: str = '') -> None:
    """Raise KeyError for any key of ``custom`` that ``defaults`` does not have, and
    TypeError for a value of the wrong type (naming the key)."""
    if not isinstance(custom, dict):
        raise TypeError(f"parameters{' at ' + path if path else ''} must be a dict, "
                        f"got {type(custom).__name__}")
    for key, val in custom.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in defaults:
            close = difflib.get_close_matches(str(key), [str(k) for k in defaults], n=1)
            hint = f"; did you mean {(path + '.' if path else '') + close[0]!r}?" if close else \
                f"; valid keys here: {', '.join(map(str, defaults))}"
            raise KeyError(f"unknown parameter {where!r}{hint}")
        if isinstance(defaults[key], dict) and key not in _FREE_FORM:
            if not isinstance(val, dict):
                raise TypeError(f"parameter {where!r} must be a mapping of its own parameters "
                                f"({', '.join(map(str, defaults[key]))}), got {val!r}")
            check_keys(val, defaults[key], where)
        elif key not in _FREE_FORM:
            _check_type(key, val, defaults[key], where)


def nested_update(d: dict, d2: dict) -> dict:
    """Deep-update ``d`` in place with ``d2`` (upstream's semantics) and return it."""
    for key, val in d2.items():
        if isinstance(val, dict) and isinstance(d.get(key), dict):
            nested_update(d[key], val)
        else:
            d[key] = copy.deepcopy(val)
    return d


def resolve(custom: dict | None, defaults: dict) -> dict:
    """Defaults deep-updated with validated custom parameters."""
    custom = custom or {}
    check_keys(custom, defaults)
    return nested_update(copy.deepcopy(defaults), custom)


def _canonical(obj: Any) -> Any:
    """JSON-able, order-independent form; floats rounded to 12 significant digits."""
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _canonical(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(f"{float(obj):.12g}")
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def content_hash(obj: Any, length: int = 32) -> str:
    """Stable hex digest of a nested parameter structure (the model label)."""
    blob = json.dumps(_canonical(obj), sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
