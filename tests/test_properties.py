"""Every valid configuration runs end to end; every invalid one is refused by name.

Property-based (hypothesis): configurations are drawn, not picked. A valid one goes through
the user's entry points (`mam simulate`, `mam analyze`, `mam export sonata`, in-process) and
its outputs must agree with each other and with the model; an invalid one must end in exit
code 2 with a message naming the offending key, and leave no run directory behind.
The default suite draws a fixed, derandomized handful; `-m slow` draws more. A failing case
prints its drawn configuration (hypothesis' falsifying example and `note`).
"""
from __future__ import annotations

import contextlib
import io
import json
import warnings

import h5py
import numpy as np
import pytest
import yaml

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import HealthCheck, Phase, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mam_pynn.analysis.run import analyze_run  # noqa: E402
from mam_pynn.cli import main  # noqa: E402
from mam_pynn.network.inputs import REPLACEMENT_MODES  # noqa: E402
from mam_pynn.params import AREA_LIST, network_defaults, sim_defaults  # noqa: E402

pytest.importorskip('pyNN.nest')
pytestmark = pytest.mark.usefixtures('private_cache')

# no shrinking: each case is a simulation, and the drawn configuration is printed as it is
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
FAST = settings(max_examples=6, deadline=None, derandomize=True, database=None, phases=_PHASES,
                suppress_health_check=list(HealthCheck), print_blob=True)
MORE = settings(max_examples=40, deadline=None, derandomize=True, database=None, phases=_PHASES,
                suppress_health_check=list(HealthCheck), print_blob=True)
T_MIN_DEFAULT = 500.   # the analysis transient (mam_pynn.analysis.run.DEFAULT_PARAMS)
# figures are drawn in every case (one-area runs once failed there: issue 16 item 1)
FIGURES = True
NEUROML_MAX_SYNAPSES = 60_000   # NeuroML holds one Python object per connection: small cases only


# ------------------------------------------------------------------ valid configurations

@st.composite
def valid_configs(draw):
    """A small valid configuration: areas, replacement of the rest, scaling, inputs, seeds."""
    areas = draw(st.one_of(st.just(['TH']), st.just(['V1']),
                           st.lists(st.sampled_from(AREA_LIST), min_size=1, max_size=3, unique=True)))
    conn = {'replace_non_simulated_areas': draw(st.sampled_from(REPLACEMENT_MODES)),
            'replace_cc': draw(st.sampled_from([False, False, *REPLACEMENT_MODES])),
            'lognormal_weights': draw(st.booleans()),
            'K_stable': draw(st.sampled_from(['K_prime_original.npy', None]))}
    if conn['lognormal_weights']:
        conn['lognormal_EE_only'] = draw(st.booleans())
    net = {'N_scaling': draw(st.sampled_from([0.001, 0.002, 0.003])),
           'K_scaling': draw(st.sampled_from([0.002, 0.005, 0.01])),
           'fullscale_rates': 'fullscale_rates.json', 'connection_params': conn,
           'input_params': {'rate_ext': draw(st.sampled_from([10., 10., 0.5]))}}
    sim = {'areas_simulated': areas, 't_sim': draw(st.sampled_from([150., 700.])),
           'rng_seed': draw(st.integers(1, 10_000)), 'local_num_threads': 1}
    return {'network_params': net, 'sim_params': sim}


def _with_input_files(cfg, folder):
    """Point the replacement modes that read files at files made for this case."""
    conn = cfg['network_params']['connection_params']
    modes = {conn['replace_non_simulated_areas'], conn['replace_cc']}
    if 'het_poisson_stat' in modes and 'het_current_nonstat' in modes:
        # one replace_cc_input_source serves one mode: keep the rates file for both
        conn['replace_cc'] = 'het_poisson_stat'
        modes = {conn['replace_non_simulated_areas'], 'het_poisson_stat'}
    if 'het_poisson_stat' in modes:
        conn['replace_cc_input_source'] = 'fullscale_rates.json'
    elif 'het_current_nonstat' in modes:
        from mam_pynn.model import MultiAreaModel
        M = MultiAreaModel(cfg['network_params'])
        prefix = folder / 'rates'
        rng = np.random.default_rng(0)
        n = int(cfg['sim_params']['t_sim']) + 1
        for area in M.area_list:
            for pop in M.structure[area]:
                np.save(f"{prefix}-{area}-{pop}.npy", rng.uniform(2., 8., n))
        conn['replace_cc_input_source'] = str(prefix)
    return cfg


def _write(cfg, path):
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _h5_counts(run):
    """{area: (node_ids, timestamps)} straight from spikes.h5 (SONATA layout)."""
    with h5py.File(run / 'spikes.h5', 'r') as f:
        return {a: (g['node_ids'][()], g['timestamps'][()]) for a, g in f['spikes'].items()}


def _expected_neurons(cfg):
    """Neurons of the simulated areas, from the model's N (truncated per population, as
    upstream's int(N[area][pop]))."""
    from mam_pynn.model import MultiAreaModel
    M = MultiAreaModel(cfg['network_params'])
    return {a: sum(int(M.N[a][p]) for p in M.structure[a])
            for a in cfg['sim_params']['areas_simulated']}


def _unexportable(cfg):
    """The keys whose values the SONATA export does not support (it may still export when
    no current input results, e.g. replace_cc without cortico-cortical projections)."""
    conn = cfg['network_params']['connection_params']
    keys = [k for k in ('replace_non_simulated_areas', 'replace_cc')
            if conn.get(k) == 'het_current_nonstat']
    return keys + (['lognormal_weights'] if conn.get('lognormal_weights') else [])


def check_end_to_end(cfg, tmp):
    """simulate -> analyze -> export sonata through the CLI; outputs agree with each other."""
    cfg = _with_input_files(cfg, tmp)
    note(f"configuration: {json.dumps(cfg)}")
    path = _write(cfg, tmp / 'config.yaml')
    run = tmp / 'run'
    code = main(['simulate', '--config', path, '--out', str(run)])
    assert code in (0, 3), f"mam simulate exited {code}"
    summary = json.loads((run / 'summary.json').read_text())
    spikes = _h5_counts(run)
    areas = cfg['sim_params']['areas_simulated']
    assert sorted(spikes) == sorted(areas)
    assert summary['spikes'] == sum(len(t) for _, t in spikes.values())
    expected = _expected_neurons(cfg)
    assert summary['neurons'] == sum(expected.values())
    for area, (ids, times) in spikes.items():
        assert len(ids) == len(times)
        assert ids.size == 0 or (ids.min() >= 0 and ids.max() < expected[area])
        assert times.size == 0 or (times.min() >= 0 and times.max() <= summary['t_sim_ms'])

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # a short run warns that its transient is included
        if FIGURES:
            assert main(['analyze', str(run)]) == 0
        else:
            analyze_run(run, figures=False, verbose=False)
    stats = json.loads((run / 'analysis' / 'statistics.json').read_text())
    t_min, t_max = stats['params']['t_min'], stats['params']['t_max']
    if summary['t_sim_ms'] <= T_MIN_DEFAULT:
        assert t_min == 0.
    in_window = {a: int(np.sum((t >= t_min) & (t < t_max))) for a, (_, t) in spikes.items()}
    assert stats['network']['spikes'] == sum(in_window.values())
    assert stats['network']['neurons'] == sum(expected.values())
    for area in areas:
        pops = stats['populations'][area]
        assert sum(p['spikes'] for p in pops.values()) == in_window[area]
        assert sum(p['size'] for p in pops.values()) == expected[area]
    if FIGURES:
        assert (run / 'figures').is_dir() and any((run / 'figures').glob('*.png'))

    out = tmp / 'sonata'
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(['export', 'sonata', '--config', path, '--out', str(out), '--workers', '1'])
    unsupported = _unexportable(cfg)
    if code == 2:   # refused by name, before writing anything
        assert unsupported, f"export refused a configuration it supports: {err.getvalue()}"
        assert any(k in err.getvalue() for k in unsupported), err.getvalue()
        assert not out.exists() or not any(out.iterdir()), "a refused export left files behind"
        return
    assert code == 0 and 'lognormal_weights' not in unsupported, f"mam export exited {code}"
    manifest = json.loads((out / 'mam_export.json').read_text())
    assert manifest['neurons'] == summary['neurons']
    assert manifest['edges'] == summary['synapses']
    assert sum(manifest['edge_populations'].values()) == manifest['edges']
    if summary['synapses'] <= NEUROML_MAX_SYNAPSES:
        check_neuroml(path, tmp / 'neuroml', summary)


def check_neuroml(config_path, out, summary):
    """mam export neuroml: the document libNeuroML reads back holds the run's neurons and its
    synapses (plus one connection per neuron and Poisson input)."""
    from neuroml.loaders import read_neuroml2_file
    assert main(['export', 'neuroml', '--config', config_path, '--out', str(out)]) == 0
    net = read_neuroml2_file(str(out / 'MAM.net.nml')).networks[0]
    cells = sum(p.size for p in net.populations if not p.id.startswith('poisson_'))
    assert cells == summary['neurons']
    synapses = sum(len(p.connection_wds) for p in net.projections
                   if not p.id.startswith('proj_poisson_'))
    note(f"NeuroML: {summary['neurons']} cells, {synapses} synapses")
    assert synapses == summary['synapses']


@FAST
@given(cfg=valid_configs())
def test_valid_configurations_run_end_to_end(cfg, tmp_path_factory):
    check_end_to_end(cfg, tmp_path_factory.mktemp('case'))


@pytest.mark.slow
@MORE
@given(cfg=valid_configs())
def test_more_valid_configurations_run_end_to_end(cfg, tmp_path_factory):
    check_end_to_end(cfg, tmp_path_factory.mktemp('case'))


# ---------------------------------------------------------------- invalid configurations

def _leaves(d, path=()):
    """(path, value) of every leaf of a nested default dict."""
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, path + (k,))
        else:
            yield path + (k,), v


def _dicts(d, path=()):
    yield path
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _dicts(v, path + (k,))


SECTIONS = {'network_params': network_defaults(), 'sim_params': sim_defaults()}
LEAVES = [(s,) + p for s, d in SECTIONS.items() for p, _ in _leaves(d)
          if p not in (('areas_simulated',), ('recording_dict', 'areas_recorded'))]
DICTS = [(s,) + p for s, d in SECTIONS.items() for p in _dicts(d)]
BASE = {'network_params': {'N_scaling': 0.002, 'K_scaling': 0.005,
                           'fullscale_rates': 'fullscale_rates.json',
                           'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}},
        'sim_params': {'areas_simulated': ['V1'], 't_sim': 20.}}

#: out-of-range values of numeric parameters: (path, bad value)
OUT_OF_RANGE = [
    (('network_params', 'N_scaling'), 0.), (('network_params', 'N_scaling'), -1.),
    (('network_params', 'K_scaling'), 0.), (('network_params', 'K_scaling'), float('nan')),
    (('network_params', 'surface'), -1.),
    (('network_params', 'input_params', 'rate_ext'), -5.),
    (('network_params', 'connection_params', 'g'), 3.),
    (('network_params', 'connection_params', 'PSP_e'), -0.1),
    (('network_params', 'delay_params', 'delay_e'), -1.),
    (('network_params', 'delay_params', 'interarea_speed'), 0.),
    (('network_params', 'neuron_params', 'single_neuron_dict', 'tau_m'), 0.),
    (('network_params', 'neuron_params', 'single_neuron_dict', 'C_m'), -250.),
    (('sim_params', 't_sim'), -10.), (('sim_params', 't_sim'), 0.),
    (('sim_params', 'dt'), 0.), (('sim_params', 'dt'), -0.1),
    (('sim_params', 'local_num_threads'), 0),
    (('sim_params', 'rng_seed'), -1), (('sim_params', 'rng_seed'), 0),
    (('sim_params', 'chunk_ms'), 0.),
    (('sim_params', 'areas_simulated'), ['V1', 'V99']),
    (('sim_params', 'areas_simulated'), []),
    (('network_params', 'connection_params', 'replace_non_simulated_areas'), 'poisson'),
    (('network_params', 'connection_params', 'replace_cc'), 'sometimes'),
    (('network_params', 'neuron_params', 'neuron_model'), 'hh_psc_alpha'),
]


def _set(cfg, path, value):
    holder = cfg
    for k in path[:-1]:
        holder = holder.setdefault(k, {})
    holder[path[-1]] = value


@st.composite
def invalid_configs(draw):
    """(config, key that must be named): an unknown key, a wrong type, or an impossible value."""
    import copy
    cfg = copy.deepcopy(BASE)
    kind = draw(st.sampled_from(['unknown', 'type', 'range']))
    if kind == 'unknown':
        where = draw(st.sampled_from(DICTS))
        name = draw(st.sampled_from(['N_scalling', 'tau', 'foo', 'K_stabel', 'areas']))
        _set(cfg, where + (name,), 1.0)
        return cfg, name
    if kind == 'type':
        path = draw(st.sampled_from(LEAVES))
        value = draw(st.sampled_from(['abc', [1, 2], {'x': 1}]))
        _set(cfg, path, value)
        return cfg, path[-1]
    path, value = draw(st.sampled_from(OUT_OF_RANGE))
    _set(cfg, path, value)
    return cfg, path[-1]


def _note(text):
    """hypothesis' note inside a drawn case (printed with a failing example), else nothing."""
    from hypothesis.control import _current_build_context
    if _current_build_context.value is not None:
        note(text)


def check_refused(cfg, key, tmp, capsys):
    _note(f"configuration: {json.dumps(cfg, default=str)}; must name {key!r}")
    path = _write(cfg, tmp / 'config.yaml')
    run = tmp / 'run'
    code = main(['simulate', '--config', path, '--out', str(run)])
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}, stderr: {err[-2000:]}"
    message = [line for line in err.splitlines() if line.startswith('mam simulate: error:')]
    assert message and key in message[-1], err[-2000:]
    assert not run.exists() or not any(run.iterdir()), "a refused run left files behind"


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=invalid_configs())
def test_invalid_configurations_are_refused_by_name(case, tmp_path_factory, capsys):
    cfg, key = case
    check_refused(cfg, key, tmp_path_factory.mktemp('bad'), capsys)


@pytest.mark.parametrize('path, value', OUT_OF_RANGE)
def test_each_impossible_value_is_refused_by_name(path, value, tmp_path, capsys):
    import copy
    cfg = copy.deepcopy(BASE)
    _set(cfg, path, value)
    check_refused(cfg, path[-1], tmp_path, capsys)
