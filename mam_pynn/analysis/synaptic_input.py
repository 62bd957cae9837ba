"""Each area's synaptic-input signal, the one upstream's Fig. 8 correlates with fMRI
(figures/Schmidt2018_dyn/compute_synaptic_input.py there; multiarea_model/analysis.py
create_synaptic_input for upstream's M.analysis): for every target population, the rates
of all recorded source populations, each filtered by the synaptic kernel
exp(-t / tau_syn) on [0, 20) ms (numpy's 'same' convolution: centred, so each value also
sees the next 9 ms) and weighted by |W| K of the model; the area's signal is the
neuron-weighted mean over its populations. Source populations of areas that were not
simulated (replaced by Poisson or current input) contribute nothing here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..faults import reading
from ..io import read_yaml

KERNEL_MS = 20.


def run_model(run_dir):
    """The run's model (its network_params from config.yaml): W and K at its scale."""
    from ..model import MultiAreaModel
    path = Path(run_dir) / 'config.yaml'
    with reading(path):
        params = (read_yaml(path) or {}).get('network_params') or {}
    return MultiAreaModel(params)


def synaptic_kernel(tau_syn: float, resolution: float = 1.) -> np.ndarray:
    """Upstream's filter exp(-t / tau_syn) at t = 0, resolution, ... < 20 ms."""
    return np.exp(-np.arange(0., KERNEL_MS, resolution) / tau_syn)


def synaptic_output(rate: np.ndarray, tau_syn: float, resolution: float = 1.) -> np.ndarray:
    """A population's rate series filtered by its synapses (upstream's
    analysis_helpers.synaptic_output): np.convolve(kernel, rate, mode='same')."""
    return np.convolve(synaptic_kernel(tau_syn, resolution), np.asarray(rate, float), mode='same')


def synaptic_input(rates: np.ndarray, weights: np.ndarray, tau_syn, resolution: float = 1.
                   ) -> np.ndarray:
    """Synaptic input of target populations, (targets, bins) in the units of rate x |W| K
    (spikes/s x pA): sum over sources s of weights[t, s] x synaptic_output(rates[s], tau_s).

    ``rates`` (sources, bins) in spikes/s; ``weights`` (targets, sources) = |W| K;
    ``tau_syn`` (ms) one value or one per source (upstream's M.analysis: tau_syn_in for
    inhibitory, tau_syn_ex for excitatory sources). The convolution is linear, so the
    sources of one tau are summed first and filtered once.
    """
    rates = np.atleast_2d(np.asarray(rates, float))
    weights = np.atleast_2d(np.asarray(weights, float))
    if weights.shape[1] != rates.shape[0]:
        raise ValueError(f"weights {weights.shape} do not match {rates.shape[0]} source rate series")
    taus = np.broadcast_to(np.asarray(tau_syn, float), (rates.shape[0],))
    out = np.zeros((weights.shape[0], rates.shape[1]))
    for tau in np.unique(taus):
        mine = taus == tau
        summed = weights[:, mine] @ rates[mine]
        kernel = synaptic_kernel(tau, resolution)
        out += np.array([np.convolve(kernel, row, mode='same') for row in summed]).reshape(out.shape)
    return out


def population_synaptic_input(M, pop_labels, pop_series: np.ndarray, bin_ms: float = 1.) -> dict:
    """{(area, pop): signal (bins,)} for every population of the labels' areas
    (compute_synaptic_input.py's synaptic_input_<area>_<pop>.npy: tau_syn_ex for all
    sources) from population rate series labelled 'area/pop'."""
    keys = [tuple(str(label).split('/')) for label in pop_labels]
    rates = np.asarray(pop_series, float)
    tau = float(M.params['neuron_params']['single_neuron_dict']['tau_syn_ex'])
    out = {}
    for area in dict.fromkeys(a for a, _ in keys):
        pops = [p for a, p in keys if a == area]
        weights = np.array([[abs(M.W[area][p][sa][sp]) * M.K[area][p][sa][sp] for sa, sp in keys]
                            for p in pops])                   # (target pops, source pops)
        for p, signal in zip(pops, synaptic_input(rates, weights, tau, bin_ms)):
            out[(area, p)] = signal
    return out


def area_synaptic_input(M, pop_labels, pop_series: np.ndarray, bin_ms: float = 1., per_pop=None):
    """(areas, signals (areas, bins)): each area's population signals averaged with the
    neuron numbers N as weights (synaptic_input_<area>.npy); ``per_pop``: those signals,
    from :func:`population_synaptic_input` if not given."""
    keys = [tuple(str(label).split('/')) for label in pop_labels]
    if per_pop is None:
        per_pop = population_synaptic_input(M, pop_labels, pop_series, bin_ms)
    areas = list(dict.fromkeys(a for a, _ in keys))
    signals = [np.average([per_pop[(a, p)] for b, p in keys if b == a], axis=0,
                          weights=[M.N[a][p] for b, p in keys if b == a]) for a in areas]
    return areas, np.array(signals).reshape(len(areas), np.shape(pop_series)[-1])
