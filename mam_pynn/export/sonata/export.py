"""export_sonata: the entry point that writes a whole circuit directory.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from ...io import make_dir
from .._tables import network_tables
from ._files import _log, _write_json, _write_types_csv
from .configs import _write_configs
from .workers import _stream, _write_all_edges, default_workers, edge_types_file_name
from .writer import _edge_type_table, _write_external, _write_nodes


# --------------------------------------------------------------------------- entry point

def export_sonata(M, sim_params: dict | None, out_dir, seed: int | None = None,
                  chunk_edges: int = 1_000_000, external: str = 'poisson_generator',
                  workers: int | None = None, overwrite: bool = False) -> dict:
    """Write the network of Model ``M`` (areas of ``sim_params['areas_simulated']``) as SONATA.

    ``external``: 'poisson_generator' (one nest:poisson_generator node per input channel,
    for NEST-based readers: bmtk PointNet, nest.SonataNetwork, our loader) or 'spikes'
    (virtual nodes with pre-drawn spike trains: any SONATA simulator; small networks only).
    The same ``seed`` (default: sim_params['rng_seed']) and ``chunk_edges`` give the same
    circuit, whatever the number of ``workers`` (processes writing edge files in parallel;
    default: the CPUs available; forked on Linux, spawned elsewhere, where a calling script
    needs the usual ``if __name__ == '__main__':`` guard); the edges between two areas do not
    depend on which other areas are exported. A finished export in ``out_dir`` (its
    mam_export.json) is replaced only with ``overwrite=True``. Returns a summary dict (also
    written to mam_export.json).
    """
    if chunk_edges < 1:
        raise ValueError(f"chunk_edges must be positive, got {chunk_edges}")
    if external not in ('poisson_generator', 'spikes'):
        raise ValueError(f"external must be 'poisson_generator' or 'spikes', got {external!r}")
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out = Path(out_dir)
    if (out / 'mam_export.json').exists() and not overwrite:
        raise FileExistsError(f"{out} already holds a finished SONATA export (mam_export.json); "
                              f"pass overwrite=True (mam export --overwrite) to replace it")
    t0 = time.perf_counter()
    t = network_tables(M, sim_params, seed)
    make_dir(out)
    (out / 'mam_export.json').unlink(missing_ok=True)   # written again when complete
    for old in [*(out / 'network').glob('edges*.h5'), *(out / 'network').glob('edge_types*.csv')]:
        old.unlink()   # edge files of an earlier export here
    _write_nodes(t, out, _stream(t.seed, 0))
    _write_json(out / 'components' / 'synaptic_models' / 'static_synapse.json', {})
    et_ids, et_rows = _edge_type_table(t)
    n_total = sum(t.n_edges(ta, sa) for sa in t.areas for ta in t.areas)
    _log(f"{len(t.areas)} areas, {sum(t.area_size(a) for a in t.areas)} neurons, "
         f"{n_total / 1e6:.2f}M edges -> {out} ({min(workers, len(t.areas))} processes)")
    t_edges = time.perf_counter()
    per_file = _write_all_edges(t, out, et_ids, chunk_edges, workers)
    t_edges = time.perf_counter() - t_edges
    counts = {name: n for pops in per_file.values() for name, n in pops.items()}
    for ta in per_file:
        _write_types_csv(out / 'network' / edge_types_file_name(ta), [r for r in et_rows if r['target_area'] == ta])
    inputs = _write_external(t, out, _stream(t.seed, 1), external)
    _write_configs(t, out, inputs, {ta: list(pops) for ta, pops in per_file.items()},
                   [f'external_to_{a}' for a in t.areas] if t.channels else [], external)
    elapsed = time.perf_counter() - t0
    summary = {
        'format': 'SONATA', 'label': getattr(M, 'label', None), 'seed': t.seed,
        'areas': t.areas, 'neurons': int(sum(t.area_size(a) for a in t.areas)),
        'edges': int(n_total), 'edge_populations': counts, 'external': external,
        'channels': [asdict(c) for c in t.channels], 'chunk_edges': chunk_edges,
        't_sim_ms': t.t_sim, 'dt_ms': t.dt, 'seconds': elapsed, 'edge_seconds': t_edges,
        'workers': min(workers, len(per_file) or 1),
        'edges_per_s': n_total / max(t_edges, 1e-9), 'params': M.params,
    }
    _write_json(out / 'mam_export.json', summary)
    _log(f"done: {summary['neurons']} neurons, {n_total} edges in {elapsed:.1f} s "
         f"({summary['edges_per_s'] / 1e6:.1f}M edges/s) -> {out}")
    return summary
