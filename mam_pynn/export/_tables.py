"""What every exporter needs from a Model, flattened into plain numpy tables.

Everything comes from the network builder's plan (:func:`mam_pynn.network.plan.make_plan`),
so the SONATA and NeuroML writers and ``mam simulate`` share one reading of the science:
who projects to whom with how many synapses, which weights and delays, and which inputs
replace what is not simulated.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import params as P

@dataclass
class Channel:
    """A stationary Poisson input to every neuron of one population."""
    area: str
    pop: str
    rate_hz: float      # total rate seen by each target neuron
    weight_pa: float
    delay_ms: float
    origin: str         # "external", "<mode>:<area>-<pop>" of a replaced source, or "merged"


@dataclass
class NetworkTables:
    areas: list[str]                  # simulated areas, in area_list order
    structure: dict[str, list[str]]   # area -> populations (simulated areas only)
    n: dict[tuple[str, str], int]     # (area, pop) -> neuron number
    row: dict[tuple[str, str], int]   # (area, pop) -> row/column in the Model's matrices
    syn: np.ndarray                   # (254, 254) synapse counts (int), [target row, source row]
    W: np.ndarray                     # (254, 254) mean weight, pA, signed (inhibitory < 0)
    W_sd: np.ndarray                  # (254, 254) pA
    d_mean: np.ndarray                # (254, 254) mean delay, ms
    d_sd: np.ndarray                  # (254, 254) ms
    dc_pa: dict[tuple[str, str], float]
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

    def n_edges(self, target_area: str, source_area: str) -> int:
        """Number of synapses from one area to another (cached per pair)."""
        cache = self.__dict__.setdefault('_n_edges', {})
        key = (target_area, source_area)
        if key not in cache:
            rows = [self.row[(target_area, p)] for p in self.structure[target_area]]
            cols = [self.row[(source_area, p)] for p in self.structure[source_area]]
            cache[key] = int(self.syn[np.ix_(rows, cols)].sum())
        return cache[key]


def network_tables(M, sim_params: dict | None = None, seed: int | None = None) -> NetworkTables:
    """Read a Model (and simulation parameters) into the tables the exporters write.

    Populations, DC drive, projections and inputs come from the network builder's plan
    (:func:`mam_pynn.network.plan.make_plan`), so an export holds the same network as
    ``mam simulate`` builds.
    """
    from ..network.plan import make_plan, merged_poisson
    sim = P.resolve(sim_params or {}, P.sim_defaults())
    prm = M.params
    if prm['connection_params'].get('lognormal_weights'):
        raise NotImplementedError("connection_params.lognormal_weights=True is not exported "
                                  "(normal weights only)")
    plan = make_plan(M, sim)
    if plan.currents:
        raise NotImplementedError(
            "connection_params.replace_non_simulated_areas / replace_cc = 'het_current_nonstat' "
            "cannot be exported (stationary Poisson inputs only: 'hom_poisson_stat' or "
            "'het_poisson_stat')")
    nparams = prm['neuron_params']
    area_list = list(M.area_list)
    row, i = {}, 0
    for a in area_list:
        for p in M.structure[a]:
            row[(a, p)] = i
            i += 1
    tables = {k: np.zeros((len(row), len(row))) for k in ('syn', 'W', 'W_sd', 'd_mean', 'd_sd')}
    for proj in plan.projections:
        at = (row[proj.target], row[proj.source])
        for key, value in (('syn', proj.n), ('W', proj.weight_mean_pa), ('W_sd', proj.weight_sd_pa),
                           ('d_mean', proj.delay_mean_ms), ('d_sd', proj.delay_sd_ms)):
            tables[key][at] = value
    tables['syn'] = tables['syn'].astype(np.int64)

    t = NetworkTables(
        areas=list(plan.areas), structure={a: list(plan.structure[a]) for a in plan.areas},
        n={ps.key: ps.size for ps in plan.populations}, row=row,
        **tables, dc_pa={ps.key: float(ps.i_offset_pa) for ps in plan.populations},
        neuron=dict(nparams['single_neuron_dict']), neuron_model=nparams['neuron_model'],
        V0_mean=float(nparams['V0_mean']), V0_sd=float(nparams['V0_sd']),
        dt=float(sim['dt']), t_sim=float(sim['t_sim']),
        seed=int(sim['rng_seed'] if seed is None else seed))

    # a population rounded down to no neuron can neither send nor receive synapses
    empty = [row[k] for k, n in t.n.items() if n == 0]
    t.syn[empty, :] = 0
    t.syn[:, empty] = 0
    for spec in merged_poisson(plan.poisson):
        if t.n[spec.target]:
            t.channels.append(Channel(*spec.target, spec.rate_hz, spec.weight_pa, spec.delay_ms,
                                      spec.source))
    return t
