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
import yaml

KERNEL_MS = 20.


def run_model(run_dir):
    """The run's model (its network_params from config.yaml): W and K at its scale."""
    from ..model import MultiAreaModel
    cfg = yaml.safe_load((Path(run_dir) / 'config.yaml').read_text()) or {}
    return MultiAreaModel(cfg.get('network_params') or {})


def area_synaptic_input(M, pop_labels, pop_series: np.ndarray, bin_ms: float = 1.):
    """(areas, signals (areas, bins)) from population rate series labelled 'area/pop'."""
    keys = [tuple(str(label).split('/')) for label in pop_labels]
    rates = np.asarray(pop_series, float)
    tau = float(M.params['neuron_params']['single_neuron_dict']['tau_syn_ex'])
    kernel = np.exp(-np.arange(0., KERNEL_MS, bin_ms) / tau)
    row = {name: i for i, name in enumerate(M.structure_vec)}
    rows = np.array([row[f'{a}-{p}'] for a, p in keys])
    weights = np.abs(np.asarray(M.W_matrix)[np.ix_(rows, rows)]) * np.asarray(M.K_matrix)[np.ix_(rows, rows)]
    drive = weights @ rates                                 # (target pops, bins), all at once
    inputs = np.array([np.convolve(kernel, d, mode='same') for d in drive]).reshape(drive.shape)
    n = np.asarray(M.N_vec, float)[rows]
    members = {area: [k for k, (a, _) in enumerate(keys) if a == area]
               for area in dict.fromkeys(a for a, _ in keys)}
    signals = [np.average(inputs[ks], axis=0, weights=n[ks]) for ks in members.values()]
    return list(members), np.array(signals).reshape(len(members), rates.shape[-1])
