"""analyze_run end to end on a synthetic run: every file, sane values, caching."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import mam_pynn.analysis.run as run_module
from mam_pynn.analysis import analyze_run
from mam_pynn.analysis.plots import DETAIL_AREAS
from mam_pynn.analysis.synthetic import POPULATION_RATE, default_layout, make_run_dir

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')

FIGURES = ['raster', 'rate_map', 'lvr_map', 'rate_distributions', 'rate_time_series', 'spectra',
           'functional_connectivity'] + [f"raster_{a}" for a in DETAIL_AREAS]


@pytest.fixture(scope='module')
def analysed(small_run, tmp_path_factory):
    run = tmp_path_factory.mktemp('analysed') / 'run'
    shutil.copytree(small_run, run)
    result = analyze_run(run, t_min=500., verbose=False)
    return run, result


def test_every_file_is_written_and_not_empty(analysed):
    run, result = analysed
    for name in ('statistics.json', 'series.npz', 'manifest.json'):
        assert (run / 'analysis' / name).stat().st_size > 0
    for name in FIGURES:
        for ext in ('png', 'pdf'):
            path = run / 'figures' / f"{name}.{ext}"
            assert path.stat().st_size > 2000, path
    assert set(result['files']) >= {str(run / 'figures' / f"{n}.png") for n in FIGURES}
    assert not list(run.glob('**/.*.tmp*'))  # no temporary leftovers
    png = (run / 'figures' / 'raster.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n'


def test_statistics_match_the_synthetic_truth(analysed):
    run, result = analysed
    stats = json.loads((run / 'analysis' / 'statistics.json').read_text())
    assert stats['params']['t_min'] == 500. and stats['params']['t_max'] == 3000.
    assert stats['params']['t_ref'] == 2.
    assert set(stats['areas']) == {'V1', 'V2', 'FEF', 'TH'}
    assert '4E' not in stats['populations']['TH']
    for area, pops in stats['populations'].items():
        for pop, s in pops.items():
            # lognormal single-neuron rates: small populations scatter more
            rel = 0.25 if s['size'] >= 50 else 0.6
            assert s['rate'] == pytest.approx(POPULATION_RATE[pop], rel=rel), (area, pop)
            if s['rate'] > 4:  # enough ISIs per neuron for an unbiased estimate
                assert 0.8 < s['cv_isi'] < 1.5  # modulated Poisson: about 1, a little above
                assert 0.8 < s['lvr'] < 1.5
            # upstream's mean counts neurons without an LvR as 0
            assert s['lvr_upstream'] == pytest.approx(s['lvr'] * s['n_irregularity'] / s['size'])
            # Poisson counts of mean m per 1 ms bin, rate modulated by 30 %: CV^2 = 1/m + ~0.3^2
            m = s['spikes'] / 2500.
            assert s['synchrony'] == pytest.approx(np.sqrt(1. / m + 0.3 ** 2), rel=0.15), (area, pop)
            assert -0.1 < s['corrcoef'] < 0.2
    net = stats['network']
    assert net['neurons'] == sum(a['size'] for a in stats['areas'].values())
    fc = stats['functional_connectivity']
    assert -1 <= fc['similarity_exp'] <= 1 and fc['n_pairs'] == 6
    with np.load(run / 'analysis' / 'series.npz') as z:
        assert z['fc_sim'].shape == z['fc_exp'].shape == (4, 4)
        assert z['area_rate_series'].shape == (4, 2500)
        assert z['pop_psd'].shape[0] == len(z['pop_labels']) == 30
        assert z['neuron_rate'].size == net['neurons'] == z['pop_offsets'][-1]
        # the shared modulation of the synthetic areas shows up as positive FC
        assert np.all(z['fc_sim'][np.triu_indices(4, 1)] > 0.1)


def test_second_call_reloads_and_changes_recompute(analysed, capsys):
    run, first = analysed
    stamp = (run / 'figures' / 'spectra.png').stat().st_mtime_ns
    again = analyze_run(run, t_min=500., verbose=False)
    assert again['from_cache'] and not first['from_cache']
    assert again['network'] == first['network']
    assert (run / 'figures' / 'spectra.png').stat().st_mtime_ns == stamp
    out = capsys.readouterr().out
    assert 'analyzed run:' in out and '(cached)' in out

    (run / 'figures' / 'lvr_map.png').unlink()
    analyze_run(run, t_min=500., verbose=False)
    assert (run / 'figures' / 'lvr_map.png').exists()  # redrawn, and only it
    assert (run / 'figures' / 'spectra.png').stat().st_mtime_ns == stamp

    other = analyze_run(run, t_min=1000., verbose=False, figures=False)
    assert not other['from_cache'] and other['params']['t_min'] == 1000.
    back = analyze_run(run, t_min=500., verbose=False)
    assert not back['from_cache'] and back['network'] == first['network']


def test_bad_arguments_are_named(analysed):
    run, _ = analysed
    with pytest.raises(ValueError, match='t_min=4000.* must be below t_max'):
        analyze_run(run, t_min=4000., verbose=False)
    with pytest.raises(KeyError, match='sigma_mss'):
        analyze_run(run, sigma_mss=3., verbose=False)


def test_mam_analyze_command_uses_analyze_run(analysed, capsys):
    from mam_pynn.cli import main
    run, _ = analysed
    assert main(['analyze', str(run), '--t-min', '500']) in (0, None)
    out = capsys.readouterr().out
    assert 'analyzed run:' in out and 'LvR' in out


@pytest.fixture
def tiny_run(tmp_path):
    """3 areas x ~60 neurons, 1.5 s: fast to analyse without figures."""
    return make_run_dir(tmp_path / 'tiny', default_layout(60, ['V1', 'V2', 'FEF'], seed=2),
                        t_sim=1500., seed=2)


def spikes_in(run, t_min, t_max):
    with h5py.File(run / 'spikes.h5', 'r') as f:
        return sum(int(np.sum((g['timestamps'][()] >= t_min) & (g['timestamps'][()] < t_max)))
                   for g in f['spikes'].values())


def test_a_run_stopped_by_the_watchdog_is_analysed_up_to_the_stop(tmp_path):
    layout = default_layout(60, ['V1', 'V2', 'FEF'], seed=2)
    run = make_run_dir(tmp_path / 'w', layout, t_sim=1500., t_requested=4000., seed=2)
    with pytest.warns(RuntimeWarning, match="'stopped_by_watchdog' after 1500 of 4000 ms"):
        result = analyze_run(run, t_min=500., figures=False, verbose=False)
    n = sum(p['size'] for pops in layout.values() for p in pops.values())
    assert result['params']['t_max'] == 1500.
    assert result['network']['rate'] == pytest.approx(spikes_in(run, 500., 1500.) / (n * 1.0))
    stored = json.loads((run / 'analysis' / 'statistics.json').read_text())
    assert stored['run'] == {'status': 'stopped_by_watchdog', 't_sim_ms': 1500., 't_sim_requested_ms': 4000.}
    # how the run ended is part of the cache key
    summary = json.loads((run / 'summary.json').read_text())
    (run / 'summary.json').write_text(json.dumps({**summary, 'status': 'completed'}))
    again = analyze_run(run, t_min=500., figures=False, verbose=False)
    assert not again['from_cache'] and again['run']['status'] == 'completed'
    (run / 'summary.json').write_text(json.dumps({**summary, 't_sim_ms': 1200.}))
    with pytest.warns(RuntimeWarning):
        again = analyze_run(run, t_min=500., figures=False, verbose=False)
    assert not again['from_cache'] and again['params']['t_max'] == 1200.


def test_an_unfinished_run_is_not_analysed(tiny_run):
    (tiny_run / 'summary.json').unlink()
    with pytest.raises(ValueError, match='unfinished run'):
        analyze_run(tiny_run, figures=False, verbose=False)


def test_a_crash_between_the_two_result_files_is_not_taken_for_a_result(tiny_run, monkeypatch):
    analyze_run(tiny_run, t_min=500., figures=False, verbose=False)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt
    with monkeypatch.context() as m:
        m.setattr(run_module, 'atomic_write_json', crash)
        with pytest.raises(KeyboardInterrupt):  # series.npz (t_min 1000) written, statistics.json not
            analyze_run(tiny_run, t_min=1000., figures=False, verbose=False)
    again = analyze_run(tiny_run, t_min=500., figures=False, verbose=False)
    assert not again['from_cache']
    with np.load(tiny_run / 'analysis' / 'series.npz') as z:
        assert z['time_ms'][0] == 500.


@pytest.mark.parametrize('name, value', [('bin_ms', 0), ('bin_ms', -1.), ('sigma_ms', 0.),
                                         ('cc_neurons', 1), ('cc_neurons', 2.5),
                                         ('spectrum_overlap', 1.), ('spectrum_overlap', 0.),
                                         ('spectrum_len_segment', 2), ('t_ref', -1.),
                                         ('bin_ms', float('nan'))])
def test_bad_analysis_parameters_are_named(tiny_run, name, value):
    with pytest.raises(ValueError, match=f"analysis parameter {name}="):
        analyze_run(tiny_run, figures=False, verbose=False, **{name: value})
    assert not (tiny_run / 'analysis').exists()


def test_default_window_and_refractory_period(tiny_run):
    from mam_pynn.params import SINGLE_NEURON_DICT
    result = analyze_run(tiny_run, figures=False, verbose=False)
    assert result['params']['t_min'] == run_module.DEFAULT_PARAMS['t_min']
    assert result['params']['t_ref'] == SINGLE_NEURON_DICT['t_ref']


def test_recomputing_without_figures_removes_the_old_ones(analysed, tmp_path):
    run = tmp_path / 'run'
    shutil.copytree(analysed[0], run)
    old = json.loads((run / 'analysis' / 'manifest.json').read_text())['figures']
    old = [run / 'figures' / Path(f).name for f in old]  # the manifest names the original's
    assert old and all(f.exists() for f in old)
    result = analyze_run(run, t_min=1000., figures=False, verbose=False)
    assert not result['from_cache'] and not any(f.exists() for f in old)
    assert all(Path(f).exists() for f in json.loads(
        (analysed[0] / 'analysis' / 'manifest.json').read_text())['figures'])  # original untouched


def test_a_corrupt_fmri_file_raises_a_missing_one_is_a_note(tiny_run, tmp_path):
    from mam_pynn.data import DataFileError, set_data_dir
    data = tmp_path / 'data'
    data.mkdir()
    try:
        set_data_dir(data)
        result = analyze_run(tiny_run, figures=False, force=True, verbose=False)
        assert 'not compared' in result['functional_connectivity']['experimental']
        (data / 'Fig8_exp_func_conn.csv').write_text('# not the real file\nV1\tV2\n')
        with pytest.raises(DataFileError, match='corrupt'):
            analyze_run(tiny_run, figures=False, force=True, verbose=False)
    finally:
        set_data_dir(None)


def test_a_one_area_run_is_analysed_with_its_figures(tmp_path):
    """Regression (issue 16): FC of one area was a scalar and its figure crashed
    (np.fill_diagonal: 'array must be at least 2-d')."""
    run = make_run_dir(tmp_path / 'one', default_layout(200, ['V1']), t_sim=1200.)
    result = analyze_run(run, t_min=200., verbose=False)
    with np.load(run / 'analysis' / 'series.npz') as f:
        assert f['fc_sim'].shape == (1, 1) and f['fc_sim'][0, 0] == pytest.approx(1.)
    assert (run / 'figures' / 'raster.png').is_file() and (run / 'figures' / 'spectra.png').is_file()
    assert not (run / 'figures' / 'functional_connectivity.png').exists()
    assert result['network']['spikes'] > 0


def test_a_run_shorter_than_the_transient_is_analysed_whole_with_a_warning(tmp_path):
    """Regression (issue 16): a 300 ms run (default transient 500 ms) was refused."""
    run = make_run_dir(tmp_path / 'short', default_layout(100, ['V1', 'V2']), t_sim=300.)
    with pytest.warns(UserWarning, match=r"not longer than the default transient"):
        result = analyze_run(run, figures=False, verbose=False)
    assert result['params']['t_min'] == 0. and result['params']['t_max'] == 300.


def test_spectrum_settings_used_are_recorded_and_warned(tmp_path):
    """Issue 14.1: statistics.json says which segment was used; a window shorter than
    upstream's 1024-sample segment warns (issue 22: that request cannot be met)."""
    run = make_run_dir(tmp_path / 'r', default_layout(100, ['V1', 'V2']), t_sim=1000.)
    with pytest.warns(UserWarning, match=r"500 bins, fewer than upstream's 1024-sample Welch segment: "
                                         r"using 64 samples \(15.6 Hz"):
        result = analyze_run(run, t_min=500., figures=False, verbose=False)
    assert result['spectrum']['len_segment'] == 64 and result['spectrum']['resolution_hz'] == 1000. / 64
    with pytest.raises(ValueError, match="spectrum_len_segment=1024 is longer"):
        analyze_run(run, t_min=500., figures=False, verbose=False, spectrum_len_segment=1024, force=True)


@pytest.mark.parametrize('t_sim, segment', [(2500., 256), (3000., 512)])
def test_a_window_that_holds_1024_bins_is_not_warned_about_and_the_choice_is_stated_once(
        tmp_path, capsys, t_sim, segment):
    """Regression (issue 22): every default analysis of a 2-2.5 s run warned "too few for
    1024-sample Welch segments" although 1024 fit; the default choice is stated once, in the
    summary line and statistics.json, not warned about."""
    import warnings
    from mam_pynn.analysis.statistics import WELCH_SEGMENT_RULE
    run = make_run_dir(tmp_path / 'r', default_layout(40, ['V1', 'V2']), t_sim=t_sim)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        result = analyze_run(run, t_min=500., figures=False, verbose=False)
    stored = json.loads((run / 'analysis' / 'statistics.json').read_text())['spectrum']
    assert stored['len_segment'] == segment == result['spectrum']['len_segment']
    assert stored['segment_rule'] == WELCH_SEGMENT_RULE
    assert f"{segment}-sample segments, {1000. / segment:.3g} Hz resolution" in capsys.readouterr().out
    given = analyze_run(run, t_min=500., figures=False, verbose=False, spectrum_len_segment=1024)
    assert given['spectrum']['len_segment'] == 1024
    assert given['spectrum']['segment_rule'] == 'spectrum_len_segment as given'


def test_upstream_variants_by_name(analysed, tmp_path):
    """Issues 14.2-14.4: upstream's spectrum and correlation sample, and both CVs."""
    run, result = analysed
    pop = result['populations']['V1']['23E']
    assert {'cv_isi', 'cv_isi_upstream', 'corrcoef', 'corrcoef_se'} <= set(pop)
    assert pop['cv_isi_upstream'] <= pop['cv_isi'] + 0.05     # 2-spike neurons add CV 0
    assert 0 <= pop['corrcoef_se'] < 0.05
    copy = tmp_path / 'up'
    shutil.copytree(run, copy)
    up = analyze_run(copy, t_min=500., figures=False, verbose=False, cc_sample='upstream',
                     spectrum_method='upstream')
    assert up['spectrum']['len_segment'] == 1024 and 'noverlap 1000' in up['spectrum']['method']
    n_active = up['populations']['V1']['23E']['cc_neurons']
    assert n_active == min(2000, n_active) and n_active >= pop['cc_neurons']
    with pytest.raises(ValueError, match="cc_sample='first' must be one of random, upstream"):
        analyze_run(copy, figures=False, verbose=False, cc_sample='first', force=True)


def test_synaptic_input_fc_follows_upstreams_definition(analysed):
    """Issue 14.6: area signal = N-weighted mean over target pops of the |W| K weighted
    source rates, filtered by exp(-t / tau_syn); FC = their correlations."""
    from mam_pynn.analysis.synaptic_input import run_model
    run, result = analysed
    M = run_model(run)
    with np.load(run / 'analysis' / 'series.npz') as f:
        labels = [tuple(str(x).split('/')) for x in f['pop_labels']]
        rates, fc_si = f['pop_rate_series'], f['fc_sim_synaptic_input']
    tau = M.params['neuron_params']['single_neuron_dict']['tau_syn_ex']
    kernel = np.exp(-np.arange(0., 20.) / tau)
    areas = list(dict.fromkeys(a for a, _ in labels))
    signals = []
    for area in areas:
        total, weight = 0., 0.
        for k, (a, p) in enumerate(labels):
            if a != area:
                continue
            drive = sum(abs(M.W[area][p][sa][sp]) * M.K[area][p][sa][sp] * rates[j]
                        for j, (sa, sp) in enumerate(labels))
            total = total + M.N[area][p] * np.convolve(kernel, drive, mode='same')
            weight += M.N[area][p]
        signals.append(total / weight)
    np.testing.assert_allclose(fc_si, np.corrcoef(np.array(signals)), atol=1e-10)
    fc = result['functional_connectivity']['synaptic_input']
    assert 'synaptic-input' in fc['measure'] and 'similarity_exp' in fc


_BACKEND_SCRIPT = r'''
import os, sys
os.environ.pop('MPLBACKEND', None)
import matplotlib
if sys.argv[2] == 'chosen':
    matplotlib.use('svg')
    import matplotlib.pyplot as plt
from mam_pynn.analysis import analyze_run
analyze_run(sys.argv[1], t_min=500., verbose=False)
import matplotlib.pyplot as plt
print(matplotlib.get_backend().lower(), len(plt.get_fignums()))
'''


@pytest.mark.parametrize('session', ['chosen', 'none'])
def test_drawing_keeps_the_users_matplotlib_backend(small_run, tmp_path, session):
    """A notebook's inline backend (or any chosen one) survives `mam analyze`'s figures, and
    the figures are closed; with nothing chosen, drawing uses Agg (no display needed)."""
    import subprocess
    import sys
    run_dir = tmp_path / 'run'
    shutil.copytree(small_run, run_dir)
    res = subprocess.run([sys.executable, '-c', _BACKEND_SCRIPT, str(run_dir), session],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    backend, open_figures = res.stdout.split()[-2:]
    assert backend == ('svg' if session == 'chosen' else 'agg')
    assert open_figures == '0'


def test_areas_in_parallel_give_exactly_the_serial_results(small_run):
    """Issue 24: the areas analysed by 3 processes give bit for bit what one process
    gives (scalars and every array), whatever order the processes finish in."""
    from mam_pynn.analysis.run import analysis_params, compute_statistics, _jsonable
    from mam_pynn.analysis.spikes import read_run_info, recorded_only
    info = recorded_only(read_run_info(small_run))
    p = analysis_params(info, t_min=500.)
    serial, serial_arrays = compute_statistics(info, p, verbose=False, workers=1)
    parallel, parallel_arrays = compute_statistics(info, p, verbose=False, workers=3)
    assert json.dumps(_jsonable(parallel), sort_keys=True) == json.dumps(_jsonable(serial), sort_keys=True)
    assert list(parallel['areas']) == list(info.areas)
    assert set(parallel_arrays) == set(serial_arrays)
    for key, value in serial_arrays.items():
        np.testing.assert_array_equal(parallel_arrays[key], value, err_msg=key)
    assert serial['network']['spikes'] > 1000
