"""Networks for the theory tests.

``network(name)`` is a MultiAreaModel of one of upstream's reference parameter sets;
with ``THEORY_STAND_IN=1`` (to test the theory on upstream's own matrices) it is a stand-in made
of upstream's arrays (K, J, DC drive, N) from the reference folder plus our resolved
parameters: the Theory needs nothing else from a model.
"""
import copy
import os
import types
from collections import OrderedDict

import numpy as np
import pytest

from mam_pynn import params as P
from mam_pynn.structure import structure_vec

VARIANT_PARAMS = {
    'default': {},
    'ground_state': {'connection_params': {'cc_weights_factor': 1., 'cc_weights_I_factor': 1.}},
    'no_K_stable': {'connection_params': {'K_stable': None}},
    'scaled_0.1': {'N_scaling': 0.1, 'K_scaling': 0.1, 'fullscale_rates': 'fullscale_rates.json'},
}


def stand_in(reference_dir, name, **overrides):
    """A network object with the arrays upstream computed for variant ``name``."""
    d = np.load(reference_dir / f'{name}.npz')
    structure = OrderedDict((a, [p for p in P.POPULATION_LIST
                                 if not (a == 'TH' and p in ('4E', '4I'))]) for a in P.AREA_LIST)
    params = P.resolve(VARIANT_PARAMS.get(name, {}), P.network_defaults())
    P.nested_update(params, overrides)
    return types.SimpleNamespace(
        K_matrix=d['K_matrix'], J_matrix=d['J_matrix'], add_DC_drive=d['add_DC_drive'],
        N_vec=d['N_vec'], params=params, area_list=list(P.AREA_LIST), structure=structure,
        structure_vec=structure_vec(P.AREA_LIST, structure), label=f'reference-{name}')


def model(name, **overrides):
    from mam_pynn.model import MultiAreaModel
    params = copy.deepcopy(VARIANT_PARAMS[name])
    P.nested_update(params, overrides)
    return MultiAreaModel(params)


@pytest.fixture(scope='session')
def network(reference_dir):
    """Factory: network('ground_state', **param_overrides) -> model (or stand-in)."""
    if os.environ.get('THEORY_STAND_IN'):
        return lambda name, **overrides: stand_in(reference_dir, name, **overrides)
    return model


@pytest.fixture(scope='session')
def meanfield_rates(reference_dir):
    return dict(np.load(reference_dir / 'meanfield.npz'))
