"""Connectivity of the multi-area model: neuron numbers, synapse counts, in-degrees, weights.

From the processed anatomy (neuron numbers, thicknesses, completed FLN/SLN/CoCoMac)
and the network parameters this derives, per population pair, what Schmidt et al.
(2018, Brain Struct Funct, Methods) describe:

- neuron numbers of each population under ``surface`` mm² of cortex;
- intra-area synapses: the microcircuit's connection probabilities (Potjans &
  Diesmann 2014) rescaled to each area's size and laminar composition, with one
  synapse volume density ``rho_syn`` set by the average in-degree in V1;
- cortico-cortical synapses: FLN per area pair, distributed over source layers by
  SLN/CoCoMac and over target layers and cell bodies by the Binzegger et al. (2004)
  dendrite statistics, then redistributed to 93 % onto excitatory cells for
  feedback projections (E-specificity);
- external Poisson in-degrees: the synapses left over from the total, shared so
  that every population of an area gets the same in-degree, then raised for 5E,
  6E and TH;
- weights from PSP amplitudes for ``iaf_psc_exp`` neurons (pA), scaled for
  cortico-cortical connections.

Everything works on (area, population) grids with numpy; results are full-scale
arrays (254 populations; rows = targets, columns = sources plus one external
column). The arrays are cached on disk (keyed by the parameters, the data files'
checksums and the derivation's code) because the derivation takes about a second.
"""
from __future__ import annotations

import os
import re
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .anatomy import LAYERS  # synapse layers of the Binzegger statistics
from .params import AREA_LIST, POPULATION_LIST, content_hash
from .structure import grid_index, structure_from_numbers

# Part of the cache key (with the source files' hashes): bump to drop old caches.
CODE_VERSION = 1

N_POP = len(POPULATION_LIST)
POP_INDEX = {pop: i for i, pop in enumerate(POPULATION_LIST)}
EXCITATORY = np.array(['E' in pop for pop in POPULATION_LIST])

# Potjans & Diesmann (2014) Gaussian connection-probability profile
PD14_SIGMA = 0.29653208289812366  # mm
PD14_C0 = 0.1429914097112598
LARGE_AREA_MM2 = 100.   # from here on upstream uses a series (see _log1p_series)
LOG_SERIES_TERMS = 20
SUBCORTICAL_FLN = 0.013  # fraction of inputs from subcortical sources (Markov et al. 2011)
E_SPECIFIC_FACTOR = 0.93  # share of feedback synapses onto excitatory cells
FEEDBACK_SLN, FEEDFORWARD_SLN = 0.35, 0.65
# termination layers by hierarchical relation (Felleman & Van Essen 1991)
TERMINATION_LAYERS = {'F': ['4'], 'M': ['1', '23', '5', '6'], 'C': ['1', '23', '4', '5', '6']}
TERMINATION_CORTICAL_LAYERS = {'F': [4], 'M': [1, 2, 3, 5, 6], 'C': [1, 2, 3, 4, 5, 6]}
SOURCE_POPS = ['23E', '5E', '6E']  # cortico-cortical projections start from these


def _progress(msg: str) -> None:
    print(f"[mam_pynn.connectivity] {msg}", file=sys.stderr, flush=True)


@dataclass
class Connectivity:
    """Full-scale connectivity (no K_stable, no down-scaling), as arrays."""
    area_list: list
    structure: OrderedDict
    N_vec: np.ndarray          # (n,) neurons per population
    N_total: np.ndarray        # (areas,) neurons per area (the data's totals)
    syn_matrix: np.ndarray     # (n, n+1) synapse counts, last column external
    W_matrix: np.ndarray       # (n, n+1) mean weights, pA
    W_sd_matrix: np.ndarray    # (n, n+1) weight SDs, pA (NaN for external)
    distance_areas: list       # names of the distance table (all areas of the data)
    distance_table: np.ndarray  # (m, m) median distances, mm
    av_indegree_V1: float
    meta: dict = field(default_factory=dict)

    @property
    def K_matrix(self) -> np.ndarray:
        """In-degrees: synapse counts per target neuron."""
        with np.errstate(divide='ignore', invalid='ignore'):
            K = self.syn_matrix / self.N_vec[:, None]
        K[self.N_vec == 0] = 0.0
        return K

    @property
    def distance_matrix(self) -> np.ndarray:
        """(areas, areas) distances between the model's areas, mm."""
        idx = [self.distance_areas.index(a) for a in self.area_list]
        return self.distance_table[np.ix_(idx, idx)]

    def distances_dict(self) -> dict:
        rows = self.distance_table.tolist()
        return {a: dict(zip(self.distance_areas, row)) for a, row in zip(self.distance_areas, rows)}


# --------------------------------------------------------------------------------------
# parameters

def resolve_av_indegree_V1(connection_params: dict, raw: dict) -> float:
    """``av_indegree_V1``; None means the mean of the Cragg and O'Kusky estimates."""
    value = connection_params['av_indegree_V1']
    if value is None:
        value = float(np.mean([raw['av_indegree_Cragg'], raw['av_indegree_OKusky']]))
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"connection_params.av_indegree_V1 must be positive, got {value!r}")
    return value


def derivation_params(network_params: dict) -> dict:
    """The parameters that the full-scale derivation depends on (the cache key)."""
    conn = dict(network_params['connection_params'])
    for name in ('K_stable', 'replace_cc', 'replace_non_simulated_areas', 'replace_cc_input_source'):
        conn.pop(name, None)
    return {'surface': network_params['surface'],
            'connection_params': conn,
            'single_neuron_dict': network_params['neuron_params']['single_neuron_dict']}


def check_number(value, name: str, condition: str = '> 0') -> float:
    """``value`` as a float if it is a finite number with ``condition`` ('> 0', '>= 0',
    '< 0', 'finite'); else a ValueError naming ``name`` and the value."""
    ok = {'> 0': lambda x: x > 0, '>= 0': lambda x: x >= 0, '< 0': lambda x: x < 0,
          'finite': lambda x: True}[condition]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value) or not ok(value):
        what = '' if condition == 'finite' else f' {condition}'
        raise ValueError(f"{name} must be a finite number{what}, got {value!r}")
    return float(value)


def _check_derivation_params(network_params: dict) -> None:
    """Reject values the derivation cannot give a meaning to (e.g. g >= 0: no inhibition)."""
    check_number(network_params['surface'], 'surface')
    conn = network_params['connection_params']
    if conn['rho_syn'] != 'constant':
        raise ValueError(f"connection_params.rho_syn: only 'constant' is implemented, "
                         f"got {conn['rho_syn']!r}")
    for name, condition in (('g', '< 0'), ('PSP_e', '> 0'), ('PSP_e_23_4', '> 0'),
                            ('PSP_ext', '> 0'), ('cc_weights_factor', '> 0'),
                            ('cc_weights_I_factor', '> 0'), ('fac_nu_ext_5E', '>= 0'),
                            ('fac_nu_ext_6E', '>= 0'), ('fac_nu_ext_TH', '>= 0'),
                            ('PSC_rel_sd_normal', '>= 0'), ('PSC_rel_sd_lognormal', '>= 0')):
        check_number(conn[name], f"connection_params.{name}", condition)
    if network_params['neuron_params']['neuron_model'] != 'iaf_psc_exp':
        raise ValueError(f"neuron_params.neuron_model: only 'iaf_psc_exp' (PyNN's IF_curr_exp) "
                         f"is implemented, got {network_params['neuron_params']['neuron_model']!r}")
    neuron = network_params['neuron_params']['single_neuron_dict']
    for name in ('C_m', 'tau_m', 'tau_syn_ex', 'tau_syn_in'):
        check_number(neuron[name], f"neuron_params.single_neuron_dict.{name}")
    for name in ('E_L', 'V_th', 'V_reset'):
        check_number(neuron[name], f"neuron_params.single_neuron_dict.{name}", 'finite')
    check_number(neuron['t_ref'], "neuron_params.single_neuron_dict.t_ref", '>= 0')
    delays = network_params['delay_params']
    for name, condition in (('delay_e', '> 0'), ('delay_i', '> 0'), ('delay_rel', '>= 0'),
                            ('interarea_speed', '> 0')):
        check_number(delays[name], f"delay_params.{name}", condition)


# --------------------------------------------------------------------------------------
# intra-area synapses

def _gauss_disk_integrand(r, R, sigma):
    # Sheng (1985): density of the distance of two random points in a disk of radius R
    q = np.arctan(np.sqrt((2 * R - r) / (2 * R + r)))
    return r * np.exp(-r ** 2 / (2 * sigma ** 2)) * (4 * q - np.sin(4 * q))


def _mean_connection_probability(area_mm2: float) -> float:
    """Mean of the Gaussian profile over pairs of points in a disk of ``area_mm2``."""
    from scipy.integrate import quad
    R = np.sqrt(area_mm2 / np.pi)
    return 2 * PD14_C0 / area_mm2 * quad(_gauss_disk_integrand, 0, 2 * R,
                                        args=(R, PD14_SIGMA))[0]


def _log1p_series(x, terms=LOG_SERIES_TERMS):
    """Truncated Taylor series of log(1 + x).

    For areas of 100 mm² and more upstream replaces log(1 - C) / log(1 - p) by
    this series at +C and +p, i.e. by log(1 + C) / log(1 + p); kept for equality.
    """
    res = np.zeros_like(x)
    for k in range(terms):
        res = res + x ** (k + 1) * (-1.) ** k / (k + 1)
    return res


def _microcircuit_indegrees(conn_prob, n_V1, area_mm2):
    """Per-area in-degrees (areas, target, source) of the rescaled microcircuit.

    ``conn_prob`` (areas, 8, 8); ``n_V1`` neurons per population of the 1 mm²
    microcircuit; ``area_mm2`` (areas,) sizes. Synapse counts are rounded to whole
    synapses like upstream.
    """
    area_mm2 = np.asarray(area_mm2, dtype=float)[:, None, None]
    pair = n_V1[None, :, None] * n_V1[None, None, :] * area_mm2 ** 2
    large = np.broadcast_to(area_mm2 >= LARGE_AREA_MM2, conn_prob.shape)
    with np.errstate(divide='ignore', invalid='ignore'):
        exact = np.log(1.0 - conn_prob) / np.log(1. - 1. / pair)
        series = _log1p_series(conn_prob) / _log1p_series(1. / pair)
    n_syn = np.round(np.where(large, series, exact))
    return n_syn / (n_V1[None, :, None] * area_mm2)


def _intra_area_synapses(N, surf, thick, rho_syn, surface, raw):
    """Intra-area synapse counts (areas, target, source) and each area's intrinsic FLN."""
    intra = np.array([[raw['Intrinsic_Connectivity'][t][s] for s in POPULATION_LIST]
                      for t in POPULATION_LIST])
    n_V1 = np.array([raw['num_V1'][p]['neurons'] for p in POPULATION_LIST])
    c_pd14 = 2. / (1. / np.pi) * PD14_C0 * PD14_SIGMA ** 2 * \
        (1. - np.exp(-(1. / np.pi) / (2 * PD14_SIGMA ** 2)))
    c_full = np.array([_mean_connection_probability(a) for a in surf])
    c_micro = _mean_connection_probability(surface)
    K_full = _microcircuit_indegrees(intra[None] * (c_full / c_pd14)[:, None, None], n_V1, surf)
    K_micro = _microcircuit_indegrees(
        np.broadcast_to(intra[None] * (c_micro / c_pd14), K_full.shape), n_V1,
        np.full(len(surf), float(surface)))
    fln_mean = raw['Intrinsic_FLN_Data']['mean']['mean']
    # a patch of `surface` mm² gets fewer intra-area synapses than the whole area:
    # its intrinsic FLN is the data's mean times the mean ratio of the in-degrees
    fln_intrinsic = np.array([fln_mean * np.mean(K_micro[a][K_full[a] > 0] / K_full[a][K_full[a] > 0])
                              for a in range(len(surf))])
    conversion = fln_intrinsic * rho_syn * surface * thick / \
        np.einsum('ats,at->a', K_micro, N)
    syn = conversion[:, None, None] * K_micro * N[:, :, None]
    syn[(N[:, :, None] == 0) | (N[:, None, :] == 0)] = 0.0
    return syn, fln_intrinsic, fln_mean


# --------------------------------------------------------------------------------------
# cortico-cortical synapses

def _cell_layer(cell_type: str) -> str:
    """Layer digits of a Binzegger cell type ('p5(L2/3)' -> '5', 'p2/3' -> '23')."""
    return re.sub(r"\D", "", re.sub(r"\(.*\)", "", cell_type))


def _layer_to_population(binzegger: dict, N_V1: np.ndarray, N_V1_total: float) -> np.ndarray:
    """P(cell body in population i | cortico-cortical synapse in layer v): (5 layers, 8).

    Binzegger et al.'s cell types are mapped onto the model's populations (types
    with a 'b' are inhibitory) and reweighted by the ratio of V1's population sizes
    to Binzegger's.
    """
    def population(cb):
        return _cell_layer(cb) + ('I' if 'b' in cb else 'E')

    counted = [cb for cb in binzegger if _cell_layer(cb) not in ('', '1')]
    total_occ = sum(binzegger[cb]['occurrence'] for cb in counted)
    rel_binzegger = dict.fromkeys(POPULATION_LIST, 0.0)
    for cb in counted:
        rel_binzegger[population(cb)] += binzegger[cb]['occurrence'] / total_occ
    rel_model = dict(zip(POPULATION_LIST, N_V1 / N_V1_total))

    weight = np.zeros((len(LAYERS), N_POP))
    for cb, entry in binzegger.items():
        pop = population(cb)
        if pop == '1I':  # no layer-1 populations in the model
            continue
        for v, syn in entry['syn_dict'].items():
            if v in LAYERS:
                weight[LAYERS.index(v), POP_INDEX[pop]] += (
                    syn['corticocortical'] / 100.0 * syn['number of synapses per neuron'] *
                    entry['occurrence'] / 100.0 * rel_model[pop] / rel_binzegger[pop])
    return weight / weight.sum(axis=1, keepdims=True)


def _area_layer_to_population(basis, area_list, laminar):
    """Per-area copy of the layer->population map; TH's layer-4 share goes to 2/3, 5, 6."""
    maps = np.repeat(basis[None], len(area_list), axis=0)
    if 'TH' in area_list:
        th = maps[area_list.index('TH')]
        weights = np.array([laminar['TH'][layer] for layer in ('23', '5', '6')])
        weights = weights / weights.sum()
        for kind in 'EI':
            dst = [POP_INDEX[layer + kind] for layer in ('23', '5', '6')]
            src = POP_INDEX['4' + kind]
            th[:, dst] += th[:, [src]] * weights[None, :]
            th[:, src] = 0.0
    return maps


def _hierarchy(sln: float) -> str:
    """Termination pattern from SLN: feedforward 'F', feedback 'M', lateral 'C'."""
    if FEEDBACK_SLN < sln <= FEEDFORWARD_SLN:
        return 'C'
    if sln < FEEDBACK_SLN:
        return 'M'
    if sln > FEEDFORWARD_SLN:
        return 'F'
    raise ValueError(f"SLN value {sln} is exactly on the feedback threshold {FEEDBACK_SLN}")


def _source_fractions(pattern, sln, N_full_source):
    """Share X * Y of a projection's synapses that each of 23E, 5E, 6E sends."""
    share = dict.fromkeys(SOURCE_POPS, 0.0)
    if pattern is not None:
        sp = np.array(pattern, dtype=float)
        supra, infra = sp[:3], sp[-2:]
        if np.all(supra == 0):
            sln = 0.
        elif np.all(infra == 0):
            sln = 1.
        if np.any(supra != 0):
            share['23E'] = sln
        if np.any(infra != 0):
            norm = np.sum(10 ** infra[infra != 0])
            for pop in ('5E', '6E'):
                value = sp[int(pop[:-1]) - 1]
                if value != 0:
                    share[pop] = (1. - sln) * 10 ** value / norm
    else:
        share['23E'] = sln
        infra_neurons = N_full_source[POP_INDEX['5E']] + N_full_source[POP_INDEX['6E']]
        for pop in ('5E', '6E'):
            share[pop] = (1. - sln) * N_full_source[POP_INDEX[pop]] / infra_neurons
    return np.array([share[p] for p in SOURCE_POPS])


def _target_layer_shares(pattern, sln, laminar_target):
    """Share Z of a projection's synapses formed in each synapse layer (5,)."""
    Z = np.zeros(len(LAYERS))
    if pattern is not None:
        tp = np.array(pattern, dtype=float)
        if -1 in tp:  # '?' in CoCoMac: fill in from the hierarchy
            for layer in TERMINATION_CORTICAL_LAYERS[_hierarchy(sln)]:
                if tp[layer - 1] == -1:
                    tp[layer - 1] = 2
        present = np.where(tp > 0.)[0]
        strength = 10 ** tp[present]
        for layer_idx, s in zip(present + 1, strength / strength.sum()):
            syn_layer = '23' if layer_idx in (2, 3) else str(layer_idx)
            Z[LAYERS.index(syn_layer)] += s
    else:
        layers = TERMINATION_LAYERS[_hierarchy(sln)]
        p_T = sum(laminar_target[layer] for layer in layers if layer != '1')
        half = 0.5 if '1' in layers else 1.0
        for layer in layers:
            Z[LAYERS.index(layer)] = 0.5 if layer == '1' else half * laminar_target[layer] / p_T
    return Z


def _cortico_cortical_synapses(area_list, N, N_full, surf, thick, rho_syn, fln_mean,
                               processed, layer_to_pop, e_specificity):
    """Cortico-cortical synapse counts on the (area, pop, area, pop) grid."""
    fln_data = processed['FLN_completed']
    sln_data = processed['SLN_completed']
    coco = processed['cocomac_completed']
    laminar = processed['laminar_thicknesses']
    n_area = len(area_list)
    syn = np.zeros((n_area, N_POP, n_area, N_POP))
    src_idx = [POP_INDEX[p] for p in SOURCE_POPS]
    cc_fraction = 1. - fln_mean - SUBCORTICAL_FLN
    n_syn_total = rho_syn * surf * thick
    for t, target in enumerate(area_list):
        norm = cc_fraction / sum(fln_data[target].values())
        for s, source in enumerate(area_list):
            if s == t or source not in coco[target]:
                continue
            entry = coco[target][source]
            sln = sln_data[target][source]
            XY = _source_fractions(entry['source_pattern'], sln, N_full[s])
            Z = _target_layer_shares(entry['target_pattern'], sln, laminar[target])
            to_pop = Z @ layer_to_pop[t]                       # (8,) target populations
            count = n_syn_total[t] * norm * fln_data[target][source]
            syn[t, :, s, src_idx] = (count * XY)[:, None] * to_pop[None, :]
            if e_specificity and sln < FEEDBACK_SLN:
                _apply_e_specificity(syn[t, :, s, :])
    # counts are for the full-size area; rescale to the modelled surface
    with np.errstate(divide='ignore', invalid='ignore'):
        scale = np.where(N > 0, N / N_full, 0.0)
    return syn * scale[:, :, None, None]


def _apply_e_specificity(block):
    """Redistribute a feedback projection (8 targets x 8 sources) to E_SPECIFIC_FACTOR on E."""
    syn_E = block[EXCITATORY].sum()
    syn_I = block[~EXCITATORY].sum()
    if syn_E > 0 and syn_I > 0:
        total = syn_E + syn_I
        block[EXCITATORY] *= E_SPECIFIC_FACTOR / (syn_E / total)
        block[~EXCITATORY] *= (1. - E_SPECIFIC_FACTOR) / (syn_I / total)


# --------------------------------------------------------------------------------------
# external input and weights

def _external_synapses(N, syn, thick, rho_syn, surface, fln_intrinsic, area_list, conn):
    """External synapse counts (areas, 8): equal in-degree per area, then the fac_nu_ext_* boosts."""
    cc = syn.sum(axis=(1, 2, 3)) - np.einsum('aiaj->a', syn)  # per target area, excluding intra
    ext_total = surface * thick * rho_syn * (1. - fln_intrinsic) - cc
    K_ext = ext_total / N.sum(axis=1)
    ext = K_ext[:, None] * N
    ext[:, POP_INDEX['5E']] *= conn['fac_nu_ext_5E']
    ext[:, POP_INDEX['6E']] *= conn['fac_nu_ext_6E']
    if 'TH' in area_list:
        th = area_list.index('TH')
        for pop in ('23E', '5E'):
            ext[th, POP_INDEX[pop]] *= conn['fac_nu_ext_TH']
    return ext


def psc_over_psp(C_m: float, tau_m: float, tau_syn: float) -> float:
    """PSC amplitude (pA) that gives a 1 mV PSP peak in an ``iaf_psc_exp`` neuron.

    For tau_syn == tau_m (within 1e-8, where the general formula loses its digits)
    the analytic limit: the PSP is I0 t/C_m exp(-t/tau), peaking at t = tau.
    """
    if abs(tau_syn - tau_m) <= 1e-8 * tau_m:
        return C_m * np.e / tau_m
    ratio = tau_m / tau_syn
    peak = (1. / C_m * tau_m * tau_syn / (tau_syn - tau_m) *
            (ratio ** (-tau_m / (tau_m - tau_syn)) - ratio ** (-tau_syn / (tau_m - tau_syn))))
    return 1. / peak


def synaptic_weights(area_list, structure, conn, neuron):
    """Mean weights and SDs (n, n+1) in pA; the external column of W_sd is NaN."""
    idx = grid_index(area_list, structure)
    area_of = idx // N_POP
    pop_of = np.array(POPULATION_LIST)[idx % N_POP]
    is_E = np.array(['E' in p for p in pop_of])
    is_I = np.array(['I' in p for p in pop_of])
    psc_e = psc_over_psp(neuron['C_m'], neuron['tau_m'], neuron['tau_syn_ex'])
    psc_i = psc_over_psp(neuron['C_m'], neuron['tau_m'], neuron['tau_syn_in'])
    n = len(idx)

    W = np.where(is_E[None, :], psc_e * conn['PSP_e'], psc_i * conn['g'] * conn['PSP_e'])
    W = np.broadcast_to(W, (n, n)).copy()
    rel_sd = np.full((n, n), conn['PSC_rel_sd_normal'])
    if conn['lognormal_weights']:
        if conn['lognormal_EE_only']:
            rel_sd[np.outer(is_E, is_E)] = conn['PSC_rel_sd_lognormal']
        else:
            rel_sd[:] = conn['PSC_rel_sd_lognormal']
    W_sd = rel_sd * np.abs(W)

    same_area = area_of[:, None] == area_of[None, :]
    l23_from_l4 = same_area & (pop_of[:, None] == '23E') & (pop_of[None, :] == '4E')
    W[l23_from_l4] = conn['PSP_e_23_4'] * psc_e
    W_sd[l23_from_l4] = conn['PSC_rel_sd_normal'] * conn['PSP_e_23_4'] * psc_e

    cc_factor = np.where(same_area, 1.0, conn['cc_weights_factor'])
    cc_factor = cc_factor * np.where(~same_area & is_I[:, None], conn['cc_weights_I_factor'], 1.0)
    W *= cc_factor
    W_sd *= cc_factor

    W_full = np.empty((n, n + 1))
    W_full[:, :n] = W
    W_full[:, n] = psc_e * conn['PSP_ext']
    W_sd_full = np.empty((n, n + 1))
    W_sd_full[:, :n] = W_sd
    W_sd_full[:, n] = np.nan
    return W_full, W_sd_full


def psc_to_psp_factor(neuron: dict) -> float:
    """Upstream's conversion of a PSC amplitude (pA) to the J of its matrices (mV): tau_syn_ex / C_m."""
    return neuron['tau_syn_ex'] / neuron['C_m']


# --------------------------------------------------------------------------------------
# the whole derivation

def derive_connectivity(network_params: dict, raw: dict, processed: dict,
                        area_list=AREA_LIST) -> Connectivity:
    """Full-scale connectivity from the raw and processed anatomy (no caching)."""
    _check_derivation_params(network_params)
    area_list = list(area_list)
    conn = network_params['connection_params']
    neuron = network_params['neuron_params']['single_neuron_dict']
    surface = float(network_params['surface'])
    numbers = processed['realistic_neuronal_numbers']
    surf = np.array([raw['surface_data'][a] for a in area_list], dtype=float)
    thick = np.array([processed['total_thicknesses'][a] for a in area_list], dtype=float)
    N_full = np.array([[numbers[a][p] for p in POPULATION_LIST] for a in area_list], dtype=float)
    N_full_total = np.array([numbers[a]['total'] for a in area_list], dtype=float)
    if 'TH' in area_list:   # TH has no granular layer
        N_full[area_list.index('TH'), [POP_INDEX['4E'], POP_INDEX['4I']]] = 0.0
    N = N_full / surf[:, None] * surface
    N_total = N_full_total / surf * surface

    av_K_V1 = resolve_av_indegree_V1(conn, raw)
    v1 = area_list.index('V1')
    rho_syn = av_K_V1 * N_full_total[v1] / (surf[v1] * thick[v1])

    syn = np.zeros((len(area_list), N_POP, len(area_list), N_POP))
    intra, fln_intrinsic, fln_mean = _intra_area_synapses(N, surf, thick, rho_syn, surface, raw)
    basis = _layer_to_population(raw['Binzegger_Data'], N[v1], N_total[v1])
    layer_to_pop = _area_layer_to_population(basis, area_list, processed['laminar_thicknesses'])
    syn += _cortico_cortical_synapses(area_list, N, N_full, surf, thick, rho_syn, fln_mean,
                                      processed, layer_to_pop, conn['E_specificity'])
    a = np.arange(len(area_list))
    syn[a, :, a, :] = intra
    ext = _external_synapses(N, syn, thick, rho_syn, surface, fln_intrinsic, area_list, conn)

    structure = structure_from_numbers(
        {area: dict(zip(POPULATION_LIST, N_full[i])) for i, area in enumerate(area_list)},
        area_list)
    idx = grid_index(area_list, structure)
    flat = syn.reshape(len(area_list) * N_POP, -1)
    syn_matrix = np.empty((len(idx), len(idx) + 1))
    syn_matrix[:, :-1] = flat[np.ix_(idx, idx)]
    syn_matrix[:, -1] = ext.reshape(-1)[idx]
    W, W_sd = synaptic_weights(area_list, structure, conn, neuron)

    dist = raw['median_distance_data']
    names = list(dist)
    table = np.array([[dist[r].get(c, np.nan) for c in names] for r in names], dtype=float)
    return Connectivity(area_list=area_list, structure=structure, N_vec=N.reshape(-1)[idx],
                        N_total=N_total, syn_matrix=syn_matrix, W_matrix=W, W_sd_matrix=W_sd,
                        distance_areas=names, distance_table=table, av_indegree_V1=av_K_V1)


# --------------------------------------------------------------------------------------
# disk cache

def cache_dir(sub: str | None = None) -> Path:
    """User cache of mam_pynn ($MAM_CACHE_DIR, else $XDG_CACHE_HOME/mam_pynn or
    ~/.cache/mam_pynn); with ``sub``, that subfolder, created if missing.

    The one place that says where every cache of the package lives.
    """
    env = os.environ.get('MAM_CACHE_DIR')
    if env:
        root = Path(env).expanduser()
    else:
        root = Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'mam_pynn'
    if sub is None:
        return root
    path = root / sub
    path.mkdir(parents=True, exist_ok=True)
    return path


def _data_fingerprint(data_dir=None) -> dict:
    """Checksums of the raw data files the anatomy reads (verified on disk)."""
    from .data import data_file, registry
    names = sorted(n for n in registry() if n.startswith('raw_data/'))
    for name in names:
        data_file(name, data_dir)  # raises DataFileError if missing or corrupt
    return {name: registry()[name][0] for name in names}


# the modules whose code the cached numbers come from (params.py: AREA_LIST and
# POPULATION_LIST order the arrays; data/__init__.py only finds and verifies the
# files, whose checksums are in the key anyway)
_DERIVATION_SOURCES = ('connectivity.py', 'structure.py', 'anatomy.py', 'data/raw.py',
                       'params.py')


def _code_fingerprint() -> str:
    """Hash of the derivation's source files: any edit invalidates the cache."""
    import hashlib
    h = hashlib.sha256(str(CODE_VERSION).encode())
    package = Path(__file__).parent
    for name in _DERIVATION_SOURCES:
        path = package / name
        h.update(name.encode() + (path.read_bytes() if path.is_file() else b''))
    return h.hexdigest()


def cache_key(network_params: dict, data_dir=None) -> str:
    """Key of a cached derivation: its parameters, the data files and the code."""
    return content_hash({'params': derivation_params(network_params),
                         'data': _data_fingerprint(data_dir),
                         'code': _code_fingerprint()})


_ARRAYS = ('N_vec', 'N_total', 'syn_matrix', 'W_matrix', 'W_sd_matrix', 'distance_table')


def _save(conn: Connectivity, path: Path) -> None:
    import json
    from .io import atomic_path
    meta = {'area_list': conn.area_list, 'structure': conn.structure,
            'distance_areas': conn.distance_areas, 'av_indegree_V1': conn.av_indegree_V1,
            'meta': conn.meta}
    with atomic_path(path, suffix='.npz') as tmp:
        with open(tmp, 'wb') as f:
            np.savez(f, meta=np.array(json.dumps(meta)),
                     **{name: getattr(conn, name) for name in _ARRAYS})


def _load(path: Path) -> Connectivity:
    import json
    with np.load(path) as f:
        meta = json.loads(str(f['meta']))
        arrays = {name: f[name] for name in _ARRAYS}
    return Connectivity(area_list=meta['area_list'],
                        structure=OrderedDict((a, meta['structure'][a]) for a in meta['area_list']),
                        distance_areas=meta['distance_areas'],
                        av_indegree_V1=meta['av_indegree_V1'], meta=meta['meta'], **arrays)


def full_scale_connectivity(network_params: dict, data_dir=None, use_cache: bool = True,
                            verbose: bool = True) -> Connectivity:
    """Full-scale connectivity for resolved ``network_params``, from the disk cache if possible."""
    _check_derivation_params(network_params)
    key = cache_key(network_params, data_dir)
    path = cache_dir() / 'connectivity' / f'{key}.npz'
    if use_cache and path.is_file():
        try:
            return _load(path)
        except Exception as err:  # a damaged cache entry is rebuilt, never trusted
            if verbose:
                _progress(f"ignoring unreadable cache entry {path}: {err}")
    from . import anatomy
    t0 = time.perf_counter()
    raw = anatomy.load_raw_data(data_dir)
    processed = anatomy.process_raw_data(raw)
    t1 = time.perf_counter()
    conn = derive_connectivity(network_params, raw, processed)
    conn.meta = {'cache_key': key, 'code_version': CODE_VERSION}
    if verbose:
        _progress(f"derived connectivity: {len(conn.N_vec)} populations, "
                  f"{conn.syn_matrix[:, :-1].sum():.4g} synapses at full scale with the raw "
                  f"in-degrees (before K_stable and scaling) "
                  f"(anatomy {t1 - t0:.2f} s, connectivity {time.perf_counter() - t1:.2f} s)")
    if use_cache:
        try:
            _save(conn, path)
        except OSError as err:
            if verbose:
                _progress(f"could not write cache {path}: {err}")
    return conn


# --------------------------------------------------------------------------------------
# summaries and files (``mam connectivity``)

EXPORTED_ARRAYS = ('N_vec', 'K_matrix', 'syn_matrix', 'W_matrix', 'W_sd_matrix', 'J_matrix',
                   'add_DC_drive')
CONNECTIVITY_SUFFIXES = ('.json', '.yaml', '.yml', '.npz')


def summary(M) -> dict:
    """Headline numbers of a model: sizes, totals, and non-zero population pairs."""
    n = len(M.N_vec)
    syn = M.syn_matrix[:, :n]
    return {'label': M.label,
            'areas': len(M.area_list),
            'populations': n,
            'neurons': int(round(float(M.N_vec.sum()))),
            'synapses': int(round(float(syn.sum()))),
            'external_synapses': int(round(float(M.syn_matrix[:, n].sum()))),
            'projections': int(np.count_nonzero(syn)),
            'N_scaling': M.params['N_scaling'],
            'K_scaling': M.params['K_scaling']}


def summary_line(M) -> str:
    """One line of headline numbers, saying which in-degrees the synapse count has."""
    s = summary(M)
    k_stable = M.params['connection_params']['K_stable']
    which = ('raw in-degrees, K_stable off' if k_stable is None else
             "stabilized in-degrees K', computed" if k_stable is True else
             f"stabilized in-degrees K' from {Path(str(k_stable)).name}")
    return (f"model {s['label']}: {s['areas']} areas, {s['populations']} populations, "
            f"{s['neurons']:,} neurons, {s['synapses']:,} synapses ({which}), "
            f"{s['projections']:,} projections (non-zero population pairs)")


def _nan_to_none(rows):
    return [[None if v != v else v for v in row] for row in rows]


def connectivity_record(M) -> dict:
    """Everything ``write_connectivity`` writes, as plain Python data (JSON/YAML-able)."""
    units = {'N_vec': 'neurons', 'K_matrix': 'synapses per target neuron',
             'syn_matrix': 'synapses', 'W_matrix': 'pA', 'W_sd_matrix': 'pA',
             'J_matrix': 'mV', 'add_DC_drive': 'pA'}
    record = {'summary': summary(M),
              'layout': {'rows': 'target populations', 'columns': 'source populations, '
                         'then one column for the external input', 'units': units},
              'area_list': list(M.area_list),
              'structure': {a: list(p) for a, p in M.structure.items()},
              'populations': list(M.structure_vec),
              'sources': list(M.structure_vec) + ['external']}
    for name in EXPORTED_ARRAYS:
        values = getattr(M, name).tolist()
        record[name] = _nan_to_none(values) if np.ndim(getattr(M, name)) == 2 else values
    return record


def yaml_float(x) -> str:
    """A float as YAML 1.1 reads it back (PyYAML wants a '.' in the mantissa)."""
    if x is None:
        return 'null'
    if x != x:
        return '.nan'
    if x in (float('inf'), float('-inf')):
        return '.inf' if x > 0 else '-.inf'
    text = repr(float(x))
    if '.' not in text:
        mantissa, _, exponent = text.partition('e')
        text = f"{mantissa}.0e{exponent}" if exponent else f"{mantissa}.0"
    return text


def _write_yaml(record: dict, path: Path) -> None:
    """YAML with the big arrays as one flow list per row (PyYAML's emitter takes seconds)."""
    import yaml
    arrays = {k: v for k, v in record.items() if k in EXPORTED_ARRAYS}
    rest = {k: v for k, v in record.items() if k not in EXPORTED_ARRAYS}
    with open(path, 'w') as f:
        f.write(yaml.safe_dump(rest, default_flow_style=None, sort_keys=False))
        for name, values in arrays.items():
            if values and isinstance(values[0], list):
                f.write(f"{name}:\n")
                for row in values:
                    f.write('- [' + ', '.join(map(yaml_float, row)) + ']\n')
            else:
                f.write(f"{name}: [" + ', '.join(map(yaml_float, values)) + ']\n')


def connectivity_format(path) -> str:
    """The output format ('.json', '.yaml', '.yml', '.npz') of ``path``; ValueError otherwise.

    Cheap: call it before building a model to reject a bad file name early.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in CONNECTIVITY_SUFFIXES:
        raise ValueError(f"cannot write connectivity as {Path(path).name!r}: the suffix must be "
                         f"one of {', '.join(CONNECTIVITY_SUFFIXES)}")
    return suffix


def write_connectivity(M, path) -> Path:
    """Write N, K, synapse counts and weights of ``M``; the format follows the suffix.

    ``.npz``: the arrays under their model names plus ``populations``, ``area_list``
    and ``label``; ``.json``/``.yaml``: the same as nested lists with the layout and
    a summary. Written atomically.
    """
    from .io import atomic_path
    path = Path(path)
    suffix = connectivity_format(path)
    with atomic_path(path) as tmp:
        if suffix == '.npz':
            with open(tmp, 'wb') as f:
                np.savez_compressed(
                    f, populations=np.array(M.structure_vec), area_list=np.array(M.area_list),
                    label=np.array(M.label), **{name: getattr(M, name) for name in EXPORTED_ARRAYS})
        elif suffix == '.json':
            import json
            tmp.write_text(json.dumps(connectivity_record(M)) + '\n')
        else:
            _write_yaml(connectivity_record(M), tmp)
    return path
