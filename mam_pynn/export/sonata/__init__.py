"""SONATA export of the multi-area model, and the way back, one step per module:
``writer`` (nodes, edges of one area pair, inputs), ``index`` (index groups),
``workers`` (edges in parallel), ``configs``, ``export`` (:func:`export_sonata`),
``loader`` (:func:`load_sonata`) and ``simulator`` (:func:`simulate_sonata`);
``_files`` holds the low-level writing they share.

Layout written by :func:`export_sonata` (see exports/README.md for the full mapping)::

    circuit_config.json  simulation_config.json  node_sets.json  mam_export.json
    bmtk_config.json            the same for bmtk (which resolves paths differently)
    network/nodes.h5            one node population per simulated area (node ids local to it)
    network/node_types.csv      one node type per (area, population): nest:iaf_psc_exp + JSON
    network/edges_to_<T>.h5     per target area T: one edge population '<source>_to_<T>'
                                per source area (written by parallel processes, see workers)
    network/edge_types_to_<T>.csv  its edge types: one per (source population, target population)
    network/external_*.{h5,csv} Poisson drive and replaced areas (see ``external``)
    components/point_neuron_models/*.json, components/synaptic_models/static_synapse.json
    inputs/external_spikes.h5   pre-drawn Poisson spike trains (``external='spikes'`` only)

Edges follow the network's statistics (upstream's NEST rules): a fixed total number per
population pair with sources and targets drawn uniformly with replacement, weights
N(W, W_sd) redrawn until their sign is that of the source (excitatory >= 0, inhibitory
<= 0, cortico-cortical >= 0), delays N(d, delay_rel d) redrawn below dt. They are drawn
target block by target block (first the number of synapses per target neuron, as a
multinomial, then the sources), so each block comes out sorted by target, and written
in chunks into preallocated datasets: memory stays bounded by ``chunk_edges`` (per
process). The source_to_target index is built by a bucket sort over temporary files of
packed (source, edge id) keys, also in bounded memory. Every area pair has its own random
stream, so the circuit does not depend on the number of processes.
"""
from ._files import CELL_TEMPLATE, SYNAPSE_TEMPLATE
from .export import export_sonata
from .loader import SonataCircuit, edge_files, load_sonata
from .simulator import MAX_EDGES_FROM_LIST, connect_edges, simulate_sonata
from .workers import default_workers, edge_types_file_name, edges_file_name
from .writer import MAX_INPUT_SPIKES, nest_cell_params

__all__ = ['CELL_TEMPLATE', 'SYNAPSE_TEMPLATE', 'export_sonata', 'SonataCircuit', 'edge_files',
           'load_sonata', 'MAX_EDGES_FROM_LIST', 'connect_edges', 'simulate_sonata',
           'default_workers', 'edge_types_file_name', 'edges_file_name', 'MAX_INPUT_SPIKES',
           'nest_cell_params']
