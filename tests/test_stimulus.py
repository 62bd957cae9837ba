"""Stimuli from the configuration (sim_params.stimulus): checks, and a configured pulse run."""
import json

import numpy as np
import pytest
import yaml

from mam_pynn.stimulus import check_stimuli, onsets

STRUCTURE = {'V1': ['23E', '23I', '4E', '4I', '5E', '5I', '6E', '6I'],
             'TH': ['23E', '23I', '5E', '5I', '6E', '6I']}
PULSE = {'kind': 'poisson', 'targets': ['V1-4E'], 'start': 100., 'duration': 20., 'rate': 500.}


def test_a_valid_entry_is_normalised():
    (s,) = check_stimuli([{**PULSE, 'targets': ['V1-4E', ['V1', '4I']], 'repeat': 3, 'interval': 50.}],
                         STRUCTURE)
    assert s['targets'] == [('V1', '4E'), ('V1', '4I')] and s['label'] == 'stimulus0'
    assert s['weight'] is None and onsets(s) == [100., 150., 200.]
    assert check_stimuli([s], STRUCTURE) == [s]          # normalised entries pass again


@pytest.mark.parametrize('change, error, match', [
    ({'kind': 'light'}, ValueError, r"stimulus\[0\]\.kind must be one of poisson, current"),
    ({'amplitude': 1.}, KeyError, r"unknown key sim_params\.stimulus\[0\]\.amplitude for a poisson"),
    ({'targets': ['V2-4E']}, ValueError, r"area 'V2' is not simulated"),
    ({'targets': ['TH-4E']}, ValueError, r"TH has no population '4E'"),
    ({'targets': 'V1-4E'}, ValueError, r"targets must be a non-empty list"),
    ({'duration': 0.}, ValueError, r"stimulus\[0\]\.duration must be > 0"),
    ({'rate': 'many'}, ValueError, r"stimulus\[0\]\.rate must be a finite number, got 'many'"),
    ({'repeat': 3}, KeyError, r"repeats 3 times and needs an interval"),
    ({'repeat': 3, 'interval': 10.}, ValueError, r"interval must be >= 20"),
    ({'repeat': 0}, ValueError, r"repeat must be a whole number >= 1"),
])
def test_a_bad_entry_names_the_key(change, error, match):
    with pytest.raises(error, match=match):
        check_stimuli([{**PULSE, **change}], STRUCTURE)


def test_a_bad_stimulus_is_refused_before_anything_is_built(tmp_path):
    pytest.importorskip('nest')
    from mam_pynn.model import MultiAreaModel
    with pytest.raises(ValueError, match="area 'V2' is not simulated"):
        MultiAreaModel({'N_scaling': 0.002, 'K_scaling': 0.01, 'fullscale_rates': 'fullscale_rates.json',
                        'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}},
                       simulation=True,
                       sim_spec={'areas_simulated': ['V1'], 'stimulus': [{**PULSE, 'targets': ['V2-4E']}]})


@pytest.fixture(scope='module')
def pulsed_run(tmp_path_factory):
    """V1 + V2, three 30 ms Poisson pulses into V1 4E/4I from the config (NEST)."""
    pytest.importorskip('nest')
    from mam_pynn.analysis import analyze_run
    from mam_pynn.model import MultiAreaModel
    stim = {'label': 'l4', 'kind': 'poisson', 'targets': ['V1-4E', 'V1-4I'], 'start': 200.,
            'duration': 30., 'rate': 500., 'repeat': 3, 'interval': 200.}
    M = MultiAreaModel({'N_scaling': 0.01, 'K_scaling': 0.01, 'fullscale_rates': 'fullscale_rates.json',
                        'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat',
                                              'cc_weights_factor': 1., 'cc_weights_I_factor': 1.}},
                       simulation=True, sim_spec={'t_sim': 750., 'areas_simulated': ['V1', 'V2'],
                                                  'stimulus': [stim]})
    run_dir = tmp_path_factory.mktemp('stim') / 'run'
    summary = M.simulation.simulate(out_dir=run_dir, progress=False)
    analyze_run(run_dir, t_min=100., verbose=False)
    return run_dir, summary, stim


def test_a_configured_stimulus_is_in_the_provenance(pulsed_run):
    run_dir, summary, stim = pulsed_run
    (ext,) = summary['extensions']
    assert ext['added'] == 'stimulus' and ext['source'] == 'config' and ext['repeat'] == 3
    assert ext['targets'] == ['V1-4E', 'V1-4I'] and ext['rate'] == 500.
    cfg = yaml.safe_load((run_dir / 'config.yaml').read_text())
    assert cfg['sim_params']['stimulus'] == [stim] and cfg['extensions'] == summary['extensions']


def test_the_pulse_evokes_a_response_in_v1_first(pulsed_run):
    from mam_pynn.analysis.evoked import evoked_response
    run_dir, _, _ = pulsed_run
    d = evoked_response(run_dir)
    assert d['trials_ms'] == [200., 400., 600.]
    t, v1 = d['time_ms'], d['rates']['V1']
    during = (t >= 0) & (t < 30)
    assert v1[during].mean() > d['baseline_mean']['V1'] + 5 * d['baseline_sd']['V1']
    assert 0 <= d['latency_ms']['V1'] < 10
    if np.isfinite(d['latency_ms']['V2']):
        assert d['latency_ms']['V2'] > d['latency_ms']['V1']
    assert d['hierarchy']['V1'] == 0. and d['hierarchy']['V2'] > 0.


def test_analyze_draws_the_evoked_response(pulsed_run):
    run_dir, _, _ = pulsed_run
    data = json.loads((run_dir / 'figures' / 'evoked_response.json').read_text())
    assert (run_dir / 'figures' / 'evoked_response.png').stat().st_size > 10_000
    assert data['areas'] == ['V1', 'V2'] and data['latency_ms']['V1'] < 10
