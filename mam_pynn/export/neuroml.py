"""NeuroML 2 export of the multi-area model (libNeuroML), plus a LEMS simulation file.

The circuit is the one :func:`mam_pynn.export.sonata.export_sonata` draws with the same
seed (it is written to ``<out>/sonata`` first and translated edge by edge), so the two
exports of one configuration hold the same synapses. Mapping (PyNN's NeuroML components,
PyNN units: nA, nF, mV, ms):

- cells: one ``IF_curr_exp`` per (area, population) (the DC drive is its ``i_offset``);
- synapses: ``ExpCurrSynapse`` ``syn_e`` (tau_syn_ex) and ``syn_i`` (tau_syn_in);
  inhibitory connections carry negative weights;
- populations ``<area>_<pop>`` (areas starting with a digit get an ``A`` prefix: NmlIds
  are ``[a-zA-Z_][a-zA-Z0-9_]*``, no '-');
- projections per population pair with explicit ``connectionWD``s (weight nA, delay ms);
- Poisson drive and replaced areas: ``SpikeSourcePoisson`` populations, one source per
  target neuron, connected one to one.

XML for small networks (pynml/jNeuroML validate it); ``fmt='hdf5'`` writes the network
as NeuroML HDF5 (libNeuroML's format, several times smaller than XML). libNeuroML holds
one Python object per connection, so the export refuses networks above
``max_connections`` (SONATA is the exchange format for large ones).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from ..io import make_dir
from ..units import if_curr_exp_params, pa_to_na


def _log(msg: str) -> None:
    print(f"[neuroml] {msg}", file=sys.stderr, flush=True)


def nml_id(area: str, pop: str | None = None) -> str:
    """A valid NmlId for an area (and population)."""
    a = area if area[:1].isalpha() or area[:1] == '_' else 'A' + area
    s = a if pop is None else f"{a}_{pop}"
    bad = [c for c in s if not (c.isalnum() or c == '_')]
    if bad:
        raise ValueError(f"cannot make a NeuroML id of {s!r} (characters {bad})")
    return s


def export_neuroml(M, sim_params: dict | None, out_dir, seed: int | None = None, fmt: str = 'auto',
                   max_xml_connections: int = 2_000_000, record_spikes: bool = True,
                   overwrite: bool = False, max_connections: int = 5_000_000) -> dict:
    """Write ``<out>/MAM.net.nml`` (or ``.net.nml.h5``) and ``<out>/LEMS_MAM.xml``.

    ``fmt``: 'xml', 'hdf5' or 'auto' (XML up to ``max_xml_connections`` connections).
    A finished export in ``out_dir`` (LEMS_MAM.xml, written last) is replaced only with
    ``overwrite=True``. Networks with more than ``max_connections`` connections (synapses
    plus one per neuron and Poisson input) are refused before anything is written: each
    connection is a libNeuroML object of about half a kilobyte. Returns a summary dict.
    """
    import neuroml
    import neuroml.utils  # noqa: F401 - libNeuroML's HDF5 writer uses it without importing it
    from neuroml.writers import NeuroMLHdf5Writer, NeuroMLWriter

    from ._tables import network_tables
    from .sonata import export_sonata, load_sonata

    if fmt not in ('auto', 'xml', 'hdf5'):
        raise ValueError(f"fmt must be 'auto', 'xml' or 'hdf5', got {fmt!r}")
    t0 = time.perf_counter()
    out = Path(out_dir)
    if (out / 'LEMS_MAM.xml').exists() and not overwrite:
        raise FileExistsError(f"{out} already holds a finished NeuroML export (LEMS_MAM.xml); "
                              f"pass overwrite=True (mam export --overwrite) to replace it")
    t = network_tables(M, sim_params, seed)
    planned = int(t.syn.sum()) + sum(t.n[(c.area, c.pop)] for c in t.channels)
    if planned > max_connections:
        raise ValueError(f"the NeuroML export builds one Python object per connection: {planned:,} "
                         f"connections > max_connections={max_connections:,}; export a smaller "
                         f"network (areas_simulated, N/K_scaling) or use `mam export sonata`")
    make_dir(out)
    (out / 'LEMS_MAM.xml').unlink(missing_ok=True)   # written again when complete
    for old_net in out.glob('MAM.net.nml*'):           # of an earlier export, maybe the other format
        old_net.unlink()
    summary_sonata = export_sonata(M, sim_params, out / 'sonata', seed=seed, overwrite=True)
    circuit = load_sonata(out / 'sonata')
    plan = circuit.plan
    n_conn = summary_sonata['edges'] + sum(circuit.sizes[p.target] for p in plan.poisson)
    if fmt == 'auto':
        fmt = 'xml' if n_conn <= max_xml_connections else 'hdf5'

    doc = neuroml.NeuroMLDocument(id='MAM', notes=f"multi-area model, label {getattr(M, 'label', '')}")
    nrn = plan.neuron_params
    doc.exp_curr_synapses.append(neuroml.ExpCurrSynapse(id='syn_e', tau_syn=float(nrn['tau_syn_ex'])))
    doc.exp_curr_synapses.append(neuroml.ExpCurrSynapse(id='syn_i', tau_syn=float(nrn['tau_syn_in'])))
    net = neuroml.Network(id='MAM_network')
    doc.networks.append(net)
    for spec in plan.populations:
        p = if_curr_exp_params({**nrn, 'I_e': spec.i_offset_pa})
        cell = neuroml.IF_curr_exp(id=nml_id(spec.area, spec.pop) + '_cell', v_init=plan.v0_mean,
                                   cm=p['cm'], i_offset=p['i_offset'], tau_syn_E=p['tau_syn_E'],
                                   tau_syn_I=p['tau_syn_I'], tau_m=p['tau_m'], tau_refrac=p['tau_refrac'],
                                   v_reset=p['v_reset'], v_rest=p['v_rest'], v_thresh=p['v_thresh'])
        doc.IF_curr_exp.append(cell)
        net.populations.append(neuroml.Population(id=nml_id(spec.area, spec.pop), component=cell.id,
                                                  size=spec.size))

    def connections(proj, pre, post, si, ti, w_na, d_ms, first=0):
        for k, (i, j, w, d) in enumerate(zip(si.tolist(), ti.tolist(), w_na.tolist(), d_ms.tolist()), first):
            proj.connection_wds.append(neuroml.ConnectionWD(
                id=k, pre_cell_id=f"../{pre}[{i}]", post_cell_id=f"../{post}[{j}]",
                weight=w, delay=f"{d:.6g}ms"))

    # Poisson drive and replaced areas
    T = circuit.t_sim
    for k, ps in enumerate(plan.poisson):
        src_id = f"poisson_{k}"
        doc.SpikeSourcePoisson.append(neuroml.SpikeSourcePoisson(
            id=src_id, start='0ms', duration=f'{T:g}ms', rate=f'{ps.rate_hz:.9g}Hz'))
        pop_id = f"{src_id}_to_{nml_id(*ps.target)}"
        size = circuit.sizes[ps.target]
        net.populations.append(neuroml.Population(id=pop_id, component=src_id, size=size))
        proj = neuroml.Projection(id=f"proj_{pop_id}", presynaptic_population=pop_id,
                                  postsynaptic_population=nml_id(*ps.target), synapse='syn_e')
        idx = np.arange(size)
        connections(proj, pop_id, nml_id(*ps.target), idx, idx, np.full(size, pa_to_na(ps.weight_pa)),
                    np.full(size, float(ps.delay_ms)))
        net.projections.append(proj)

    # explicit synapses, pair by pair (chunks of one pair continue the same projection)
    projs = {}
    for s, t, si, ti, w, d in circuit.iter_edges():
        key = (s, t)
        if key not in projs:
            pre, post = nml_id(*s), nml_id(*t)
            projs[key] = neuroml.Projection(id=f"proj_{pre}_to_{post}", presynaptic_population=pre,
                                            postsynaptic_population=post,
                                            synapse='syn_i' if w[0] < 0 else 'syn_e')
            net.projections.append(projs[key])
        proj = projs[key]
        connections(proj, nml_id(*s), nml_id(*t), si, ti, pa_to_na(w.astype(np.float64)),
                    d.astype(np.float64), first=len(proj.connection_wds))

    if fmt == 'xml':
        net_file = out / 'MAM.net.nml'
        tmp = net_file.with_name('.' + net_file.name)
        NeuroMLWriter.write(doc, str(tmp))
    else:
        net_file = out / 'MAM.net.nml.h5'
        tmp = net_file.with_name('.' + net_file.name)
        NeuroMLHdf5Writer.write(doc, str(tmp))
    os.replace(tmp, net_file)
    lems = write_lems(circuit, net_file, out, record_spikes=record_spikes)
    elapsed = time.perf_counter() - t0
    summary = {'format': f'NeuroML2 ({fmt})', 'network_file': str(net_file), 'lems_file': str(lems),
               'neurons': plan.n_neurons, 'synapses': summary_sonata['edges'],
               'poisson_connections': n_conn - summary_sonata['edges'], 'seconds': elapsed,
               'bytes': net_file.stat().st_size}
    _log(f"done: {plan.n_neurons} neurons, {n_conn} connections, {summary['bytes'] / 1e6:.1f} MB "
         f"({fmt}) in {elapsed:.1f} s -> {net_file}")
    return summary


def write_lems(circuit, net_file: Path, out: Path, record_spikes: bool = True) -> Path:
    """LEMS simulation of the network: duration, dt, spikes of every neuron per area
    (ids local to the area, as in our SONATA spike files)."""
    from pyneuroml.lems import LEMSSimulation
    sim = LEMSSimulation('MAM_sim', duration=circuit.t_sim, dt=circuit.plan.dt,
                         target='MAM_network', simulation_seed=1)
    sim.include_lems_file('PyNN.xml', include_included=False)   # IF_curr_exp & co (core types)
    sim.include_neuroml2_file(net_file.name, include_included=False)
    if record_spikes:
        for area in circuit.areas:
            name = f"spikes_{nml_id(area)}"
            sim.create_event_output_file(name, f"{name}.spikes", format='ID_TIME')
            for pop in circuit.structure[area]:
                first = circuit.offsets[area][pop]
                for i in range(circuit.sizes[(area, pop)]):
                    sim.add_selection_to_event_output_file(name, first + i, f"{nml_id(area, pop)}[{i}]", 'spike')
    path = out / 'LEMS_MAM.xml'
    tmp = out / '.LEMS_MAM.xml'
    sim.save_to_file(str(tmp))
    os.replace(tmp, path)
    return path


def read_lems_spikes(out_dir, circuit) -> dict:
    """{area: (node ids, times ms)} from the ID_TIME files a LEMS run wrote (times in s)."""
    res = {}
    for area in circuit.areas:
        path = Path(out_dir) / f"spikes_{nml_id(area)}.spikes"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: the LEMS run did not write its spikes")
        data = np.loadtxt(path, ndmin=2) if path.stat().st_size else np.zeros((0, 2))
        res[area] = (data[:, 0].astype(np.int64), data[:, 1] * 1000.0)
    return res
