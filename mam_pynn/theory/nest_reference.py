"""Upstream's way of integrating the rate dynamics: a network of NEST ``siegert_neuron``s.

Kept as an independent reference for tests and benchmarks (needs NEST); the package
itself uses the vectorised integrator of ``core``. One rate neuron per population,
``diffusion_connection``s carrying tau_m K J (drift) and tau_m K J^2 (diffusion), a
constant-rate neuron for the external Poisson drive and one for the DC drive.
"""
from __future__ import annotations

import numpy as np

from .core import TAU_RATE, Theory


def nest_trajectory(theory: Theory, initial_rates=None):
    """Rates (n, T/dt) recorded by NEST at times dt, 2 dt, ..., T for one initial state.

    NEST's multimeter reports at time (k+1) dt the rate after k updates, so column k
    equals column k of ``Theory.integrate_siegert`` (whose column 0 is the initial
    state): upstream's array is this one with the initial rates put in front.
    """
    import nest

    net, p = theory.network, theory.params
    K, J, mu_cc, sigma2_cc = theory._connectivity()
    if np.any(mu_cc) or np.any(sigma2_cc):
        raise NotImplementedError("nest_trajectory: replaced cortico-cortical input")
    nu = theory.neuron
    n = K.shape[0]
    tau_s = theory.tau_s
    C_m = net.params['neuron_params']['single_neuron_dict']['C_m']
    rate_ext = net.params['input_params']['rate_ext']

    nest.ResetKernel()
    nest.set_verbosity('M_FATAL')
    nest.SetKernelStatus({'resolution': p['dt'], 'use_wfr': False, 'print_time': False})
    nest.SetDefaults('siegert_neuron', {'theta': nu.theta, 'V_reset': nu.V_reset,
                                        'tau_m': nu.tau_m, 'tau_syn': nu.tau_syn,
                                        't_ref': nu.t_ref, 'tau': TAU_RATE})
    pops = nest.Create('siegert_neuron', n)
    ext = nest.Create('siegert_neuron', 1, params={'rate': rate_ext, 'mean': rate_ext})
    dc = nest.Create('siegert_neuron', 1, params={'rate': 1., 'mean': 1.})
    syn = 'diffusion_connection'
    nest.Connect(ext, pops, 'all_to_all', {
        'synapse_model': syn, 'drift_factor': (tau_s * K[:, -1] * J[:, -1])[:, None],
        'diffusion_factor': (tau_s * K[:, -1] * J[:, -1] ** 2)[:, None]})
    nest.Connect(dc, pops, 'all_to_all', {
        'synapse_model': syn, 'diffusion_factor': 0.,
        'drift_factor': (nu.tau_m / C_m * np.asarray(net.add_DC_drive))[:, None]})
    nest.Connect(pops, pops, 'all_to_all', {
        'synapse_model': syn, 'drift_factor': tau_s * K[:, :-1] * J[:, :-1],
        'diffusion_factor': tau_s * K[:, :-1] * J[:, :-1] ** 2})
    mm = nest.Create('multimeter', params={'record_from': ['rate'], 'interval': p['dt']})
    nest.Connect(mm, pops)
    if initial_rates is not None:
        pops.set({'rate': [float(x) for x in initial_rates]})
    nest.Simulate(p['T'] + p['dt'])
    ev = mm.get('events')
    t, senders, rate = ev['times'], ev['senders'], ev['rate']
    keep = t <= p['T'] + 1e-9
    order = np.lexsort((t[keep], senders[keep]))
    return rate[keep][order].reshape(n, -1)
