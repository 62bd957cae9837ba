"""Stationary rates of the mean-field theory (upstream's test_meanfield and scaling test)."""
import json

import numpy as np
import pytest
from scipy.sparse.linalg import eigs

from mam_pynn.data import data_file
from mam_pynn.structure import dict_to_vector
from mam_pynn.theory import Theory, write_theory
from mam_pynn.theory.siegert import siegert_rate


def test_ground_state_rates_equal_upstreams(network, meanfield_rates):
    theory = Theory(network('ground_state'), {})
    pops, rates = theory.integrate_siegert()
    assert rates.shape == (254, 501) and len(pops) == 254 and pops[0] == 'V1-23E'
    np.testing.assert_allclose(rates[:, -1], meanfield_rates['ground_state_rates'], rtol=1e-8)
    # and it is a fixed point: Phi(nu) = nu
    mu, sigma = theory.mu_sigma(rates[:, -1])
    np.testing.assert_allclose(siegert_rate(mu, sigma, theory.neuron), rates[:, -1], rtol=1e-8)


def test_trajectory_equals_nest_siegert_network(network):
    """Upstream integrates with NEST's siegert_neuron: same numbers step by step."""
    pytest.importorskip('nest')
    from mam_pynn.theory.nest_reference import nest_trajectory
    for name in ('default', 'ground_state'):
        theory = Theory(network(name), {'T': 5.})
        _, ours = theory.integrate_siegert()
        nest_rates = nest_trajectory(theory)
        np.testing.assert_allclose(ours[:, :-1], nest_rates, rtol=1e-9, atol=1e-12)


def test_default_network_has_no_stationary_state(network, meanfield_rates):
    """Why the default (chi = 1.9) rates are not compared like the ground state's: at
    T = 50 the rate dynamics still move irregularly, and a 1e-12 change of the start changes the end
    state by orders of magnitude more; upstream's 'stationary' rates are one snapshot
    of such a trajectory (reproducible only bit for bit), and not a fixed point."""
    theory = Theory(network('default'), {})
    _, rates = theory.integrate_siegert()
    _, nudged = Theory(network('default'), {'initial_rates': np.full(254, 1e-12)}).integrate_siegert()
    # a 1e-12 nudge changes some end rate by more than 100 % (observed: ~6x)
    assert np.max(np.abs(nudged[:, -1] - rates[:, -1]) / (rates[:, -1] + 1e-3)) > 1.
    ref = meanfield_rates['default_rates']
    mu, sigma = theory.mu_sigma(ref)
    assert np.max(np.abs(siegert_rate(mu, sigma, theory.neuron) - ref)) > 1.
    # the same dynamics: ground-state runs are insensitive to such a nudge
    _, gs = Theory(network('ground_state'), {}).integrate_siegert()
    _, gs_nudged = Theory(network('ground_state'),
                          {'initial_rates': np.full(254, 1e-12)}).integrate_siegert()
    np.testing.assert_allclose(gs_nudged[:, -1], gs[:, -1], rtol=1e-9)


def test_initial_rates_and_recording_options(network):
    net = network('ground_state')
    fixed = Theory(net, {}).stationary_rates()
    # starting on the fixed point stays there
    _, r = Theory(net, {'initial_rates': fixed, 'T': 2.}).integrate_siegert()
    np.testing.assert_allclose(r[:, -1], fixed, rtol=1e-8)
    # random initial rates: upstream's generator (seed 123), one trajectory each
    theory = Theory(net, {'initial_rates': 'random_uniform', 'initial_rates_iter': 2,
                          'initial_rates_max': 50., 'T': 1., 'rec_interval': 0.5})
    _, runs, times = theory.integrate_siegert(full_output=True)
    assert isinstance(runs, list) and len(runs) == 2 and runs[0].shape == (254, 3)
    np.testing.assert_allclose(times, [0., 0.5, 1.])
    draws = np.random.RandomState(123)
    np.testing.assert_array_equal(runs[0][:, 0], 50. * draws.rand(254))
    np.testing.assert_array_equal(runs[1][:, 0], 50. * draws.rand(254))
    # columns at rec_interval are the same states as with full recording
    _, full = Theory(net, {'initial_rates': runs[0][:, 0], 'T': 1.}).integrate_siegert()
    np.testing.assert_allclose(runs[0][:, 1:], full[:, [5, 10]], rtol=1e-12)


@pytest.mark.parametrize('spec, match', [({'initial_rates': 'uniform'}, 'random_uniform'),
                                         ({'initial_rates': np.ones(3)}, 'shape'),
                                         ({'initial_rates': 'random_uniform'}, 'iter'),
                                         ({'dt': 0.}, 'dt'),
                                         ({'rec_intervall': 1.}, 'rec_interval')])
def test_bad_theory_params_are_named(network, spec, match):
    with pytest.raises((ValueError, KeyError), match=match):
        Theory(network('ground_state'), spec).integrate_siegert()


def test_replaced_cortico_cortical_input(network):
    """Poisson sources at the rates the areas would have give the same mu and sigma."""
    full = Theory(network('ground_state'), {})
    rates_ext = np.full(254, 10.)
    hom = Theory(network('ground_state', connection_params={'replace_cc': 'hom_poisson_stat'}), {})
    for a, b in zip(hom.mu_sigma(rates_ext), full.mu_sigma(rates_ext)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    source = data_file('fullscale_rates.json')
    het = Theory(network('ground_state', connection_params={
        'replace_cc': 'het_poisson_stat', 'replace_cc_input_source': str(source)}), {})
    net = het.network
    rates = dict_to_vector(json.loads(source.read_text()), net.area_list, net.structure)
    for a, b in zip(het.mu_sigma(rates), full.mu_sigma(rates)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    # the isolated areas reach their own stationary state
    assert np.all(np.isfinite(het.stationary_rates()))
    with pytest.raises(NotImplementedError):
        Theory(network('ground_state', connection_params={'replace_cc': 'het_current_nonstat'}),
               {}).integrate_siegert()


def test_down_scaled_network_has_full_scale_input_statistics(network):
    """Upstream's scaling test: with N, K scaled by 0.1 and weights and DC drive adjusted
    to the full-scale rates, every population sees the same mu and sigma."""
    net = network('default')
    rates = dict_to_vector(json.loads(data_file('fullscale_rates.json').read_text()),
                           net.area_list, net.structure)
    mu0, sigma0 = Theory(net, {}).mu_sigma(rates)
    scaled = network('scaled_0.1')
    mu, sigma = Theory(scaled, {}).mu_sigma(rates)
    assert not np.allclose(scaled.K_matrix, net.K_matrix)
    np.testing.assert_allclose(mu, mu0, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sigma, sigma0, rtol=1e-9)


def test_gain_matrix_predicts_the_linear_response(network):
    theory = Theory(network('ground_state'), {})
    nu = theory.stationary_rates()
    G = theory.gain_matrix(nu)
    assert G.shape == (254, 254)
    rng = np.random.default_rng(0)
    d = 1e-3 * nu * rng.standard_normal(254)
    phi = lambda r: siegert_rate(*theory.mu_sigma(r), theory.neuron)  # noqa: E731
    response = phi(nu + d) - phi(nu)
    # upstream's slopes: forward differences of 0.01 mV, shift held fixed: a few % off
    assert np.linalg.norm(G @ d - response) < 0.1 * np.linalg.norm(response)
    lam = theory.leading_eigenvalue(nu)
    assert lam.real < 1.            # the ground state is stable
    # upstream's lambda_max, against ARPACK's eigenvalue of largest real part
    arpack = eigs(G, k=1, which='LR', return_eigenvectors=False)[0]
    assert lam.real == pytest.approx(arpack.real, rel=1e-8)
    assert theory.lambda_max(nu) ** 2 == pytest.approx(arpack.real, rel=1e-8)


@pytest.mark.parametrize('suffix', ['.npz', '.json'])
def test_write_theory(network, tmp_path, suffix):
    net = network('ground_state')
    out = write_theory(net, tmp_path / f'theory{suffix}', theory_spec={'T': 5.})
    assert out.is_file() and not list(tmp_path.glob('.*'))
    if suffix == '.npz':
        d = np.load(out)
        assert d['rates'].shape == (254,) and d['trajectory'].shape == (254, 51)
        np.testing.assert_allclose(d['times'][-1], 5.)
    else:
        d = json.loads(out.read_text())
        assert len(d['rates']) == 254 and 'V1' in d['rates_by_population']
    with pytest.raises(ValueError, match='suffix'):
        write_theory(net, tmp_path / 'theory.txt')


def test_write_theory_with_stabilization_writes_K_prime(network, tmp_path, monkeypatch):
    import mam_pynn.theory.stabilization as stab
    calls = []

    def fake_stabilize(M, theory_spec=None, **kwargs):
        calls.append(theory_spec)
        return np.full((254, 254), 7.)
    monkeypatch.setattr(stab, 'stabilize', fake_stabilize)
    net = network('ground_state', connection_params={'K_stable': None})
    out = write_theory(net, tmp_path / 'K_prime.npy', stabilize=True)
    np.testing.assert_array_equal(np.load(out), 7.)
    assert len(calls) == 1
    with pytest.raises(ValueError, match='stabilize'):
        write_theory(net, tmp_path / 'rates.npy')
    # the default K_stable (upstream's K') is not stabilized a second time
    with pytest.raises(ValueError, match='K_stable'):
        write_theory(network('ground_state'), tmp_path / 'again.npy', stabilize=True)
    assert len(calls) == 1 and not (tmp_path / 'again.npy').exists()


def test_write_theory_with_several_initial_conditions_says_which_run(network, tmp_path):
    spec = {'T': 1., 'initial_rates': 'random_uniform', 'initial_rates_iter': 2}
    out = write_theory(network('ground_state'), tmp_path / 'runs.npz', theory_spec=spec)
    d = np.load(out)
    assert d['trajectory'].shape == (2, 254, 11) and d['n_runs'] == 2 and d['rates_run'] == 0
    np.testing.assert_array_equal(d['rates'], d['trajectory'][0, :, -1])
    assert not np.allclose(d['trajectory'][1, :, -1], d['rates'])


def test_theory_uses_the_networks_neuron_model():
    """A neuron parameter changed in network_params reaches the Siegert rates; a different
    neuron model given to the theory alone is refused."""
    from mam_pynn.model import MultiAreaModel
    base = {}
    M = MultiAreaModel(base, theory=True)
    slow = MultiAreaModel({**base, 'neuron_params': {'single_neuron_dict': {'tau_m': 12.0}}}, theory=True)
    assert M.theory.neuron.tau_m == pytest.approx(10.0) and slow.theory.neuron.tau_m == pytest.approx(12.0)
    with pytest.raises(ValueError, match="network's neuron"):
        MultiAreaModel(base, theory=True, theory_spec={'neuron_params': {'single_neuron_dict': {'tau_m': 12.0}}})


def _residual_by_hand(net, rates):
    """max |Phi(mu, sigma) - nu| with mu, sigma from K, J, the drive and the DC (no Theory code)."""
    neuron = net.params['neuron_params']['single_neuron_dict']
    tau_s = neuron['tau_m'] * 1e-3
    r = np.append(rates, net.params['input_params']['rate_ext'])
    KJ = np.asarray(net.K_matrix) * np.asarray(net.J_matrix)
    mu = tau_s * KJ @ r + neuron['tau_m'] / neuron['C_m'] * np.asarray(net.add_DC_drive)
    sigma = np.sqrt(tau_s * (KJ * np.asarray(net.J_matrix)) @ r)
    return np.max(np.abs(siegert_rate(mu, sigma, Theory(net, {}).neuron) - rates))


def test_write_theory_reports_a_reached_fixed_point(network, tmp_path):
    import warnings
    net = network('ground_state')
    with warnings.catch_warnings():
        warnings.simplefilter('error')   # a converged run warns nothing
        out = write_theory(net, tmp_path / 'gs.npz')
    d = np.load(out)
    assert bool(d['converged'])
    assert d['residual_hz'] == pytest.approx(_residual_by_hand(net, d['rates']), rel=1e-6, abs=1e-12)
    assert d['residual_hz'] < 1e-6


def test_write_theory_warns_when_not_converged(network, tmp_path):
    """The default (chi = 1.9) network still moves at T = 50 ms: say so, in the file and loudly."""
    from mam_pynn.theory.core import UnconvergedWarning
    net = network('default')
    with pytest.warns(UnconvergedWarning, match='did NOT reach a fixed point'):
        out = write_theory(net, tmp_path / 'default.json')
    d = json.loads(out.read_text())
    assert d['converged'] is False
    traj, times = np.array(d['trajectory']), np.array(d['times'])
    back = np.flatnonzero(np.isclose(times, times[-1] - 5.))[0]
    assert d['last_change_hz'] == pytest.approx(np.abs(traj[:, -1] - traj[:, back]).max())
    assert d['last_change_hz'] > 1.
    assert d['residual_hz'] == pytest.approx(_residual_by_hand(net, np.array(d['rates'])), rel=1e-6)
