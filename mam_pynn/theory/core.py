"""Mean-field theory of the multi-area model (Schuecker, Schmidt et al. 2017).

Each population is a rate unit relaxing to the Siegert rate of its input,

    tau dnu/dt = -nu + Phi(mu(nu), sigma(nu)),
    mu = tau_m (K*J) . [nu, nu_ext] + tau_m/C_m I_DC,   sigma^2 = tau_m (K*J^2) . [nu, nu_ext],

integrated with the exponential Euler scheme of NEST's ``siegert_neuron`` (which
upstream uses) and tau = 1 ms, from zero (or given, or random) initial rates. The
end point is the stationary state the network settles into. Everything is
vectorised over populations and over a batch of runs (several initial
conditions or parameter variants at once).
"""
from __future__ import annotations

import copy

import json
import sys
import warnings
from pathlib import Path

import numpy as np

from .. import params as P
from .siegert import LIFParams, siegert_derivatives, siegert_rate

#: time constant of the pseudo-time rate dynamics (ms), upstream's siegert_neuron 'tau'
TAU_RATE = 1.
#: seed of upstream's generator of random initial rates
INITIAL_RATES_SEED = 123
#: a state is a fixed point when |Phi(nu) - nu| <= CONVERGENCE_RTOL (1 + nu) for every population
CONVERGENCE_RTOL = 1e-4
#: the window (ms of pseudo-time) at the end of the trajectory whose change is reported
LAST_CHANGE_WINDOW_MS = 5.


def input_statistics(A, B, rates, mu0, sigma2_0):
    """Mean mu (mV) and standard deviation sigma (mV) of the input at the given rates.

    A, B: drift and diffusion couplings tau_m K J and tau_m K J^2 (mV s per spike);
    mu0, sigma2_0: the constant part (external drive, DC, replaced input).
    """
    return A @ rates + mu0, np.sqrt(np.maximum(B @ rates + sigma2_0, 0.))


def euler_factors(dt, tau_rate=TAU_RATE):
    """(exp(-dt/tau), 1 - exp(-dt/tau)) of the exponential Euler step."""
    return np.exp(-dt / tau_rate), -np.expm1(-dt / tau_rate)


def rate_step(A, B, rates, mu0, sigma2_0, decay, neuron: LIFParams):
    """One exponential-Euler step of tau dnu/dt = -nu + Phi(mu, sigma) (NEST's
    ``siegert_neuron`` update); ``decay`` from ``euler_factors``."""
    p1, p2 = decay
    return p1 * rates + p2 * siegert_rate(*input_statistics(A, B, rates, mu0, sigma2_0), neuron)


def effective_connectivity(S, T, K, J, tau_s):
    """G_ij = tau_m (S_i K_ij J_ij + T_i K_ij J_ij^2) from the slopes S, T of ``d_nu``."""
    return tau_s * (S[:, None] * K * J + T[:, None] * K * J ** 2)


def integrate_rate_dynamics(KJ, KJ2, mu0, sigma2_0, r0, n_steps, dt, neuron: LIFParams,
                            tau_s, record_every=1, tau_rate=TAU_RATE):
    """Exponential-Euler integration of the rate dynamics; returns the recorded rates.

    KJ, KJ2: (n, n) recurrent drift and diffusion couplings (mV s per spike);
    mu0, sigma2_0: (n,) or (n, B) constant input (external, DC, replaced input);
    r0: (n,) or (n, B) initial rates; tau_s: membrane time constant in s.
    Returns an array (n, [B,] n_steps // record_every + 1), the first column the
    initial rates. The input of step k uses the rates of step k (NEST's scheme
    without waveform relaxation).
    """
    r = np.array(r0, dtype=float)
    batch_shape = np.broadcast_shapes(r.shape, np.shape(mu0), np.shape(sigma2_0))
    r = np.broadcast_to(r, batch_shape).copy()
    A = tau_s * np.asarray(KJ)
    B = tau_s * np.asarray(KJ2)
    decay = euler_factors(dt, tau_rate)
    n_rec = n_steps // record_every
    out = np.empty(batch_shape + (n_rec + 1,))
    out[..., 0] = r
    for step in range(1, n_steps + 1):
        r = rate_step(A, B, r, mu0, sigma2_0, decay, neuron)
        if step % record_every == 0:
            out[..., step // record_every] = r
    return out


def final_rates(KJ, KJ2, mu0, sigma2_0, r0, n_steps, dt, neuron: LIFParams, tau_s,
                rtol=1e-13, escape_rate=None, tau_rate=TAU_RATE):
    """End points (n, B) of ``integrate_rate_dynamics`` for a batch, computed faster.

    A run whose rates no longer change (step change below ``rtol`` relative: a fixed
    point of the update map) keeps them to the end, so it leaves the batch. With
    ``escape_rate`` a run also leaves once its population-averaged rate exceeds it
    (it has escaped to the high-activity state; its rates are those at that time).
    Returns the rates and a bool (B,) telling which runs escaped.
    """
    r = np.array(np.broadcast_to(r0, np.broadcast_shapes(np.shape(r0), np.shape(mu0))), float)
    x = r.copy()
    m0 = np.broadcast_to(mu0, r.shape).copy()
    s0 = np.broadcast_to(sigma2_0, r.shape).copy()
    A, B = tau_s * np.asarray(KJ), tau_s * np.asarray(KJ2)
    decay = euler_factors(dt, tau_rate)
    active = np.arange(r.shape[1])
    escaped = np.zeros(r.shape[1], bool)
    for _ in range(n_steps):
        new = rate_step(A, B, x, m0, s0, decay, neuron)
        r[:, active] = new
        keep = np.any(np.abs(new - x) > rtol * np.abs(new), axis=0)
        if escape_rate is not None:
            up = new.mean(axis=0) > escape_rate
            escaped[active[up]] = True
            keep &= ~up
        if keep.all():
            x = new
            continue
        active, x, m0, s0 = active[keep], new[:, keep], m0[:, keep], s0[:, keep]
        if active.size == 0:
            break
    return r, escaped


def _area_index(network) -> np.ndarray:
    """Area number of every population (row) of the network."""
    return np.repeat(np.arange(len(network.area_list)),
                     [len(network.structure[a]) for a in network.area_list])


def cortico_cortical_mask(network) -> np.ndarray:
    """(n, n+1) bool: connections between different areas (external column False)."""
    area = _area_index(network)
    mask = area[:, None] != area[None, :]
    return np.hstack([mask, np.zeros((len(area), 1), bool)])


class Theory:
    """Mean-field analysis of a MultiAreaModel (upstream's ``Theory``).

    ``network`` needs ``K_matrix``, ``J_matrix``, ``add_DC_drive``, ``params``,
    ``area_list``, ``structure``, ``structure_vec`` and ``label`` (a MultiAreaModel).
    """

    def __init__(self, network, theory_spec: dict | None = None):
        spec = dict(theory_spec or {})
        initial = spec.pop('initial_rates', None)   # an array: keep it out of the deep copy
        self.params = P.resolve(spec, P.theory_defaults())
        self.params['initial_rates'] = initial
        self.custom_params = theory_spec or {}
        self.network = network
        # one neuron model: the network's (its C_m and J enter the theory anyway)
        net_neuron = network.params['neuron_params']
        if 'neuron_params' in spec and self.params['neuron_params'] != net_neuron:
            raise ValueError("theory_params.neuron_params differ from the network's neuron_params: "
                             "the theory uses the network's neuron model (set it in network_params)")
        self.params['neuron_params'] = copy.deepcopy(net_neuron)
        self.neuron = LIFParams.from_neuron_params(self.params['neuron_params'])
        self._check_params()
        self.label = P.content_hash({'params': self.params,
                                     'network_label': getattr(network, 'label', None)})

    def __repr__(self):
        return f"Theory({self.label[:8]} of network {getattr(self.network, 'label', '?')})"

    def __eq__(self, other):
        return isinstance(other, Theory) and self.label == other.label

    def __hash__(self):
        return hash(self.label)

    # ------------------------------------------------------------------ inputs
    def _check_params(self):
        p = self.params
        if p['dt'] <= 0 or p['T'] <= 0:
            raise ValueError(f"theory params T and dt must be > 0, got T={p['T']}, dt={p['dt']}")
        init = p['initial_rates']
        n = self.network.K_matrix.shape[0]
        if isinstance(init, str):
            if init != 'random_uniform':
                raise ValueError(f"initial_rates must be None, an array of {n} rates or "
                                 f"'random_uniform', got {init!r}")
            if not isinstance(p['initial_rates_iter'], (int, np.integer)) or \
                    p['initial_rates_iter'] < 1:
                raise ValueError("initial_rates='random_uniform' needs initial_rates_iter, "
                                 f"a positive int, got {p['initial_rates_iter']!r}")
        elif init is not None and np.shape(init) != (n,):
            raise ValueError(f"initial_rates must have shape ({n},), got {np.shape(init)}")

    @property
    def tau_s(self) -> float:
        """Membrane time constant in s (rates are in spikes/s)."""
        return self.neuron.tau_m * 1e-3

    def _connectivity(self):
        """K and J with replaced cortico-cortical input removed, and its (mu, sigma^2)."""
        net = self.network
        K = np.array(net.K_matrix, dtype=float)
        J = np.asarray(net.J_matrix, dtype=float)
        mode = net.params['connection_params'].get('replace_cc', False)
        if mode in ('hom_poisson_stat', 'het_poisson_stat'):
            mu_cc, sigma2_cc = self.replace_cc_input()
            K[cortico_cortical_mask(net)] = 0.
        elif mode == 'het_current_nonstat':
            raise NotImplementedError("replace_cc='het_current_nonstat' (non-stationary "
                                      "current input) has no stationary mean-field theory")
        elif mode:
            raise ValueError(f"unknown replace_cc mode {mode!r}")
        else:
            mu_cc = sigma2_cc = np.zeros(K.shape[0])
        return K, J, mu_cc, sigma2_cc

    def replace_cc_input(self):
        """Mean and variance (mV, mV^2) of the cortico-cortical input replaced by Poisson
        sources firing at rate_ext ('hom_poisson_stat') or at the rates of the file
        ``replace_cc_input_source`` ('het_poisson_stat')."""
        net = self.network
        cp = net.params['connection_params']
        n = net.K_matrix.shape[0]
        if cp['replace_cc'] == 'het_poisson_stat':
            source = cp.get('replace_cc_input_source')
            if not source:
                raise ValueError("replace_cc='het_poisson_stat' needs "
                                 "connection_params.replace_cc_input_source (a rates JSON)")
            from ..structure import dict_to_vector
            with open(source) as f:
                rates = dict_to_vector(json.load(f), net.area_list, net.structure)
        else:
            rates = np.full(n, float(net.params['input_params']['rate_ext']))
        mask = cortico_cortical_mask(net)[:, :-1]
        K = np.where(mask, net.K_matrix[:, :-1], 0.)
        J = np.asarray(net.J_matrix)[:, :-1]
        self.cc_input_rates = rates
        return self.tau_s * (K * J) @ rates, self.tau_s * (K * J ** 2) @ rates

    def _constant_input(self, K, J, mu_cc, sigma2_cc):
        """mu and sigma^2 from external Poisson drive, DC drive and replaced input."""
        net = self.network
        rate_ext = net.params['input_params']['rate_ext']
        C_m = net.params['neuron_params']['single_neuron_dict']['C_m']
        mu0 = (self.tau_s * K[:, -1] * J[:, -1] * rate_ext
               + self.neuron.tau_m / C_m * np.asarray(net.add_DC_drive) + mu_cc)
        sigma2_0 = self.tau_s * K[:, -1] * J[:, -1] ** 2 * rate_ext + sigma2_cc
        return mu0, sigma2_0

    def _initial_rates(self, n):
        """(n, B) initial rates of the B runs upstream's theory params ask for."""
        p = self.params
        init = p['initial_rates']
        if init is None:
            return np.zeros((n, 1))
        if isinstance(init, str):  # 'random_uniform', upstream's generator and seed
            rng = np.random.RandomState(seed=INITIAL_RATES_SEED)
            return np.stack([p['initial_rates_max'] * rng.rand(n)
                             for _ in range(p['initial_rates_iter'])], axis=1)
        return np.asarray(init, float).reshape(n, 1)

    def _steps(self):
        dt, T = self.params['dt'], self.params['T']
        interval = self.params['rec_interval'] or dt
        n_steps = int(round(T / dt))
        every = int(round(interval / dt))
        if not np.isclose(n_steps * dt, T) or not np.isclose(every * dt, interval) or every < 1:
            raise ValueError(f"T ({T}) and rec_interval ({interval}) must be multiples of dt ({dt})")
        return n_steps, every

    # ---------------------------------------------------------------- dynamics
    def times(self) -> np.ndarray:
        """Time points (ms of pseudo-time) of the columns integrate_siegert returns."""
        n_steps, every = self._steps()
        return np.arange(n_steps // every + 1) * every * self.params['dt']

    def integrate_siegert(self, full_output: bool = False):
        """Integrate the rate dynamics (Eq. 3 ff. of Schuecker, Schmidt et al. 2017).

        Returns upstream's ``(structure_vec, rates)``: rates (254, n_rec + 1), the first
        column the initial rates, the last the stationary state (see ``times()``);
        a list of such arrays for several random initial conditions. With
        ``full_output`` also the time points: ``(structure_vec, rates, times)``.
        Column k is the state after k steps (time k dt). Upstream's array, read from
        NEST's multimeter, lags one step (its columns are r0, r0, r1, ..., r_{n-1}).
        """
        K, J, mu_cc, sigma2_cc = self._connectivity()
        mu0, sigma2_0 = self._constant_input(K, J, mu_cc, sigma2_cc)
        n = K.shape[0]
        r0 = self._initial_rates(n)
        n_steps, every = self._steps()
        traj = integrate_rate_dynamics(K[:, :-1] * J[:, :-1], K[:, :-1] * J[:, :-1] ** 2,
                                       mu0[:, None], sigma2_0[:, None], r0, n_steps,
                                       self.params['dt'], self.neuron, self.tau_s,
                                       record_every=every)
        runs = [traj[:, b] for b in range(traj.shape[1])]
        rates = runs[0] if len(runs) == 1 else runs
        if full_output:
            return self.network.structure_vec, rates, self.times()
        return self.network.structure_vec, rates

    def stationary_rates(self) -> np.ndarray:
        """End point of the rate dynamics from the configured initial rates (254,)."""
        _, rates = self.integrate_siegert()
        return (rates if isinstance(rates, np.ndarray) else rates[0])[:, -1]

    def transfer(self, rates) -> np.ndarray:
        """Phi(mu(nu), sigma(nu)): the Siegert rates (spikes/s) the input at ``rates`` drives."""
        mu, sigma = self.mu_sigma(rates)
        return siegert_rate(mu, sigma, self.neuron)

    def convergence(self, trajectory, times) -> dict:
        """Did the rate dynamics reach a fixed point?

        ``residual_hz``: max over populations of |Phi(nu_T) - nu_T| (= tau |dnu/dt|, zero at a
        fixed point, independent of the recording interval); ``last_change_hz``: max |nu(T) -
        nu(T - 5 ms)| along the recorded trajectory; ``converged``: every population within
        ``CONVERGENCE_RTOL (1 + nu)`` of its fixed-point equation.
        """
        traj = np.asarray(trajectory, float)
        rates = traj[:, -1]
        residual = np.abs(self.transfer(rates) - rates)
        times = np.asarray(times, float)
        back = int(np.searchsorted(times, times[-1] - LAST_CHANGE_WINDOW_MS, side='left'))
        back = min(back, len(times) - 2) if len(times) > 1 else 0
        return {'converged': bool(np.all(residual <= CONVERGENCE_RTOL * (1. + np.abs(rates)))),
                'residual_hz': float(residual.max()),
                'last_change_hz': float(np.abs(rates - traj[:, back]).max()),
                'last_change_window_ms': float(times[-1] - times[back]),
                'rtol': CONVERGENCE_RTOL, 'max_rate_hz': float(rates.max())}

    # -------------------------------------------------------- around the fixed point
    def mu_sigma(self, rates, external=True, matrix_filter=None, vector_filter=None):
        """Mean mu (mV) and standard deviation sigma (mV) of the input at given rates.

        ``matrix_filter`` (254, 255) bool keeps only those connections; ``vector_filter``
        selects populations of the result.
        """
        K, J, mu_cc, sigma2_cc = self._connectivity()
        if matrix_filter is not None:
            K = np.where(matrix_filter, K, 0.)
        rate_ext = self.network.params['input_params']['rate_ext'] if external else 0.
        r = np.append(np.asarray(rates, float), rate_ext)
        C_m = self.network.params['neuron_params']['single_neuron_dict']['C_m']
        mu = (self.tau_s * (K * J) @ r + mu_cc
              + self.neuron.tau_m / C_m * np.asarray(self.network.add_DC_drive))
        sigma = np.sqrt(self.tau_s * (K * J ** 2) @ r + sigma2_cc)
        if vector_filter is not None:
            mu, sigma = mu[vector_filter], sigma[vector_filter]
        return mu, sigma

    def d_nu(self, mu, sigma):
        """Slopes of the transfer function: d nu/d mu (1/(mV s)), d nu/d sigma^2 (1/(mV^2 s))."""
        return siegert_derivatives(mu, sigma, self.neuron)

    def gain_matrix(self, rates, matrix_filter=None, vector_filter=None, full_output=False):
        """Effective connectivity G_ij = d Phi_i / d nu_j at the given rates.

        G = tau_m (S_i K_ij J_ij + T_i K_ij J_ij^2) with S, T the slopes of ``d_nu``; the
        fixed point is linearly stable when all eigenvalues of G have real part < 1.
        Filters as upstream: ``matrix_filter`` (254, 255) and ``vector_filter`` (254,)
        restrict to a sub-network.
        """
        K = np.asarray(self.network.K_matrix, float)
        J = np.asarray(self.network.J_matrix, float)
        mu, sigma = self.mu_sigma(rates)
        if matrix_filter is not None:
            if vector_filter is None:
                raise ValueError("gain_matrix: matrix_filter needs a vector_filter")
            n = int(np.count_nonzero(vector_filter))
            K = K[matrix_filter].reshape(n, n + 1)
            J = J[matrix_filter].reshape(n, n + 1)
            mu, sigma = mu[vector_filter], sigma[vector_filter]
        K, J = K[:, :-1], J[:, :-1]
        S, T = self.d_nu(mu, sigma)
        G = effective_connectivity(S, T, K, J, self.tau_s)
        return (G, S, T) if full_output else G

    def leading_eigenvalue(self, rates, **filters) -> complex:
        """Eigenvalue of the gain matrix with the largest real part (stable if < 1)."""
        ev = np.linalg.eigvals(self.gain_matrix(rates, **filters))
        return ev[np.argmax(ev.real)]

    def lambda_max(self, rates, matrix_filter=None, vector_filter=None, full_output=False):
        """Upstream's stability measure: sqrt of the largest real part of G's eigenvalues."""
        G, S, T = self.gain_matrix(rates, matrix_filter, vector_filter, full_output=True)
        EV = np.linalg.eig(G)
        lam = np.sqrt(np.max(np.real(EV[0])))
        return (lam, S, T, G, EV) if full_output else lam

    def stabilize(self, **kwargs) -> np.ndarray:
        """Stabilized in-degrees K' (254 x 254) of this network; see ``stabilization.stabilize``."""
        from .stabilization import stabilize
        return stabilize(self.network, theory_spec=self.custom_params, **kwargs)


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def write_theory(M, path, theory_spec=None, stabilize: bool = False) -> Path:
    """Write the mean-field results of model ``M`` for ``mam theory --out F``.

    ``.npz``: arrays ``rates`` (stationary), ``mu``, ``sigma``, ``trajectory``, ``times``,
    ``leading_eigenvalue`` (real, imag), ``structure_vec``, the convergence check
    ``converged``, ``residual_hz``, ``last_change_hz`` (``Theory.convergence``; an
    ``UnconvergedWarning`` when not converged) (and ``K_prime`` with ``stabilize``). ``.json``: the same as lists, rates also per area and population.
    ``.npy`` with ``stabilize``: K' alone (what ``K_stable`` reads). Written atomically.
    With several initial conditions (``initial_rates_iter`` > 1) ``trajectory`` holds all
    runs (runs, n, times) and rates, mu, sigma and the eigenvalue are those of the first
    run; ``n_runs`` and ``rates_run`` (= 0) say so in the output.
    ``stabilize`` stabilizes ``M`` as configured and needs ``K_stable = None`` (see
    ``stabilization.stabilize``); it is checked before anything runs.
    """
    from ..io import atomic_path, atomic_write_json
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ('.npz', '.json', '.npy'):
        raise ValueError(f"theory output {path}: suffix must be .npz, .json or .npy")
    if suffix == '.npy' and not stabilize:
        raise ValueError(f"theory output {path}: .npy holds K' only; use --stabilize, "
                         "or .npz/.json for rates")
    if stabilize:
        from .stabilization import require_raw_K
        require_raw_K(M)
    theory = getattr(M, 'theory', None)
    if theory is None or theory_spec is not None:
        theory = Theory(M, theory_spec)
    K_prime = None
    if stabilize:
        from .stabilization import stabilize as _stabilize
        K_prime = _stabilize(M, theory_spec=theory.custom_params)
        if suffix == '.npy':
            with atomic_path(path) as tmp:
                with open(tmp, 'wb') as f:
                    np.save(f, K_prime)
            progress(f"wrote K' ({K_prime.shape[0]}x{K_prime.shape[1]}) to {path}")
            return path
    _, traj, times = theory.integrate_siegert(full_output=True)
    n_runs = 1 if isinstance(traj, np.ndarray) else len(traj)
    if n_runs > 1:
        traj = np.stack(traj)
        rates = traj[0, :, -1]      # rates, mu, sigma, eigenvalue: the first run
    else:
        rates = traj[:, -1]
    mu, sigma = theory.mu_sigma(rates)
    lam = theory.leading_eigenvalue(rates)
    conv = theory.convergence(traj[0] if n_runs > 1 else traj, times)
    result = {'label': getattr(M, 'label', None), 'theory_label': theory.label,
              'converged': conv['converged'], 'residual_hz': conv['residual_hz'],
              'last_change_hz': conv['last_change_hz'],
              'structure_vec': list(M.structure_vec), 'rates': rates, 'mu': mu,
              'sigma': sigma, 'leading_eigenvalue': np.array([lam.real, lam.imag]),
              'times': times, 'trajectory': traj, 'n_runs': n_runs, 'rates_run': 0}
    if K_prime is not None:
        result['K_prime'] = K_prime
    if suffix == '.npz':
        with atomic_path(path) as tmp:
            with open(tmp, 'wb') as f:
                np.savez_compressed(f, **{k: np.asarray(v) for k, v in result.items()
                                          if v is not None})
    else:
        from ..structure import vector_to_dict
        js = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.items()}
        js['rates_by_population'] = vector_to_dict(rates, M.area_list, M.structure)
        atomic_write_json(path, js)
    if not conv['converged']:
        warnings.warn(
            f"mam theory: the rate dynamics did NOT reach a fixed point within T = "
            f"{times[-1]:g} ms: |Phi(nu) - nu| up to {conv['residual_hz']:.3g} spikes/s, rates "
            f"still changed by {conv['last_change_hz']:.3g} spikes/s in the last "
            f"{conv['last_change_window_ms']:g} ms (max rate {conv['max_rate_hz']:.1f} spikes/s); "
            f"the saved 'rates' are the end of the trajectory, not a stationary state "
            f"(increase theory_params.T, or see README's Mean-field theory section)",
            UnconvergedWarning, stacklevel=2)
    state = ('converged' if conv['converged'] else
             f"NOT converged (residual {conv['residual_hz']:.3g} spikes/s)")
    progress(f"wrote mean-field results to {path}: mean rate {rates.mean():.3f} spikes/s, "
             f"leading eigenvalue {lam.real:.4f}, {state}")
    return path


class UnconvergedWarning(UserWarning):
    """The mean-field rate dynamics ended before reaching a fixed point."""
