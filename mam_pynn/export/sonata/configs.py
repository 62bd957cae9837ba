"""The circuit, simulation and node-set configs of an exported circuit, for SONATA
readers (libsonata, NEST's SonataNetwork) and for bmtk, which resolves paths its own way.
"""
from __future__ import annotations

from pathlib import Path

from .._tables import NetworkTables
from ._files import _write_json
from .workers import edge_types_file_name, edges_file_name


# --------------------------------------------------------------------------- configs

def _write_configs(t: NetworkTables, out: Path, inputs: dict, edge_pops_into: dict[str, list[str]],
                   external_edge_pops: list[str], mode: str) -> None:
    # 'populations' (SONATA circuit config 2.x) is what libsonata lists populations from
    def pops(names, kind):
        return {n: {'type': kind} for n in names}
    nodes = [{'nodes_file': '$NETWORK_DIR/nodes.h5', 'node_types_file': '$NETWORK_DIR/node_types.csv',
              'populations': pops(t.areas, 'point_neuron')}]
    edges = [{'edges_file': f'$NETWORK_DIR/{edges_file_name(ta)}',
              'edge_types_file': f'$NETWORK_DIR/{edge_types_file_name(ta)}',
              'populations': pops(edge_pops, 'chemical')} for ta, edge_pops in edge_pops_into.items()]
    has_external = bool(external_edge_pops)
    if has_external:
        kind = 'virtual' if mode == 'spikes' else 'point_neuron'
        nodes.append({'nodes_file': '$NETWORK_DIR/external_nodes.h5',
                      'node_types_file': '$NETWORK_DIR/external_node_types.csv',
                      'populations': pops(['external'], kind)})
        edges.append({'edges_file': '$NETWORK_DIR/external_edges.h5',
                      'edge_types_file': '$NETWORK_DIR/external_edge_types.csv',
                      'populations': pops(external_edge_pops, 'chemical')})
    circuit = {
        'manifest': {'$BASE_DIR': '.', '$NETWORK_DIR': '$BASE_DIR/network',
                     '$COMPONENTS_DIR': '$BASE_DIR/components'},
        'components': {'point_neuron_models_dir': '$COMPONENTS_DIR/point_neuron_models',
                       'synaptic_models_dir': '$COMPONENTS_DIR/synaptic_models'},
        'networks': {'nodes': nodes, 'edges': edges},
    }
    _write_json(out / 'circuit_config.json', circuit)
    node_sets = {'cortex': {'population': list(t.areas)}}
    node_sets.update({a: {'population': a} for a in t.areas})
    if has_external:
        node_sets['external'] = {'population': 'external'}
    _write_json(out / 'node_sets.json', node_sets)
    simulation = {
        'manifest': {'$BASE_DIR': '.', '$OUTPUT_DIR': '$BASE_DIR/output'},
        'target_simulator': 'NEST',
        'network': '$BASE_DIR/circuit_config.json',
        'node_sets_file': '$BASE_DIR/node_sets.json',
        'run': {'tstart': 0.0, 'tstop': t.t_sim, 'dt': t.dt, 'random_seed': t.seed},
        'conditions': {},
        'inputs': inputs,
        'output': {'output_dir': '$OUTPUT_DIR', 'log_file': 'log.txt', 'spikes_file': 'spikes.h5',
                   'spikes_sort_order': 'by_time', 'overwrite_output_dir': True},
        'reports': {},
    }
    _write_json(out / 'simulation_config.json', simulation)
    # bmtk resolves '.' against the working directory, not the config's; it knows
    # '${configdir}' (which NEST and libsonata do not): one merged config for bmtk
    bmtk = {**simulation, **{k: circuit[k] for k in ('components', 'networks')}}
    bmtk['manifest'] = {**circuit['manifest'], **simulation['manifest'], '$BASE_DIR': '${configdir}'}
    bmtk.pop('network')
    _write_json(out / 'bmtk_config.json', bmtk)
