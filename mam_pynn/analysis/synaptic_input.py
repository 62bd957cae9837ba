"""Each area's synaptic-input signal, the one upstream's Fig. 8 correlates with fMRI
(figures/Schmidt2018_dyn/compute_synaptic_input.py there): for every target population,
the rates of all recorded source populations weighted by |W| K of the model, filtered by
the synaptic kernel exp(-t / tau_syn_ex) (20 ms, 'same' convolution); the area's signal is
the neuron-weighted mean over its populations. Source populations of areas that were
not simulated (replaced by Poisson or current input) contribute nothing here.
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


def area_synaptic_input(M, pop_labels, pop_series: np.ndarray, bin_ms: float = 1.):
    """(areas, signals (areas, bins)) from population rate series labelled 'area/pop'."""
    keys = [tuple(str(label).split('/')) for label in pop_labels]
    rates = np.asarray(pop_series, float)
    tau = float(M.params['neuron_params']['single_neuron_dict']['tau_syn_ex'])
    kernel = np.exp(-np.arange(0., KERNEL_MS, bin_ms) / tau)
    areas = list(dict.fromkeys(a for a, _ in keys))
    signals = []
    for area in areas:
        pops = [p for a, p in keys if a == area]
        weights = np.array([[abs(M.W[area][p][sa][sp]) * M.K[area][p][sa][sp] for sa, sp in keys]
                            for p in pops])                   # (target pops, source pops)
        inputs = np.array([np.convolve(kernel, w @ rates, mode='same') for w in weights])
        n = np.array([M.N[area][p] for p in pops], float)
        signals.append(np.average(inputs, axis=0, weights=n))
    return areas, np.array(signals).reshape(len(areas), rates.shape[-1])
