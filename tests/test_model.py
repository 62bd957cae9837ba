"""MultiAreaModel: equality with upstream's numbers, scaling, labels, members, bad input."""
import json
import sys
import types

import numpy as np
import pytest

from mam_pynn.model import MultiAreaModel, model_store
from mam_pynn.params import AREA_LIST

ARRAYS = ('N_vec', 'K_matrix', 'syn_matrix', 'W_matrix', 'W_sd_matrix', 'J_matrix', 'add_DC_drive')


pytestmark = pytest.mark.usefixtures('private_cache')


@pytest.fixture(scope='module')
def default_model():
    return MultiAreaModel({})


@pytest.fixture(scope='module')
def variants(reference_dir):
    with open(reference_dir / 'variants.json') as f:
        return {k: v for k, v in json.load(f).items() if not k.startswith('_')}


def assert_rel_equal(actual, expected, name, rtol=1e-9):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0, equal_nan=True,
                               err_msg=f"{name} differs from upstream's reference")


@pytest.mark.parametrize('variant', ['default', 'no_K_stable', 'scaled_0.1', 'ground_state',
                                     'av_indegree_Cragg'])
def test_equals_upstream_reference(variant, variants, reference_dir):
    M = MultiAreaModel(variants[variant]['params'])
    ref = np.load(reference_dir / f'{variant}.npz')
    for name in ARRAYS:
        assert_rel_equal(getattr(M, name), ref[name], f"{variant}: {name}")
    assert_rel_equal(M.distance_matrix, ref['distances'], f"{variant}: distances")


def test_reference_covers_all_variants(variants):
    # a new variant in the reference folder must be added to the test above
    assert set(variants) == {'default', 'no_K_stable', 'scaled_0.1', 'ground_state',
                             'av_indegree_Cragg'}


def test_totals(default_model):
    M = default_model
    assert len(M.N_vec) == len(M.structure_vec) == 254
    assert M.K_matrix.shape == M.syn_matrix.shape == M.W_matrix.shape == (254, 255)
    assert M.N_vec.sum() == pytest.approx(4_130_056.72, abs=0.01)
    assert M.syn_matrix[:, :-1].sum() == pytest.approx(24_126_520_949, rel=1e-10)
    assert np.count_nonzero(M.syn_matrix[:, :-1]) == 8411
    M0 = MultiAreaModel({'connection_params': {'K_stable': None}})
    assert M0.syn_matrix[:, :-1].sum() == pytest.approx(27_690_096_281, rel=1e-10)


def test_layout_and_dicts_agree(default_model):
    M = default_model
    assert M.area_list == AREA_LIST
    assert M.structure['TH'] == ['23E', '23I', '5E', '5I', '6E', '6I']
    assert all(len(M.structure[a]) == 8 for a in AREA_LIST if a != 'TH')
    assert M.structure_vec[0] == 'V1-23E' and M.structure_vec[-1] == 'TH-6I'
    i, j = M.structure_vec.index('V2-5E'), M.structure_vec.index('V1-23E')
    assert M.N['V2']['5E'] == M.N_vec[i]
    assert M.K['V2']['5E']['V1']['23E'] == M.K_matrix[i, j]
    assert M.synapses['V2']['5E']['V1']['23E'] == pytest.approx(M.syn_matrix[i, j], rel=1e-12)
    assert M.W['V2']['5E']['V1']['23E'] == M.W_matrix[i, j]
    assert M.W_sd['V2']['5E']['V1']['23E'] == M.W_sd_matrix[i, j]
    assert M.K['V2']['5E']['external']['external'] == M.K_matrix[i, -1]
    assert M.N['TH']['4E'] == 0 and M.K['TH']['4E']['V1']['23E'] == 0
    assert M.N['V1']['total'] == pytest.approx(sum(M.N['V1'][p] for p in M.structure['V1']),
                                               rel=1e-6)
    assert M.distances['V1']['V2'] == M.distance_matrix[0, 1] > 0
    # area-level in-degrees sum to the population in-degrees weighted by size
    k_v1 = sum(M.K_areas['V1'].values())
    rows = slice(0, 8)
    assert k_v1 == pytest.approx((M.K_matrix[rows].sum(axis=1) * M.N_vec[rows]).sum()
                                 / M.N['V1']['total'], rel=1e-6)


def test_scaling_relations(default_model):
    M0 = default_model
    p = {'N_scaling': 0.2, 'K_scaling': 0.3, 'fullscale_rates': 'fullscale_rates.json'}
    M = MultiAreaModel(p)
    np.testing.assert_allclose(M.N_vec, 0.2 * M0.N_vec, rtol=1e-12)
    np.testing.assert_allclose(M.K_matrix, 0.3 * M0.K_matrix, rtol=1e-12)
    np.testing.assert_allclose(M.syn_matrix, 0.2 * 0.3 * M0.syn_matrix, rtol=1e-12)
    np.testing.assert_allclose(M.W_matrix, M0.W_matrix / np.sqrt(0.3), rtol=1e-12)
    np.testing.assert_allclose(M.J_matrix, M0.J_matrix / np.sqrt(0.3), rtol=1e-12)
    assert M.N['V1']['total'] == pytest.approx(0.2 * M0.N['V1']['total'], rel=1e-6)
    # the DC drive keeps the mean input and the weight scaling keeps its variance
    rates = M.load_fullscale_rates()
    r = np.append(rates, M.params['input_params']['rate_ext'])
    tau_m = M.params['neuron_params']['single_neuron_dict']['tau_m']
    C_m = M.params['neuron_params']['single_neuron_dict']['C_m']
    mu0 = 1e-3 * tau_m * (M0.K_matrix * M0.J_matrix) @ r
    mu = 1e-3 * tau_m * (M.K_matrix * M.J_matrix) @ r + tau_m / C_m * M.add_DC_drive
    np.testing.assert_allclose(mu, mu0, rtol=1e-10)
    var0 = (M0.K_matrix * M0.J_matrix ** 2) @ r
    var = (M.K_matrix * M.J_matrix ** 2) @ r
    np.testing.assert_allclose(var, var0, rtol=1e-10)
    assert M.label != M0.label
    assert M0.load_fullscale_rates() is None


def test_N_scaling_only_needs_no_dc(default_model):
    M = MultiAreaModel({'N_scaling': 0.5, 'fullscale_rates': 'fullscale_rates.json'})
    np.testing.assert_array_equal(M.add_DC_drive, 0.0)
    np.testing.assert_allclose(M.K_matrix, default_model.K_matrix, rtol=1e-15)


def test_label_is_content_hash_and_reloads(default_model):
    M = default_model
    assert MultiAreaModel({}).label == M.label
    assert MultiAreaModel({'connection_params': {'g': -11.0}}).label == M.label  # a default
    assert MultiAreaModel({'connection_params': {'g': -12.0}}).label != M.label
    stored = model_store() / f'{M.label}.json'
    assert stored.is_file()
    M2 = MultiAreaModel(M.label)
    assert M2 == M and M2.params == M.params
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(M2, name), getattr(M, name))


def test_reload_by_label_survives_a_removed_file(default_model, tmp_path):
    """A user's K_stable file is stored by content: the label reloads after the file is gone."""
    import shutil
    from mam_pynn.data import data_file
    K = np.load(data_file('K_prime_original.npy')) * 0.9   # another network than the default
    folder = tmp_path / 'mine'
    folder.mkdir()
    np.save(folder / 'K.npy', K)
    M = MultiAreaModel({'connection_params': {'K_stable': str(folder / 'K.npy')}})
    assert M.label != default_model.label
    shutil.rmtree(folder)
    M2 = MultiAreaModel(M.label)
    assert M2 == M
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(M2, name), getattr(M, name))
    stored = json.loads((model_store() / f'{M.label}.json').read_text())
    assert str(tmp_path) not in json.dumps(stored)   # no path that can vanish


def test_stale_store_record_is_refreshed(default_model, tmp_path):
    """A record holding a path that no longer exists (older stores did) is rewritten."""
    from mam_pynn.data import data_file
    K = np.load(data_file('K_prime_original.npy')) * 0.8
    np.save(tmp_path / 'K.npy', K)
    M = MultiAreaModel({'connection_params': {'K_stable': str(tmp_path / 'K.npy')}})
    record = model_store() / f'{M.label}.json'
    stale = json.loads(record.read_text())
    stale['network_params']['connection_params']['K_stable'] = str(tmp_path / 'gone.npy')
    record.write_text(json.dumps(stale))
    with pytest.raises(FileNotFoundError, match='gone.npy'):
        MultiAreaModel(M.label)
    MultiAreaModel({'connection_params': {'K_stable': str(tmp_path / 'K.npy')}})  # rebuilt
    assert MultiAreaModel(M.label) == M


def test_unknown_label_is_an_error():
    with pytest.raises(ValueError, match='no model with label'):
        MultiAreaModel('0123456789abcdef')


def test_K_stable_given_as_path(default_model, tmp_path):
    from mam_pynn.data import data_file
    K = np.load(data_file('K_prime_original.npy'))
    path = tmp_path / 'K.npy'
    np.save(path, K)
    M = MultiAreaModel({'connection_params': {'K_stable': str(path)}})
    np.testing.assert_array_equal(M.K_matrix, default_model.K_matrix)
    assert M.label == default_model.label  # the file's content counts, not its place


@pytest.mark.parametrize('params, error, match', [
    ({'N_scalling': 0.5}, KeyError, "N_scaling"),
    ({'connection_params': {'PSP_ee': 0.2}}, KeyError, "PSP_e"),
    ({'N_scaling': -0.1, 'fullscale_rates': 'fullscale_rates.json'}, ValueError, 'N_scaling'),
    ({'K_scaling': 0, 'fullscale_rates': 'fullscale_rates.json'}, ValueError, 'K_scaling'),
    ({'surface': -1.}, ValueError, 'surface'),
    ({'N_scaling': 0.1}, ValueError, 'fullscale_rates'),
    ({'K_scaling': 0.5}, ValueError, 'fullscale_rates'),
    ({'connection_params': {'av_indegree_V1': -5.}}, ValueError, 'av_indegree_V1'),
    ({'connection_params': {'K_stable': 'no_such_file.npy'}}, FileNotFoundError, 'K_stable'),
    ({'connection_params': {'rho_syn': 'variable'}}, ValueError, 'rho_syn'),
    ({'fullscale_rates': 'no_such_rates.json', 'N_scaling': .5}, FileNotFoundError,
     'fullscale_rates'),
    ({'input_params': {'rate_ext': '10'}}, TypeError, "input_params.rate_ext.*'10'"),
    ({'input_params': {'rate_ext': -1.}}, ValueError, 'input_params.rate_ext .*-1.0'),
    ({'connection_params': {'g': 11.}}, ValueError, 'connection_params.g .*11.0'),
    ({'connection_params': {'g': 11., 'K_stable': True}}, ValueError, 'connection_params.g'),
    ({'neuron_params': {'single_neuron_dict': {'tau_m': '10'}}}, TypeError, 'tau_m'),
])
def test_bad_parameters(params, error, match):
    with pytest.raises(error, match=match):
        MultiAreaModel(params)


def test_unknown_key_names_the_closest_valid_one():
    with pytest.raises(KeyError) as info:
        MultiAreaModel({'connection_params': {'fac_nu_ext_5e': 1.}})
    assert 'fac_nu_ext_5e' in str(info.value) and 'fac_nu_ext_5E' in str(info.value)


def test_wrong_K_stable_shape(tmp_path):
    path = tmp_path / 'K_small.npy'
    np.save(path, np.ones((10, 10)))
    with pytest.raises(ValueError, match=r'\(254, 254\)'):
        MultiAreaModel({'connection_params': {'K_stable': str(path)}})


def test_K_stable_must_be_a_file_name():
    with pytest.raises(TypeError, match='K_stable'):
        MultiAreaModel({'connection_params': {'K_stable': np.zeros((254, 254))}})


def test_fullscale_rates_missing_an_area(tmp_path):
    path = tmp_path / 'rates.json'
    path.write_text(json.dumps({'V1': {p: 1.0 for p in ['23E', '23I']}}))
    with pytest.raises(ValueError, match='fullscale_rates'):
        MultiAreaModel({'K_scaling': 0.5, 'fullscale_rates': str(path)})


def test_unknown_area(default_model):
    with pytest.raises(ValueError, match="unknown area 'V7'"):
        default_model.check_areas(['V1', 'V7'])
    with pytest.raises(ValueError, match="'V7'"):
        MultiAreaModel({}, simulation=True, sim_spec={'areas_simulated': ['V7']})
    assert default_model.check_areas('V1') == ['V1']


def test_network_params_type():
    with pytest.raises(TypeError, match='network_params'):
        MultiAreaModel(['V1'])


def test_members_are_created_lazily(monkeypatch, default_model):
    calls = {}

    class FakeSimulation:
        def __init__(self, model, sim_spec, backend='nest'):
            calls['simulation'] = (model, sim_spec, backend)

    class FakeTheory:
        def __init__(self, model, theory_spec):
            calls['theory'] = (model, theory_spec)

    monkeypatch.setitem(sys.modules, 'mam_pynn.simulation',
                        types.SimpleNamespace(Simulation=FakeSimulation))
    monkeypatch.setitem(sys.modules, 'mam_pynn.theory', types.SimpleNamespace(Theory=FakeTheory))
    M = MultiAreaModel({}, simulation=True, theory=True, sim_spec={'t_sim': 5.},
                       theory_spec={'T': 10.}, backend='brian2')
    assert calls['simulation'] == (M, {'t_sim': 5.}, 'brian2')
    assert calls['theory'] == (M, {'T': 10.})
    assert isinstance(M.simulation, FakeSimulation) and isinstance(M.theory, FakeTheory)
    assert not hasattr(default_model, 'simulation')


def test_analysis_needs_simulation():
    with pytest.raises(ValueError, match='simulation=True'):
        MultiAreaModel({}, analysis=True)


def test_repr_and_str(default_model):
    assert default_model.label in repr(default_model)
    assert 'connection_params' in str(default_model)


def test_file_parameters_accept_path_objects(tmp_path, default_model):
    from pathlib import Path
    from mam_pynn.data import data_file
    M = MultiAreaModel({'connection_params': {'K_stable': Path(data_file('K_prime_original.npy'))},
                        'N_scaling': 0.5, 'fullscale_rates': Path(data_file('fullscale_rates.json'))})
    assert isinstance(M.params['connection_params']['K_stable'], str)
    assert same_model(MultiAreaModel(M.label), M)


def same_model(M2, M):
    return M2 == M and all(np.array_equal(getattr(M2, n), getattr(M, n), equal_nan=True)
                           for n in ARRAYS)


def _fake_stabilize(calls):
    """Stand-in for theory.stabilization.stabilize (the real one takes a minute or more and
    is tested in tests/theory): records the network it got and returns 1.01 K."""
    def fake(M, history=None, scans=None, verbose=True):
        calls.append((M.params['connection_params']['K_stable'],
                      M.params['connection_params']['g'], M.params['input_params']['rate_ext']))
        scans.append({'kappa': np.array([1.]), 'rates': np.zeros((len(M.N_vec), 1))})
        return M.K_matrix[:, :-1] * 1.01
    return fake


def test_K_stable_true_runs_the_stabilization_once_and_caches_it(monkeypatch, tmp_path):
    """K_stable=True computes our K' once, on the paper's network (g -16, rate_ext 8, raw K)
    of this connectome whatever the model's own g and drive, and reuses the cached result."""
    import mam_pynn.theory.stabilization as stabilization
    monkeypatch.setenv('MAM_CACHE_DIR', str(tmp_path))
    calls = []
    monkeypatch.setattr(stabilization, 'stabilize', _fake_stabilize(calls))
    raw = MultiAreaModel({'connection_params': {'K_stable': None}})
    M = MultiAreaModel({'connection_params': {'K_stable': True}})
    np.testing.assert_allclose(M.K_matrix[:, :-1], raw.K_matrix[:, :-1] * 1.01, rtol=1e-12)
    np.testing.assert_array_equal(M.K_matrix[:, -1], raw.K_matrix[:, -1])
    MultiAreaModel({'connection_params': {'K_stable': True, 'g': -12.}})
    assert calls == [(None, -16., 8.)]  # stabilized once, the paper's network, raw in-degrees


def test_K_stable_cache_follows_theory_code_and_connectome(monkeypatch, tmp_path):
    """A change of the theory code or of the connectome (its K) recomputes K'; parameters
    that give the same connectome (av_indegree_V1 None is 3950) reuse it."""
    import mam_pynn.theory.stabilization as stabilization
    monkeypatch.setenv('MAM_CACHE_DIR', str(tmp_path))
    calls = []
    monkeypatch.setattr(stabilization, 'stabilize', _fake_stabilize(calls))
    MultiAreaModel({'connection_params': {'K_stable': True}})
    MultiAreaModel({'connection_params': {'K_stable': True, 'av_indegree_V1': 3950.}})
    assert len(calls) == 1
    MultiAreaModel({'connection_params': {'K_stable': True, 'av_indegree_V1': 4000.}})
    assert len(calls) == 2
    monkeypatch.setattr(stabilization, 'theory_fingerprint', lambda: 'changed code')
    MultiAreaModel({'connection_params': {'K_stable': True}})
    assert len(calls) == 3
