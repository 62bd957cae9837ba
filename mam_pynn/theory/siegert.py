"""Stationary firing rate of LIF neurons with exponential synapses (Siegert formula).

Vectorised: one call evaluates the rate of every population (and of every batch
column) at once, so that the rate dynamics of the 254 populations can be stepped
cheaply. Units follow NEST's ``siegert_neuron``, which upstream's theory uses:
mu and sigma in mV, time constants in ms, rates in spikes/s.

The rate is the mean first-passage time formula for white-noise input,

    1/nu = t_ref + tau_m sqrt(pi) * int_{y_r}^{y_th} exp(s^2) (1 + erf(s)) ds,
    y = (V - mu) / sigma,

with threshold and reset shifted by sigma * alpha/2 * sqrt(tau_syn/tau_m) to account
for synaptic filtering (Fourcaud & Brunel 2002, alpha = sqrt(2) |zeta(1/2)|). The
integrand is rewritten with erfcx so that neither very low nor very high rates
overflow (the same case split as NEST and NNMT); the remaining integral of erfcx is
the difference of a tabulated antiderivative (see ``erfcx_antiderivative``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import dawsn, erfcx, zeta

#: sqrt(2) |zeta(1/2)|, the Fourcaud-Brunel coefficient of the threshold shift.
ALPHA_FB = float(np.sqrt(2.) * abs(zeta(0.5)))

#: NEST returns rate 0 when the (unshifted) threshold is this many sigmas above mu.
CUTOFF_SIGMAS = 6.

# Antiderivative F(x) = int_0^x erfcx(u) du, tabulated on a uniform grid in
# t = log(1 + x) (where dF/dt = erfcx(x) (1 + x) is smooth and bounded) and read by
# cubic Hermite interpolation (test_siegert checks integrals to 1e-11 against adaptive
# quadrature), so no step of the rate dynamics needs a quadrature of erfcx.
_T_STEP = 1. / 512
_T_MAX = 20.           # x up to ~4.9e8; beyond, erfcx(u) = 1/(sqrt(pi) u) to 1e-17


def _dF_dt(t):
    x = np.expm1(t)
    return erfcx(x) * (1. + x)


def _build_table():
    t = np.arange(0., _T_MAX + _T_STEP / 2, _T_STEP)
    nodes, weights = np.polynomial.legendre.leggauss(8)
    mid = t[:-1] + _T_STEP / 2
    pieces = (_dF_dt(mid[:, None] + _T_STEP / 2 * nodes) @ weights) * (_T_STEP / 2)
    return np.concatenate([[0.], np.cumsum(pieces)]), _dF_dt(t)


_F_TABLE, _DF_TABLE = _build_table()


def erfcx_antiderivative(x):
    """F(x) = int_0^x erfcx(u) du for x >= 0 (elementwise)."""
    t = np.log1p(x)
    tc = np.minimum(t, _T_MAX * (1 - 1e-15))
    pos = tc / _T_STEP
    k = pos.astype(np.intp)
    s = pos - k
    f0, f1 = _F_TABLE[k], _F_TABLE[k + 1]
    d0, d1 = _DF_TABLE[k] * _T_STEP, _DF_TABLE[k + 1] * _T_STEP
    s2 = s * s
    s3 = s2 * s
    F = (f0 * (2 * s3 - 3 * s2 + 1) + d0 * (s3 - 2 * s2 + s)
         + f1 * (3 * s2 - 2 * s3) + d1 * (s3 - s2))
    # beyond the table: erfcx(u) ~ 1/(sqrt(pi) u), so F grows like log(x)/sqrt(pi)
    return F + np.maximum(t - tc, 0.) / np.sqrt(np.pi)


def erfcx_integral(a, b):
    """int_a^b erfcx(u) du for 0 <= a, b (elementwise; negative if b < a)."""
    return erfcx_antiderivative(b) - erfcx_antiderivative(a)


@dataclass(frozen=True)
class LIFParams:
    """Single-neuron constants of the transfer function (mV relative to rest, ms)."""
    theta: float    # threshold - E_L
    V_reset: float  # reset - E_L
    tau_m: float
    tau_syn: float
    t_ref: float

    @classmethod
    def from_neuron_params(cls, neuron_params: dict) -> 'LIFParams':
        """From upstream's ``neuron_params`` (uses ``single_neuron_dict``)."""
        d = neuron_params['single_neuron_dict']
        if d['tau_syn_ex'] != d['tau_syn_in']:
            raise ValueError("the mean-field theory assumes tau_syn_ex == tau_syn_in, got "
                             f"{d['tau_syn_ex']} and {d['tau_syn_in']}")
        p = cls(theta=d['V_th'] - d['E_L'], V_reset=d['V_reset'] - d['E_L'],
                tau_m=d['tau_m'], tau_syn=d['tau_syn_ex'], t_ref=d['t_ref'])
        if p.V_reset >= p.theta:
            raise ValueError(f"V_reset ({d['V_reset']}) must be below V_th ({d['V_th']})")
        if p.tau_m <= 0 or p.tau_syn < 0 or p.t_ref < 0:
            raise ValueError(f"bad time constants in neuron params: {d}")
        return p

    @property
    def shift(self) -> float:
        """Threshold/reset shift in units of sigma (synaptic filtering)."""
        return ALPHA_FB / 2. * np.sqrt(self.tau_syn / self.tau_m)


def siegert_white(mu, sigma, theta, V_reset, tau_m, t_ref):
    """Siegert rate (spikes/s) for white-noise input with the given threshold and reset.

    ``theta``/``V_reset`` may be arrays (already shifted thresholds); sigma must be > 0.
    One pass for all elements (few numpy calls: this is the inner loop of the theory).
    """
    y_th = (theta - mu) / sigma
    y_r = (V_reset - mu) / sigma
    y_th, y_r = np.broadcast_arrays(y_th, y_r)
    high = y_th < 0      # mean input above the (shifted) threshold: plain form
    low = y_r > 0        # mean input below reset: scaled form, both ends positive
    # the erfcx integral each case needs, always over a range within [0, inf)
    a = np.where(high, -y_th, np.where(low, y_r, y_th))
    b = np.where(high, -y_r, np.where(low, y_th, -y_r))
    integral = erfcx_integral(a, b)
    sqpi_tau = np.sqrt(np.pi) * tau_m
    with np.errstate(over='ignore', under='ignore'):
        e = np.exp(-y_th * y_th)
        scaled = 2. * dawsn(y_th) + np.where(
            low, -2. * np.exp(y_r * y_r - y_th * y_th) * dawsn(y_r) - e * integral,
            e * integral)
        nu = np.where(high, 1. / (t_ref + sqpi_tau * integral),
                      e / (e * t_ref + sqpi_tau * scaled))
    return 1e3 * nu


def siegert_rate(mu, sigma, neuron: LIFParams, cutoff: bool = True):
    """Stationary rate (spikes/s) of LIF neurons with exponential synapses.

    mu, sigma: mean and standard deviation of the free membrane potential (mV,
    relative to rest), any broadcastable shapes. With ``cutoff`` (NEST's behaviour,
    used by upstream) the rate is exactly 0 where theta - mu > 6 sigma. sigma == 0
    gives the deterministic LIF rate.
    """
    mu, sigma = np.broadcast_arrays(np.asarray(mu, float), np.asarray(sigma, float))
    if np.any(sigma < 0) or not np.all(np.isfinite(mu)) or not np.all(np.isfinite(sigma)):
        raise ValueError("siegert_rate needs finite mu and sigma >= 0")
    nu = np.zeros(mu.shape)
    noisy = sigma > 0
    if cutoff:
        noisy &= (neuron.theta - mu) <= CUTOFF_SIGMAS * sigma
    if noisy.any():
        s = sigma[noisy]
        shift = neuron.shift * s
        nu[noisy] = siegert_white(mu[noisy], s, neuron.theta + shift, neuron.V_reset + shift,
                                  neuron.tau_m, neuron.t_ref)
    silent_noise_free = (sigma == 0) & (mu > neuron.theta)
    if silent_noise_free.any():
        m = mu[silent_noise_free]
        nu[silent_noise_free] = 1e3 / (neuron.t_ref + neuron.tau_m * np.log(
            (m - neuron.V_reset) / (m - neuron.theta)))
    return nu


def siegert_derivatives(mu, sigma, neuron: LIFParams, eps: float = 0.01):
    """d nu / d mu (1/(mV s)) and d nu / d sigma^2 (1/(mV^2 s)) as upstream computes them.

    Upstream (theory_helpers) takes forward differences with step ``eps`` (mV) of the
    white-noise Siegert formula at the thresholds shifted for the unperturbed sigma,
    and converts d/d sigma to d/d sigma^2 by 1/(2 sigma). The stabilized K' depends
    on these numbers, so they are reproduced here, vectorised.
    """
    mu = np.asarray(mu, float)
    sigma = np.asarray(sigma, float)
    shift = neuron.shift * sigma
    th, vr = neuron.theta + shift, neuron.V_reset + shift
    f = lambda m, s: siegert_white(m, s, th, vr, neuron.tau_m, neuron.t_ref)  # noqa: E731
    nu0 = f(mu, sigma)
    d_mu = (f(mu + eps, sigma) - nu0) / eps
    d_sigma2 = (f(mu, sigma + eps) - nu0) / eps / (2. * sigma)
    return d_mu, d_sigma2
