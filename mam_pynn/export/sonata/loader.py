"""The way back: read an exported circuit (node types, edges in chunks) as a plan.
"""
from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np

from ...faults import DamagedFileError, reading
from ...io import read_json


# =========================================================================== the way back

_NEST_CELL_KEYS = ('E_L', 'V_th', 'V_reset', 'C_m', 'tau_m', 'tau_syn_ex', 'tau_syn_in', 't_ref')


def _read_types(path: Path) -> dict[int, dict]:
    with reading(path), open(path) as f:
        rows = list(csv.DictReader(f, delimiter=' '))
        for i, r in enumerate(rows):
            if None in r or None in r.values():
                raise ValueError(f"row {i + 2} does not have the header's {len(r) - (None in r)} columns")
        return {int(r.pop('node_type_id' if 'node_type_id' in r else 'edge_type_id')): r for r in rows}


def _resolve(cfg: dict, value: str) -> Path:
    manifest = cfg['manifest']
    for _ in range(5):
        for k, v in manifest.items():
            value = value.replace(k, v)
    return Path(value)


def _area_edge_files(config: dict) -> list[Path]:
    return [_resolve(config, e['edges_file']) for e in config['networks']['edges']
            if Path(e['edges_file']).name != 'external_edges.h5']


def edge_files(circuit_dir) -> list[Path]:
    """The files of edges between areas of a circuit written by :func:`export_sonata`
    (one per target area; the external inputs' file excluded), from its circuit_config.json."""
    circuit_dir = Path(circuit_dir)
    path = circuit_dir / 'circuit_config.json'
    with reading(path):
        config = read_json(path)
        config['manifest'] = {**config['manifest'], '$BASE_DIR': str(circuit_dir)}
        return _area_edge_files(config)


class SonataCircuit:
    """A SONATA circuit written by :func:`export_sonata`, read back as a network plan.

    ``plan`` is a :class:`mam_pynn.network.plan.NetworkPlan` holding the populations
    (cell parameters and DC drive from the node types) and the Poisson inputs (from the
    poisson_generator nodes) but no statistical projections: the synapses are the
    explicit edges, read in chunks by :meth:`iter_edges`.
    """

    def __init__(self, circuit_dir, chunk_edges: int = 1_000_000):
        from ...network.plan import NetworkPlan, PoissonSpec, PopulationSpec
        self.dir = Path(circuit_dir)
        cfg_path = self.dir / 'circuit_config.json'
        if not cfg_path.exists():
            raise FileNotFoundError(f"{cfg_path} not found: not a SONATA circuit directory")
        with reading(cfg_path):     # every file's name and place comes from this one
            self.config = read_json(cfg_path)
            self.config['manifest'] = {k: v.replace('$BASE_DIR', str(self.dir)) if k != '$BASE_DIR'
                                       else str(self.dir) for k, v in self.config['manifest'].items()}
            models_dir = _resolve(self.config, self.config['components']['point_neuron_models_dir'])
            nodes = self.config['networks']['nodes']
            main = next((n for n in nodes if Path(n['nodes_file']).name == 'nodes.h5'), None)
            if main is None:
                raise ValueError(f"{cfg_path} lists no network/nodes.h5: not a circuit written by mam_pynn")
            types_path = _resolve(self.config, main['node_types_file'])
            nodes_path = _resolve(self.config, main['nodes_file'])
            self.edge_files()
        sim_path = self.dir / 'simulation_config.json'
        with reading(sim_path):
            self.sim_config = read_json(sim_path) if sim_path.exists() else {}
            run = dict(self.sim_config.get('run', {}))
            dt = float(run['dt']) if run.get('dt') is not None else None
            self.t_sim = float(run.get('tstop', 0.0))
        self.chunk_edges = chunk_edges
        types = _read_types(types_path)
        if not all('area' in r and 'population' in r for r in types.values()):
            raise DamagedFileError(types_path, "no 'area'/'population' columns of a mam_pynn export")
        self.areas, self.structure, self.sizes, self.v_init = [], {}, {}, {}
        pops, neuron = [], None
        with reading(nodes_path), h5py.File(nodes_path, 'r') as f:
            for area in f['nodes']:
                g = f['nodes'][area]
                tid = g['node_type_id'][:]
                self.v_init[area] = g['0/V_m_init'][:] if '0/V_m_init' in g else None
                cuts = np.flatnonzero(np.diff(tid)) + 1
                starts = np.concatenate([[0], cuts])
                ends = np.concatenate([cuts, [tid.size]])
                self.structure[area] = []
                for s, e in zip(starts, ends):
                    row = types.get(int(tid[s]))
                    if row is None or row['area'] != area:
                        raise DamagedFileError(types_path, f"node type {tid[s]} of {nodes_path.name} "
                                               f"is {'missing' if row is None else 'of area ' + row['area']}"
                                               f", not of area {area}")
                    params_path = models_dir / row['dynamics_params']
                    with reading(params_path):
                        params = read_json(params_path)
                        neuron = neuron or {k: float(params[k]) for k in _NEST_CELL_KEYS}
                        i_e = float(params.get('I_e', 0.0))
                    pop = row['population']
                    self.structure[area].append(pop)
                    self.sizes[(area, pop)] = int(e - s)
                    pops.append(PopulationSpec(area, pop, int(e - s), i_e))
        meta_path = self.dir / 'mam_export.json'
        with reading(meta_path):
            self.meta = read_json(meta_path) if meta_path.exists() else {}
            order = self.meta.get('areas') or sorted(self.structure)
            self.areas = [str(a) for a in order if a in self.structure]
            if neuron is None:
                raise ValueError(f"{nodes_path} holds no neurons")
            nparams = dict(self.meta.get('params', {}).get('neuron_params', {}))
            v0 = (float(nparams.get('V0_mean', neuron['E_L'])), float(nparams.get('V0_sd', 0.0)))
            if dt is None and self.meta.get('dt_ms') is not None:
                dt = float(self.meta['dt_ms'])
        self.offsets = {a: dict(zip(self.structure[a], np.cumsum(
            [0] + [self.sizes[(a, p)] for p in self.structure[a]])[:-1].tolist())) for a in self.areas}
        if dt is None:
            raise ValueError(f"{self.dir}: neither simulation_config.json (run.dt) nor mam_export.json "
                             f"(dt_ms) gives the resolution the delays were drawn for")
        self.plan = NetworkPlan(areas=self.areas, structure={a: self.structure[a] for a in self.areas},
                                neuron_params=neuron, v0_mean=v0[0], v0_sd=v0[1], dt=dt,
                                populations=[p for a in self.areas for p in pops if p.area == a])
        self.plan.poisson = self._read_generators(models_dir, PoissonSpec)
        self.n_edges()   # every edge file opens and has its datasets: checked before any run

    def _read_generators(self, models_dir, PoissonSpec) -> list:
        """poisson_generator nodes and their (one weight, one delay) edges -> Poisson inputs."""
        ext = [n for n in self.config['networks']['nodes'] if Path(n['nodes_file']).name == 'external_nodes.h5']
        if not ext:
            return []
        types = _read_types(_resolve(self.config, ext[0]['node_types_file']))
        if any(r.get('model_template') != 'nest:poisson_generator' for r in types.values()):
            raise NotImplementedError("external inputs as virtual nodes with spike trains "
                                      "(external='spikes') are not loaded back; export with "
                                      "external='poisson_generator'")
        out = []
        ext_path = _resolve(self.config, ext[0]['nodes_file'])
        with reading(ext_path), h5py.File(ext_path, 'r') as f:
            tid = f['nodes/external/node_type_id'][:]
        edges = next((e for e in self.config['networks']['edges']
                      if Path(e['edges_file']).name == 'external_edges.h5'), None)
        if edges is None:
            raise ValueError(f"{self.dir}/circuit_config.json lists external_nodes.h5 but not "
                             f"external_edges.h5: the circuit is incomplete")
        edges_path = _resolve(self.config, edges['edges_file'])
        with reading(edges_path), h5py.File(edges_path, 'r') as f:
            for name in f['edges']:
                g = f['edges'][name]
                area = g['target_node_id'].attrs['node_population']
                area = area.decode() if isinstance(area, bytes) else area
                src, tgt = g['source_node_id'][:], g['target_node_id'][:]
                w, d = g['0/syn_weight'][:], g['0/delay'][:]
                for node in np.unique(src):
                    sel = src == node
                    row = types[int(tid[node])]
                    pop = row['target_pop']
                    first = self.offsets[area][pop]
                    ids = np.sort(tgt[sel]) - first
                    if not np.array_equal(ids, np.arange(self.sizes[(area, pop)])):
                        raise ValueError(f"generator node {node} does not drive every neuron of {area}/{pop}")
                    rate_path = models_dir / row['dynamics_params']
                    with reading(rate_path):
                        rate = read_json(rate_path)['rate']
                    out.append(PoissonSpec((area, pop), float(rate), float(w[sel][0]), float(d[sel][0]),
                                           row.get('origin', 'external')))
        return out

    def _pop_of(self, area: str, local_ids: np.ndarray) -> np.ndarray:
        bounds = np.array([self.offsets[area][p] for p in self.structure[area]])
        return np.searchsorted(bounds, local_ids, side='right') - 1

    def iter_edges(self):
        """Yield (source key, target key, source index, target index, weight pA, delay ms)
        per population pair and chunk; indices are positions within the populations."""
        for path in self.edge_files():
            yield from self._iter_file_edges(path)

    def n_edges(self) -> int:
        """Edges between areas, from the files' shapes (nothing read)."""
        total = 0
        for path in self.edge_files():
            with reading(path), h5py.File(path, 'r') as f:
                for g in f['edges'].values():
                    n = g['target_node_id'].shape[0]
                    if any(g[k].shape != (n,) for k in ('source_node_id', '0/syn_weight', '0/delay')):
                        raise ValueError(f"{path}: the datasets of {g.name} differ in length")
                    total += n
        return total

    def edge_files(self) -> list[Path]:
        """The circuit's files of edges between areas (all but the external inputs')."""
        return _area_edge_files(self.config)

    def _iter_file_edges(self, path: Path):
        with reading(path), h5py.File(path, 'r') as f:
            for name in f['edges']:
                g = f['edges'][name]
                sa = g['source_node_id'].attrs['node_population']
                ta = g['target_node_id'].attrs['node_population']
                sa, ta = (x.decode() if isinstance(x, bytes) else x for x in (sa, ta))
                if sa not in self.offsets or ta not in self.offsets:
                    continue
                n = g['source_node_id'].shape[0]
                for a in range(0, n, self.chunk_edges):
                    sl = slice(a, min(n, a + self.chunk_edges))
                    src = g['source_node_id'][sl].astype(np.int64)
                    tgt = g['target_node_id'][sl].astype(np.int64)
                    w, d = g['0/syn_weight'][sl], g['0/delay'][sl]
                    sp, tp = self._pop_of(sa, src), self._pop_of(ta, tgt)
                    key = sp * 64 + tp
                    order = np.argsort(key, kind='stable')
                    key = key[order]
                    cuts = np.flatnonzero(np.diff(key)) + 1
                    for s, e in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [key.size]])):
                        idx = order[s:e]
                        spop = self.structure[sa][sp[idx[0]]]
                        tpop = self.structure[ta][tp[idx[0]]]
                        yield ((sa, spop), (ta, tpop), src[idx] - self.offsets[sa][spop],
                               tgt[idx] - self.offsets[ta][tpop], w[idx], d[idx])

    def connectivity(self) -> dict:
        """{(target key, source key): {'n', 'w_mean', 'w_sd', 'd_mean', 'd_sd'}} of the edges."""
        acc = {}
        for s, t, _, _, w, d in self.iter_edges():
            a = acc.setdefault((t, s), np.zeros(5))
            w, d = w.astype(np.float64), d.astype(np.float64)
            a += [w.size, w.sum(), (w * w).sum(), d.sum(), (d * d).sum()]
        return {k: _moments(v) for k, v in acc.items()}


def _moments(a) -> dict:
    n = a[0]
    wm, dm = a[1] / n, a[3] / n
    return {'n': int(n), 'w_mean': wm, 'w_sd': float(np.sqrt(max(a[2] / n - wm * wm, 0))),
            'd_mean': dm, 'd_sd': float(np.sqrt(max(a[4] / n - dm * dm, 0)))}


def load_sonata(circuit_dir, chunk_edges: int = 1_000_000) -> SonataCircuit:
    """Read a circuit written by :func:`export_sonata` (plan + explicit edges)."""
    return SonataCircuit(circuit_dir, chunk_edges)
