"""Connectivity derivation: parameters act on exactly what they name; files; cache; helpers."""
import json
import re

import numpy as np
import pytest

from mam_pynn import connectivity
from mam_pynn.connectivity import (derive_connectivity, psc_over_psp, summary, summary_line,
                                   write_connectivity)
from mam_pynn.model import MultiAreaModel
from mam_pynn.params import NETWORK_PARAMS, POPULATION_LIST, resolve
from mam_pynn.structure import dict_to_matrix, matrix_to_dict, zero_tiny

NO_K_STABLE = {'K_stable': None}


pytestmark = pytest.mark.usefixtures('private_cache')


@pytest.fixture(scope='module')
def anatomy_data():
    from mam_pynn import anatomy
    raw = anatomy.load_raw_data()
    return raw, anatomy.process_raw_data(raw)


@pytest.fixture(scope='module')
def M0():
    """Default parameters without K_stable (upstream's default network)."""
    return MultiAreaModel({'connection_params': NO_K_STABLE})


def model(**conn):
    return MultiAreaModel({'connection_params': {**NO_K_STABLE, **conn}})


def mask(M, target_areas=None, target_pops=None, source_pops=None, cc=None, external=False):
    """Boolean (n, n+1) mask of population pairs, like upstream's create_mask."""
    areas = np.array([s.split('-')[0] for s in M.structure_vec])
    pops = np.array([s.split('-')[1] for s in M.structure_vec])
    rows = np.ones(len(areas), bool)
    if target_areas is not None:
        rows &= np.isin(areas, target_areas)
    if target_pops is not None:
        rows &= np.isin(pops, target_pops)
    cols = np.ones(len(areas), bool) if source_pops is None else np.isin(pops, source_pops)
    m = np.zeros((len(areas), len(areas) + 1), bool)
    m[:, :-1] = rows[:, None] & cols[None, :]
    if cc is not None:
        same = areas[:, None] == areas[None, :]
        m[:, :-1] &= ~same if cc else same
    m[:, -1] = rows if external else False
    return m


def test_derivation_equals_upstream_without_K_stable(anatomy_data, reference_dir):
    raw, processed = anatomy_data
    conn = derive_connectivity(resolve({'connection_params': NO_K_STABLE}, NETWORK_PARAMS),
                               raw, processed)
    ref = np.load(reference_dir / 'no_K_stable.npz')
    for name in ('N_vec', 'syn_matrix', 'K_matrix', 'W_matrix', 'W_sd_matrix'):
        np.testing.assert_allclose(getattr(conn, name), ref[name], rtol=1e-9, atol=0,
                                   equal_nan=True, err_msg=name)
    np.testing.assert_allclose(conn.distance_matrix, ref['distances'], rtol=1e-9, atol=0)


NO_EXTRA_EXTERNAL = {'fac_nu_ext_5E': 1., 'fac_nu_ext_6E': 1., 'fac_nu_ext_TH': 1.}


@pytest.mark.parametrize('av_indegree', [None, 2300., 5600.])
def test_average_indegree_in_V1(av_indegree, anatomy_data):
    """All synapses onto V1 (intra, cc, external) per V1 neuron give av_indegree_V1.

    Only before the extra external input onto 5E and 6E (fac_nu_ext_*), which
    comes on top of the synapse budget.
    """
    raw, _ = anatomy_data
    M = model(av_indegree_V1=av_indegree, **NO_EXTRA_EXTERNAL)
    expected = av_indegree or np.mean([raw['av_indegree_Cragg'], raw['av_indegree_OKusky']])
    v1 = mask(M, target_areas=['V1'], external=True)
    assert M.syn_matrix[v1].sum() / M.N['V1']['total'] == pytest.approx(expected, rel=1e-9)
    assert M.av_indegree_V1 == expected
    M_fac = model(av_indegree_V1=av_indegree)
    extra = M_fac.syn_matrix[v1].sum() - M.syn_matrix[v1].sum()
    five, six = M.structure_vec.index('V1-5E'), M.structure_vec.index('V1-6E')
    fac = M_fac.params['connection_params']
    assert extra == pytest.approx((fac['fac_nu_ext_5E'] - 1) * M.syn_matrix[five, -1]
                                  + (fac['fac_nu_ext_6E'] - 1) * M.syn_matrix[six, -1], rel=1e-9)


def test_external_indegree_is_equal_within_an_area(M0):
    K_ext = M0.K_matrix[:, -1]
    fac = M0.params['connection_params']
    v2 = slice(8, 16)
    pops = M0.structure['V2']
    base = K_ext[v2][pops.index('23E')]
    for pop, k in zip(pops, K_ext[v2]):
        factor = {'5E': fac['fac_nu_ext_5E'], '6E': fac['fac_nu_ext_6E']}.get(pop, 1.0)
        assert k == pytest.approx(factor * base, rel=1e-12), pop


@pytest.mark.parametrize('name, areas, pops', [
    ('fac_nu_ext_5E', None, ['5E']),
    ('fac_nu_ext_6E', None, ['6E']),
    ('fac_nu_ext_TH', ['TH'], ['23E', '5E']),
])
def test_fac_nu_ext_scales_exactly_what_it_names(name, areas, pops, M0):
    M = model(**{name: 2. * M0.params['connection_params'][name]})
    named = mask(M, target_areas=areas, target_pops=pops, source_pops=[], external=True)
    np.testing.assert_allclose(M.K_matrix[named], 2. * M0.K_matrix[named], rtol=1e-12)
    np.testing.assert_array_equal(M.K_matrix[~named], M0.K_matrix[~named])


def test_PSP_e_scales_excitatory_weights(M0):
    M = model(PSP_e=0.3, PSP_e_23_4=0.6)
    exc = mask(M, source_pops=['23E', '4E', '5E', '6E'])
    np.testing.assert_allclose(M.W_matrix[exc], 2. * M0.W_matrix[exc], rtol=1e-12)
    # inhibitory weights are g * PSP_e: they follow PSP_e too; external stays
    inh = mask(M, source_pops=['23I', '4I', '5I', '6I'])
    np.testing.assert_allclose(M.W_matrix[inh], 2. * M0.W_matrix[inh], rtol=1e-12)
    np.testing.assert_array_equal(M.W_matrix[:, -1], M0.W_matrix[:, -1])
    np.testing.assert_array_equal(M.K_matrix, M0.K_matrix)


def test_PSP_e_23_4_names_one_connection(M0):
    M = model(PSP_e_23_4=0.9)
    named = mask(M, target_pops=['23E'], source_pops=['4E'], cc=False)
    np.testing.assert_allclose(M.W_matrix[named], 3. * M0.W_matrix[named], rtol=1e-12)
    np.testing.assert_array_equal(M.W_matrix[~named], M0.W_matrix[~named])


def test_PSP_ext_scales_external_weights_only(M0):
    M = model(PSP_ext=0.3)
    np.testing.assert_allclose(M.W_matrix[:, -1], 2. * M0.W_matrix[:, -1], rtol=1e-12)
    np.testing.assert_array_equal(M.W_matrix[:, :-1], M0.W_matrix[:, :-1])


def test_g_scales_inhibitory_weights_only(M0):
    M = model(g=-5.5)
    inh = mask(M, source_pops=['23I', '4I', '5I', '6I'])
    np.testing.assert_allclose(M.W_matrix[inh], 0.5 * M0.W_matrix[inh], rtol=1e-12)
    np.testing.assert_array_equal(M.W_matrix[~inh], M0.W_matrix[~inh])


def test_cc_factors_scale_cortico_cortical_weights(M0):
    chi, chi_I = M0.params['connection_params']['cc_weights_factor'], \
        M0.params['connection_params']['cc_weights_I_factor']
    M = model(cc_weights_factor=2. * chi, cc_weights_I_factor=3. * chi_I)
    to_E = mask(M, target_pops=['23E', '4E', '5E', '6E'], cc=True)
    to_I = mask(M, target_pops=['23I', '4I', '5I', '6I'], cc=True)
    np.testing.assert_allclose(M.W_matrix[to_E], 2. * M0.W_matrix[to_E], rtol=1e-12)
    np.testing.assert_allclose(M.W_matrix[to_I], 6. * M0.W_matrix[to_I], rtol=1e-12)
    np.testing.assert_allclose(M.W_sd_matrix[to_I], 6. * M0.W_sd_matrix[to_I], rtol=1e-12)
    intra = mask(M, cc=False, external=True)
    np.testing.assert_array_equal(M.W_matrix[intra], M0.W_matrix[intra])


def test_weight_sd_options(M0):
    rel = M0.params['connection_params']['PSC_rel_sd_normal']
    l23_4 = mask(M0, target_pops=['23E'], source_pops=['4E'], cc=False)
    other = mask(M0) & ~l23_4
    np.testing.assert_allclose(M0.W_sd_matrix[other], rel * np.abs(M0.W_matrix[other]), rtol=1e-12)
    assert np.all(np.isnan(M0.W_sd_matrix[:, -1]))
    M = model(lognormal_weights=True, lognormal_EE_only=True)
    EE = mask(M, target_pops=['23E', '4E', '5E', '6E'], source_pops=['23E', '4E', '5E', '6E'])
    lognormal = M.params['connection_params']['PSC_rel_sd_lognormal']
    sel = EE & ~l23_4
    np.testing.assert_allclose(M.W_sd_matrix[sel], lognormal * np.abs(M.W_matrix[sel]), rtol=1e-12)
    np.testing.assert_array_equal(M.W_sd_matrix[~EE | l23_4], M0.W_sd_matrix[~EE | l23_4])


def test_E_specificity_only_changes_feedback_projections(M0):
    M = model(E_specificity=False)
    intra = mask(M, cc=False, external=False)
    np.testing.assert_allclose(M.syn_matrix[intra], M0.syn_matrix[intra], rtol=1e-12)
    cc = mask(M, cc=True)
    changed = ~np.isclose(M.syn_matrix, M0.syn_matrix, rtol=1e-12, atol=0) & cc
    assert changed.any()
    # per target area and source area the total number of cc synapses is unchanged
    areas = np.array([s.split('-')[0] for s in M.structure_vec])
    for a in ('V1', 'V4', 'FEF'):
        rows = areas == a
        np.testing.assert_allclose(M.syn_matrix[rows][:, :-1][:, areas == 'V2'].sum(),
                                   M0.syn_matrix[rows][:, :-1][:, areas == 'V2'].sum(), rtol=1e-10)


def test_surface_scales_neuron_numbers(M0):
    M = MultiAreaModel({'surface': 2.0, 'connection_params': NO_K_STABLE})
    np.testing.assert_allclose(M.N_vec, 2.0 * M0.N_vec, rtol=1e-12)


def test_psc_over_psp_gives_the_named_psp():
    """Integrating the membrane equation for that PSC gives a 1 mV peak."""
    C_m, tau_m, tau_s = 250., 10., 0.5
    I0 = psc_over_psp(C_m, tau_m, tau_s)
    dt = 1e-4
    t = np.arange(0, 20, dt)
    current = I0 * np.exp(-t / tau_s)
    V = np.zeros_like(t)
    for k in range(1, len(t)):
        V[k] = V[k - 1] + dt * (-V[k - 1] / tau_m + current[k - 1] / C_m)
    assert V.max() == pytest.approx(1.0, rel=1e-3)


def test_structure_helpers_round_trip(M0):
    d = matrix_to_dict(M0.K_matrix, M0.area_list, M0.structure, zero=False)
    np.testing.assert_array_equal(dict_to_matrix(d, M0.area_list, M0.structure), M0.K_matrix)
    assert set(d['TH']) == set(POPULATION_LIST)
    np.testing.assert_array_equal(zero_tiny([1e-9, -1e-9, 2e-8, 0.5]), [0, 0, 2e-8, 0.5])


def test_a_damaged_cache_entry_is_rebuilt(M0):
    params = M0.params
    key = connectivity.cache_key(params)
    path = connectivity.cache_dir() / 'connectivity' / f'{key}.npz'
    assert path.is_file()
    path.write_bytes(b'not an npz file')
    conn = connectivity.full_scale_connectivity(params, verbose=False)
    np.testing.assert_array_equal(conn.syn_matrix, M0.syn_matrix)
    assert connectivity._load(path).syn_matrix.shape == (254, 255)


def test_cache_key_ignores_what_does_not_change_the_derivation(M0):
    p = resolve({'N_scaling': 0.5, 'connection_params': {'K_stable': None}}, NETWORK_PARAMS)
    assert connectivity.cache_key(p) == connectivity.cache_key(M0.params)
    p['connection_params']['g'] = -4.
    assert connectivity.cache_key(p) != connectivity.cache_key(M0.params)


def test_summary(M0):
    s = summary(M0)
    assert (s['areas'], s['populations']) == (32, 254)
    assert s['neurons'] == round(M0.N_vec.sum())
    assert s['synapses'] == round(M0.syn_matrix[:, :-1].sum())
    assert s['projections'] == np.count_nonzero(M0.syn_matrix[:, :-1])
    line = summary_line(M0)
    assert f"{s['synapses']:,}" in line and M0.label in line


def test_summary_line_says_which_in_degrees(M0):
    """The derivation message counts the raw K, the summary the configured one: both say so."""
    from mam_pynn.model import MultiAreaModel
    raw = MultiAreaModel({'connection_params': {'K_stable': None}})
    assert 'raw in-degrees, K_stable off' in summary_line(raw)
    stable = MultiAreaModel({})
    assert "stabilized in-degrees K' from K_prime_original.npy" in summary_line(stable)
    assert summary(raw)['synapses'] != summary(stable)['synapses']


def load_yaml(path):
    import yaml
    with open(path) as f:
        return yaml.load(f, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))


def check_written(d, M):
    assert list(d['populations']) == M.structure_vec
    np.testing.assert_array_equal(np.asarray(d['N_vec'], float), M.N_vec)
    for name in ('K_matrix', 'syn_matrix', 'W_matrix', 'W_sd_matrix', 'J_matrix'):
        np.testing.assert_array_equal(np.array(d[name], dtype=float), getattr(M, name),
                                      err_msg=name)  # None -> NaN for W_sd's external column


@pytest.mark.parametrize('suffix', ['.npz', '.json'])
def test_write_connectivity(suffix, M0, tmp_path):
    path = write_connectivity(M0, tmp_path / f'conn{suffix}')
    assert path.is_file() and not list(tmp_path.glob('.conn*'))  # no temp file left
    d = dict(np.load(path)) if suffix == '.npz' else json.loads(path.read_text())
    check_written(d, M0)
    if suffix == '.json':
        assert d['summary'] == summary(M0)


def test_write_connectivity_yaml_head(M0, tmp_path):
    """The YAML file parses; checked on its header and the first rows (fast)."""
    path = write_connectivity(M0, tmp_path / 'conn.yaml')
    head = []
    for line in path.read_text().splitlines():
        if line.startswith('- ['):
            if head[-1].endswith(':'):  # keep the first row of each matrix
                head.append(line)
        else:
            head.append(line)
    short = tmp_path / 'head.yaml'
    short.write_text('\n'.join(head) + '\n')
    d = load_yaml(short)
    assert d['summary'] == summary(M0) and d['populations'] == M0.structure_vec
    np.testing.assert_array_equal(d['N_vec'], M0.N_vec)
    np.testing.assert_array_equal(np.array(d['W_sd_matrix'][0], float), M0.W_sd_matrix[0])
    np.testing.assert_array_equal(d['K_matrix'][0], M0.K_matrix[0])


@pytest.mark.slow
def test_write_connectivity_yaml_full(M0, tmp_path):
    check_written(load_yaml(write_connectivity(M0, tmp_path / 'conn.yml')), M0)


@pytest.mark.parametrize('x', [1e-05, 1e16, -0.0, 123.0, float('nan'), float('-inf'), 1.5e-300,
                               0.1 + 0.2, None])
def test_yaml_float_round_trip(x):
    import yaml
    back = yaml.safe_load(connectivity.yaml_float(x))
    if x is None or x != x:
        assert back is None if x is None else back != back
    else:
        assert isinstance(back, float) and back == x


def test_write_connectivity_rejects_unknown_suffix(M0, tmp_path):
    with pytest.raises(ValueError, match='suffix'):
        write_connectivity(M0, tmp_path / 'conn.csv')
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="'conn'"):
        connectivity.connectivity_format('conn')
    assert connectivity.connectivity_format('a/b.YAML') == '.yaml'


def test_create_mask_selects_population_pairs(M0):
    from mam_pynn.structure import create_mask, create_vector_mask
    s = M0.structure
    assert create_vector_mask(s).sum() == 254
    assert create_vector_mask(s, pops=['4E']).sum() == 31  # TH has no 4E
    m = create_mask(s, target_areas=['V1'], source_pops=['23E'], external=False)
    assert m.sum() == 8 * 32 and not m[:, -1].any()
    assert m.shape == (254, 255)
    cc = create_mask(s, cortico_cortical=True)
    internal = create_mask(s, internal=True)
    assert cc.sum() + internal.sum() == 254 * 255
    assert internal[:, -1].all() and not cc[:, -1].any()
    assert internal[:, :-1].sum() == 31 * 64 + 36
    np.testing.assert_array_equal(cc[:, :-1], mask(M0, cc=True)[:, :-1])


def test_extract_area_dict(M0):
    from mam_pynn.structure import extract_area_dict
    d = extract_area_dict(M0.K, M0.structure, 'TH', 'V1')
    assert list(d) == M0.structure['TH'] and list(d['23E']) == M0.structure['V1']
    assert d['23E']['4E'] == M0.K['TH']['23E']['V1']['4E']


@pytest.mark.parametrize('conn, name', [
    ({'g': 11.}, 'g'), ({'g': 0.}, 'g'),
    ({'PSP_e': -0.15}, 'PSP_e'), ({'PSP_e_23_4': 0.}, 'PSP_e_23_4'), ({'PSP_ext': -1.}, 'PSP_ext'),
    ({'cc_weights_factor': 0.}, 'cc_weights_factor'),
    ({'cc_weights_I_factor': -2.}, 'cc_weights_I_factor'),
    ({'fac_nu_ext_5E': -1.}, 'fac_nu_ext_5E'), ({'fac_nu_ext_TH': float('nan')}, 'fac_nu_ext_TH'),
])
def test_impossible_parameters_are_named(conn, name):
    params = resolve({'connection_params': {**NO_K_STABLE, **conn}}, NETWORK_PARAMS)
    value = repr(next(iter(conn.values())))
    with pytest.raises(ValueError, match=f"connection_params.{name} .*{re.escape(value)}"):
        connectivity.full_scale_connectivity(params, verbose=False)


def test_a_number_given_as_text_is_refused_when_resolved():
    """A quoted number in YAML ('-11') is a TypeError naming the key, before any derivation."""
    with pytest.raises(TypeError, match=r"connection_params\.g' must be number, got str '-11'"):
        resolve({'connection_params': {'g': '-11'}}, NETWORK_PARAMS)


@pytest.mark.parametrize('tau_syn', [10., 10. * (1 + 1e-9), 10. * (1 + 1e-6)])
def test_psc_over_psp_at_tau_syn_equal_tau_m(tau_syn):
    """The analytic limit C_m e / tau, and the general formula close to it."""
    assert psc_over_psp(250., 10., tau_syn) == pytest.approx(250. * np.e / 10., rel=1e-5)


def test_cache_is_read(M0, monkeypatch):
    """A second call finds the cached arrays: the derivation is not run again."""
    def no_derivation(*args, **kwargs):
        raise AssertionError('derived again although the cache holds the result')

    monkeypatch.setattr(connectivity, 'derive_connectivity', no_derivation)
    conn = connectivity.full_scale_connectivity(M0.params, verbose=False)
    for name in ('N_vec', 'syn_matrix', 'W_matrix', 'W_sd_matrix'):
        np.testing.assert_array_equal(getattr(conn, name), getattr(M0._full, name))


def test_cache_dir_and_subfolders(tmp_path, monkeypatch):
    monkeypatch.setenv('MAM_CACHE_DIR', str(tmp_path / 'c'))
    assert connectivity.cache_dir() == tmp_path / 'c'
    assert connectivity.cache_dir('x') == tmp_path / 'c' / 'x' and (tmp_path / 'c' / 'x').is_dir()
    monkeypatch.delenv('MAM_CACHE_DIR')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert connectivity.cache_dir('y') == tmp_path / 'xdg' / 'mam_pynn' / 'y'


def test_derivation_sources_exist_and_key_the_cache(monkeypatch, M0):
    """Every listed source is a file (a typo would silently drop it from the key)."""
    package = connectivity.Path(connectivity.__file__).parent
    assert 'params.py' in connectivity._DERIVATION_SOURCES
    for name in connectivity._DERIVATION_SOURCES:
        assert (package / name).is_file(), name
    key = connectivity.cache_key(M0.params)
    monkeypatch.setattr(connectivity, '_DERIVATION_SOURCES',
                        tuple(n for n in connectivity._DERIVATION_SOURCES if n != 'params.py'))
    assert connectivity.cache_key(M0.params) != key
