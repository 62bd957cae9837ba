"""BOLD without R (issue 22.2): neuRosim's balloon in Python, checked against independent
computations: closed forms (inhibition, steady state), scipy's gamma density, a DOP853
integration of the same ODEs, and the linearised model solved by scipy.signal.lsim."""
import numpy as np
import pytest
from scipy import signal, stats
from scipy.integrate import solve_ivp

from mam_pynn.analysis import bold as B

P = B.NEUROSIM_DEFAULTS


def reference_state(F, M, p):
    """v, q by DOP853 (rtol 1e-11) interval by interval, F and M constant per sample."""
    E = p['E0'] * M / F
    y, out = np.ones(2), [np.ones(2)]
    for i in range(F.size - 1):
        rhs = B.balloon_rhs(F[i], E[i], p)
        y = solve_ivp(lambda t, y: np.array(rhs(y[0], y[1])), (0., 1.), y, method='DOP853',
                      rtol=1e-11, atol=1e-13).y[:, -1]
        out.append(y)
    return np.array(out).T


def noisy_input(n, smooth, seed=0):
    from scipy.ndimage import gaussian_filter1d
    rng = np.random.default_rng(seed)
    x = 1. + 3. * gaussian_filter1d(rng.standard_normal(n), smooth) + 0.2 * rng.standard_normal(n)
    x = np.clip(x, 0., None)
    return x / x.max()


def test_gamma_kernel_is_scipys_gamma_density_and_neurosims_formula_below_zero():
    x = np.linspace(0.01, 20., 500)
    th = 0.242 * 4.
    np.testing.assert_allclose(B.gamma_hrf(x, 4.), stats.gamma.pdf(x, a=4, scale=th), rtol=1e-12)
    assert np.all(B.gamma_hrf(-x[:50], 4.) < 0)       # neuRosim evaluates it there as written


def test_inhibition_is_the_closed_form_of_its_ode():
    """A step s from sample 5 on: I(t) = kappa/(kappa+1) s (1 - exp(-(kappa+1)(t-5)/tau1))."""
    s = np.zeros(60)
    s[5:] = 0.7
    N = B.neural_activity(s, B._params(None))
    t = np.arange(60.)
    expected_I = np.where(t > 5, P['kappa'] / (P['kappa'] + 1) * 0.7
                          * (1 - np.exp(-(P['kappa'] + 1) * (t - 5) / P['tau1'])), 0.)
    np.testing.assert_allclose(s - N, expected_I, atol=1e-14)


def test_balloon_equals_an_independent_dop853_integration():
    """neuRosim's example's scale (0.1 s samples, 20 s); the scalar path (one signal) and
    the array path (more than SCALAR_SIGNALS signals) alike."""
    acc, n = 0.1, 200
    stim = noisy_input(n, 3.)
    p = B._params(None)
    F, M = B.flow_and_metabolism(B.neural_activity(stim, p), *B.kernels(n, acc, p))
    v_ref, q_ref = reference_state(F[0], M[0], p)
    bold_ref = P['V0'] * (P['a1'] * (1 - q_ref) - P['a2'] * (1 - v_ref))
    assert F.max() > 1.5
    tol = 1e-7 * np.abs(bold_ref).max()
    np.testing.assert_allclose(B.balloon(stim, acc), bold_ref, rtol=0, atol=tol)
    many = B.balloon(np.tile(stim, (B.SCALAR_SIGNALS + 1, 1)), acc)
    np.testing.assert_allclose(many, np.tile(bold_ref, (B.SCALAR_SIGNALS + 1, 1)), rtol=0, atol=tol)


def test_balloon_state_in_the_stiff_regime_equals_dop853():
    """Upstream's scale: 1 ms samples give F up to ~100 after a few seconds, q then
    relaxes within a fraction of a sample; F, M given directly: 400 samples, F rising
    from rest to ~60 and oscillating on the scale of the kernels (100s of samples)."""
    i = np.arange(400.)
    F = 1. + 79. * (1. - np.exp(-i / 300.)) + 10. * np.sin(i / 100.)
    M = 1. + (F - 1.) / 3. + 3. * np.sin(i / 80.)
    p = B._params(None)
    v_ref, q_ref = reference_state(F, M, p)
    for k, substeps, rtol in ((1, B.SUBSTEPS, 5e-6), (B.SCALAR_SIGNALS + 1, B.SUBSTEPS, 5e-6),
                              (1, 8, 2e-8)):     # 4th order: 4 x the steps, 256 x closer
        v, q = B.balloon_state(np.tile(F, (k, 1)), np.tile(M, (k, 1)), p, substeps)
        np.testing.assert_allclose(v, np.tile(v_ref, (k, 1)), rtol=rtol)
        np.testing.assert_allclose(q, np.tile(q_ref, (k, 1)), rtol=rtol)


@pytest.mark.parametrize('units', ['samples', 's'])
def test_steady_state_is_the_closed_form(units):
    """Constant s: N = s/(kappa+1), F = 1 + N sum(k_f), M likewise, v = F^alpha,
    q = M v / F; kernel sums from scipy's gamma density on the same sample grid."""
    acc, n, s = 0.05, 4000, 0.4       # 200 s: 20 relaxation times of the slowest (v in s)
    stim = np.full(n, s)
    bold = B.balloon(stim, acc, units=units)
    t = acc * np.arange(1, n + 1)
    th, m1 = 0.242 * 4., (P['f1'] - 1) / P['n'] + 1
    gf, gm = stats.gamma.pdf(t, 4, scale=th), stats.gamma.pdf(t - P['deltat'], 4, scale=th)
    if units == 'samples':          # neuRosim: negative lobe before the delay, no factor acc
        neg = t < P['deltat']
        gm[neg] = ((t[neg] - 1) / th) ** 3 * np.exp(-(t[neg] - 1) / th) / (6 * th)
    else:
        gf, gm = gf * acc, gm * acc
    N = s / (P['kappa'] + 1)
    F, M = 1 + (P['f1'] - 1) * N * gf.sum(), 1 + (m1 - 1) * N * gm.sum()
    v = F ** P['alpha']
    q = M * v / F
    expected = P['V0'] * (P['a1'] * (1 - q) - P['a2'] * (1 - v))
    assert bold[-1] == pytest.approx(expected, rel=1e-6)


def linearised_response(stim, acc, units):
    """BOLD of the balloon linearised about rest (v = q = F = M = 1), solved exactly for
    piecewise constant inputs (scipy.signal: zero-order-hold discretisation, dlsim)."""
    p = B._params(None, acc, units)
    n = stim.size
    N = B.neural_activity(stim, p)
    dF, dM = [np.convolve(N, k)[:n] for k in B.kernels(n, acc, p, units)]
    a, tv, tq, tau = P['alpha'], p['tauMTT'] + p['tau'], p['tauMTT'], p['tau']
    # dv' = (dF - dv/a)/tv ; dq' = (dM - dq + dv - dv/a - tau (dF - dv/a)/tv)/tq
    A = np.array([[-1 / (a * tv), 0.],
                  [(1 - 1 / a + tau / (a * tv)) / tq, -1 / tq]])
    Bm = np.array([[1 / tv, 0.], [-tau / (tv * tq), 1 / tq]])
    C = np.array([[P['V0'] * P['a2'], -P['V0'] * P['a1']]])
    Ad, Bd, Cd, Dd, _ = signal.cont2discrete((A, Bm, C, np.zeros((1, 2))), 1., method='zoh')
    _, y, _ = signal.dlsim((Ad, Bd, Cd, Dd, 1.), np.column_stack([dF, dM]))
    return y[:, 0]


@pytest.mark.parametrize('units, acc, n', [('samples', 0.001, 8000), ('s', 0.01, 6000)])
def test_impulse_response_is_the_linearised_models_and_scales_linearly(units, acc, n):
    """A brief small input (100 ms): the response equals the linearised model's (to second
    order in the amplitude) and doubles with it."""
    stim = np.zeros(n)
    stim[int(1 / acc):int(1.1 / acc)] = 1e-4
    bold = B.balloon(stim, acc, units=units)
    lin = linearised_response(stim, acc, units)
    np.testing.assert_allclose(bold, lin, rtol=0, atol=2e-3 * np.abs(lin).max())
    np.testing.assert_allclose(B.balloon(2 * stim, acc, units=units), 2 * bold,
                               rtol=0, atol=4e-3 * np.abs(bold).max())


def test_impulse_response_shapes():
    """Buxton's model in seconds: peak 3-4 s after a brief input, then an undershoot
    lasting beyond 20 s. neuRosim's (upstream's) at 1 ms samples: the response rises
    with the input itself (negative lobe of the delayed metabolism kernel), a second
    hump from the flow kernel about 2.5 s later, a late small undershoot."""
    acc = 0.01
    stim = np.zeros(6000)
    stim[100:110] = 1e-2
    b = B.balloon(stim, acc, units='s')
    t = np.arange(6000) * acc - 1.
    assert 3. < t[b.argmax()] < 4.
    assert b[t > 8].min() < -0.05 * b.max() and b[np.searchsorted(t, 20.)] < 0
    acc = 0.001
    stim = np.zeros(20000)
    stim[1000:1100] = 1e-2
    b = B.balloon(stim, acc)
    t = np.arange(20000) * acc - 1.
    assert t[b.argmax()] < 0.11                                   # with the input
    hump = (t > 1.5) & (t < 4.)
    assert 2. < t[hump][b[hump].argmax()] < 3.
    assert b[t > 10].min() < 0


def test_bold_signal_normalises_by_the_maximum():
    x = 5. * noisy_input(400, 30., seed=3) + 1.
    bold = B.bold_signal(np.vstack([x, 3 * x]))
    np.testing.assert_allclose(bold[0], B.balloon(x / x.max(), B.UPSTREAM_ACC))
    np.testing.assert_allclose(bold[1], bold[0], rtol=1e-12)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='totaltime 1.0 s / acc 0.001 s = 1000 samples, but stim has 10'):
        B.balloon(np.ones(10), 0.001, totaltime=1.)
    with pytest.raises(KeyError, match="unknown balloon parameter 'kapa'"):
        B.balloon(np.ones(10), 0.001, par={'kapa': 1.})
    with pytest.raises(ValueError, match='NaN'):
        B.balloon(np.array([0., np.nan, 1.]), 0.001)
    with pytest.raises(ValueError, match='F to <= 0'):
        B.balloon(np.r_[np.ones(500), -np.ones(3000)] * 5, 0.001)
    with pytest.raises(ValueError, match='maximum <= 0'):
        B.bold_signal(np.zeros(10))


def test_bold_functional_connectivity_drops_the_transient():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 60))
    x[:, :20] += 50. * rng.standard_normal((3, 1))                   # a common start-up
    fc = B.bold_functional_connectivity(x, transient=20)
    np.testing.assert_allclose(fc, np.corrcoef(x[:, 20:]))
    with pytest.raises(ValueError, match='nothing left'):
        B.bold_functional_connectivity(x)
