"""The mean-field part of Schmidt et al. 2018's Fig. 4 (metastability): upstream's
figures/Schmidt2018_dyn/Fig4_theory.py and the theory part of Fig4_metastability.py.

- Panel B: for each cortico-cortical factor chi, the rate dynamics integrated from 1000
  random initial states (uniform in [0, 1000) spikes/s, upstream's generator and seed)
  for 30 ms of pseudo-time; upstream stores the initial and final rates of each
  (Fig4_theory_data/results_<chi>.npy, (1000, 254, 2)) and draws the histogram of the
  final rates' population mean (50 bins on [0, 40) spikes/s).
- Panel C: the largest real part of the eigenvalues of the stability matrix (upstream's
  lambda_max) at the state reached from zero rates, with g = -12.

Upstream integrated the starts one after another in one NEST network of siegert_neurons,
whose first update of a start sees the previous step's rates (none for the first start,
the previous start's end state for the others), and as its script records, each later
start runs one step shorter; here every start is integrated alike for T.

Network: upstream's Fig. 4 parameters (g, chi, chi_I = 1 for chi = 1 else 2, K',
fac_nu_ext of 5E, 6E, TH, rate_ext 10 spikes/s), built by our MultiAreaModel.
"""
from __future__ import annotations

import numpy as np

#: upstream's values of Fig4_theory.py and Fig4_metastability.py
CHI_LIST = (1.0, 1.8, 1.9, 2.0, 2.1, 2.5)
G_RANDOM, G_EIGEN = -11., -12.
RANDOM_SPEC = {'T': 30., 'dt': 0.01, 'rec_interval': 30., 'initial_rates': 'random_uniform'}
N_INITIAL = 1000
HISTOGRAM_BINS, HISTOGRAM_RANGE = 50, (0., 40.)


def fig4_network_params(chi: float, g: float = G_RANDOM) -> dict:
    """Upstream's network parameters of Fig. 4 for the cortico-cortical factor chi."""
    return {'connection_params': {'g': g, 'cc_weights_factor': chi,
                                  'cc_weights_I_factor': 1. if chi == 1. else 2.,
                                  'K_stable': 'K_prime_original.npy',
                                  'fac_nu_ext_5E': 1.125, 'fac_nu_ext_6E': 1.125 * 10 / 3. - 7 / 3.,
                                  'fac_nu_ext_TH': 1.2},
            'input_params': {'rate_ext': 10.}}


def random_fixed_points(chi: float, n_initial: int = N_INITIAL, g: float = G_RANDOM,
                        T: float = RANDOM_SPEC['T'], dt: float = RANDOM_SPEC['dt']) -> np.ndarray:
    """Upstream's results_<chi>.npy: (n_initial, 254, 2) rates (spikes/s) at the start
    and after T ms of pseudo-time, from upstream's random initial states. Costs about
    n_initial x 3000 steps of 254 Siegert rates (minutes for 1000)."""
    from ..model import MultiAreaModel
    spec = {**RANDOM_SPEC, 'T': T, 'dt': dt, 'rec_interval': T, 'initial_rates_iter': int(n_initial)}
    M = MultiAreaModel(fig4_network_params(chi, g), theory=True, theory_spec=spec)
    _, rates = M.theory.integrate_siegert()
    return np.array(rates).reshape(int(n_initial), -1, 2)


def mean_activity_histogram(results: np.ndarray, bins: int = HISTOGRAM_BINS,
                            rate_range=HISTOGRAM_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """(counts (bins,), edges (bins + 1,)): Fig. 4 B, the histogram of the population
    mean of the final rates; states outside ``rate_range`` are not counted (as upstream)."""
    return np.histogram(np.mean(np.asarray(results)[:, :, -1], axis=1), bins=bins, range=rate_range)


def critical_eigenvalue(chi: float, g: float = G_EIGEN, T: float = 30., dt: float = 0.01) -> float:
    """Fig. 4 C: upstream's lambda_max (sqrt of the largest real part of the stability
    matrix's eigenvalues; < 1 is stable) at the state reached from zero rates."""
    from ..model import MultiAreaModel
    M = MultiAreaModel(fig4_network_params(chi, g), theory=True,
                       theory_spec={'T': T, 'dt': dt, 'initial_rates': np.zeros(254)})
    _, rates = M.theory.integrate_siegert()
    return float(M.theory.lambda_max(rates[:, -1]))
