"""What every exporter needs from a Model, flattened into plain numpy tables.

The Model (or any object with its vectorised interface: ``area_list``, ``structure``,
``N_vec``, ``syn_matrix``, ``W_matrix``, ``W_sd_matrix``, ``K_matrix``,
``add_DC_drive``, ``distances``, ``params``) is read once here, so the SONATA and
NeuroML writers share one reading of the science: who projects to whom with how
many synapses, which weights and delays, and which inputs replace what is not
simulated.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import params as P

# NEST's default delay of static_synapse (ms): the delay upstream's Poisson
# generators are connected with (it passes no delay).
EXTERNAL_DELAY_MS = 1.0


@dataclass
class Channel:
    """A stationary Poisson input to every neuron of one population."""
    area: str
    pop: str
    rate_hz: float      # total rate seen by each target neuron
    weight_pa: float
    delay_ms: float
    origin: str         # 'external' or the replaced 'area/pop' (joined by '+')


@dataclass
class NetworkTables:
    areas: list[str]                  # simulated areas, in area_list order
    structure: dict[str, list[str]]   # area -> populations (simulated areas only)
    n: dict[tuple[str, str], int]     # (area, pop) -> neuron number
    row: dict[tuple[str, str], int]   # (area, pop) -> row/column in the Model's matrices
    syn: np.ndarray                   # (254, 254) synapse counts (int)
    W: np.ndarray                     # (254, 254) pA
    W_sd: np.ndarray                  # (254, 254) pA
    dc_pa: dict[tuple[str, str], float]
    distances: dict
    delay_params: dict
    neuron: dict                      # single_neuron_dict (NEST names/units)
    neuron_model: str
    V0_mean: float
    V0_sd: float
    dt: float
    t_sim: float
    seed: int
    channels: list[Channel] = field(default_factory=list)

    def pops(self):
        """(area, pop) pairs of the simulated network, in structure order."""
        return [(a, p) for a in self.areas for p in self.structure[a]]

    def area_offsets(self, area: str) -> dict[str, int]:
        """First node id (within the area's node population) of each population."""
        offsets, start = {}, 0
        for p in self.structure[area]:
            offsets[p] = start
            start += self.n[(area, p)]
        return offsets

    def area_size(self, area: str) -> int:
        return sum(self.n[(area, p)] for p in self.structure[area])

    def mean_delay(self, target_area: str, source_area: str, source_pop: str) -> float:
        if target_area == source_area:
            key = 'delay_e' if source_pop.endswith('E') else 'delay_i'
            return float(self.delay_params[key])
        return float(self.distances[target_area][source_area]) / float(self.delay_params['interarea_speed'])

    def n_edges(self, target_area: str, source_area: str) -> int:
        """Number of synapses from one area to another (cached per pair)."""
        cache = self.__dict__.setdefault('_n_edges', {})
        key = (target_area, source_area)
        if key not in cache:
            rows = [self.row[(target_area, p)] for p in self.structure[target_area]]
            cols = [self.row[(source_area, p)] for p in self.structure[source_area]]
            cache[key] = int(self.syn[np.ix_(rows, cols)].sum())
        return cache[key]


def _replace_rates(kind, cparams, area_list, structure, rate_ext):
    """Rates (spikes/s) of the populations that stand in for replaced areas."""
    if kind == 'hom_poisson_stat':
        return {a: {p: float(rate_ext) for p in structure[a]} for a in area_list}
    if kind == 'het_poisson_stat':
        source = cparams.get('replace_cc_input_source')
        if source is None:
            raise ValueError("'het_poisson_stat' needs connection_params.replace_cc_input_source "
                             "(a JSON file of rates {area: {pop: rate}})")
        with open(source) as f:
            return json.load(f)
    raise NotImplementedError(
        f"replacing areas by {kind!r} cannot be exported (stationary Poisson inputs only: "
        "'hom_poisson_stat' or 'het_poisson_stat')")


def network_tables(M, sim_params: dict | None = None, seed: int | None = None) -> NetworkTables:
    """Read a Model (and simulation parameters) into the tables the exporters write."""
    sim = P.resolve(sim_params or {}, P.sim_defaults())
    prm = M.params
    cparams, dparams, iparams = prm['connection_params'], prm['delay_params'], prm['input_params']
    nparams = prm['neuron_params']
    area_list = list(M.area_list)
    structure_all = {a: list(M.structure[a]) for a in area_list}
    unknown = [a for a in sim['areas_simulated'] if a not in structure_all]
    if unknown:
        raise ValueError(f"areas_simulated names unknown areas {unknown}; valid: {area_list}")
    areas = [a for a in area_list if a in set(sim['areas_simulated'])]
    if cparams.get('lognormal_weights'):
        raise NotImplementedError("lognormal_weights=True is not exported (normal weights only)")

    row, i = {}, 0
    for a in area_list:
        for p in structure_all[a]:
            row[(a, p)] = i
            i += 1
    N_vec = np.asarray(M.N_vec, dtype=float)
    syn_full = np.asarray(M.syn_matrix, dtype=float)
    if syn_full.shape != (len(row), len(row) + 1):
        raise ValueError(f"syn_matrix has shape {syn_full.shape}, expected {(len(row), len(row) + 1)}")
    K_ext = np.asarray(M.K_matrix, dtype=float)[:, -1]
    W_full = np.asarray(M.W_matrix, dtype=float)
    dc = np.asarray(M.add_DC_drive, dtype=float)
    tau_syn = float(nparams['single_neuron_dict']['tau_syn_ex'])
    rate_ext = float(iparams['rate_ext'])

    t = NetworkTables(
        areas=areas, structure={a: structure_all[a] for a in areas},
        n={k: int(N_vec[r]) for k, r in row.items()}, row=row,
        syn=syn_full[:, :-1].astype(np.int64), W=W_full[:, :-1],
        W_sd=np.asarray(M.W_sd_matrix, dtype=float)[:, :-1],
        dc_pa={}, distances=M.distances, delay_params=dict(dparams),
        neuron=dict(nparams['single_neuron_dict']), neuron_model=nparams['neuron_model'],
        V0_mean=float(nparams['V0_mean']), V0_sd=float(nparams['V0_sd']),
        dt=float(sim['dt']), t_sim=float(sim['t_sim']),
        seed=int(sim['rng_seed'] if seed is None else seed))

    # a population rounded down to no neuron can neither send nor receive synapses
    empty = [r for k, r in row.items() if t.n[k] == 0]
    t.syn[empty, :] = 0
    t.syn[:, empty] = 0

    poisson = bool(iparams['poisson_input'])
    for a in areas:
        for p in t.structure[a]:
            r = row[(a, p)]
            w_ext = float(W_full[r, -1])
            t.dc_pa[(a, p)] = float(dc[r])
            if poisson:
                t.channels.append(Channel(a, p, rate_ext * K_ext[r], w_ext, EXTERNAL_DELAY_MS, 'external'))
            else:  # mean external drive as a current, as upstream does
                t.dc_pa[(a, p)] += K_ext[r] * w_ext * tau_syn * 1e-3 * rate_ext

    # inputs standing in for areas that are not simulated (or for all cc input)
    replace_cc = cparams.get('replace_cc')
    kind_nonsim = cparams.get('replace_non_simulated_areas')
    replaced = {}
    for ta in areas:
        if replace_cc:
            replaced[ta] = ([sa for sa in areas if sa != ta], replace_cc)
        else:
            others = [sa for sa in area_list if sa not in areas]
            if others and not kind_nonsim:
                raise ValueError("a subset of areas is simulated: set "
                                 "connection_params.replace_non_simulated_areas (e.g. 'hom_poisson_stat')")
            replaced[ta] = (others, kind_nonsim)
    rate_cache = {}
    for ta in areas:
        sources, kind = replaced[ta]
        if not sources:
            continue
        if kind not in rate_cache:
            rate_cache[kind] = _replace_rates(kind, cparams, area_list, structure_all, rate_ext)
        rates = rate_cache[kind]
        for tp in t.structure[ta]:
            merged = {}   # (weight, delay) -> [rate, origins]
            N_t = N_vec[row[(ta, tp)]]
            for sa in sources:
                delay = t.mean_delay(ta, sa, 'E')
                for sp in structure_all[sa]:
                    s = syn_full[row[(ta, tp)], row[(sa, sp)]]
                    if s <= 0:
                        continue
                    key = (round(float(W_full[row[(ta, tp)], row[(sa, sp)]]), 9), round(delay, 9))
                    m = merged.setdefault(key, [0.0, []])
                    m[0] += s / N_t * float(rates[sa][sp])
                    m[1].append(f"{sa}/{sp}")
            for (w, d), (rate, origins) in merged.items():
                t.channels.append(Channel(ta, tp, rate, w, d, '+'.join(origins)))
    return t
