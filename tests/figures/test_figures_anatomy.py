"""Schmidt et al. 2018 (Brain Struct Funct) figures: their data against independent
computations and the numbers printed in the papers (figures/README.md lists them)."""
import numpy as np
import pytest

from conftest import load
from mam_pynn.figures.anatomy import FIGURES


def test_every_figure_is_written_as_png_pdf_and_data(drawn):
    for name in FIGURES:
        for ext in ('png', 'pdf', 'json'):
            f = drawn['out'] / 'anatomy' / f'{name}.{ext}'
            assert f.is_file() and f.stat().st_size > 1000, f


def test_connection_probabilities_equal_the_independent_formula(drawn, model):
    """p = 1 - (1 - 1/(N_pre N_post))^S per population pair, recomputed here in a loop."""
    d = load(drawn, 'anatomy', 'fig6_connectivity_measures')
    p = np.array(d['connection_probability'], float)
    n = len(model.N_vec)
    syn = np.asarray(model.syn_matrix, float)
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, n, size=(300, 2)):
        pairs = model.N_vec[i] * model.N_vec[j]
        expected = 1. - (1. - 1. / pairs) ** syn[i, j]
        # the naive power loses ~1e-8 of 1 - 1/(N N) ~ 1 - 1e-9 in float64 (the figure uses
        # log1p/expm1): equal to 1e-6
        assert p[i, j] == pytest.approx(expected, rel=1e-6, abs=1e-15)
    assert d['populations'] == list(model.structure_vec)
    np.testing.assert_allclose(np.array(d['indegree'], float), np.asarray(model.K_matrix)[:, :n])


def test_area_outdegrees_follow_from_the_indegrees(drawn, model):
    """D[t, s] = sum over the populations of t and s of K * N_target / N_source."""
    d = load(drawn, 'anatomy', 'fig7_community_structure')
    D = np.array(d['outdegree'], float)
    for t in ('V1', 'V4', 'FEF', 'TH'):
        for s in ('V1', 'V2', '46'):
            total = sum(model.K[t][tp][s][sp] * model.N[t][tp]
                        for tp in model.structure[t] for sp in model.structure[s])
            expected = total / model.N[s]['total']
            assert D[d['areas'].index(t), d['areas'].index(s)] == pytest.approx(expected, rel=1e-9)
    # every area is in exactly one community
    assert sorted(a for c in d['communities'] for a in c) == sorted(model.area_list)
    assert d['method'].startswith('map equation (infomap')


def test_sln_fit_equals_the_published_constants(drawn):
    """Upstream's published probit fit: intercept -0.1516142, slope -1.5343200."""
    fit = load(drawn, 'anatomy', 'fig5_cc_laminar_pattern')['fit']
    assert round(fit['intercept'], 7) == -0.1516142
    assert round(fit['slope'], 6) == -1.534320


def test_the_papers_counts(model):
    """32 areas, 254 populations, 4.13 million neurons, 24.1 G synapses (K' model)."""
    n = len(model.N_vec)
    assert len(model.area_list) == 32 and n == 254
    assert round(float(np.sum(model.N_vec)) / 1e6, 2) == 4.13
    assert round(float(np.asarray(model.syn_matrix)[:, :n].sum()) / 1e9, 1) == 24.1


def test_fln_decays_with_distance(drawn):
    d = load(drawn, 'anatomy', 'fig4_connectivity')
    # independent log-linear least squares on the plotted points
    x, y = np.array(d['distance_mm']), np.log(np.array(d['fln_measured']))
    A = np.vstack([x, np.ones_like(x)]).T
    slope, _ = np.linalg.lstsq(A, y, rcond=None)[0]
    assert d['fln_distance_fit']['decay_per_mm'] == pytest.approx(-slope, rel=1e-9)
    assert 0.05 < -slope < 0.3      # the exponential distance rule: lambda of order 0.1 / mm
