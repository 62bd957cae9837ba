"""Spike loading: run-directory contract, columnar split per population, clear errors."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import yaml

from mam_pynn.analysis.spikes import (RunDirError, SpikeFile, iter_areas, load_population,
                                      read_run_info, sample_neurons, spike_trains)


def write_tiny_run(path, spikes: dict, populations=None, t_sim=1000., sorting='none',
                   t_done=None, record_start=0.):
    """A hand-made run directory: ``spikes`` = {area: (node_ids, times)} written as given;
    ``t_done`` < ``t_sim``: stopped by the watchdog; None: finished."""
    path.mkdir(parents=True, exist_ok=True)
    populations = populations or {'V1': {'23E': {'first_id': 0, 'size': 3}, '23I': {'first_id': 3, 'size': 2}}}
    cfg = {'label': 'tiny', 'populations': populations,
           'sim_params': {'t_sim': t_sim, 'dt': 0.1,
                          'recording_dict': {'spike_dict': {'start': record_start}}},
           'network_params': {'neuron_params': {'single_neuron_dict': {'t_ref': 1.5}}}}
    (path / 'config.yaml').write_text(yaml.safe_dump(cfg, sort_keys=False))
    t_done = t_sim if t_done is None else t_done
    (path / 'summary.json').write_text(json.dumps(
        {'t_sim_ms': t_done, 'status': 'completed' if t_done == t_sim else 'stopped_by_watchdog'}))
    with h5py.File(path / 'spikes.h5', 'w') as f:
        for area, (ids, times) in spikes.items():
            g = f.create_group(f'spikes/{area}')
            g.attrs['sorting'] = sorting
            g['node_ids'] = np.asarray(ids, np.uint64)
            g['timestamps'] = np.asarray(times, float)
    return path


def test_run_info_of_a_synthetic_run(small_run):
    info = read_run_info(small_run)
    assert info.areas == ['V1', 'V2', 'FEF', 'TH']
    assert [p.name for p in info.populations['TH']] == ['23E', '23I', '5E', '5I', '6E', '6I']
    assert info.t_sim == 3000. and info.t_ref == 2.
    summary = json.loads((small_run / 'summary.json').read_text())
    assert sum(p.size for p in info.all_populations()) == summary['neurons']


def test_areas_split_into_sorted_populations(small_run):
    info = read_run_info(small_run)
    summary = json.loads((small_run / 'summary.json').read_text())
    total = 0
    for area, pops in iter_areas(info):
        assert list(pops) == [p.name for p in info.populations[area]]
        for ps in pops.values():
            assert ps.neuron.dtype == np.int64 and ps.times.dtype == np.float64
            if len(ps):
                assert 0 <= ps.neuron.min() and ps.neuron.max() < ps.size
                key = ps.neuron * 1e6 + ps.times
                assert np.all(np.diff(key) >= 0)  # sorted by (neuron, time)
            total += len(ps)
    assert total == summary['spikes']


def test_time_window_is_half_open(tmp_path):
    run = write_tiny_run(tmp_path / 'r', {'V1': ([0, 1, 3, 4, 0], [100., 500., 500.1, 999., 20.])},
                         sorting='none')
    info = read_run_info(run)
    pops = dict(iter_areas(info, t_min=20., t_max=500.))['V1']
    assert pops['23E'].neuron.tolist() == [0, 0] and pops['23E'].times.tolist() == [20., 100.]
    assert len(pops['23I']) == 0
    pops = dict(iter_areas(info, t_min=500.))['V1']
    assert pops['23E'].times.tolist() == [500.] and pops['23I'].neuron.tolist() == [0, 1]
    assert info.t_ref == 1.5


def test_unsorted_and_time_sorted_files_give_the_same_columns(tmp_path):
    rng = np.random.default_rng(0)
    ids, times = rng.integers(0, 5, 300), rng.uniform(0, 1000., 300)
    a = read_run_info(write_tiny_run(tmp_path / 'a', {'V1': (ids, times)}, sorting='none'))
    order = np.argsort(times)
    b = read_run_info(write_tiny_run(tmp_path / 'b', {'V1': (ids[order], times[order])}, sorting='by_time'))
    for pop in ('23E', '23I'):
        pa, pb = load_population(a, 'V1', pop, 100., 900.), load_population(b, 'V1', pop, 100., 900.)
        np.testing.assert_array_equal(pa.neuron, pb.neuron)
        np.testing.assert_array_equal(pa.times, pb.times)


def test_an_area_without_spikes_is_silent(tmp_path):
    pops = {'V1': {'23E': {'first_id': 0, 'size': 2}}, 'V2': {'23E': {'first_id': 0, 'size': 2}}}
    info = read_run_info(write_tiny_run(tmp_path / 'r', {'V1': ([0], [5.])}, populations=pops))
    got = dict(iter_areas(info))
    assert len(got['V2']['23E']) == 0 and len(got['V1']['23E']) == 1


def test_spike_trains_and_samples(tmp_path):
    info = read_run_info(write_tiny_run(tmp_path / 'r', {'V1': ([0, 0, 2, 4], [1., 2., 3., 4.])}))
    ps = load_population(info, 'V1', '23E')
    trains = spike_trains(ps, [0, 1, 2])
    assert [len(t) for t in trains] == [2, 0, 1]
    assert float(trains[0].t_stop) == 1000. and str(trains[0].units.dimensionality) == 'ms'
    assert sample_neurons(ps, 10).tolist() == [0, 2]  # only active neurons by default
    assert sample_neurons(ps, 10, active_only=False).tolist() == [0, 1, 2]
    assert sample_neurons(ps, 1, seed=3).size == 1
    with pytest.raises(IndexError, match='0..2'):
        spike_trains(ps, [3])


@pytest.mark.parametrize('change, message', [
    (lambda p: (p / 'config.yaml').unlink(), 'config.yaml is missing'),
    (lambda p: (p / 'spikes.h5').unlink(), 'spike file .* is missing'),
    (lambda p: (p / 'config.yaml').write_text('label: x\nsim_params: {t_sim: 10}\n'), "no 'populations'"),
    (lambda p: (p / 'config.yaml').write_text(
        'populations: {V1: {23E: {first_id: 0, size: 3}}}\n'), 't_sim is missing'),
    (lambda p: (p / 'config.yaml').write_text(
        'sim_params: {t_sim: 10}\npopulations: {V1: {23E: {first_id: 0, size: 3}, '
        '23I: {first_id: 2, size: 2}}}\n'), 'overlap'),
    (lambda p: (p / 'config.yaml').write_text(
        'sim_params: {t_sim: 10}\npopulations: {V1: {23E: {size: 3}}}\n'), "integer 'first_id'"),
    (lambda p: (p / 'summary.json').write_text('{"status": "completed"}'), "no readable 't_sim_ms'"),
])
def test_broken_run_directories_are_named(tmp_path, change, message):
    run = write_tiny_run(tmp_path / 'r', {'V1': ([0], [1.])})
    change(run)
    with pytest.raises(RunDirError, match=message):
        info = read_run_info(run)
        list(iter_areas(info, t_max=10.))


def test_bad_spikes_and_windows_are_named(tmp_path):
    info = read_run_info(write_tiny_run(tmp_path / 'a', {'V1': ([0, 7], [1., 2.])}))
    with pytest.raises(RunDirError, match=r'outside every population.*\[7\]'):
        list(iter_areas(info))
    info = read_run_info(write_tiny_run(tmp_path / 'b', {'V9': ([0], [1.])}))
    with pytest.raises(RunDirError, match='V9'):
        list(iter_areas(info))
    with pytest.raises(ValueError, match='beyond the simulated time'):
        list(iter_areas(info, t_max=2000.))
    with pytest.raises(ValueError, match='t_min < t_max'):
        list(iter_areas(info, t_min=600., t_max=500.))
    with pytest.raises(KeyError, match='population .*6E'):
        load_population(info, 'V1', '6E')
    with pytest.raises(KeyError, match='area .*V7'):
        load_population(info, 'V7', '23E')
    (tmp_path / 'c.h5').write_text('not hdf5')
    with pytest.raises(ValueError, match='c.h5: not a readable HDF5'):
        SpikeFile(tmp_path / 'c.h5')


def test_run_info_takes_the_simulated_time_from_the_summary(tmp_path):
    run = write_tiny_run(tmp_path / 'r', {'V1': ([0, 1], [10., 400.])}, t_sim=1000., t_done=500.)
    info = read_run_info(run)
    assert (info.t_sim, info.t_requested, info.status) == (500., 1000., 'stopped_by_watchdog')
    assert dict(iter_areas(info))['V1']['23E'].t_stop == 500.
    with pytest.raises(ValueError, match='beyond the simulated time t_sim=500'):
        list(iter_areas(info, t_max=1000.))


def test_an_unfinished_run_is_refused(tmp_path):
    run = write_tiny_run(tmp_path / 'r', {'V1': ([0], [1.])})
    (run / 'summary.json').unlink()
    info = read_run_info(run)  # still readable: the simulation draws a raster before summary.json
    assert info.status is None
    with pytest.raises(RunDirError, match='unfinished run.*summary.json is missing'):
        list(iter_areas(info))
    with pytest.raises(RunDirError, match='unfinished run'):
        load_population(info, 'V1', '23E')


def test_a_window_before_the_recording_start_is_refused(tmp_path):
    info = read_run_info(write_tiny_run(tmp_path / 'r', {'V1': ([0], [300.])}, record_start=200.))
    with pytest.raises(ValueError, match='t_min=100.* before the spike recording start'):
        list(iter_areas(info, t_min=100.))
    assert len(dict(iter_areas(info, t_min=200.))['V1']['23E']) == 1


@pytest.mark.parametrize('sorting', ['by_time', 'none'])
def test_node_ids_and_timestamps_of_unequal_length_are_named(tmp_path, sorting):
    run = write_tiny_run(tmp_path / 'r', {'V1': ([0, 1, 2], [1., 2., 3.])}, sorting=sorting)
    with h5py.File(run / 'spikes.h5', 'r+') as f:
        ids = f['spikes/V1/node_ids'][()]
        del f['spikes/V1/node_ids']
        f['spikes/V1/node_ids'] = ids[:-1]
    with pytest.raises(RunDirError, match=r'spikes.h5: /spikes/V1 node_ids \(2,\) and timestamps \(3,\)'):
        list(iter_areas(read_run_info(run), t_min=0., t_max=500.))


def test_sorting_attribute_as_sonata_enum_or_string(tmp_path, small_run):
    import h5py
    with h5py.File(small_run / 'spikes.h5', 'r') as f:
        raw = f['spikes/V1'].attrs['sorting']
        assert h5py.check_enum_dtype(f['spikes/V1'].attrs.get_id('sorting').dtype) is not None
    from mam_pynn.analysis.spikes import sorting_name
    assert sorting_name(raw) == 'by_time'
    assert sorting_name(b'by_id') == 'by_id' and sorting_name(0) == 'none'


def test_unrecorded_areas_are_left_out_not_silent(tmp_path):
    from mam_pynn.analysis.spikes import recorded_only
    pops = {'V1': {'23E': {'first_id': 0, 'size': 2}}, 'V2': {'23E': {'first_id': 0, 'size': 2}}}
    info = read_run_info(write_tiny_run(tmp_path / 'r', {'V1': ([0], [5.])}, populations=pops))
    assert recorded_only(info).areas == ['V1']
    info = read_run_info(write_tiny_run(tmp_path / 's', {'V9': ([0], [5.])}, populations=pops))
    with pytest.raises(RunDirError, match='none of the areas'):
        recorded_only(info)


def test_synthetic_run_command_line(tmp_path):
    from mam_pynn.analysis.synthetic import main
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('t_sim: 700.\nneurons_per_area: 40\nseed: 5\n')
    assert main(['--out', str(tmp_path / 'r'), '--config', str(cfg), '--areas', 'V1,TH']) == 0
    info = read_run_info(tmp_path / 'r')
    assert info.areas == ['V1', 'TH'] and info.t_sim == 700.
    assert 30 < info.area_size('V1') < 60
    summary = json.loads((tmp_path / 'r' / 'summary.json').read_text())
    assert summary['backend'] == 'synthetic' and summary['spikes'] > 0
