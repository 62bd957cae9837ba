"""BOLD signal from neural activity without R: neuRosim's ``balloon()`` in Python.

Upstream (figures/Schmidt2018_dyn/compute_bold_signal.py and .R) feeds each area's
synaptic input, divided by its maximum, to R's neuRosim ``balloon(stim, T, it)`` with
``T = 100`` s and ``it = 0.001`` s (one sample per ms of the 100 s run) and neuRosim's
default parameters. neuRosim's balloon (Buxton et al. 2004, NeuroImage 23 S220) is:

1. an inhibitory feedback ``I`` on the stimulus ``s``: ``tau1 dI/dt = kappa s - (kappa+1) I``;
   the neural activity is ``N = s - I``;
2. blood flow and oxygen metabolism as gamma-kernel responses to ``N``:
   ``F = 1 + (f1 - 1) g_f * N``, ``M = 1 + (m1 - 1) g_m * N`` with ``m1 = (f1 - 1)/n + 1``,
   ``g`` neuRosim's ``gammaHRF`` (FWHM ``tauf``/``taum``, M delayed by ``deltat``), the
   convolution a plain sum over samples (no factor ``acc``); ``E = E0 M / F``;
3. the balloon: ``(tauMTT + tau) dv/dt = F - v^(1/alpha)``,
   ``tauMTT dq/dt = F E / E0 - q/v (v^(1/alpha) + tau dv/dt)``, ``v = q = 1`` at start;
4. ``BOLD = V0 (a1 (1 - q) - a2 (1 - v))``.

neuRosim integrates the two ODEs (deSolve, ode45) on the sample index ``1..n`` as time
axis, with the inputs read as ``x[t]`` (R truncates a fractional index: piecewise
constant per sample). So ``tau1``, ``tauMTT`` and ``tau`` are counted in samples (at
upstream's 1 ms: 3 ms, 3 ms, 20 ms) while the gamma kernels are in seconds, and it
evaluates the delayed metabolism kernel ``gammaHRF(t - deltat)`` also at t < deltat,
where it is negative. We keep neuRosim's definition as it is, since upstream's
published BOLD FC comes from it. At 1 ms samples the balloon then follows F and M
within ~20 ms, M dips during the first second after an input, and the BOLD response to
a brief input rises with the input itself, has a second hump from the flow kernel
about 2.5 s later and a small undershoot at ~13 s (tests). ``units='s'`` gives the
model as Buxton et al. publish it instead: time constants in seconds, the kernels as
densities (convolution times acc) and zero before their delay; its response to a
brief input peaks about 3.3 s later and undershoots for tens of seconds.

The inhibition is integrated exactly (a first-order filter of a piecewise constant
input), the balloon with an exponential integrator (:func:`balloon_state`) whose error
is far below neuRosim's own (ode45, rtol = atol = 1e-6; validation/upstream_analysis).
"""
from __future__ import annotations

import math

import numpy as np

#: neuRosim's default parameters of balloon() (used when par is missing, as upstream calls it)
NEUROSIM_DEFAULTS = {'kappa': 2., 'tau1': 3., 'tauf': 4., 'taum': 4., 'f1': 1.5, 'deltat': 1.,
                     'n': 3., 'E0': 0.4, 'V0': 0.03, 'a1': 3.4, 'a2': 1.0, 'tauMTT': 3.,
                     'tau': 20., 'alpha': 0.4}
#: upstream's sample interval (compute_bold_signal.R: it <- 0.001) in s
UPSTREAM_ACC = 0.001
#: upstream drops the first 5000 samples (5 s) of BOLD before the FC (compute_functional_connectivity.py)
BOLD_TRANSIENT_SAMPLES = 5000
#: Lawson-RK4 substeps per sample of the balloon integration
SUBSTEPS = 2
#: 'samples': neuRosim as it is (upstream's BOLD); 's': Buxton et al.'s model in seconds
UNITS = ('samples', 's')
#: up to this many signals are integrated one by one with Python floats
SCALAR_SIGNALS = 8


def _params(par: dict | None, acc: float | None = None, units: str = 'samples') -> dict:
    """neuRosim's parameters updated by ``par``; with ``units='s'`` the time constants
    tau1, tauMTT, tau converted to samples of ``acc`` s (the integration axis)."""
    p = dict(NEUROSIM_DEFAULTS)
    unknown = set(par or {}) - set(p)
    if unknown:
        raise KeyError(f"unknown balloon parameter {sorted(unknown)[0]!r}; valid: {', '.join(p)}")
    if units not in UNITS:
        raise ValueError(f"units {units!r}: one of {UNITS}")
    p.update(par or {})
    if units == 's':
        p.update({k: p[k] / acc for k in ('tau1', 'tauMTT', 'tau')})
    return p


def gamma_hrf(x, fwhm: float) -> np.ndarray:
    """neuRosim's gammaHRF: a gamma density of shape 4 and scale 0.242 FWHM (s), evaluated
    as written also for x < 0 (where it is negative)."""
    th = 0.242 * fwhm
    x = np.asarray(x, float)
    return (x / th) ** 3 * np.exp(-x / th) / (th * 6.)


def neural_activity(stim: np.ndarray, p: dict) -> np.ndarray:
    """N = s - I, I from ``tau1 dI/dt = kappa s[floor t] - (kappa+1) I`` on the sample axis
    (``p`` from :func:`_params`), I = 0 at the first sample; solved exactly per sample
    (rows of ``stim`` are independent signals)."""
    from scipy.signal import lfilter
    a = np.exp(-(p['kappa'] + 1.) / p['tau1'])
    gain = p['kappa'] / (p['kappa'] + 1.) * (1. - a)
    stim = np.asarray(stim, float)
    return stim - lfilter([0., gain], [1., -a], stim, axis=-1)


def kernels(n: int, acc: float, p: dict, units: str = 'samples'):
    """(flow kernel, metabolism kernel) at lags acc, 2 acc, ..., n acc (s): neuRosim's
    ``(f1-1) gammaHRF(t)`` and ``(m1-1) gammaHRF(t - deltat)``, m1 = (f1-1)/n + 1;
    with ``units='s'`` times acc (a density) and zero at negative arguments."""
    t = acc * np.arange(1, n + 1)
    m1 = (p['f1'] - 1.) / p['n'] + 1.
    kf = (p['f1'] - 1.) * gamma_hrf(t, p['tauf'])
    km = (m1 - 1.) * gamma_hrf(t - p['deltat'], p['taum'])
    if units == 's':
        kf, km = kf * acc, np.where(t >= p['deltat'], km, 0.) * acc
    return kf, km


def flow_and_metabolism(N: np.ndarray, kf: np.ndarray, km: np.ndarray):
    """(F, M), normalised blood flow and oxygen metabolism: 1 + the open convolution of
    N (signals, n) with each kernel, its first n samples (R's ``convolve(k, rev(N), 'o')``)."""
    from scipy.signal import fftconvolve
    N = np.atleast_2d(np.asarray(N, float))
    n = N.shape[-1]
    F = 1. + fftconvolve(N, kf[None, :n], axes=-1)[:, :n]
    M = 1. + fftconvolve(N, km[None, :n], axes=-1)[:, :n]
    return F, M


def balloon_rhs(F, E, p):
    """The balloon's right-hand side on the sample axis for inputs F, E (one sample):
    a function (v, q) -> (dv/dt, dq/dt)."""
    def rhs(v, q):
        outflow = v ** (1. / p['alpha'])
        dv = (F - outflow) / (p['tauMTT'] + p['tau'])
        dq = (F * E / p['E0'] - q / v * (outflow + p['tau'] * dv)) / p['tauMTT']
        return dv, dq
    return rhs


def _lawson_step(v, q, f, a, h, c, exp):
    """One Lawson-RK4 step of the balloon (v, q floats or arrays); f = F, a = M / tauMTT
    over the step; c = (1/alpha, tauMTT + tau, tauMTT, tau); exp: math.exp or np.exp."""
    ia, tau_v, tau_q, tau = c
    out0 = v ** ia
    bv = ia * out0 / (v * tau_v)                     # -d(dv/dt)/dv at v
    vs = v + (f - out0) / (tau_v * bv)               # v's equilibrium, one Newton step
    bq = (out0 + tau * (f - out0) / tau_v) / (v * tau_q)
    qs = a / bq                                      # q's equilibrium at this v

    def rest(s, r):                                  # the non-linear remainders
        x = vs + s
        out = x ** ia
        return (f - out) / tau_v + bv * s, -((out + tau * (f - out) / tau_v) / (x * tau_q) - bq) * (r + qs)
    ev, eq = exp(-bv * h / 2.), exp(-bq * h / 2.)
    s0, r0 = v - vs, q - qs
    k1v, k1q = rest(s0, r0)
    k2v, k2q = rest(ev * (s0 + h / 2. * k1v), eq * (r0 + h / 2. * k1q))
    k3v, k3q = rest(ev * s0 + h / 2. * k2v, eq * r0 + h / 2. * k2q)
    k4v, k4q = rest(ev * ev * s0 + h * ev * k3v, eq * eq * r0 + h * eq * k3q)
    return (vs + ev * ev * s0 + h / 6. * (ev * ev * k1v + 2. * ev * (k2v + k3v) + k4v),
            qs + eq * eq * r0 + h / 6. * (eq * eq * k1q + 2. * eq * (k2q + k3q) + k4q))


def balloon_state(F: np.ndarray, M: np.ndarray, p: dict, substeps: int = SUBSTEPS):
    """(v, q), each (signals, n): blood volume and deoxyhaemoglobin at the samples,
    v = q = 1 at the first; F, M piecewise constant per sample as in neuRosim.

    Integrator: Lawson's exponential RK4 (``substeps`` per sample), each variable
    relative to its equilibrium for the inputs and the state at the start of the
    substep (v* from one Newton step, q* = M v / (v^(1/alpha) + tau dv/dt) frozen).
    The linear part is solved exactly, so the stiff q (rate about F^0.6/tauMTT per
    sample, up to ~10 at upstream's scale) costs no small steps. Fourth order in the
    substep; at 2 substeps within 5e-6 (relative) of a DOP853 integration at rtol 1e-11
    for F rising from rest to ~60 in 300 samples (tests), below neuRosim's rtol 1e-6
    for the slower F of real inputs.
    ``p``: parameters on the sample axis (:func:`_params`). A few signals are stepped
    as Python floats (faster than numpy on tiny arrays), many as one array.
    """
    F, M = np.atleast_2d(np.asarray(F, float)), np.atleast_2d(np.asarray(M, float))
    k, n = F.shape
    c = (1. / p['alpha'], p['tauMTT'] + p['tau'], p['tauMTT'], p['tau'])
    h = 1. / substeps
    A = M / p['tauMTT']                               # F E / E0 = M
    V, Q = np.empty((k, n)), np.empty((k, n))
    if k <= SCALAR_SIGNALS:
        for j in range(k):
            f_j, a_j, v, q = F[j].tolist(), A[j].tolist(), 1., 1.
            vj, qj = [1.] * n, [1.] * n
            for i in range(n - 1):
                for _ in range(substeps):
                    v, q = _lawson_step(v, q, f_j[i], a_j[i], h, c, math.exp)
                vj[i + 1], qj[i + 1] = v, q
            V[j], Q[j] = vj, qj
        return V, Q
    v, q = np.ones(k), np.ones(k)
    V[:, 0], Q[:, 0] = v, q
    for i in range(n - 1):
        for _ in range(substeps):
            v, q = _lawson_step(v, q, F[:, i], A[:, i], h, c, np.exp)
        V[:, i + 1], Q[:, i + 1] = v, q
    return V, Q


def balloon(stim, acc: float, totaltime: float | None = None, par: dict | None = None,
            units: str = 'samples', substeps: int = SUBSTEPS) -> np.ndarray:
    """neuRosim's ``balloon(stim, totaltime, acc, par)``: the BOLD signal (fractional
    signal change) at each sample of ``stim`` (1-d, or 2-d with one signal per row).

    ``acc``: sample interval (s); ``totaltime`` (s), if given, must be ``len(stim) acc``
    (neuRosim recycles or pads a mismatched stimulus; here that is an error).
    ``units``: 'samples' is neuRosim's (and upstream's) model, 's' Buxton et al.'s in
    seconds (module docstring).
    """
    stim = np.asarray(stim, float)
    if stim.ndim not in (1, 2) or stim.shape[-1] < 2:
        raise ValueError(f"stim must be 1-d or 2-d with >= 2 samples, got shape {stim.shape}")
    if not np.all(np.isfinite(stim)):
        raise ValueError("stim holds NaN or infinite values")
    n = stim.shape[-1]
    if totaltime is not None and not np.isclose(totaltime / acc, n):
        raise ValueError(f"totaltime {totaltime} s / acc {acc} s = {totaltime / acc:g} samples, "
                         f"but stim has {n}")
    p = _params(par, acc, units)
    F, M = flow_and_metabolism(neural_activity(stim, p), *kernels(n, acc, p, units))
    if np.any(F <= 0):
        raise ValueError("the stimulus drives the blood flow F to <= 0 (neuRosim's model is "
                         "undefined there): scale the stimulus down")
    v, q = balloon_state(F, M, p, substeps)
    bold = p['V0'] * (p['a1'] * (1. - q) - p['a2'] * (1. - v))
    return bold if stim.ndim == 2 else bold[0]


def bold_signal(synaptic_input, acc: float = UPSTREAM_ACC, par: dict | None = None) -> np.ndarray:
    """Upstream's BOLD of an area (compute_bold_signal.py, bold_signal_<area>.npy): the
    balloon of the area's synaptic input divided by its maximum, one sample per bin of
    ``acc`` s (upstream: 1 ms bins, totaltime = the run's 100 s). 1-d input: (n,);
    2-d (areas, n): each row normalised by its own maximum, (areas, n)."""
    x = np.asarray(synaptic_input, float)
    peak = np.max(x, axis=-1, keepdims=True)
    if np.any(peak <= 0):
        raise ValueError("synaptic input with a maximum <= 0 cannot be normalised (upstream "
                         "divides by the maximum)")
    return balloon(x / peak, acc, par=par)


def bold_functional_connectivity(bold, transient: int = BOLD_TRANSIENT_SAMPLES) -> np.ndarray:
    """Upstream's functional_connectivity_bold_signal.npy: Pearson correlations
    (areas, areas) of the areas' BOLD signals without their first ``transient``
    samples (compute_functional_connectivity.py drops 5000, the BOLD's start-up)."""
    from .statistics import functional_connectivity
    bold = np.atleast_2d(np.asarray(bold, float))
    if bold.shape[-1] <= transient + 2:
        raise ValueError(f"BOLD signals of {bold.shape[-1]} samples: nothing left after the "
                         f"{transient}-sample transient")
    return functional_connectivity(bold[:, transient:])
