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
start runs one step shorter; :func:`random_fixed_points` integrates every start alike for T.

Why the published panel B lies below these end states (issue 22): the published
results_<chi>.npy were computed in 2018 with NEST 2, whose siegert_neuron (without waveform
relaxation) sends at the end of each min_delay interval its current rate as the input of
the whole next interval ("proxy for next min_delay"); NEST 3 runs this network with
min_delay = dt, NEST 2 evidently with 0.1 ms. Held for 0.1 ms (ten 0.01 ms steps, a tenth
of the rate time constant), the input lags the rates enough to make the high-activity
fixed points unstable: the rates keep fluctuating, and the state recorded after 20-30 ms is
a point of that fluctuation, below the fixed point. :func:`held_input_end_states` integrates
so; its end states reproduce the published histograms (tests, figures/README.md), the
continuous integration gives the fixed points.

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
#: ms the input was held in upstream's 2018 integration (NEST 2's min_delay interval)
NEST2_HOLD_MS = 0.1


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


def held_input_end_states(chi: float, n_initial: int = N_INITIAL, g: float = G_RANDOM,
                          T: float = RANDOM_SPEC['T'], dt: float = RANDOM_SPEC['dt'],
                          hold_ms: float = NEST2_HOLD_MS, shorten: bool = True) -> np.ndarray:
    """(n_initial, 254, 2) rates (spikes/s) at the start and at the end, as upstream's
    results_<chi>.npy, of the rate dynamics integrated with the input held over intervals
    of ``hold_ms`` (NEST 2's siegert_neuron: the input of an interval is the transfer
    function of the rates at the end of the previous one; the first interval's from the
    initial rates) by NEST's exponential-Euler step; start k ends T - k dt after it began
    (``shorten``, upstream's multimeter window) else after T. Same initial states as
    :func:`random_fixed_points`; hold_ms = dt is that integration. Not reproduced: NEST's
    intervals run on across upstream's sequential starts (a start's first interval is
    partial and sees the previous start's state)."""
    from ..model import MultiAreaModel
    from .core import TAU_RATE, input_statistics
    from .siegert import siegert_rate
    spec = {**RANDOM_SPEC, 'T': T, 'dt': dt, 'rec_interval': T, 'initial_rates_iter': int(n_initial)}
    th = MultiAreaModel(fig4_network_params(chi, g), theory=True, theory_spec=spec).theory
    K, J, mu_cc, sigma2_cc = th._connectivity()
    mu0, sigma2_0 = th._constant_input(K, J, mu_cc, sigma2_cc)
    A, B = th.tau_s * K[:, :-1] * J[:, :-1], th.tau_s * K[:, :-1] * J[:, :-1] ** 2
    r0 = th._initial_rates(K.shape[0])                     # (254, n_initial), upstream's generator
    hold, n_steps = int(round(hold_ms / dt)), int(round(T / dt))
    if hold < 1 or not np.isclose(hold * dt, hold_ms) or not np.isclose(n_steps * dt, T):
        raise ValueError(f"hold_ms ({hold_ms}) and T ({T}) must be multiples of dt ({dt})")
    end = n_steps - np.arange(r0.shape[1]) * bool(shorten)   # steps until each start's record
    if np.any(end < 1):
        raise ValueError(f"{r0.shape[1]} starts: the later ones would run no step (upstream "
                         f"shortens start k by k dt; at most {n_steps} starts of T = {T} ms)")
    p1 = np.exp(-dt / TAU_RATE)
    r, out, step = r0.copy(), np.empty_like(r0), 0
    while step < end.max():
        phi = siegert_rate(*input_statistics(A, B, r, mu0[:, None], sigma2_0[:, None]), th.neuron)
        m = min(hold, int(end.max()) - step)
        ending = (end > step) & (end <= step + m)          # starts recorded within this interval
        for j in np.unique(end[ending] - step):
            sel = ending & (end - step == j)
            out[:, sel] = p1 ** j * r[:, sel] + (1. - p1 ** j) * phi[:, sel]
        r = p1 ** m * r + (1. - p1 ** m) * phi
        step += m
    return np.stack([r0.T, out.T], axis=-1)


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
