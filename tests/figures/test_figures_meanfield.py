"""Schuecker et al. 2017 figures: the plotted rates and eigenvalues are the theory's."""
import numpy as np
import pytest

from conftest import load


def test_plotted_rates_are_the_theorys(drawn):
    from mam_pynn.model import MultiAreaModel
    d = load(drawn, 'meanfield', 'fig4_meanfield_rates')
    M = MultiAreaModel({'connection_params': {'cc_weights_factor': 1., 'cc_weights_I_factor': 1.}},
                       theory=True)
    rates = M.theory.integrate_siegert()[1][:, -1]
    np.testing.assert_allclose(np.array(d['K_prime']['rates'], float), rates, rtol=1e-9)
    assert d['K_prime']['convergence']['converged'] is True
    assert 0 < np.mean(rates) < 20                        # the low-rate ground state


def test_stabilization_totals(drawn):
    d = load(drawn, 'meanfield', 'fig7_stabilization')
    assert round(d['total_synapses_stabilized'] / 1e9, 1) == 24.1
    assert d['total_synapses_raw'] > d['total_synapses_stabilized']


def test_leading_eigenvalue_grows_with_the_cc_weights(drawn):
    sweep = load(drawn, 'meanfield', 'fig5_eigenvalues')['sweep']
    ev = [s['leading_eigenvalue'] for s in sweep]
    assert ev[0] < 1 and ev[0] == pytest.approx(max(np.array(
        load(drawn, 'meanfield', 'fig5_eigenvalues')['eigenvalues_real'])), rel=1e-6)
