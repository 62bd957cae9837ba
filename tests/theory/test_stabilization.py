"""Stabilization of the connectivity (Schuecker, Schmidt et al. 2017)."""
import copy

import numpy as np
import pytest

from mam_pynn.data import data_file
from mam_pynn.theory import Theory
from mam_pynn.theory.stabilization import (SCHUECKER2017_NETWORK, _Problem,
                                           stabilization_step, stabilize)

@pytest.fixture(scope='module')
def paper_network(reference_dir):
    """The network of the paper (g=-16, rate_ext=8, chi=1, raw K)."""
    try:
        from mam_pynn.model import MultiAreaModel
    except ImportError:
        pytest.skip("needs mam_pynn.model")
    return MultiAreaModel(copy.deepcopy(SCHUECKER2017_NETWORK))


@pytest.fixture(scope='module')
def low_state(paper_network):
    problem = _Problem(paper_network, {'dt': 0.1, 'T': 30.})
    return problem, Theory(paper_network, {'dt': 0.1, 'T': 30.}).stationary_rates()


def test_correction_cancels_the_drive_along_the_critical_direction(low_state):
    problem, nu = low_state
    frozen = problem.frozen
    try:
        problem.frozen = np.zeros_like(frozen)       # the pure Eq. 11 correction
        dK, lam = stabilization_step(problem, problem.K, nu, 1.0, target=1.2)
    finally:
        problem.frozen = frozen
    mu, sigma = Theory(problem.theory.network, {}).mu_sigma(nu)
    S, T = problem.theory.d_nu(mu, sigma)
    G = problem.tau_s * (S[:, None] * problem.K * problem.J + T[:, None] * problem.K * problem.J ** 2)
    evals, right = np.linalg.eig(G)
    v0 = np.linalg.inv(right)[np.argmax(evals.real)]
    assert evals.real.max() == pytest.approx(lam.real)
    # first-order rate change from the in-degree change, projected on v0 ...
    d_nu_K = problem.tau_s * (S[:, None] * dK * problem.J + T[:, None] * dK * problem.J ** 2) @ nu
    # ... cancels the projected change from raising the 5E/6E drive to the target
    d_K_ext = (problem.ext_factor(1.2)[:, 0] - 1.) * problem.K_ext
    d_nu_a = problem.tau_s * problem.rate_ext * d_K_ext * (S * problem.J_ext + T * problem.J_ext ** 2)
    assert abs(v0 @ d_nu_K) > 0
    assert (v0 @ d_nu_K) == pytest.approx(-(v0 @ d_nu_a), rel=1e-6)


def test_correction_keeps_the_biological_constraints(low_state, paper_network):
    problem, nu = low_state
    dK, _ = stabilization_step(problem, problem.K, nu, 1.0)
    assert dK.shape == (254, 254) and np.all(np.isfinite(dK)) and np.any(dK != 0)
    pops = np.array([p for a in paper_network.area_list for p in paper_network.structure[a]])
    area = np.repeat(np.arange(32), [len(paper_network.structure[a]) for a in paper_network.area_list])
    cc = area[:, None] != area[None, :]
    for source in ('23I', '4E', '4I', '5I', '6I'):
        assert np.all(dK[cc & (pops == source)[None, :]] == 0), source
    assert np.any(dK[cc & (pops == '23E')[None, :]] != 0)


@pytest.mark.slow
def test_stabilized_matrix_close_to_upstreams(paper_network):
    """Full procedure (minutes): K' vs upstream's K_prime_original.npy.

    Not the same matrix to 1%: upstream's K' comes from the paper's RK4 code with
    hand-picked saddle points; ours (NEST's Euler scheme, automatic saddle choice) moves
    K in nearly the same direction (correlation of the changes > 0.95) but by less.
    """
    history = []
    K_ours = stabilize(paper_network, history=history)
    K_orig = np.load(data_file('K_prime_original.npy'))
    K_raw = np.asarray(paper_network.K_matrix)[:, :-1]
    assert np.all(K_ours >= 0)
    assert np.linalg.norm(K_ours - K_orig) / np.linalg.norm(K_orig) < 0.05
    corr = np.corrcoef((K_ours - K_raw).ravel(), (K_orig - K_raw).ravel())[0, 1]
    assert corr > 0.95
    assert len(history) >= 2 and history[0]['f_low'] == pytest.approx(1.0744, abs=1e-3)
