"""The gain of each connection at given rates, for the population-level path analysis of
Schmidt et al. 2018 (dynamics), Fig. 9 bottom row (upstream's
figures/Schmidt2018_dyn/Fig9_path_analysis.py).

Upstream takes the stationary rates of the simulated low-activity phase (pop_rates over
3500-3600 ms of the chi = 1.9 run), the slopes of the transfer function there, and the
gain K |J| dnu/dmu + K J^2 dnu/dsigma^2 of every connection (target row, source column),
divided by its largest real eigenvalue. The shortest paths on the graph with edge lengths
log10(1 / gain) then follow as for the structural paths (figures/anatomy.py:
shortest_population_paths).
"""
from __future__ import annotations

import numpy as np

from .core import effective_connectivity


def path_gain_matrix(theory, rates) -> tuple[np.ndarray, float]:
    """(gain (254, 254) rescaled to a largest real eigenvalue of 1, that eigenvalue before
    rescaling) at ``rates`` (254,) spikes/s; ``theory``: a model's Theory (M.theory)."""
    net = theory.network
    n = len(net.N_vec)
    K = np.asarray(net.K_matrix, float)[:, :n]
    J = np.asarray(net.J_matrix, float)[:, :n]
    S, T = theory.d_nu(*theory.mu_sigma(np.asarray(rates, float)))
    gain = effective_connectivity(S, T, K, np.abs(J), theory.tau_s)   # J^2 keeps its value
    leading = float(np.max(np.linalg.eigvals(gain).real))
    return gain / leading, leading
