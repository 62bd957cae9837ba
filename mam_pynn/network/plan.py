"""What to build: the network of one simulation as plain data, no simulator.

A :class:`NetworkPlan` lists every population, projection and input source with
the numbers a backend needs (NEST units: pA, ms, spikes/s), derived from the
Model's vectorised arrays and the simulation parameters, following upstream's
simulation semantics (areas_simulated, replace_non_simulated_areas, replace_cc).
Backends only translate this list; the science lives here, once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .inputs import load_replacement_input, replacement_mode

# upstream connects the Poisson generators without a delay, i.e. NEST's default
EXTERNAL_DELAY_MS = 1.0

PopKey = tuple  # (area, population)


@dataclass(frozen=True)
class PopulationSpec:
    area: str
    pop: str
    size: int
    i_offset_pa: float          # DC drive (model DC + replaced Poisson drive)

    @property
    def key(self) -> PopKey:
        return (self.area, self.pop)


@dataclass(frozen=True)
class ProjectionSpec:
    """``n`` synapses drawn with replacement between two populations."""
    source: PopKey
    target: PopKey
    n: int
    weight_mean_pa: float       # signed
    weight_sd_pa: float
    lognormal: bool
    delay_mean_ms: float
    delay_sd_ms: float
    cortico_cortical: bool

    @property
    def sign(self) -> float:
        return -1.0 if self.weight_mean_pa < 0 else 1.0


@dataclass(frozen=True)
class PoissonSpec:
    """Each target neuron gets its own Poisson train of ``rate_hz``."""
    target: PopKey
    rate_hz: float
    weight_pa: float
    delay_ms: float
    source: str                 # 'external' or '<mode>:<source area>-<source pop>'


@dataclass(frozen=True)
class StepCurrentSpec:
    """The same piecewise-constant current into every neuron of ``target``."""
    target: PopKey
    times_ms: np.ndarray
    amplitudes_pa: np.ndarray
    source: str


@dataclass
class NetworkPlan:
    areas: list                 # simulated areas, in area_list order
    structure: dict             # area -> populations (simulated areas only)
    neuron_params: dict         # NEST single_neuron_dict (pA, pF, ms, mV)
    v0_mean: float
    v0_sd: float
    dt: float
    populations: list = field(default_factory=list)
    projections: list = field(default_factory=list)
    poisson: list = field(default_factory=list)
    currents: list = field(default_factory=list)

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations)

    @property
    def n_synapses(self) -> int:
        return sum(p.n for p in self.projections)


def check_areas(areas, area_list, what: str) -> list:
    """Validated list of area names (clear error for an unknown one)."""
    if isinstance(areas, str) or not isinstance(areas, (list, tuple)):
        raise TypeError(f"{what} must be a list of area names, got {areas!r}")
    if not areas and what.endswith('areas_simulated'):
        raise ValueError(f"{what} is empty: simulate at least one area")
    unknown = [a for a in areas if not isinstance(a, str) or a not in area_list]
    if unknown:
        raise ValueError(f"unknown area {unknown[0]!r} in {what}; valid areas: {', '.join(area_list)}")
    return [a for a in area_list if a in set(areas)]


def _row_index(structure) -> dict:
    index, i = {}, 0
    for area, pops in structure.items():
        for pop in pops:
            index[(area, pop)] = i
            i += 1
    return index


def lognormal_pair(target_pop: str, source_pop: str, conn: dict) -> bool:
    """Upstream's rule for which weights are lognormal."""
    if not conn['lognormal_weights']:
        return False
    return (not conn['lognormal_EE_only']) or ('E' in target_pop and 'E' in source_pop)


def make_plan(M, sim_params: dict, input_source=None) -> NetworkPlan:
    """The network of one simulation of model ``M`` with resolved ``sim_params``.

    ``input_source`` is the already loaded replacement input (see
    :func:`mam_pynn.network.inputs.load_replacement_input`); loaded here when None.
    """
    p = M.params
    conn, delays, inp = p['connection_params'], p['delay_params'], p['input_params']
    nrn = p['neuron_params']
    dt = float(sim_params['dt'])
    areas = check_areas(sim_params['areas_simulated'], list(M.area_list), 'areas_simulated')
    structure = {a: list(M.structure[a]) for a in areas}
    row = _row_index(M.structure)
    plan = NetworkPlan(areas=areas, structure=structure,
                       neuron_params=dict(nrn['single_neuron_dict']),
                       v0_mean=float(nrn['V0_mean']), v0_sd=float(nrn['V0_sd']), dt=dt)
    if input_source is None:
        input_source = load_replacement_input(M, sim_params)

    N, syn = np.asarray(M.N_vec, float), np.asarray(M.syn_matrix, float)
    W, W_sd = np.asarray(M.W_matrix, float), np.asarray(M.W_sd_matrix, float)
    K_ext, W_ext = np.asarray(M.K_matrix, float)[:, -1], W[:, -1]
    dc = np.asarray(M.add_DC_drive, float)
    rate_ext = float(inp['rate_ext'])
    tau_syn_ex = float(nrn['single_neuron_dict']['tau_syn_ex'])

    # populations and the external drive
    for area in areas:
        for pop in structure[area]:
            i = row[(area, pop)]
            i_offset = dc[i]
            if inp['poisson_input']:
                plan.poisson.append(PoissonSpec((area, pop), K_ext[i] * rate_ext, W_ext[i],
                                                EXTERNAL_DELAY_MS, 'external'))
            else:  # the mean current of the Poisson drive (rate in 1/ms)
                i_offset += K_ext[i] * W_ext[i] * tau_syn_ex * rate_ext * 1e-3
            plan.populations.append(PopulationSpec(area, pop, int(N[i]), float(i_offset)))

    # projections between simulated areas (and within them); pairs found with numpy,
    # since only ~10 % of the 65 000 population pairs of the full model have synapses
    replace_cc = conn['replace_cc']
    keys = [(a, p) for a in areas for p in structure[a]]
    rows = np.array([row[k] for k in keys], dtype=int)
    area_idx = np.array([areas.index(a) for a, _ in keys])
    dist = np.array([[M.distances[t][s] for s in areas] for t in areas], dtype=float)
    n_matrix = np.trunc(syn[np.ix_(rows, rows)])
    same_area = area_idx[:, None] == area_idx[None, :]
    pairs = (n_matrix > 0) & (same_area if replace_cc else True)
    for ti, si in zip(*np.nonzero(pairs)):
        (t_area, t_pop), (s_area, s_pop) = keys[ti], keys[si]
        i, j = rows[ti], rows[si]
        local = bool(same_area[ti, si])
        if local:
            d = delays['delay_e'] if 'E' in s_pop else delays['delay_i']
        else:
            d = dist[area_idx[ti], area_idx[si]] / delays['interarea_speed']
        plan.projections.append(ProjectionSpec(
            (s_area, s_pop), (t_area, t_pop), int(n_matrix[ti, si]), float(W[i, j]),
            float(W_sd[i, j]), lognormal_pair(t_pop, s_pop, conn), float(d),
            float(d * delays['delay_rel']), not local))

    # replaced cortico-cortical input (sources: simulated areas for replace_cc, else the others)
    mode, sources = replacement_mode(M, sim_params)
    for t_area in areas:
        for s_area in sources:
            if s_area == t_area:
                continue
            delay = M.distances[t_area][s_area] / delays['interarea_speed']
            for t_pop in structure[t_area]:
                for s_pop in M.structure[s_area]:
                    i, j = row[(t_area, t_pop)], row[(s_area, s_pop)]
                    if syn[i, j] <= 0:
                        continue
                    K = syn[i, j] / N[i]
                    tag = f"{mode}:{s_area}-{s_pop}"
                    signal = input_source[s_area][s_pop]
                    if mode == 'het_current_nonstat':
                        times = dt + np.arange(len(signal), dtype=float) + delay
                        times = np.round(times / dt) * dt
                        amps = K * W[i, j] * tau_syn_ex * np.asarray(signal, float) * 1e-3
                        plan.currents.append(StepCurrentSpec((t_area, t_pop), times, amps, tag))
                    else:
                        plan.poisson.append(PoissonSpec((t_area, t_pop), K * float(signal),
                                                        float(W[i, j]), float(delay), tag))
    return plan


def merged_poisson(specs: list, dt: float | None = None) -> list:
    """Poisson inputs with the same target, weight and delay merged into one.

    The superposition of independent Poisson trains is a Poisson train with the
    summed rate, so the network is statistically the same with fewer sources
    (the PyNN paths make one source neuron per target neuron and input). With
    ``dt``, delays are first put on the time grid as the simulators do (so inputs
    whose delays round alike merge too); without it they must be equal.
    """
    from .drawing import on_grid
    merged: dict = {}
    for p in specs:
        if p.rate_hz < 0:
            raise ValueError(f"negative Poisson rate {p.rate_hz} for {p.target} from {p.source}")
        delay = float(p.delay_ms) if dt is None else float(on_grid([p.delay_ms], dt)[0])
        key = (p.target, float(p.weight_pa), delay)
        if key in merged:
            q = merged[key]
            merged[key] = PoissonSpec(p.target, q.rate_hz + p.rate_hz, q.weight_pa, delay, 'merged')
        else:
            merged[key] = PoissonSpec(p.target, p.rate_hz, p.weight_pa, delay, p.source)
    return list(merged.values())
