"""Stabilization of the connectivity (Schuecker, Schmidt et al. 2017, Eqs. 6-13).

The raw connectome has a low-activity fixed point too close to the separatrix:
a small increase of the external drive onto 5E and 6E (the parameter a) sends the
network to a high-activity state. Stabilization finds the unstable (saddle) fixed
point nu* on the separatrix at the critical drive, and changes the in-degrees (the
parameter b) along the most critical eigendirection of the effective connectivity
so that the separatrix moves away as far as the target drive would move the
fixed point. Repeated a few times, this gives K' (upstream's ``K_prime_original``).

One iteration:

1. scan the drive factor f5 of 5E (with f6 = 10/3 f5 - 7/3 for 6E) on a grid that is
   refined around the transition (all runs of a grid integrated as one batch);
2. take the trajectories just below and above the transition; both pass close to
   the saddle, where their pseudo-time velocity has a minimum before they part;
3. linearise there: G = effective connectivity, delta_bar_nu = first-order rate
   change caused by the drive change to the target f5; the critical eigenvalue's
   left/right eigenvectors v0/u0 give epsilon = -(v0.delta_bar_nu)/(v0.nu*) and
   delta K_ij = epsilon u0_i v0_j / (tau_m (S_i J_ij + T_i J_ij^2));
4. keep biology: no cortico-cortical change from inhibitory or 4E sources, K' >= 0.
"""
from __future__ import annotations

import time

import numpy as np

from .core import (Theory, cortico_cortical_mask, effective_connectivity, final_rates,
                   input_statistics, integrate_rate_dynamics, progress)

#: source populations whose cortico-cortical in-degrees the stabilization must not change
FROZEN_CC_SOURCES = ('23I', '4E', '4I', '5I', '6I')
#: parameters of the scan (upstream's stabilization script)
SCAN = np.append(np.arange(1., 1.2, 0.01), 1.125)
TARGET_FACTOR = 1.2
#: population-averaged rate (spikes/s) above which a run counts as escaped to high activity
ESCAPE_RATE = 30.
#: theory params of upstream's stabilization script
STABILIZATION_THEORY = {'dt': 0.01, 'T': 30.}
#: network of Schuecker, Schmidt et al. (2017): the parameters upstream's script uses,
#: on top of the defaults of its time (g = -16, no extra 5E/6E drive, chi = 1)
SCHUECKER2017_NETWORK = {
    'connection_params': {'g': -16., 'av_indegree_V1': 3950., 'fac_nu_ext_TH': 1.2,
                          'fac_nu_ext_5E': 1., 'fac_nu_ext_6E': 1.,
                          'cc_weights_factor': 1., 'cc_weights_I_factor': 1.,
                          'K_stable': None},
    'input_params': {'rate_ext': 8.},
}


def factor_6E(f5):
    """Drive factor of 6E that goes with f5 of 5E (the line of the paper's scan)."""
    return 10. / 3. * np.asarray(f5) - 7. / 3.


class _Problem:
    """The network's rate dynamics as a function of K (populations) and the drive factor."""

    def __init__(self, network, theory_spec):
        self.theory = Theory(network, dict(theory_spec or {}))
        net = network
        pops = [p for a in net.area_list for p in net.structure[a]]
        self.is_5E = np.array([p == '5E' for p in pops])
        self.is_6E = np.array([p == '6E' for p in pops])
        K, J, mu_cc, sigma2_cc = self.theory._connectivity()
        self.K = K[:, :-1].copy()
        self.K_ext = K[:, -1].copy()
        self.J = J[:, :-1]
        self.J_ext = J[:, -1]
        self.mu0, self.sigma2_0 = self.theory._constant_input(K, J, mu_cc, sigma2_cc)
        self.rate_ext = net.params['input_params']['rate_ext']
        self.tau_s = self.theory.tau_s
        source_pop = np.array(pops)
        self.frozen = cortico_cortical_mask(net)[:, :-1] & np.isin(source_pop, FROZEN_CC_SOURCES)[None, :]

    def ext_factor(self, f5):
        """(n, B) factor on the external in-degree for drive factors f5 (B,)."""
        f5 = np.atleast_1d(f5)
        fac = np.ones((len(self.K_ext), len(f5)))
        fac[self.is_5E] = f5
        fac[self.is_6E] = factor_6E(f5)
        return fac

    def _inputs(self, f5):
        fac = self.ext_factor(f5)
        d_ext = (fac - 1.) * self.K_ext[:, None] * self.rate_ext * self.tau_s
        return (self.mu0[:, None] + d_ext * self.J_ext[:, None],
                self.sigma2_0[:, None] + d_ext * self.J_ext[:, None] ** 2)

    def n_steps(self):
        p = self.theory.params
        return int(round(p['T'] / p['dt']))

    def run(self, K, f5):
        """Rate trajectories from zero for drive factors f5: (n, B, n_steps + 1)."""
        mu0, sigma2_0 = self._inputs(f5)
        return integrate_rate_dynamics(K * self.J, K * self.J ** 2, mu0, sigma2_0,
                                       np.zeros_like(mu0), self.n_steps(),
                                       self.theory.params['dt'], self.theory.neuron, self.tau_s)

    def escapes(self, K, f5, escape_rate):
        """Whether the runs for drive factors f5 reach the high-activity state (B,)."""
        mu0, sigma2_0 = self._inputs(f5)
        return final_rates(K * self.J, K * self.J ** 2, mu0, sigma2_0, np.zeros_like(mu0),
                           self.n_steps(), self.theory.params['dt'], self.theory.neuron,
                           self.tau_s, escape_rate=escape_rate)[1]


def find_transition(problem, K, scan=SCAN, refinements=7, escape_rate=ESCAPE_RATE,
                    verbose=True):
    """Largest drive factor whose run stays low and smallest that escapes (f_low, f_high),
    or None when no run of the scan escapes (the network is stable up to its end).

    Like upstream's script: a coarse scan, then ``refinements - 1`` times a grid ten
    times finer between the two values that bracket the transition.
    """
    grid = np.unique(np.asarray(scan, float))
    tried, high = np.zeros(0), np.zeros(0, bool)
    for level in range(refinements):
        tried = np.append(tried, grid)
        high = np.append(high, problem.escapes(K, grid, escape_rate))
        order = np.argsort(tried, kind='stable')
        tried, high = tried[order], high[order]
        if not high.any():
            return None
        if high.all():
            raise RuntimeError(f"stabilize: every run escapes to high activity for drive "
                               f"factors in [{tried[0]}, {tried[-1]}]")
        j = int(np.argmax(high)) - 1          # last low run before the first high one
        if j < 0:
            raise RuntimeError("stabilize: the smallest drive factor already escapes")
        f_low, f_high = tried[j], tried[j + 1]
        if verbose:
            progress(f"  scan {level + 1}/{refinements}: {len(grid)} runs, transition in "
                     f"[{f_low:.7f}, {f_high:.7f}]")
        if level + 1 < refinements:
            # the values strictly between the bracket, ten times finer
            grid = np.arange(f_low, f_high + 1e-10, 10. ** (-(level + 3)))[1:-1]
    return f_low, f_high


def velocity(trajectory, dt):
    """Pseudo-time speed |d <nu> / dt| of the population-averaged rate."""
    return np.abs(np.diff(trajectory.mean(axis=0))) / dt


def saddle_point(problem, K, f_low, f_high, threshold=0.05, rtol=0.2):
    """Rates where the trajectories below and above the transition slow down for the
    last time before they part: the unstable fixed point on the separatrix (and the
    pseudo-time it is reached). Upstream picks one of the speed minima by hand per
    iteration; here it is the last local minimum of the speed (below ``threshold``)
    before their mean rates part by more than ``rtol``."""
    dt = problem.theory.params['dt']
    traj = problem.run(K, [f_low, f_high])
    low, high = traj[:, 0], traj[:, 1]
    v = velocity(low, dt)
    # the runs part when their population-averaged rates differ by more than rtol
    m_low, m_high = low.mean(axis=0)[1:], high.mean(axis=0)[1:]
    together = np.cumprod(np.abs(m_high - m_low) <= rtol * m_low).astype(bool)
    slow = v < threshold
    # local minima of the speed (in log), among slow points before the runs part
    logv = np.log(np.maximum(v, 1e-300))
    is_min = np.r_[False, (logv[1:-1] < logv[:-2]) & (logv[1:-1] <= logv[2:]), False]
    candidates = np.flatnonzero(is_min & slow & together)
    if candidates.size == 0:
        raise RuntimeError("stabilize: no slow point shared by the trajectories below and "
                           "above the transition; increase T or refine the scan")
    k = candidates[-1]       # the last slow-down before the runs part
    return low[:, k + 1], (k + 1) * dt


def stabilization_step(problem, K, fixed_point, f_transition, target=TARGET_FACTOR):
    """Delta K (n x n) that moves the separatrix as the drive change to ``target`` would."""
    theory, tau_s = problem.theory, problem.tau_s
    mu0, sigma2_0 = problem._inputs(f_transition)
    mu, sigma = input_statistics(tau_s * K * problem.J, tau_s * K * problem.J ** 2,
                                 fixed_point, mu0[:, 0], sigma2_0[:, 0])
    fac = problem.ext_factor(f_transition)[:, 0]
    S, T = theory.d_nu(mu, sigma)
    G = effective_connectivity(S, T, K, problem.J, tau_s)
    d_K_ext = (problem.ext_factor(target)[:, 0] - fac) * problem.K_ext
    d_bar_nu = tau_s * problem.rate_ext * d_K_ext * (S * problem.J_ext + T * problem.J_ext ** 2)
    evals, right = np.linalg.eig(G)
    left = np.linalg.inv(right)
    c = int(np.argmax(evals.real))             # the critical eigendirection
    epsilon = -(left[c] @ d_bar_nu) / (left[c] @ fixed_point)
    denom = effective_connectivity(S, T, 1., problem.J, tau_s)   # G per unit in-degree
    with np.errstate(divide='ignore', invalid='ignore'):
        dK = np.real(epsilon * np.outer(right[:, c], left[c]) / denom)
    dK[~np.isfinite(dK)] = 0.
    dK[problem.frozen] = 0.
    return dK, evals[c]


def require_raw_K(M):
    """Raise ValueError when ``M``'s in-degrees are already a stabilized K'.

    With the default ``K_stable`` ('K_prime_original.npy') the model's K is upstream's
    K' already; stabilizing it again would silently correct a corrected matrix.
    """
    K_stable = M.params['connection_params'].get('K_stable')
    if K_stable is not None:
        raise ValueError(f"stabilize: connection_params.K_stable is {K_stable!r}, so the "
                         "model's in-degrees are already stabilized; set K_stable to None "
                         "(null in a config file) to stabilize the raw K")


def stabilize(M, theory_spec=None, iterations=4, scan=SCAN, refinements=7,
              target=TARGET_FACTOR, escape_rate=ESCAPE_RATE, verbose=True, history=None):
    """Stabilized in-degree matrix K' (n x n) of network ``M`` (Schuecker, Schmidt et al.).

    Stabilizes ``M`` as configured (its g, rate_ext, weights, 5E/6E drive factors), starting
    from its raw in-degrees: ``M`` must have ``connection_params.K_stable = None``
    (ValueError otherwise). Upstream's K_prime_original belongs to the paper's network,
    ``MultiAreaModel(SCHUECKER2017_NETWORK)``; other parameters give another K'.
    ``theory_spec`` defaults to upstream's script settings (dt 0.01, T 30); each of the
    ``iterations`` (>= 1) scans the 5E/6E drive, locates the saddle point and corrects K;
    it stops early once no run of the scan escapes (stable up to the scan's end).
    ``history`` (a list) receives a dict per correction (transition, saddle, eigenvalue).
    """
    require_raw_K(M)
    if not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"stabilize: iterations must be an int >= 1, got {iterations!r}")
    if not isinstance(refinements, (int, np.integer)) or refinements < 1:
        raise ValueError(f"stabilize: refinements must be an int >= 1, got {refinements!r}")
    scan = np.asarray(scan, float).ravel()
    if scan.size == 0 or not np.all(np.isfinite(scan)):
        raise ValueError(f"stabilize: scan must hold finite drive factors, got {scan!r}")
    spec = dict(STABILIZATION_THEORY)
    spec.update(theory_spec or {})
    problem = _Problem(M, spec)
    K = problem.K.copy()
    t0 = time.perf_counter()
    done = 0
    for it in range(1, iterations + 1):
        if verbose:
            progress(f"stabilization iteration {it}/{iterations}")
        bracket = find_transition(problem, K, scan, refinements, escape_rate=escape_rate,
                                  verbose=verbose)
        if bracket is None:
            if verbose:
                progress(f"  no transition up to drive factor {np.max(scan):.3f}: stable")
            break
        f_low, f_high = bracket
        nu_star, t_star = saddle_point(problem, K, f_low, f_high)
        dK, lam = stabilization_step(problem, K, nu_star, f_low, target)
        K_new = np.maximum(K + dK, 0.)
        change = np.linalg.norm(K_new - K) / np.linalg.norm(K)
        if verbose:
            progress(f"  saddle at t={t_star:.2f} (mean rate {nu_star.mean():.3g} spikes/s), "
                     f"critical eigenvalue {lam.real:.4f}, |dK|/|K| = {change:.4f}")
        if history is not None:
            history.append({'f_low': f_low, 'f_high': f_high, 'saddle': nu_star,
                            't_saddle': t_star, 'eigenvalue': lam, 'relative_change': change})
        K = K_new
        done = it
    if verbose:
        progress(f"stabilization done: {done} corrections in {time.perf_counter() - t0:.1f} s, "
                 f"|K' - K|/|K| = {np.linalg.norm(K - problem.K) / np.linalg.norm(problem.K):.4f}")
    return K
