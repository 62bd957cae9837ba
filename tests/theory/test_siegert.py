"""The Siegert transfer function against independent evaluations."""
import warnings

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import erfc, erfcx

from mam_pynn.params import NEURON_PARAMS
from mam_pynn.theory.siegert import (ALPHA_FB, LIFParams, erfcx_antiderivative,
                                     erfcx_integral, siegert_derivatives, siegert_rate,
                                     siegert_white)

NEURON = LIFParams.from_neuron_params(NEURON_PARAMS)


def siegert_by_quadrature(mu, sigma, p=NEURON):
    """Textbook form: 1/nu = t_ref + tau_m sqrt(pi) int exp(u^2)(1 + erf u) du (shifted).

    (1 + erf u written as erfc(-u), which keeps its precision for negative u.)"""
    shift = ALPHA_FB / 2 * np.sqrt(p.tau_syn / p.tau_m) * sigma
    y_th = (p.theta + shift - mu) / sigma
    y_r = (p.V_reset + shift - mu) / sigma
    integral = quad(lambda u: np.exp(u * u) * erfc(-u), y_r, y_th, epsabs=0, epsrel=1e-13)[0]
    return 1e3 / (p.t_ref + p.tau_m * np.sqrt(np.pi) * integral)


def test_neuron_params_are_relative_to_rest():
    assert (NEURON.theta, NEURON.V_reset) == (15., 0.)
    assert NEURON.shift == pytest.approx(ALPHA_FB / 2 * np.sqrt(0.5 / 10.))
    assert ALPHA_FB == pytest.approx(2.0652531522312172, rel=1e-14)  # NEST's constant


@pytest.mark.parametrize('a, b', [(0., 1e-2), (0., 3.), (0.5, 4.), (2., 2.0001), (1e-3, 50.),
                                  (3., 300.), (0., 1e5)])
def test_erfcx_integral_matches_adaptive_quadrature(a, b):
    expected = quad(erfcx, a, b, epsabs=0, epsrel=1e-13, limit=500)[0]
    assert erfcx_integral(np.array(a), np.array(b)) == pytest.approx(expected, rel=1e-11)


def test_erfcx_antiderivative_is_continuous_beyond_the_table():
    x = np.array([4.85e8 * (1 - 1e-9), 4.85e8 * (1 + 1e-9)])
    F = erfcx_antiderivative(x)
    # the table ends near x = 4.85e8; across it F must grow like log(x)/sqrt(pi)
    assert F[1] - F[0] == pytest.approx(np.log(x[1] / x[0]) / np.sqrt(np.pi), rel=1e-6)
    assert erfcx_antiderivative(np.array(0.)) == 0.


@pytest.mark.parametrize('mu, sigma', [(5., 3.), (10., 5.), (14., 2.), (15.5, 4.), (20., 6.),
                                       (30., 10.), (-2., 8.), (12., 1.)])
def test_rate_matches_textbook_quadrature(mu, sigma):
    assert siegert_rate(mu, sigma, NEURON, cutoff=False) == pytest.approx(
        siegert_by_quadrature(mu, sigma), rel=1e-9)


def test_rate_matches_nnmt_over_a_wide_range():
    nnmt_exp = pytest.importorskip('nnmt.lif.exp')
    rng = np.random.default_rng(1)
    mu = rng.uniform(-30., 80., 3000)
    sigma = rng.uniform(0.3, 30., 3000)
    ours = siegert_rate(mu, sigma, NEURON, cutoff=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ref = nnmt_exp._firing_rate_shift(mu * 1e-3, sigma * 1e-3, NEURON.V_reset * 1e-3,
                                          NEURON.theta * 1e-3, NEURON.tau_m * 1e-3,
                                          NEURON.t_ref * 1e-3, NEURON.tau_syn * 1e-3)
    ok = ref > 1e-250
    assert ok.sum() > 2500
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=1e-10)
    assert ours.min() >= 0 and ours.max() < 1e3 / NEURON.t_ref


def test_nest_cutoff_and_noise_free_limit():
    # NEST (and so upstream) returns exactly 0 six sigmas below threshold
    assert siegert_rate(15. - 6.01, 1., NEURON) == 0.
    assert siegert_rate(15. - 6.01, 1., NEURON, cutoff=False) > 0.
    # sigma -> 0 approaches the deterministic LIF rate, which sigma == 0 returns
    mu = 25.
    det = 1e3 / (NEURON.t_ref + NEURON.tau_m * np.log(mu / (mu - 15.)))
    assert siegert_rate(mu, 0., NEURON) == pytest.approx(det, rel=1e-12)
    assert siegert_rate(mu, 1e-3, NEURON) == pytest.approx(det, rel=1e-3)
    assert siegert_rate(10., 0., NEURON) == 0.


def test_rate_increases_with_mean_input_and_broadcasts():
    mu = np.linspace(-5., 40., 50)[:, None]
    nu = siegert_rate(mu, np.array([[2., 5.]]), NEURON)
    assert nu.shape == (50, 2)
    assert np.all(np.diff(nu, axis=0) >= 0)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match='sigma'):
        siegert_rate(1., -1., NEURON)
    bad = {'single_neuron_dict': dict(NEURON_PARAMS['single_neuron_dict'], tau_syn_in=2.)}
    with pytest.raises(ValueError, match='tau_syn'):
        LIFParams.from_neuron_params(bad)


def test_derivatives_are_upstreams_forward_differences():
    mu, sigma = np.array([8., 14., 20.]), np.array([4., 3., 6.])
    d_mu, d_s2 = siegert_derivatives(mu, sigma, NEURON)
    shift = NEURON.shift * sigma
    f = lambda m, s: siegert_white(m, s, NEURON.theta + shift, NEURON.V_reset + shift,  # noqa
                                   NEURON.tau_m, NEURON.t_ref)
    np.testing.assert_allclose(d_mu, (f(mu + .01, sigma) - f(mu, sigma)) / .01, rtol=1e-12)
    np.testing.assert_allclose(d_s2, (f(mu, sigma + .01) - f(mu, sigma)) / .01 / (2 * sigma),
                               rtol=1e-12)
    # and close to the analytic slope in mu (shift held fixed)
    h = 1e-5
    np.testing.assert_allclose(d_mu, (f(mu + h, sigma) - f(mu - h, sigma)) / (2 * h), rtol=0.02)
