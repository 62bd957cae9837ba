"""analyze_run end to end on a synthetic run: every file, sane values, caching."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mam_pynn.analysis import analyze_run
from mam_pynn.analysis.plots import DETAIL_AREAS
from mam_pynn.analysis.synthetic import POPULATION_RATE

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
            assert s['lvr_upstream'] <= s['lvr'] + 1e-12
            assert s['synchrony'] > 0 and -0.1 < s['corrcoef'] < 0.2
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
