"""mam validate: the statistics, the multiple-comparison control, the report, bad input."""
import json

import numpy as np
import pytest
import yaml

from mam_pynn import validate as V


def synthetic_stats(rng, n_seeds=5, pops=('V1-23E', 'V1-23I', 'V1-4E', 'V1-4I'), scale=1.0, n=200,
                    spread=1.0):
    """Per-run statistics as run_statistics returns them: a per-seed network effect plus
    per-neuron scatter (so seeds, not neurons, are the independent units). ``spread``
    widens the per-neuron scatter (CV of the rates, SD of CV ISI and LvR) at the same means."""
    runs = []
    for _ in range(n_seeds):
        run = {}
        for k, pop in enumerate(pops):
            mean_rate = (3. + 2 * k) * rng.lognormal(0., 0.05) * scale
            shape = 2. / spread ** 2
            rates = rng.gamma(shape, mean_rate / shape, n)
            run[pop] = {'rate': rates, 'cv_isi': rng.normal(0.8, 0.1 * spread, n),
                        'lvr': rng.normal(0.9, 0.1 * spread, n)}
        runs.append(run)
    return runs


def test_holm_and_bh_match_statsmodels():
    from statsmodels.stats.multitest import multipletests
    p = np.random.default_rng(0).uniform(0, 0.2, 30)
    np.testing.assert_allclose(V.holm(p), multipletests(p, method='holm')[1])
    np.testing.assert_allclose(V.benjamini_hochberg(p), multipletests(p, method='fdr_bh')[1])
    with_nan = np.array([0.01, np.nan, 0.04])
    assert np.isnan(V.holm(with_nan)[1]) and V.holm(with_nan)[0] == pytest.approx(0.02)
    bh = V.benjamini_hochberg(with_nan)
    assert np.isnan(bh[1]) and bh[[0, 2]] == pytest.approx([0.02, 0.04])


def test_ks_distance_matches_scipy():
    from scipy import stats
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, 300), rng.normal(0.3, 1.2, 200)
    assert V.ks_distance(x, y) == pytest.approx(stats.ks_2samp(x, y).statistic)


def test_mean_ci_and_welch():
    m, lo, hi = V.mean_ci([1., 2., 3., 4.])
    assert m == 2.5 and lo < 2.5 < hi and hi - 2.5 == pytest.approx(2.5 - lo)
    assert V.welch_p([1., 1.], [1., 1.]) == 1.0
    assert V.welch_p([1., 2., 3.], [10., 11., 12.]) < 0.01
    assert np.isnan(V.welch_p([1.], [2., 3.]))


def test_permutation_ks_respects_seed_variability():
    """Runs of one process with a strong per-seed effect: pooled per-neuron KS would
    reject, the run-level permutation must not."""
    rng = np.random.default_rng(2)
    runs = [rng.normal(rng.normal(0, 1), 0.2, 500) for _ in range(10)]
    d, p = V.ks_permutation(runs[:5], runs[5:], rng)
    assert p > 0.05 and 0 < d <= 1


def test_smallest_permutation_p_and_what_bh_needs():
    """5 seeds per backend: 252 splits, mirror images equal, so p >= 2/252 and BH at
    0.05/3 over 12 comparisons needs 6 of them at that minimum."""
    rng = np.random.default_rng(6)
    far = [rng.normal(0, 1, 100) for _ in range(5)], [rng.normal(10, 1, 100) for _ in range(5)]
    assert V.ks_permutation(*far, rng)[1] == V.ks_min_p(5, 5) == pytest.approx(2 / 252)
    assert V.ks_min_p(8, 8) == pytest.approx(1 / (V.MAX_PERMUTATIONS + 1))
    report = V.compare({'a': synthetic_stats(rng), 'b': synthetic_stats(rng)})
    assert report['ks_min_p'] == pytest.approx(2 / 252) and report['bh_min_rejections'] == 6
    assert V.bh_min_rejections(2 / 252, 144, 0.05 / 3) == 69        # the committed V1+V2 report
    assert 'at least 6 of the 12' in V.distribution_power_warning(report)
    assert 'cannot reject any' in V.distribution_power_warning(dict(report, bh_min_rejections=13))
    assert 'at least 6 of 12' in V.report_markdown(V._plain(report))


def test_compare_detects_wider_distributions_at_equal_means():
    """Per-neuron scatter doubled in every population, same means, 8 seeds per backend
    (smallest p 1/2001): the distribution family must reject, and no warning is due."""
    rng = np.random.default_rng(7)
    report = V.compare({'a': synthetic_stats(rng, n_seeds=8, n=50),
                        'b': synthetic_stats(rng, n_seeds=8, n=50, spread=2.)})
    assert report['bh_min_rejections'] == 1 and V.distribution_power_warning(report) is None
    assert report['n_distributions_differ'] > 0 and not report['agree']


def test_compare_agrees_for_the_same_process():
    rng = np.random.default_rng(3)
    report = V.compare({'a': synthetic_stats(rng), 'b': synthetic_stats(rng)})
    assert report['agree'] and report['n_tests'] == 4 * 3


def test_compare_detects_a_systematic_difference():
    """Rates 15 % higher everywhere (a systematic shift; NEURON without the charge correction
    gives more, see validation/v1_v2_neuron_uncorrected)."""
    rng = np.random.default_rng(4)
    report = V.compare({'a': synthetic_stats(rng), 'b': synthetic_stats(rng, scale=1.15)})
    assert not report['agree']
    flagged = [t['metric'] for t in report['overall'] if t['differ']]
    assert flagged == ['rate'], report['overall']


def test_report_outputs(tmp_path):
    rng = np.random.default_rng(5)
    report = V._plain(V.compare({'nest': synthetic_stats(rng), 'brian2': synthetic_stats(rng)}))
    md = V.report_markdown(report)
    assert 'the simulators agree' in md and '| V1-23E |' in md and 'nest–brian2' in md
    V.report_figure(report, tmp_path / 'r.png')
    assert (tmp_path / 'r.png').read_bytes()[:4] == b'\x89PNG'
    json.dumps(report)    # JSON-able (NaN became None)


def test_run_statistics_from_a_run_directory(tmp_path):
    import h5py
    cfg = {'network_params': {'neuron_params': {'single_neuron_dict': {'t_ref': 2.0}}},
           'populations': {'V1': {'23E': {'first_id': 0, 'size': 2}, '23I': {'first_id': 2, 'size': 1}}}}
    (tmp_path / 'config.yaml').write_text(yaml.safe_dump(cfg))
    (tmp_path / 'summary.json').write_text(json.dumps({'t_sim_ms': 1000.}))
    # neuron 0: regular, 10 ms apart from 300 ms on; neuron 1 silent; neuron 2 (23I): 3 spikes
    t0 = np.arange(300., 1000., 10.)
    ids = np.concatenate([np.zeros(len(t0)), [2, 2, 2, 2]]).astype(np.uint64)
    times = np.concatenate([t0, [100., 400., 500., 700.]])
    with h5py.File(tmp_path / 'spikes.h5', 'w') as f:
        f['spikes/V1/node_ids'] = ids
        f['spikes/V1/timestamps'] = times
    st = V.run_statistics(tmp_path, t_min_ms=250.)
    assert st['_meta']['t_min_ms'] == 250.
    np.testing.assert_allclose(st['V1-23E']['rate'], [len(t0) / 0.75, 0.])
    assert st['V1-23E']['cv_isi'][0] == pytest.approx(0.) and np.isnan(st['V1-23E']['cv_isi'][1])
    assert st['V1-23I']['rate'][0] == pytest.approx(3 / 0.75)     # the spike at 100 ms is transient


def test_a_reused_run_must_match_the_configuration(tmp_path):
    """A finished run directory is reused only when its config.yaml holds this backend and
    the resolved parameters of this seed; otherwise the first differing key is named."""
    from mam_pynn.params import network_defaults, resolve, sim_defaults
    cfg = {'network_params': {'N_scaling': 0.01, 'K_scaling': 0.01}, 'sim_params': {'t_sim': 500.}}
    run = tmp_path / 'nest-seed3'
    run.mkdir()
    stored = {'backend': 'nest', 'network_params': resolve(cfg['network_params'], network_defaults()),
              'sim_params': resolve({'t_sim': 500., 'rng_seed': 3}, sim_defaults())}
    (run / 'config.yaml').write_text(yaml.safe_dump(stored))
    (run / 'summary.json').write_text('{}')
    assert V.run_once(cfg, 'nest', 3, run, progress=False) == run      # reused, nothing ran
    with pytest.raises(ValueError, match=r'sim_params\.rng_seed'):
        V.run_once(cfg, 'nest', 4, run, progress=False)
    with pytest.raises(ValueError, match=r'sim_params\.t_sim'):
        V.run_once(dict(cfg, sim_params={'t_sim': 1000.}), 'nest', 3, run, progress=False)
    with pytest.raises(ValueError, match=r'network_params\.K_scaling'):
        V.run_once(dict(cfg, network_params={'N_scaling': 0.01, 'K_scaling': 0.02}), 'nest', 3, run,
                   progress=False)
    with pytest.raises(ValueError, match='difference: backend'):
        V.run_once(cfg, 'brian2', 3, run, progress=False)
    assert (run / 'summary.json').exists()                              # never overwritten


def test_bad_input_is_refused_before_running(tmp_path):
    with pytest.raises(ValueError, match='unknown backend'):
        V.validate({}, backends=['nest', 'nrn'], seeds=2, out_dir=tmp_path / 'a')
    with pytest.raises(ValueError, match='at least 2 distinct backends'):
        V.validate({}, backends=['nest'], seeds=2, out_dir=tmp_path / 'a')
    with pytest.raises(ValueError, match='at least 2 seeds'):
        V.validate({}, backends=['nest', 'brian2'], seeds=1, out_dir=tmp_path / 'a')
    with pytest.raises(KeyError, match='unknown config section'):
        V.validate({'sim_parms': {}}, backends=['nest', 'brian2'], seeds=2, out_dir=tmp_path / 'a')
    with pytest.raises(KeyError, match='t_simm'):
        V.validate({'sim_params': {'t_simm': 5.}}, backends=['nest', 'brian2'], seeds=2, out_dir=tmp_path / 'a')
    (tmp_path / 'done').mkdir()
    (tmp_path / 'done' / 'report.json').write_text('{}')
    with pytest.raises(FileExistsError):
        V.validate({}, backends=['nest', 'brian2'], seeds=2, out_dir=tmp_path / 'done')
    assert not (tmp_path / 'a').exists()
