"""The network plan (no simulator): sizes, synapse counts, delays, inputs, replacement modes."""
import json

import numpy as np
import pytest

from mam_pynn.network import InputSourceError, make_plan
from mam_pynn.network.plan import EXTERNAL_DELAY_MS

from net_helpers import sim_params, small_model


def _row(M):
    return {name: i for i, name in enumerate(M.structure_vec)}


def test_populations_and_projections_follow_the_model(model_v1_v2):
    M = model_v1_v2
    plan = make_plan(M, sim_params(areas_simulated=['V1', 'V2']))
    row = _row(M)
    assert [p.key for p in plan.populations] == \
        [(a, p) for a in ('V1', 'V2') for p in M.structure[a]]
    for spec in plan.populations:
        assert spec.size == int(M.N_vec[row[f'{spec.area}-{spec.pop}']])
    expected = {}
    for ta in ('V1', 'V2'):
        for tp in M.structure[ta]:
            for sa in ('V1', 'V2'):
                for sp in M.structure[sa]:
                    n = int(M.syn_matrix[row[f'{ta}-{tp}'], row[f'{sa}-{sp}']])
                    if n > 0:
                        expected[((sa, sp), (ta, tp))] = n
    got = {(p.source, p.target): p.n for p in plan.projections}
    assert got == expected
    d = M.params['delay_params']
    for p in plan.projections:
        if p.cortico_cortical:
            mean = M.distances[p.target[0]][p.source[0]] / d['interarea_speed']
        else:
            mean = d['delay_e'] if 'E' in p.source[1] else d['delay_i']
        assert p.delay_mean_ms == pytest.approx(mean)
        assert p.delay_sd_ms == pytest.approx(mean * d['delay_rel'])
        assert (p.weight_mean_pa > 0) == ('E' in p.source[1])
        assert not p.lognormal


def test_external_poisson_rates_are_K_ext_times_rate_ext(model_v1_v2):
    M = model_v1_v2
    plan = make_plan(M, sim_params(areas_simulated=['V1', 'V2']))
    row = _row(M)
    rate_ext = M.params['input_params']['rate_ext']
    ext = [p for p in plan.poisson if p.source == 'external']
    assert len(ext) == len(plan.populations)
    for p in ext:
        i = row['-'.join(p.target)]
        assert p.rate_hz == pytest.approx(M.K_matrix[i, -1] * rate_ext)
        assert p.weight_pa == pytest.approx(M.W_matrix[i, -1])
        assert p.delay_ms == EXTERNAL_DELAY_MS
    for spec in plan.populations:
        assert spec.i_offset_pa == pytest.approx(M.add_DC_drive[row[f'{spec.area}-{spec.pop}']])


def test_dc_replaces_poisson_when_poisson_input_is_off():
    from mam_pynn.model import MultiAreaModel
    from net_helpers import SMALL
    M = MultiAreaModel({**SMALL, 'input_params': {'poisson_input': False},
                        'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}})
    plan = make_plan(M, sim_params(areas_simulated=['V1', 'V2'],
                                   recording_dict={'areas_recorded': ['V1']}))
    assert plan.poisson and not [p for p in plan.poisson if p.source == 'external']
    row = _row(M)
    tau = M.params['neuron_params']['single_neuron_dict']['tau_syn_ex']
    for spec in plan.populations:
        i = row[f'{spec.area}-{spec.pop}']
        dc = M.K_matrix[i, -1] * M.W_matrix[i, -1] * tau * 1e-3 * M.params['input_params']['rate_ext']
        assert spec.i_offset_pa == pytest.approx(M.add_DC_drive[i] + dc)
        assert dc > 0


def _expected_replacement(M, targets, sources, rates):
    """{(target, 'mode:source-pop'): K * rate} with K = synapses / N_target."""
    row = _row(M)
    out = {}
    for ta in targets:
        for tp in M.structure[ta]:
            for sa in sources:
                if sa == ta:
                    continue
                for sp in M.structure[sa]:
                    i, j = row[f'{ta}-{tp}'], row[f'{sa}-{sp}']
                    if M.syn_matrix[i, j] > 0:
                        out[((ta, tp), f'{sa}-{sp}')] = M.syn_matrix[i, j] / M.N_vec[i] * rates[sa][sp]
    return out


def _replaced(plan):
    return {(p.target, p.source.split(':')[1]): p.rate_hz for p in plan.poisson if p.source != 'external'}


def test_hom_poisson_stat_replaces_every_other_area_at_rate_ext():
    M = small_model(replace_non_simulated_areas='hom_poisson_stat')
    plan = make_plan(M, sim_params(areas_simulated=['V1', 'V2']))
    others = [a for a in M.area_list if a not in ('V1', 'V2')]
    rate = M.params['input_params']['rate_ext']
    expected = _expected_replacement(M, ['V1', 'V2'], others,
                                     {a: {p: rate for p in M.structure[a]} for a in others})
    got = _replaced(plan)
    assert got.keys() == expected.keys() and len(got) > 0
    for k in got:
        assert got[k] == pytest.approx(expected[k])
    assert all(p.source.startswith('hom_poisson_stat:') for p in plan.poisson if p.source != 'external')
    # the connections between the simulated areas stay
    assert any(p.cortico_cortical for p in plan.projections)


def test_het_poisson_stat_reads_rates_from_json(tmp_path):
    rates = {a: {p: 1.0 + k + 0.1 * m for m, p in enumerate(['23E', '23I', '4E', '4I', '5E', '5I', '6E', '6I'])}
             for k, a in enumerate(small_model().area_list)}
    fn = tmp_path / 'rates.json'
    fn.write_text(json.dumps(rates))
    M = small_model(replace_non_simulated_areas='het_poisson_stat', replace_cc_input_source=str(fn))
    plan = make_plan(M, sim_params(areas_simulated=['V1']))
    others = [a for a in M.area_list if a != 'V1']
    expected = _expected_replacement(M, ['V1'], others, rates)
    got = _replaced(plan)
    assert got.keys() == expected.keys()
    for k in got:
        assert got[k] == pytest.approx(expected[k])
    assert not any(p.cortico_cortical for p in plan.projections)


def test_replace_cc_replaces_connections_between_simulated_areas():
    M = small_model(replace_cc='hom_poisson_stat')
    plan = make_plan(M, sim_params(areas_simulated=['V1', 'V2']))
    assert not any(p.cortico_cortical for p in plan.projections)
    rate = M.params['input_params']['rate_ext']
    expected = _expected_replacement(M, ['V1', 'V2'], ['V1', 'V2'],
                                     {a: {p: rate for p in M.structure[a]} for a in ('V1', 'V2')})
    got = _replaced(plan)
    assert got.keys() == expected.keys() and len(got) > 0
    for k in got:
        assert got[k] == pytest.approx(expected[k])


def test_het_current_nonstat_makes_step_currents(tmp_path):
    M0 = small_model()
    t_sim = 20
    for k, a in enumerate(M0.area_list):
        for p in M0.structure[a]:
            np.save(tmp_path / f'cc-{a}-{p}.npy', np.linspace(1, 2, t_sim) * (k + 1))
    M = small_model(replace_non_simulated_areas='het_current_nonstat',
                    replace_cc_input_source=str(tmp_path / 'cc'))
    plan = make_plan(M, sim_params(areas_simulated=['V1'], t_sim=float(t_sim)))
    assert plan.currents and all(p.source == 'external' for p in plan.poisson)
    row = _row(M)
    tau = M.params['neuron_params']['single_neuron_dict']['tau_syn_ex']
    for c in plan.currents:
        sa, sp = c.source.split(':')[1].split('-')
        i, j = row['-'.join(c.target)], row[f'{sa}-{sp}']
        series = np.load(tmp_path / f'cc-{sa}-{sp}.npy')
        K = M.syn_matrix[i, j] / M.N_vec[i]
        np.testing.assert_allclose(c.amplitudes_pa, K * M.W_matrix[i, j] * tau * series * 1e-3)
        delay = M.distances['V1'][sa] / M.params['delay_params']['interarea_speed']
        np.testing.assert_allclose(c.times_ms[0], round((0.1 + delay) / 0.1) * 0.1)
        assert np.all(np.diff(c.times_ms) > 0)


def test_lognormal_weights_follow_upstreams_rule():
    M = small_model(lognormal_weights=True, lognormal_EE_only=True)
    plan = make_plan(M, sim_params(areas_simulated=['V1']))
    for p in plan.projections:
        assert p.lognormal == ('E' in p.source[1] and 'E' in p.target[1])
    M = small_model(lognormal_weights=True)
    assert all(p.lognormal for p in make_plan(M, sim_params(areas_simulated=['V1'])).projections)


@pytest.mark.parametrize('conn, match', [
    ({'replace_non_simulated_areas': None}, 'replace_non_simulated_areas'),
    ({'replace_non_simulated_areas': 'nonsense'}, 'not a replacement mode'),
    ({'replace_non_simulated_areas': 'het_poisson_stat'}, 'replace_cc_input_source is not set'),
    ({'replace_non_simulated_areas': 'het_poisson_stat',
      'replace_cc_input_source': '/nonexistent/rates.json'}, 'does not exist'),
    ({'replace_non_simulated_areas': 'het_current_nonstat',
      'replace_cc_input_source': '/nonexistent/cc'}, 'does not exist'),
])
def test_bad_replacement_settings_are_clear_errors(conn, match):
    M = small_model(**conn)
    with pytest.raises(ValueError, match=match):
        make_plan(M, sim_params(areas_simulated=['V1']))


@pytest.mark.parametrize('content, match', [
    ('{not json', 'not valid JSON'),
    ('[1, 2]', 'mapping'),
    ('{"V1": {"23E": 1.0}}', "no rates for area"),
])
def test_malformed_rate_files_are_clear_errors(tmp_path, content, match):
    fn = tmp_path / 'rates.json'
    fn.write_text(content)
    M = small_model(replace_non_simulated_areas='het_poisson_stat', replace_cc_input_source=str(fn))
    with pytest.raises(InputSourceError, match=match):
        make_plan(M, sim_params(areas_simulated=['V1']))


def test_bad_rates_and_short_series_are_clear_errors(tmp_path):
    M0 = small_model()
    rates = {a: {p: 1.0 for p in M0.structure[a]} for a in M0.area_list}
    rates['V2']['4E'] = -3
    fn = tmp_path / 'rates.json'
    fn.write_text(json.dumps(rates))
    M = small_model(replace_non_simulated_areas='het_poisson_stat', replace_cc_input_source=str(fn))
    with pytest.raises(InputSourceError, match='V2-4E'):
        make_plan(M, sim_params(areas_simulated=['V1']))
    for a in M0.area_list:
        for p in M0.structure[a]:
            np.save(tmp_path / f'cc-{a}-{p}.npy', np.ones(5))
    M = small_model(replace_non_simulated_areas='het_current_nonstat',
                    replace_cc_input_source=str(tmp_path / 'cc'))
    with pytest.raises(InputSourceError, match='expected >= 10'):
        make_plan(M, sim_params(areas_simulated=['V1'], t_sim=10.))


def test_unknown_area_is_a_clear_error(model_v1_v2):
    with pytest.raises(ValueError, match="unknown area 'V99'"):
        make_plan(model_v1_v2, sim_params(areas_simulated=['V1', 'V99']))


def test_merged_poisson_sums_equal_weight_and_delay_only():
    from mam_pynn.network.plan import PoissonSpec, merged_poisson
    a, b = ('V1', '23E'), ('V1', '4E')
    specs = [PoissonSpec(a, 100., 87.8, 1.0, 'x'), PoissonSpec(a, 50., 87.8, 1.0, 'y'),
             PoissonSpec(a, 10., 87.8, 3.0, 'z'),       # other delay
             PoissonSpec(a, 5., 20., 1.0, 'w'),         # other weight
             PoissonSpec(b, 7., 87.8, 1.0, 'v'),        # other target
             PoissonSpec(a, 1., 87.8, 1.04, 'u')]       # 1.0 ms on the 0.1 ms grid only
    exact = {(p.target, p.weight_pa, p.delay_ms): (p.rate_hz, p.source)
             for p in merged_poisson(specs)}
    assert exact == {(a, 87.8, 1.0): (150., 'merged'), (a, 87.8, 3.0): (10., 'z'),
                     (a, 20., 1.0): (5., 'w'), (b, 87.8, 1.0): (7., 'v'),
                     (a, 87.8, 1.04): (1., 'u')}
    on_grid = {(p.target, p.weight_pa, round(p.delay_ms, 9)): p.rate_hz
               for p in merged_poisson(specs, dt=0.1)}
    assert on_grid == {(a, 87.8, 1.0): 151., (a, 87.8, 3.0): 10., (a, 20., 1.0): 5.,
                       (b, 87.8, 1.0): 7.}
    with pytest.raises(ValueError, match='negative Poisson rate'):
        merged_poisson([PoissonSpec(a, -1., 1., 1., 'x')])
