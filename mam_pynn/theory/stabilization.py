"""Stabilization of the connectivity (Schuecker, Schmidt et al. 2017, Eqs. 6-13).

The raw connectome has a low-activity fixed point too close to the separatrix:
a small increase of the external drive onto 5E and 6E (the parameter a) sends the
network to a high-activity state. Stabilization finds the unstable (saddle) fixed
point nu* on the separatrix at the critical drive, and changes the in-degrees (the
parameter b) along the most critical eigendirection of the effective connectivity
so that the separatrix moves away as far as the aimed drive would move the
fixed point. Repeated a few times, this gives K' (upstream's ``K_prime_original``).

One iteration (upstream's ``stabilization.py`` with NEST's exponential Euler, dt 0.01, T 30):

1. scan the drive factor f5 of 5E (with f6 = 10/3 f5 - 7/3 for 6E) on a grid that is
   refined around the transition (all runs of a grid integrated as one batch);
2. take the trajectories just below and above the transition; both pass close to
   the saddle and slow down there before they part; the slowest point, polished by a
   root finder, is the unstable fixed point (one eigenvalue with real part > 1);
3. linearise there: G = effective connectivity, delta_bar_nu = first-order rate
   change caused by the drive change to the aimed f5; the critical eigenvalue's
   left/right eigenvectors v0/u0 give epsilon = -(v0.delta_bar_nu)/(v0.nu*) and
   delta K_ij = epsilon u0_i v0_j / (tau_m (S_i J_ij + T_i J_ij^2));
4. keep biology: no cortico-cortical change from inhibitory or 4E sources, K' >= 0.

Each linear correction moves the transition only part of the way to the aimed drive,
so aiming at the paper's 1.2 leaves the transition just past 1.2 (1.2025, change 0.062
of K; upstream's published K' has 1.226 and 0.087). Here the corrections aim at
TARGET_FACTOR + MARGIN = 1.25 and repeat until no drive up to the aim escapes.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from .siegert import siegert_rate
from .core import (Theory, cortico_cortical_mask, effective_connectivity, final_rates,
                   input_statistics, integrate_rate_dynamics, progress)

#: source populations whose cortico-cortical in-degrees the stabilization must not change
FROZEN_CC_SOURCES = ('23I', '4E', '4I', '5I', '6I')
#: the drive factor of 5E the stabilized network must withstand (the paper's 1.2)
TARGET_FACTOR = 1.2
#: the corrections aim this far beyond the target, and stop once no drive up to
#: TARGET_FACTOR + MARGIN escapes (the margin the paper's K' has: transition 1.226)
MARGIN = 0.05
#: at most this many corrections (4 are needed for the paper's network)
MAX_ITERATIONS = 8
#: refinements of the scan, each ten times finer (upstream's 7: a bracket of 1e-8)
REFINEMENTS = 7
#: population-averaged rate (spikes/s) above which a run counts as escaped to high activity
ESCAPE_RATE = 30.
#: the stabilized K' a figure can draw: ours (this module's, cached) or upstream's published file
K_PRIME_CHOICES = ('ours', 'upstream')
UPSTREAM_K_PRIME = 'K_prime_original.npy'
#: theory params of upstream's stabilization script
STABILIZATION_THEORY = {'dt': 0.01, 'T': 30.}
#: network of Schuecker, Schmidt et al. (2017): the parameters upstream's script uses,
#: on top of the defaults of its time (g = -16, no extra 5E/6E drive, chi = 1); its
#: av_indegree_V1 = 3950 is what the default (None: from the data) gives, to the digit
SCHUECKER2017_NETWORK = {
    'connection_params': {'g': -16., 'fac_nu_ext_TH': 1.2,
                          'fac_nu_ext_5E': 1., 'fac_nu_ext_6E': 1.,
                          'cc_weights_factor': 1., 'cc_weights_I_factor': 1.,
                          'K_stable': None},
    'input_params': {'rate_ext': 8.},
}


def default_scan(aim):
    """Upstream's grid of drive factors (steps of 0.01 from 1, and 1.125, the 5E factor of
    the model's ground state), extended to the aimed drive."""
    return np.unique(np.append(np.arange(1., aim + 1e-9, 0.01), 1.125))


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

    def final(self, K, f5):
        """Rates (n, B) at the end (T) of the runs from zero for drive factors f5."""
        mu0, sigma2_0 = self._inputs(f5)
        return final_rates(K * self.J, K * self.J ** 2, mu0, sigma2_0, np.zeros_like(mu0),
                           self.n_steps(), self.theory.params['dt'], self.theory.neuron,
                           self.tau_s)[0]


def find_transition(problem, K, scan, refinements=REFINEMENTS, escape_rate=ESCAPE_RATE,
                    verbose=True, record=None):
    """Largest drive factor whose run stays low and smallest that escapes (f_low, f_high),
    or None when no run of the scan escapes (the network is stable up to its end).

    Like upstream's script: a coarse scan, then ``refinements - 1`` times a grid ten
    times finer between the two values that bracket the transition. The coarse scan's
    runs go to the end (T), and ``record`` (a dict) receives their drive factors
    ('kappa') and end rates ('rates', n x runs: upstream's Fig. 7A); the finer ones stop
    once a run has escaped (population-averaged rate above ``escape_rate``).
    """
    grid = np.unique(np.asarray(scan, float))
    tried, high = np.zeros(0), np.zeros(0, bool)
    for level in range(refinements):
        tried = np.append(tried, grid)
        if level == 0:
            rates = problem.final(K, grid)
            high = np.append(high, rates.mean(axis=0) > escape_rate)
            if record is not None:
                record.update(kappa=grid, rates=rates)
        else:
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
    """Pseudo-time speed |d <nu> / dt| of the population-averaged rate (upstream's
    measure, the paper's Fig. 4C), one value per step: (n_steps,)."""
    return np.abs(np.diff(trajectory.mean(axis=0))) / dt


def speed(trajectory, dt):
    """Pseudo-time speed ||d nu / dt|| of the rate vector (Euclidean norm), (n_steps,)."""
    return np.linalg.norm(np.diff(trajectory, axis=-1), axis=0) / dt


def velocity_minima(v, threshold=0.05):
    """Indices of the local minima of a speed curve ``v`` that lie below ``threshold``
    (upstream's slow points; it finds them with a wavelet peak finder, here with
    scipy.signal.find_peaks on -log v)."""
    from scipy.signal import find_peaks
    peaks, _ = find_peaks(-np.log(np.maximum(v, 1e-300)))
    return peaks[v[peaks] < threshold]


def fixed_point(problem, K, f5, nu0, tol=1e-9):
    """Fixed point Phi(nu) = nu of the rate dynamics at drive factor f5 nearest to nu0
    (scipy.optimize.root, MINPACK's hybrid method, with the effective connectivity
    minus one as Jacobian). Returns (nu, max |Phi(nu) - nu|)."""
    from scipy.optimize import root
    tau_s, neuron = problem.tau_s, problem.theory.neuron
    mu0, sigma2_0 = (x[:, 0] for x in problem._inputs(f5))
    A, B = tau_s * K * problem.J, tau_s * K * problem.J ** 2
    eye = np.eye(len(nu0))

    def residual(nu):
        nu = np.maximum(nu, 0.)
        return siegert_rate(*input_statistics(A, B, nu, mu0, sigma2_0), neuron) - nu

    def jacobian(nu):
        S, T = problem.theory.d_nu(*input_statistics(A, B, np.maximum(nu, 0.), mu0, sigma2_0))
        return effective_connectivity(S, T, K, problem.J, tau_s) - eye

    sol = root(residual, nu0, jac=jacobian, method='hybr', options={'xtol': tol})
    nu = np.maximum(sol.x, 0.)
    return nu, float(np.abs(residual(nu)).max())


def unstable_fixed_point(problem, K, f_low, f_high, rtol=0.2, threshold=0.05):
    """The unstable fixed point nu* on the separatrix at the transition (a dict).

    Both trajectories, just below (f_low) and just above (f_high) the transition, pass
    close to the saddle and slow down there before they part (their mean rates differ
    by more than ``rtol``). Upstream picks one of the slow points by hand per iteration
    (its ``ind_list``). The rule here: the slowest point (least ||d nu/dt||) of the run
    below the transition before the runs part is the seed, and a root finder at f_low
    polishes it to the fixed point itself, which must have exactly one eigenvalue of
    the effective connectivity with real part > 1 (one unstable direction: a saddle).
    Also returned, for the figures and the report: both trajectories, upstream's speed
    of the mean rate and its minima, and which of the low run's minima (counted as
    upstream counts them) lies nearest to the seed.
    """
    dt = problem.theory.params['dt']
    traj = problem.run(K, [f_low, f_high])
    low, high = traj[:, 0], traj[:, 1]
    m_low, m_high = low.mean(axis=0), high.mean(axis=0)
    apart = np.abs(m_high - m_low) > rtol * np.maximum(m_low, 1e-12)
    k_part = int(np.argmax(apart)) if apart.any() else low.shape[1]
    s = speed(low, dt)
    if k_part < 2:
        raise RuntimeError("stabilize: the runs below and above the transition part at once")
    k_seed = int(np.argmin(s[1:k_part - 1])) + 2      # after the first step (rates from 0)
    nu, resid = fixed_point(problem, K, f_low, low[:, k_seed])
    evals = np.linalg.eigvals(stability_matrix(problem, K, f_low, nu))
    n_unstable = int(np.sum(evals.real > 1.))
    if resid > 1e-6 or n_unstable != 1:
        raise RuntimeError(f"stabilize: no saddle found near the slowest point (t = "
                           f"{k_seed * dt:.2f}): residual {resid:.2g} spikes/s, {n_unstable} "
                           "eigenvalues with real part > 1")
    v_low, v_high = velocity(low, dt), velocity(high, dt)
    minima = velocity_minima(v_low, threshold)
    nearest = int(np.argmin(np.abs(minima - k_seed))) if minima.size else None
    return {'rates': nu, 'residual': resid, 'eigenvalue': evals[np.argmax(evals.real)],
            'seed_index': k_seed, 't_seed': k_seed * dt, 'seed': low[:, k_seed],
            'part_index': k_part, 'low': low, 'high': high,
            'velocity_low': v_low, 'velocity_high': v_high, 'minima_low': minima,
            'minima_high': velocity_minima(v_high, threshold), 'nearest_minimum': nearest}


def linearization(problem, K, nu, f5, aim):
    """The linear problem at rates nu and drive factor f5 (Eqs. 6-8 of the paper), a dict:
    the slopes S, T of the transfer function, G = dPhi/dnu (effective connectivity) and
    G per unit in-degree, the eigenvalues of G sorted by real part (descending) with right
    (columns) and left (rows) eigenvectors, and delta_bar_nu, the first-order rate change
    of raising the drive factor from f5 to ``aim``."""
    tau_s, J = problem.tau_s, problem.J
    mu0, sigma2_0 = (x[:, 0] for x in problem._inputs(f5))
    mu, sigma = input_statistics(tau_s * K * J, tau_s * K * J ** 2, nu, mu0, sigma2_0)
    S, T = problem.theory.d_nu(mu, sigma)
    G = effective_connectivity(S, T, K, J, tau_s)
    evals, right = np.linalg.eig(G)
    order = np.argsort(evals.real)[::-1]
    evals, right = evals[order], right[:, order]
    d_K_ext = (problem.ext_factor(aim)[:, 0] - problem.ext_factor(f5)[:, 0]) * problem.K_ext
    d_bar_nu = tau_s * problem.rate_ext * d_K_ext * (S * problem.J_ext + T * problem.J_ext ** 2)
    return {'S': S, 'T': T, 'G': G, 'G_per_K': effective_connectivity(S, T, 1., J, tau_s),
            'eigenvalues': evals, 'right': right, 'left': np.linalg.inv(right),
            'd_bar_nu': d_bar_nu}


def stability_matrix(problem, K, f5, nu):
    """Effective connectivity G = dPhi/dnu at rates nu and drive factor f5."""
    mu0, sigma2_0 = (x[:, 0] for x in problem._inputs(f5))
    mu, sigma = input_statistics(problem.tau_s * K * problem.J,
                                 problem.tau_s * K * problem.J ** 2, nu, mu0, sigma2_0)
    return effective_connectivity(*problem.theory.d_nu(mu, sigma), K, problem.J, problem.tau_s)


def direction_change(lin, nu, l=0):
    """delta K (n x n, complex) of Eq. 11 along eigendirection ``l`` of a ``linearization``
    (0: the critical one): epsilon_l u_l v_l / (G per unit in-degree), epsilon_l =
    -(v_l . delta_bar_nu) / (v_l . nu)."""
    v, u = lin['left'][l], lin['right'][:, l]
    epsilon = -(v @ lin['d_bar_nu']) / (v @ nu)
    with np.errstate(divide='ignore', invalid='ignore'):
        dK = epsilon * np.outer(u, v) / lin['G_per_K']
    dK[~np.isfinite(dK)] = 0.
    return dK


def stabilization_step(problem, K, fixed_point, f_transition, target=TARGET_FACTOR):
    """Delta K (n x n) that moves the separatrix as the drive change to ``target`` would,
    and the critical eigenvalue."""
    lin = linearization(problem, K, fixed_point, f_transition, target)
    dK = np.real(direction_change(lin, fixed_point))
    dK[problem.frozen] = 0.
    return dK, lin['eigenvalues'][0]


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


def stabilize(M, theory_spec=None, iterations=MAX_ITERATIONS, scan=None,
              refinements=REFINEMENTS, target=TARGET_FACTOR, margin=MARGIN,
              escape_rate=ESCAPE_RATE, verbose=True, history=None, scans=None):
    """Stabilized in-degree matrix K' (n x n) of network ``M`` (Schuecker, Schmidt et al.).

    Stabilizes ``M`` as configured (its g, rate_ext, weights, 5E/6E drive factors), starting
    from its raw in-degrees: ``M`` must have ``connection_params.K_stable = None``
    (ValueError otherwise). Upstream's K_prime_original belongs to the paper's network,
    ``MultiAreaModel(SCHUECKER2017_NETWORK)``; other parameters give another K'.
    ``theory_spec`` defaults to upstream's script settings (dt 0.01, T 30). Each correction
    scans the 5E/6E drive (``scan``, default ``default_scan(target + margin)``), locates the
    unstable fixed point and corrects K aiming at ``target + margin``; the loop stops when
    no drive of the scan escapes, or after ``iterations`` corrections (then it warns).
    ``history`` (a list) receives a dict per correction: the transition (f_low, f_high), the
    unstable fixed point and its critical eigenvalue, |dK|/|K|, K before the correction;
    ``scans`` (a list) the coarse scan of each K, the last one's included (``find_transition``).
    """
    require_raw_K(M)
    if not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"stabilize: iterations must be an int >= 1, got {iterations!r}")
    if not isinstance(refinements, (int, np.integer)) or refinements < 1:
        raise ValueError(f"stabilize: refinements must be an int >= 1, got {refinements!r}")
    aim = target + margin
    scan = default_scan(aim) if scan is None else np.asarray(scan, float).ravel()
    if scan.size == 0 or not np.all(np.isfinite(scan)):
        raise ValueError(f"stabilize: scan must hold finite drive factors, got {scan!r}")
    spec = dict(STABILIZATION_THEORY)
    spec.update(theory_spec or {})
    problem = _Problem(M, spec)
    K = problem.K.copy()
    t0 = time.perf_counter()
    done, stable = 0, False
    for it in range(1, iterations + 2):
        if verbose:
            progress(f"stabilization: scan {it}" + (f" (after {it - 1} corrections)" if it > 1 else ''))
        record = {}
        bracket = find_transition(problem, K, scan, refinements, escape_rate=escape_rate,
                                  verbose=verbose, record=record)
        if scans is not None:
            scans.append(record)
        if bracket is None:
            stable = True
            if verbose:
                progress(f"  no transition up to drive factor {np.max(scan):.3f}: stable")
            break
        if it > iterations:
            break
        f_low, f_high = bracket
        ufp = unstable_fixed_point(problem, K, f_low, f_high)
        nu_star = ufp['rates']
        dK, lam = stabilization_step(problem, K, nu_star, f_low, aim)
        K_new = np.maximum(K + dK, 0.)
        change = np.linalg.norm(K_new - K) / np.linalg.norm(K)
        if verbose:
            progress(f"  correction {it}: transition at f5 = {f_low:.7f}, unstable fixed point "
                     f"mean rate {nu_star.mean():.3f} spikes/s (|Phi - nu| = "
                     f"{ufp['residual']:.1e}; seed t = {ufp['t_seed']:.2f}, nearest velocity "
                     f"minimum {ufp['nearest_minimum']}), critical eigenvalue {lam.real:.4f}, "
                     f"|dK|/|K| = {change:.4f}")
        if history is not None:
            history.append({'f_low': f_low, 'f_high': f_high, 'saddle': nu_star,
                            'seed': ufp['seed'], 't_seed': ufp['t_seed'], 'eigenvalue': lam,
                            'relative_change': change, 'residual': ufp['residual'],
                            'nearest_minimum': ufp['nearest_minimum'], 'K': K})
        K = K_new
        done = it
    total = np.linalg.norm(K - problem.K) / np.linalg.norm(problem.K)
    if not stable:
        warnings.warn(f"stabilize: after {done} corrections the network still escapes below "
                      f"drive factor {np.max(scan):.3f} (raise iterations)", RuntimeWarning,
                      stacklevel=2)
    if verbose:
        progress(f"stabilization done: {done} corrections in {time.perf_counter() - t0:.1f} s, "
                 f"|K' - K|/|K| = {total:.4f}, "
                 + (f"stable up to f5 = {np.max(scan):.3f}" if stable else "NOT stable"))
    return K


def theory_fingerprint() -> str:
    """Hash of the mean-field code (mam_pynn/theory/*.py) that computes K'."""
    import hashlib
    from pathlib import Path
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob('*.py')):
        h.update(path.name.encode() + b'\0' + path.read_bytes())
    return h.hexdigest()


def paper_network(network_params=None):
    """The network of the paper (SCHUECKER2017_NETWORK) on the connectome of a model with
    ``network_params`` (default: the defaults): raw K, full scale."""
    import copy
    from ..model import MultiAreaModel
    from ..params import resolve, network_defaults
    p = resolve(copy.deepcopy(network_params or {}), network_defaults())
    for group, values in SCHUECKER2017_NETWORK.items():
        p[group].update(copy.deepcopy(values))
    p['N_scaling'] = p['K_scaling'] = 1.
    p['fullscale_rates'] = None
    return MultiAreaModel(p)


#: what ``cached_stabilization`` keeps per correction (arrays stacked over corrections)
HISTORY_KEYS = ('f_low', 'f_high', 'saddle', 'seed', 't_seed', 'eigenvalue',
                'relative_change', 'residual', 'nearest_minimum', 'K')


def cached_stabilization(M=None, verbose=True) -> dict:
    """Our K' of network ``M`` (default: ``paper_network()``) and every correction, computed
    by ``stabilize`` once and kept in the cache (``cache_dir('K_stable')/<key>.npz``, with K'
    alone as ``<key>.npy`` for ``K_stable``). The key is the content of what the procedure
    reads: the network's K, J, DC drive, rate_ext, neuron, the settings and the theory code.
    Returns a dict: 'K_prime', 'K_raw', 'path', 'npy', 'seconds', 'settings', the
    arrays of HISTORY_KEYS (first axis: corrections), and the coarse scans ('scan_kappa',
    'scan_rate_5E_6E': mean 5E/6E rate at T, one row per K, K' last)."""
    import json
    from ..connectivity import cache_dir
    from ..io import atomic_path
    from ..model import _array_digest
    from ..params import content_hash
    M = paper_network() if M is None else M
    require_raw_K(M)
    settings = {'theory': STABILIZATION_THEORY, 'target': TARGET_FACTOR, 'margin': MARGIN,
                'iterations': MAX_ITERATIONS, 'refinements': REFINEMENTS,
                'escape_rate': ESCAPE_RATE}
    key = content_hash({
        'arrays': [_array_digest(np.asarray(a, float)) for a in
                   (M.K_matrix, M.J_matrix, M.add_DC_drive)],
        'rate_ext': M.params['input_params']['rate_ext'],
        'neuron': M.params['neuron_params'], 'populations': list(M.structure_vec),
        'settings': settings, 'code': theory_fingerprint()})
    folder = cache_dir('K_stable')
    path, npy = folder / f'{key}.npz', folder / f'{key}.npy'
    if not path.is_file():
        if verbose:
            progress(f"stabilizing the in-degrees (Schuecker et al. 2017; about a minute; "
                     f"kept in {path})")
        history, scans, t0 = [], [], time.perf_counter()
        K_prime = stabilize(M, history=history, scans=scans, verbose=verbose)
        arrays = {k: np.array([h[k] for h in history]) for k in HISTORY_KEYS}
        sel = np.isin([s.split('-')[1] for s in M.structure_vec], ('5E', '6E'))
        arrays['scan_kappa'] = scans[0]['kappa']
        arrays['scan_rate_5E_6E'] = np.array([sc['rates'][sel].mean(axis=0) for sc in scans])
        arrays['nearest_minimum'] = np.array([-1 if m is None else m
                                              for m in arrays['nearest_minimum']])
        with atomic_path(path) as tmp:
            with open(tmp, 'wb') as f:
                np.savez_compressed(f, K_prime=K_prime, K_raw=np.asarray(M.K_matrix)[:, :-1],
                                    seconds=time.perf_counter() - t0,
                                    settings=json.dumps(settings), **arrays)
    if not npy.is_file():
        with np.load(path) as z, atomic_path(npy) as tmp:
            with open(tmp, 'wb') as f:
                np.save(f, z['K_prime'])
    with np.load(path) as z:
        out = {k: z[k] for k in z.files}
    out['settings'] = json.loads(str(out['settings']))
    out.update(path=path, npy=npy, seconds=float(out['seconds']))
    return out
