"""The network built on NEST (fast path): counts, weight and delay statistics, inputs."""
import json
import warnings

import numpy as np
import pytest
from scipy import stats

from net_helpers import build, connections, small_model

nest = pytest.importorskip('nest')
DT = 0.1


def truncated_normal_moments(mean, sd, low, high):
    a, b = (low - mean) / sd, (high - mean) / sd
    m, v = stats.truncnorm.stats(a, b, loc=mean, scale=sd, moments='mv')
    return float(m), float(np.sqrt(v))


def assert_moments(x, mean, sd, what, extra_var=0.0):
    """Sample mean and SD within 4 standard errors of the expected ones."""
    n = len(x)
    sd_exp = np.sqrt(sd ** 2 + extra_var)
    se_mean = sd_exp / np.sqrt(n)
    se_sd = sd_exp / np.sqrt(2 * (n - 1))
    assert abs(x.mean() - mean) < 4 * se_mean, f"{what}: mean {x.mean()} vs {mean} (SE {se_mean})"
    assert abs(x.std(ddof=1) - sd_exp) < 4 * se_sd + 1e-12, \
        f"{what}: SD {x.std(ddof=1)} vs {sd_exp} (SE {se_sd})"


@pytest.fixture(scope='module')
def built_v1_v2(model_v1_v2):
    return build(model_v1_v2)


def test_neurons_and_synapses_per_population_pair(model_v1_v2, built_v1_v2):
    M, (plan, net) = model_v1_v2, built_v1_v2
    row = {name: i for i, name in enumerate(M.structure_vec)}
    for (area, pop), handle in net.populations.items():
        assert len(handle.node_collection) == int(M.N_vec[row[f'{area}-{pop}']])
    checked = 0
    for (ta, tp) in net.populations:
        for (sa, sp) in net.populations:
            n_model = int(M.syn_matrix[row[f'{ta}-{tp}'], row[f'{sa}-{sp}']])
            n_nest = len(nest.GetConnections(source=net.populations[(sa, sp)].node_collection,
                                             target=net.populations[(ta, tp)].node_collection))
            assert n_nest == n_model, f"{sa}-{sp} -> {ta}-{tp}"
            checked += n_model > 0
    assert checked == len(plan.projections) > 100


def test_weights_and_delays_have_the_model_statistics(built_v1_v2):
    plan, net = built_v1_v2
    tested = 0
    for spec in plan.projections:
        c = connections(net, spec.source, spec.target)
        w, d = c['weight'], c['delay']
        assert len(w) == spec.n
        # every weight keeps its sign, every delay is at least the resolution
        assert np.all(w >= 0) if spec.sign > 0 else np.all(w <= 0)
        assert np.all(d >= DT - 1e-12)
        if spec.n < 200:
            continue
        lo, hi = (0, np.inf) if spec.sign > 0 else (-np.inf, 0)
        assert_moments(w, *truncated_normal_moments(spec.weight_mean_pa, spec.weight_sd_pa, lo, hi),
                       f"weights {spec.source}->{spec.target}")
        # NEST puts delays on the time grid: rounding adds dt^2/12 of variance
        assert_moments(d, *truncated_normal_moments(spec.delay_mean_ms, spec.delay_sd_ms, DT, np.inf),
                       f"delays {spec.source}->{spec.target}", extra_var=DT ** 2 / 12)
        tested += 1
    assert tested > 20


def test_initial_potentials_and_dc_drive(model_v1_v2, built_v1_v2):
    plan, net = built_v1_v2
    v = np.concatenate([np.asarray(h.node_collection.get('V_m')) for h in net.populations.values()])
    assert_moments(v, plan.v0_mean, plan.v0_sd, 'V0')
    for spec in plan.populations:
        I_e = np.asarray(net.populations[spec.key].node_collection.get('I_e'))
        np.testing.assert_allclose(I_e, spec.i_offset_pa, rtol=1e-12)
        assert net.populations[spec.key].node_collection.get('model')[0] == 'iaf_psc_exp'


def _generator_inputs(net, model):
    """{target key: sorted list of (rate or amplitudes, weight, delay)} of the device inputs."""
    gens = nest.GetNodes({'model': model})
    out = {}
    if len(gens) == 0:
        return out
    for key, h in net.populations.items():
        conns = nest.GetConnections(source=gens, target=h.node_collection)
        if len(conns) == 0:
            continue
        st = conns.get(['source', 'target', 'weight', 'delay'])
        src = np.asarray(st['source'])
        # every generator reaches every neuron of the population exactly once
        for s in np.unique(src):
            assert np.sum(src == s) == len(h.node_collection)
        def value(s):  # rate, or the first current amplitude
            if model == 'poisson_generator':
                return float(nest.NodeCollection([int(s)]).get('rate'))
            return float(np.asarray(nest.NodeCollection([int(s)]).get('amplitude_values'))[0])
        out[key] = sorted((value(s),
                           float(np.asarray(st['weight'])[src == s][0]),
                           float(np.asarray(st['delay'])[src == s][0])) for s in np.unique(src))
    return out


def test_external_poisson_rates_in_nest(model_v1_v2, built_v1_v2):
    M, (_, net) = model_v1_v2, built_v1_v2
    row = {name: i for i, name in enumerate(M.structure_vec)}
    rate_ext = M.params['input_params']['rate_ext']
    inputs = _generator_inputs(net, 'poisson_generator')
    assert inputs.keys() == net.populations.keys()
    for key, gens in inputs.items():
        i = row['-'.join(key)]
        ext = [g for g in gens if g[1] == pytest.approx(M.W_matrix[i, -1]) and g[2] == 1.0]
        assert len(ext) == 1
        assert ext[0][0] == pytest.approx(M.K_matrix[i, -1] * rate_ext)
        # the generators replacing the other areas: rates K * rate_ext (hom_poisson_stat)
        others = [a for a in M.area_list if a not in ('V1', 'V2')]
        expected = sum(M.syn_matrix[i, row[f'{a}-{p}']] / M.N_vec[i] * rate_ext
                       for a in others for p in M.structure[a])
        assert sum(g[0] for g in gens) - ext[0][0] == pytest.approx(expected)


def test_het_poisson_stat_and_het_current_nonstat_in_nest(tmp_path):
    M0 = small_model()
    rates = {a: {p: 0.5 + k for p in M0.structure[a]} for k, a in enumerate(M0.area_list)}
    (tmp_path / 'r.json').write_text(json.dumps(rates))
    M = small_model(replace_non_simulated_areas='het_poisson_stat',
                    replace_cc_input_source=str(tmp_path / 'r.json'))
    plan, net = build(M, areas=['V1'])
    row = {name: i for i, name in enumerate(M.structure_vec)}
    inputs = _generator_inputs(net, 'poisson_generator')
    for key, gens in inputs.items():
        i = row['-'.join(key)]
        expected = sorted([M.K_matrix[i, -1] * 10.] + [
            M.syn_matrix[i, row[f'{a}-{p}']] / M.N_vec[i] * rates[a][p]
            for a in M.area_list[1:] for p in M.structure[a] if M.syn_matrix[i, row[f'{a}-{p}']] > 0])
        np.testing.assert_allclose(sorted(g[0] for g in gens), expected, rtol=1e-9)

    for a in M0.area_list:
        for p in M0.structure[a]:
            np.save(tmp_path / f'cc-{a}-{p}.npy', np.full(30, 2.0))
    M = small_model(replace_non_simulated_areas='het_current_nonstat',
                    replace_cc_input_source=str(tmp_path / 'cc'))
    plan, net = build(M, areas=['V1'], t_sim=30.)
    currents = _generator_inputs(net, 'step_current_generator')
    assert currents.keys() == {k for k in net.populations}
    n_expected = {k: sum(1 for c in plan.currents if c.target == k) for k in net.populations}
    for key, gens in currents.items():
        assert len(gens) == n_expected[key] > 0
        total = sum(g[0] for g in gens)
        assert total == pytest.approx(sum(c.amplitudes_pa[0] for c in plan.currents if c.target == key))


def test_lognormal_weights_in_nest():
    M = small_model(lognormal_weights=True)
    plan, net = build(M, areas=['V1'])
    tested = 0
    for spec in plan.projections:
        assert spec.lognormal
        w = connections(net, spec.source, spec.target, ('weight',))['weight']
        assert np.all(w > 0) if spec.sign > 0 else np.all(w < 0)
        if spec.n >= 200:
            x = np.log(np.abs(w))
            sigma2 = np.log1p((spec.weight_sd_pa / spec.weight_mean_pa) ** 2)
            mu = np.log(abs(spec.weight_mean_pa)) - sigma2 / 2
            assert_moments(x, mu, np.sqrt(sigma2), f"log weights {spec.source}->{spec.target}")
            tested += 1
    assert tested > 3


def test_nest_refuses_more_synapses_than_its_virtual_processes_hold():
    """Refused before anything is built, naming the fix (NEST's own error comes only after
    minutes of connecting)."""
    from types import SimpleNamespace

    from mam_pynn.network import make_backend
    backend = make_backend('nest')
    backend.setup(0.1, 1, 1)
    backend.check_plan(SimpleNamespace(n_synapses=100_000_000))
    with pytest.raises(ValueError, match='at least 2 NEST virtual processes'):
        backend.check_plan(SimpleNamespace(n_synapses=200_000_000))


def _one_population_plan(n=2):
    from mam_pynn.network.plan import NetworkPlan, PopulationSpec
    from mam_pynn.params import SINGLE_NEURON_DICT
    nrn = dict(SINGLE_NEURON_DICT, V_th=1000.)      # never fires: V_m integrates the input
    plan = NetworkPlan(areas=['V1'], structure={'V1': ['23E']}, neuron_params=nrn,
                       v0_mean=nrn['E_L'], v0_sd=0., dt=DT)
    plan.populations.append(PopulationSpec('V1', '23E', n, 0.))
    return plan


def test_step_current_reaches_the_neurons_at_the_planned_time():
    """The plan's step times are arrival times: NEST's generator is started one step early
    to make up for its connection delay of one step, so V_m first moves in the step
    starting at the planned time (as on NEURON and Brian2), not one step later."""
    from mam_pynn.network import build_network, make_backend
    from mam_pynn.network.plan import StepCurrentSpec
    plan = _one_population_plan()
    t_on, amp = 2.0, 100.
    plan.currents.append(StepCurrentSpec(('V1', '23E'), np.array([t_on]), np.array([amp]), 'x'))
    be = make_backend('nest')
    be.setup(DT, 1, 1)
    build_network(plan, be, recorded_areas=['V1'], progress=None,
                  vm={'fraction': 1.0, 'dict': {'start': 0., 'stop': 5., 'interval': DT}})
    be.prepare()
    be.run(4.)
    _, t, v = be.vm('V1')
    e_l, tau_m, c_m = (plan.neuron_params[k] for k in ('E_L', 'tau_m', 'C_m'))
    at = lambda time: v[np.isclose(t, time)]
    np.testing.assert_array_equal(at(t_on), e_l)                 # nothing before t_on
    step = amp * tau_m / c_m * -np.expm1(-DT / tau_m)             # one step of the current
    np.testing.assert_allclose(at(t_on + DT), e_l + step, rtol=1e-6)


def test_build_times_finish_build_apart_and_warns_about_unsimulated_recorded_areas():
    from mam_pynn.network import build_network, make_backend
    be = make_backend('nest')
    be.setup(DT, 1, 1)
    with pytest.warns(UserWarning, match='areas_recorded V2, V4 not simulated'):
        net = build_network(_one_population_plan(), be, recorded_areas=['V1', 'V2', 'V4'],
                            progress=None)
    assert net.recorded_areas == ['V1']
    assert set(net.timings) == {'network_creation_s', 'local_connections_s',
                                'cortico_cortical_connections_s', 'finish_build_s'}
    assert all(x >= 0 for x in net.timings.values())
    from mam_pynn.params import AREA_LIST
    be.setup(DT, 1, 1)
    with warnings.catch_warnings(record=True) as caught:   # all areas (the default): no warning
        warnings.simplefilter('always')
        assert build_network(_one_population_plan(), be, recorded_areas=AREA_LIST,
                             progress=None).recorded_areas == ['V1']
    assert not [w for w in caught if 'not simulated' in str(w.message)]
