"""SONATA export: layout per the specification, libsonata reads it all back, the edges
carry the network's statistics, the same seed gives the same circuit, and the loader
gives back the same connectivity."""
import json

import h5py
import numpy as np
import pytest
from scipy import stats

from edge_populations import edge_populations
from standin import SUBSET
from mam_pynn.export._tables import network_tables
from mam_pynn.export.sonata import edge_files, export_sonata, load_sonata

libsonata = pytest.importorskip('libsonata')


def _model_reference(M, areas):
    """{(target, source): (synapses, W, W_sd, mean delay, delay sd)} read straight from the
    Model's matrices and parameters (not through the exporter's tables or the network plan)."""
    keys = [(a, p) for a in M.area_list for p in M.structure[a]]
    index = {k: i for i, k in enumerate(keys)}
    d = M.params['delay_params']
    out = {}
    for tkey in keys:
        for skey in keys:
            if tkey[0] not in areas or skey[0] not in areas:
                continue
            i, j = index[tkey], index[skey]
            n = int(M.syn_matrix[i, j])
            if not n:
                continue
            if tkey[0] == skey[0]:
                mu = d['delay_e'] if skey[1].endswith('E') else d['delay_i']
            else:
                mu = M.distances[tkey[0]][skey[0]] / d['interarea_speed']
            out[(tkey, skey)] = (n, M.W_matrix[i, j], M.W_sd_matrix[i, j], mu, mu * d['delay_rel'])
    return out


def test_layout_follows_the_specification(small_export):
    out, summary = small_export
    for name in ('circuit_config.json', 'simulation_config.json', 'node_sets.json',
                 'network/nodes.h5', 'network/node_types.csv'):
        assert (out / name).exists(), name
    cfg = json.loads((out / 'circuit_config.json').read_text())
    types = sorted(e['edge_types_file'].split('/')[-1] for e in cfg['networks']['edges'])
    assert types == sorted(['external_edge_types.csv'] + [f'edge_types_to_{a}.csv' for a in SUBSET])
    # one edge file per target area, holding the edge populations into that area
    files = edge_files(out)
    assert sorted(p.name for p in files) == sorted(f'edges_to_{a}.h5' for a in SUBSET)
    for path in files:
        with h5py.File(path, 'r') as f:
            assert all(name.endswith('_to_' + path.stem.removeprefix('edges_to_')) for name in f['edges'])
    with edge_populations(out) as groups:
        assert sorted(groups) == sorted(summary['edge_populations'])
        for name, g in groups.items():
            assert g['source_node_id'].dtype == np.uint64 and g['target_node_id'].dtype == np.uint64
            assert g['edge_type_id'].dtype == np.uint32 and g['edge_group_id'].dtype == np.uint32
            assert g['edge_group_index'].dtype == np.uint64
            assert not g['edge_group_id'][:].any()
            assert np.array_equal(g['edge_group_index'][:], np.arange(g['edge_group_index'].shape[0]))
            src_pop, tgt_pop = name.split('_to_')
            assert g['source_node_id'].attrs['node_population'] == src_pop
            assert g['target_node_id'].attrs['node_population'] == tgt_pop
            tgt = g['target_node_id'][:]
            assert np.all(np.diff(tgt.astype(np.int64)) >= 0), f"{name} not sorted by target"
            for index in ('source_to_target', 'target_to_source'):
                assert g[f'indices/{index}/node_id_to_ranges'].shape[1] == 2
    with h5py.File(out / 'network' / 'nodes.h5', 'r') as f:
        assert sorted(f['nodes']) == sorted(SUBSET)
    # libsonata knows only NEURON/CORENEURON as target_simulator, nest.SonataNetwork
    # demands 'NEST': check everything else with the key removed
    cfg = json.loads((out / 'simulation_config.json').read_text())
    assert cfg.pop('target_simulator') == 'NEST'
    (out / 'sim_libsonata.json').write_text(json.dumps(cfg))
    sim = libsonata.SimulationConfig.from_file(str(out / 'sim_libsonata.json'))
    assert sim.run.tstop == pytest.approx(300.0) and sim.run.dt == pytest.approx(0.1)
    circuit = libsonata.CircuitConfig.from_file(str(out / 'circuit_config.json'))
    assert set(SUBSET) <= set(circuit.node_populations)
    assert set(summary['edge_populations']) <= set(circuit.edge_populations)


def test_libsonata_reads_every_attribute_back(small_export):
    out, summary = small_export
    nodes = libsonata.NodeStorage(str(out / 'network' / 'nodes.h5'))
    with h5py.File(out / 'network' / 'nodes.h5', 'r') as f:
        for name in nodes.population_names:
            pop = nodes.open_population(name)
            sel = pop.select_all()
            assert pop.size == f['nodes'][name]['node_type_id'].shape[0]
            assert np.array_equal(pop.get_attribute('V_m_init', sel), f['nodes'][name]['0/V_m_init'][:])
    rng = np.random.default_rng(0)
    names = []
    for path in edge_files(out):
        edges = libsonata.EdgeStorage(str(path))
        with h5py.File(path, 'r') as f:
            for name in edges.population_names:
                names.append(name)
                _check_edge_population(edges.open_population(name), f['edges'][name], rng)
    assert sorted(names) == sorted(summary['edge_populations'])


def _check_edge_population(pop, g, rng):
    """libsonata's view of one edge population equals the file's datasets."""
    sel = pop.select_all()
    assert pop.attribute_names == {'syn_weight', 'delay'}
    for attr in ('syn_weight', 'delay'):
        assert np.array_equal(pop.get_attribute(attr, sel), g[f'0/{attr}'][:])
    src, tgt = g['source_node_id'][:], g['target_node_id'][:]
    assert np.array_equal(pop.source_nodes(sel), src)
    assert np.array_equal(pop.target_nodes(sel), tgt)
    # (libsonata 0.2 has no accessor for type ids; test_readers checks them with bmtk)
    # the indices agree with a brute-force search
    for node in rng.choice(max(tgt.max(), src.max()) + 1, 5):
        aff = pop.afferent_edges([int(node)]).flatten()
        eff = pop.efferent_edges([int(node)]).flatten()
        assert np.array_equal(np.sort(aff), np.flatnonzero(tgt == node))
        assert np.array_equal(np.sort(eff), np.flatnonzero(src == node))


def test_edges_have_the_network_statistics(small_model, small_sim_params, small_export):
    out, summary = small_export
    expected = _model_reference(small_model, small_sim_params['areas_simulated'])
    got = load_sonata(out).connectivity()
    assert set(got) == set(expected)
    assert summary['edges'] == sum(e[0] for e in expected.values())
    dt = summary['dt_ms']
    n_checked = 0
    for key, (n, W, W_sd, mu, sd) in expected.items():
        c = got[key]
        assert c['n'] == n, key
        assert np.sign(c['w_mean']) == (-1 if key[0][0] == key[1][0] and key[1][1].endswith('I') else 1)
        if n >= 100:
            n_checked += 1
            assert abs(c['w_mean'] - W) < 6 * W_sd / np.sqrt(n) + 1e-3 * abs(W), key
            assert c['w_sd'] == pytest.approx(W_sd, rel=0.3), key
            tn = stats.truncnorm((dt - mu) / sd, np.inf, loc=mu, scale=sd)
            assert abs(c['d_mean'] - tn.mean()) < 6 * tn.std() / np.sqrt(n) + 1e-4, key
    assert n_checked > 20
    # hard constraints on every edge
    with edge_populations(out) as groups:
        for g in groups.values():
            assert g['0/delay'][:].min() >= np.float32(dt)


def test_inputs_and_cells(small_model, small_sim_params, small_export):
    out, summary = small_export
    t = network_tables(small_model, small_sim_params)
    circuit = load_sonata(out)
    # DC drive and cell parameters per population
    for spec in circuit.plan.populations:
        assert spec.size == t.n[spec.key]
        assert spec.i_offset_pa == pytest.approx(t.dc_pa[spec.key])
    assert circuit.plan.neuron_params == pytest.approx({k: float(v) for k, v in t.neuron.items()})
    # external drive (rate_ext * K_ext) and the replaced areas: total rate per population
    want, got = {}, {}
    for c in t.channels:
        want[(c.area, c.pop)] = want.get((c.area, c.pop), 0) + c.rate_hz * c.weight_pa
    for p in circuit.plan.poisson:
        got[p.target] = got.get(p.target, 0) + p.rate_hz * p.weight_pa
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-5)
    assert any(c.origin != 'external' for c in t.channels), "replaced areas are missing"


def _all_datasets(circuit_dir) -> dict:
    """{file/path: array} of every dataset of every edge file."""
    out = {}
    for path in edge_files(circuit_dir):
        with h5py.File(path, 'r') as f:
            f.visititems(lambda name, obj: out.__setitem__(f'{path.name}/{name}', obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
    return out


def test_same_seed_same_circuit_whatever_the_workers_and_bounded_chunks(small_model, tmp_path):
    sim = {'t_sim': 50., 'areas_simulated': ['V1', 'V2'], 'rng_seed': 3}
    a = export_sonata(small_model, sim, tmp_path / 'a', chunk_edges=5_000, workers=1)
    b = export_sonata(small_model, sim, tmp_path / 'b', chunk_edges=5_000, workers=2)
    c = export_sonata(small_model, sim, tmp_path / 'c', seed=4, chunk_edges=5_000)
    d = export_sonata(small_model, sim, tmp_path / 'd', chunk_edges=10_000_000)
    assert a['edges'] == b['edges'] == c['edges'] == d['edges']
    assert (a['workers'], b['workers']) == (1, 2)
    da, db = _all_datasets(tmp_path / 'a'), _all_datasets(tmp_path / 'b')
    assert da.keys() == db.keys() and len(da) > 20
    for key in da:   # one process or two: the same circuit, bit for bit
        assert np.array_equal(da[key], db[key]), key
    with edge_populations(tmp_path / 'a') as pa, edge_populations(tmp_path / 'c') as pc, \
            edge_populations(tmp_path / 'd') as pd:
        ga, gc, gd = pa['V1_to_V1'], pc['V1_to_V1'], pd['V1_to_V1']
        assert not np.array_equal(ga['source_node_id'][:], gc['source_node_id'][:])
        # the bucketed (many chunks) and the in-memory source index describe the same edges
        for g in (ga, gd):
            src = g['source_node_id'][:].astype(np.int64)
            n2r = g['indices/source_to_target/node_id_to_ranges'][:]
            r2e = g['indices/source_to_target/range_to_edge_id'][:]
            lengths = r2e[:, 1] - r2e[:, 0]
            per_node = np.array([lengths[a:b].sum() for a, b in n2r])
            assert np.array_equal(per_node, np.bincount(src, minlength=len(n2r)))
            for node in (0, len(n2r) // 2, len(n2r) - 1):
                a0, b0 = n2r[node]
                ids = np.concatenate([np.arange(s, e) for s, e in r2e[a0:b0]] or [[]])
                assert np.array_equal(ids, np.flatnonzero(src == node))
    summary = json.loads((tmp_path / 'a' / 'mam_export.json').read_text())
    assert summary['seed'] == 3


def test_spawned_workers_write_the_same_circuit(small_model, tmp_path, monkeypatch):
    """Where processes cannot be forked (macOS, Windows) workers are spawned: same files."""
    from mam_pynn.export.sonata import workers
    sim = {'t_sim': 50., 'areas_simulated': ['V1', 'V2'], 'rng_seed': 5}
    export_sonata(small_model, sim, tmp_path / 'one', workers=1)
    monkeypatch.setattr(workers, '_START_METHOD', 'spawn')
    export_sonata(small_model, sim, tmp_path / 'spawned', workers=2)
    one, spawned = _all_datasets(tmp_path / 'one'), _all_datasets(tmp_path / 'spawned')
    assert one.keys() == spawned.keys()
    assert all(np.array_equal(one[k], spawned[k]) for k in one)


def test_a_failing_worker_fails_the_export_and_leaves_no_partial_file(small_model, tmp_path, monkeypatch):
    """An error in one edge-writing process is raised by export_sonata; the export is not
    marked complete (no mam_export.json) and no half-written edge file remains."""
    from mam_pynn.export.sonata import workers
    real = workers._write_area_pair

    def failing(f, t, ta, sa, *args):
        if (ta, sa) == ('V2', 'V1'):
            raise RuntimeError('disk full (simulated)')
        return real(f, t, ta, sa, *args)
    monkeypatch.setattr(workers, '_write_area_pair', failing)   # inherited by the forked workers
    with pytest.raises(RuntimeError, match='disk full'):
        export_sonata(small_model, {'areas_simulated': ['V1', 'V2']}, tmp_path, workers=2)
    assert not (tmp_path / 'mam_export.json').exists()
    assert not list((tmp_path / 'network').glob('edges_to_V2.h5*')) and \
        not list((tmp_path / 'network').glob('.edges_to_V2*'))
    with pytest.raises(ValueError, match='workers must be at least 1'):
        export_sonata(small_model, {'areas_simulated': ['V1']}, tmp_path, workers=0)


def test_a_killed_worker_fails_the_export_and_its_files_are_removed(small_model, tmp_path, monkeypatch):
    """A worker that dies without cleaning up (killed, out of memory) breaks the pool; the
    export raises and removes the dead worker's temporary edge file and index buckets."""
    import os
    from concurrent.futures.process import BrokenProcessPool

    from mam_pynn.export.sonata import workers
    real = workers._write_area_pair

    def dying(f, t, ta, sa, *args):
        if (ta, sa) == ('V2', 'V1'):
            os._exit(9)   # no exception handlers, no clean-up: like SIGKILL
        return real(f, t, ta, sa, *args)
    monkeypatch.setattr(workers, '_write_area_pair', dying)
    with pytest.raises(BrokenProcessPool):
        export_sonata(small_model, {'areas_simulated': ['V1', 'V2']}, tmp_path, workers=2, chunk_edges=2000)
    assert not (tmp_path / 'mam_export.json').exists()
    assert not list((tmp_path / 'network').glob('.*.tmp')) and not list(tmp_path.glob('.srcidx*'))


def test_bad_input_is_named(small_model, tmp_path):
    with pytest.raises(ValueError, match="unknown area 'XX' in areas_simulated"):
        export_sonata(small_model, {'areas_simulated': ['V1', 'XX']}, tmp_path)
    with pytest.raises(ValueError, match='chunk_edges'):
        export_sonata(small_model, {'areas_simulated': ['V1']}, tmp_path, chunk_edges=0)
    with pytest.raises(FileNotFoundError, match='not a SONATA circuit'):
        load_sonata(tmp_path / 'nothing')


def test_a_finished_export_is_replaced_only_when_asked(small_model, tmp_path):
    from mam_pynn.cli import main
    first = export_sonata(small_model, {'areas_simulated': ['V1', 'V2'], 'rng_seed': 1}, tmp_path)
    with pytest.raises(FileExistsError, match='finished SONATA export'):
        export_sonata(small_model, {'areas_simulated': ['V1'], 'rng_seed': 1}, tmp_path)
    assert json.loads((tmp_path / 'mam_export.json').read_text())['edges'] == first['edges']   # untouched
    second = export_sonata(small_model, {'areas_simulated': ['V1'], 'rng_seed': 1}, tmp_path, overwrite=True)
    # nothing of the first export is left to be read as part of the second
    assert [p.name for p in edge_files(tmp_path)] == ['edges_to_V1.h5']
    assert sorted(p.name for p in (tmp_path / 'network').glob('edge*')) == ['edge_types_to_V1.csv', 'edges_to_V1.h5']
    assert load_sonata(tmp_path).areas == ['V1'] and second['edges'] < first['edges']
    # the command line: exit 2 with the reason, --overwrite replaces
    cfg = tmp_path / 'c.yaml'
    cfg.write_text("network_params: {N_scaling: 0.01, K_scaling: 0.01, fullscale_rates: fullscale_rates.json,"
                   " connection_params: {replace_non_simulated_areas: hom_poisson_stat}}\n"
                   "sim_params: {areas_simulated: [V1]}\n")
    assert main(['export', 'sonata', '--config', str(cfg), '--out', str(tmp_path)]) == 2
    assert main(['export', 'sonata', '--config', str(cfg), '--out', str(tmp_path), '--overwrite', '--workers', '1']) == 0


def test_spike_train_inputs_form(small_model, tmp_path):
    """external='spikes': virtual nodes with pre-drawn Poisson trains of the channel rates."""
    sim = {'t_sim': 200., 'areas_simulated': ['V1'], 'rng_seed': 2}
    export_sonata(small_model, sim, tmp_path, external='spikes')
    t = network_tables(small_model, sim)
    n_virtual = sum(t.n[(c.area, c.pop)] for c in t.channels)
    want = sum(t.n[(c.area, c.pop)] * c.rate_hz for c in t.channels) * 0.2
    reader = libsonata.SpikeReader(str(tmp_path / 'inputs' / 'external_spikes.h5'))
    ids, times = np.asarray(reader['external'].get()).T if hasattr(reader['external'], 'get') else (None, None)
    with h5py.File(tmp_path / 'inputs' / 'external_spikes.h5', 'r') as f:
        node_ids, ts = f['spikes/external/node_ids'][:], f['spikes/external/timestamps'][:]
    assert ids is None or len(ids) == len(node_ids)
    assert abs(len(ts) - want) < 5 * np.sqrt(want)
    assert ts.min() > 0 and ts.max() <= 200. and np.all(np.diff(ts) >= 0)
    assert node_ids.max() < n_virtual
    with h5py.File(tmp_path / 'network' / 'external_nodes.h5', 'r') as f:
        assert f['nodes/external/node_type_id'].shape[0] == n_virtual
    cfg = json.loads((tmp_path / 'simulation_config.json').read_text())
    assert cfg['inputs']['external_spikes']['node_set'] == 'external'
    with pytest.raises(NotImplementedError, match='spike trains'):
        load_sonata(tmp_path)
    with pytest.raises(ValueError, match="external must be"):
        export_sonata(small_model, sim, tmp_path / 'x', external='nonsense')


def test_edges_of_an_area_pair_do_not_depend_on_the_other_areas(small_model, tmp_path):
    a = export_sonata(small_model, {'areas_simulated': ['V1'], 'rng_seed': 9}, tmp_path / 'a')
    b = export_sonata(small_model, {'areas_simulated': ['V1', 'V2'], 'rng_seed': 9}, tmp_path / 'b')
    assert b['edges'] > a['edges']
    with edge_populations(tmp_path / 'a') as pa, edge_populations(tmp_path / 'b') as pb:
        for key in ('source_node_id', 'target_node_id', '0/syn_weight', '0/delay'):
            assert np.array_equal(pa['V1_to_V1'][key][:], pb['V1_to_V1'][key][:])


def test_replace_cc_exports_inputs_instead_of_cortico_cortical_edges(tmp_path):
    """With replace_cc the simulated areas receive their cortico-cortical input as Poisson
    channels only (the network plan's reading), never as edges as well."""
    from mam_pynn.model import MultiAreaModel
    M = MultiAreaModel({'N_scaling': 0.01, 'K_scaling': 0.01,
                        'fullscale_rates': 'fullscale_rates.json',
                        'connection_params': {'replace_cc': 'het_poisson_stat',
                                              'replace_cc_input_source': 'fullscale_rates.json'}})
    t = network_tables(M, {'areas_simulated': ['V1', 'V2']})
    assert t.n_edges('V2', 'V1') == 0 and t.n_edges('V1', 'V2') == 0
    assert t.n_edges('V1', 'V1') > 0
    assert any(c.origin != 'external' and c.area == 'V2' for c in t.channels)


def test_bad_circuits_and_oversized_inputs_are_named(small_model, tmp_path, monkeypatch):
    from mam_pynn.export.sonata import writer
    # the spike-train input form holds every input spike in memory: refused when too many
    monkeypatch.setattr(writer, 'MAX_INPUT_SPIKES', 1000)
    with pytest.raises(ValueError, match="external='spikes' would pre-draw"):
        export_sonata(small_model, {'areas_simulated': ['V1'], 't_sim': 100.}, tmp_path / 's', external='spikes')
    monkeypatch.undo()
    out = tmp_path / 'c'
    export_sonata(small_model, {'areas_simulated': ['V1'], 't_sim': 100.}, out)
    assert load_sonata(out).n_edges() == json.loads((out / 'mam_export.json').read_text())['edges']
    # no resolution anywhere: an error, not a guessed dt
    (out / 'simulation_config.json').unlink()
    meta = json.loads((out / 'mam_export.json').read_text())
    meta.pop('dt_ms')
    (out / 'mam_export.json').write_text(json.dumps(meta))
    with pytest.raises(ValueError, match='resolution'):
        load_sonata(out)
    # generator nodes without their edges
    cfg = json.loads((out / 'circuit_config.json').read_text())
    cfg['networks']['edges'] = [e for e in cfg['networks']['edges'] if 'external' not in e['edges_file']]
    (out / 'circuit_config.json').write_text(json.dumps(cfg))
    meta['dt_ms'] = 0.1
    (out / 'mam_export.json').write_text(json.dumps(meta))
    with pytest.raises(ValueError, match='external_edges.h5'):
        load_sonata(out)


def test_per_connection_backends_refuse_large_circuits(small_export, monkeypatch):
    """Backends other than NEST take the edges one by one through PyNN's FromListConnector."""
    from types import SimpleNamespace

    from mam_pynn.export.sonata import simulator
    out, summary = small_export
    monkeypatch.setattr(simulator, 'MAX_EDGES_FROM_LIST', summary['edges'] - 1)
    with pytest.raises(ValueError, match="backend 'neuron'.*backend='nest'"):
        simulator.connect_edges(load_sonata(out), SimpleNamespace(name='neuron'), {})
