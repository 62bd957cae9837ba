"""Inputs that replace cortico-cortical connections (upstream's three modes).

- ``hom_poisson_stat``: every source population fires at ``rate_ext``;
- ``het_poisson_stat``: stationary rates per source population from a JSON file
  ``{area: {pop: rate_in_spikes_per_s}}`` (``replace_cc_input_source``: a path,
  or the name of a MAM data file such as ``fullscale_rates.json``);
- ``het_current_nonstat``: a rate time series (spikes/s, one value per ms) per
  source population, read from ``<replace_cc_input_source>-<area>-<pop>.npy``.

Loading and checking happen before anything is built or written, so bad input
fails early with an error that names the file, area or population.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

REPLACEMENT_MODES = ('hom_poisson_stat', 'het_poisson_stat', 'het_current_nonstat')


class InputSourceError(ValueError):
    """``replace_cc_input_source`` is missing or malformed."""


def replacement_mode(M, sim_params: dict):
    """(mode, source areas) of the input that replaces cortico-cortical connections."""
    conn = M.params['connection_params']
    simulated = set(sim_params['areas_simulated'])
    if conn['replace_cc']:
        mode, sources = conn['replace_cc'], [a for a in M.area_list if a in simulated]
        what = 'replace_cc'
    elif simulated != set(M.area_list):
        mode = conn['replace_non_simulated_areas']
        sources = [a for a in M.area_list if a not in simulated]
        what = 'replace_non_simulated_areas'
        if mode is None:
            raise ValueError("areas_simulated is a subset of the model's areas: set "
                             "connection_params.replace_non_simulated_areas to one of "
                             f"{', '.join(REPLACEMENT_MODES)}")
    else:
        return None, []
    if mode not in REPLACEMENT_MODES:
        raise ValueError(f"connection_params.{what} = {mode!r} is not a replacement mode; "
                         f"valid: {', '.join(REPLACEMENT_MODES)}")
    return mode, sources


def _source_path(M) -> Path:
    """The configured path; a bare name of a MAM data file (e.g. upstream's
    ``fullscale_rates.json``) is taken from the data directory, like ``fullscale_rates``."""
    src = M.params['connection_params']['replace_cc_input_source']
    if src is None:
        raise InputSourceError("connection_params.replace_cc_input_source is not set; the "
                               "chosen replacement mode reads its input from there")
    path = Path(src).expanduser()
    if not path.exists() and path.name == str(src):
        from ..data import registry, data_file
        if str(src) in registry():
            return data_file(str(src))
    return path


def _check_rate(value, where: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise InputSourceError(f"{where}: rate {value!r} is not a number") from None
    if not math.isfinite(rate) or rate < 0:
        raise InputSourceError(f"{where}: rate {rate} must be finite and >= 0")
    return rate


def load_replacement_input(M, sim_params: dict) -> dict:
    """{source area: {source pop: rate (float) or rate series (array)}} for the active mode."""
    mode, sources = replacement_mode(M, sim_params)
    if mode is None:
        return {}
    rate_ext = float(M.params['input_params']['rate_ext'])
    if mode == 'hom_poisson_stat':
        return {a: {p: rate_ext for p in M.structure[a]} for a in sources}
    path = _source_path(M)
    out = {}
    if mode == 'het_poisson_stat':
        if not path.is_file():
            raise InputSourceError(f"replace_cc_input_source {str(path)!r} does not exist "
                                   "(het_poisson_stat expects a JSON file of rates)")
        try:
            rates = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputSourceError(f"replace_cc_input_source {str(path)!r} is not valid JSON: {err}") \
                from None
        if not isinstance(rates, dict):
            raise InputSourceError(f"{path}: expected a mapping area -> population -> rate")
        for a in sources:
            if not isinstance(rates.get(a), dict):
                raise InputSourceError(f"{path}: no rates for area {a!r}")
            missing = [p for p in M.structure[a] if p not in rates[a]]
            if missing:
                raise InputSourceError(f"{path}: no rate for population {a}-{missing[0]}")
            out[a] = {p: _check_rate(rates[a][p], f"{path} {a}-{p}") for p in M.structure[a]}
        return out
    # het_current_nonstat
    n_steps = int(sim_params['t_sim'])
    for a in sources:
        out[a] = {}
        for p in M.structure[a]:
            fn = Path(f"{path}-{a}-{p}.npy")
            if not fn.is_file():
                raise InputSourceError(f"het_current_nonstat input file {str(fn)!r} does not exist")
            try:
                series = np.load(fn, allow_pickle=False)
            except ValueError as err:
                raise InputSourceError(f"{fn}: not a numpy array file: {err}") from None
            series = np.asarray(series, dtype=float).ravel()
            if len(series) < n_steps or not np.all(np.isfinite(series)) or np.any(series < 0):
                raise InputSourceError(f"{fn}: expected >= {n_steps} finite, non-negative rates "
                                       f"(one per ms of t_sim), got {len(series)} values")
            out[a][p] = series[:n_steps]
    return out
