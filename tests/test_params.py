"""Parameters: strict deep update over the defaults, and the content hash behind labels."""
import copy

import numpy as np
import pytest

from mam_pynn import params
from mam_pynn.params import content_hash, nested_update, resolve


def test_resolve_deep_updates_without_touching_the_defaults():
    before = copy.deepcopy(params.NETWORK_PARAMS)
    p = resolve({'N_scaling': 0.5, 'connection_params': {'g': -4.}}, params.NETWORK_PARAMS)
    assert p['N_scaling'] == 0.5 and p['connection_params']['g'] == -4.
    # siblings of an updated key keep their defaults
    assert p['connection_params']['PSP_e'] == params.CONNECTION_PARAMS['PSP_e']
    assert params.NETWORK_PARAMS == before
    p['connection_params']['PSP_e'] = 1.0
    assert params.NETWORK_PARAMS == before


def test_resolve_of_nothing_is_the_defaults():
    assert resolve(None, params.NETWORK_PARAMS) == params.NETWORK_PARAMS
    assert resolve({}, params.SIM_PARAMS) == params.SIM_PARAMS


@pytest.mark.parametrize('custom, key, hint', [
    ({'N_scalling': 1.}, 'N_scalling', 'N_scaling'),
    ({'connection_params': {'K_stabel': None}}, 'connection_params.K_stabel',
     'connection_params.K_stable'),
    ({'neuron_params': {'single_neuron_dict': {'tau_mem': 10.}}},
     'neuron_params.single_neuron_dict.tau_mem', 'tau_m'),
])
def test_unknown_key_names_itself_and_the_closest_valid_key(custom, key, hint):
    with pytest.raises(KeyError) as info:
        resolve(custom, params.NETWORK_PARAMS)
    assert repr(key) in str(info.value) and hint in str(info.value)


def test_a_non_dict_where_a_dict_belongs_is_an_error():
    with pytest.raises(TypeError):
        resolve(['N_scaling'], params.NETWORK_PARAMS)


def test_nested_update_replaces_non_dict_values():
    d = {'a': {'b': 1, 'c': [1, 2]}, 'x': 1}
    nested_update(d, {'a': {'c': [3]}, 'x': {'y': 2}})
    assert d == {'a': {'b': 1, 'c': [3]}, 'x': {'y': 2}}


def test_documented_defaults():
    conn = params.CONNECTION_PARAMS
    assert conn['av_indegree_V1'] is None  # the mean of Cragg and O'Kusky, from the raw data
    assert conn['K_stable'] == 'K_prime_original.npy'
    assert params.NETWORK_PARAMS['fullscale_rates'] is None
    assert len(params.AREA_LIST) == 32 and len(set(params.AREA_LIST)) == 32
    assert params.POPULATION_LIST == ['23E', '23I', '4E', '4I', '5E', '5I', '6E', '6I']


def test_content_hash_is_stable_and_order_independent():
    a = {'x': 1.0, 'y': {'b': [1, 2], 'a': 'text'}}
    b = {'y': {'a': 'text', 'b': [1, 2]}, 'x': 1.0}
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) == content_hash(copy.deepcopy(a))
    # float noise far below 12 significant digits does not change a label
    assert content_hash({'x': 0.1 + 0.2}) == content_hash({'x': 0.3})
    assert content_hash({'x': 1.0}) != content_hash({'x': 1.001})
    assert content_hash({'x': np.float64(2.5), 'v': np.arange(3)}) == \
        content_hash({'x': 2.5, 'v': [0, 1, 2]})
    assert len(content_hash(a)) == 32 and len(content_hash(a, length=8)) == 8
