"""Conditional Granger causality and its significant channels (upstream's Fig. 9), checked
on vector autoregressive processes with known coupling: the GC value against the
Kolmogorov-Szego formula for the reduced model's innovation variance, significance on
the coupled direction only, nothing on an uncoupled process."""
import numpy as np
import pytest
from scipy.signal import lfilter

from mam_pynn.analysis import granger as G

A_Y, B_X, C_XY = 0.5, 0.8, 0.5      # y_t = a y_{t-1} + c x_{t-1} + e_y ; x_t = b x_{t-1} + e_x


def coupled(n, rng):
    """x drives y (one step later); z independent; unit innovations."""
    x = lfilter([1.], [1., -B_X], rng.standard_normal(n))
    drive = C_XY * np.r_[0., x[:-1]] + rng.standard_normal(n)
    y = lfilter([1.], [1., -A_Y], drive)
    z = lfilter([1.], [1., -0.6], rng.standard_normal(n))
    return x, y, z


def expected_gc_x_to_y():
    """log(reduced / full innovation variance of y); full = 1 (e_y), reduced = the
    innovation variance of y alone (z is independent), exp(mean over w of log S_yy(w))."""
    w = np.linspace(-np.pi, np.pi, 1 << 16, endpoint=False)
    z = np.exp(-1j * w)
    S = (1. + C_XY ** 2 / np.abs(1 - B_X * z) ** 2) / np.abs(1 - A_Y * z) ** 2
    return np.mean(np.log(S))


N, ORDER = 6000, 15       # shorter and lower than upstream's (100 s, 25) to keep the test fast;
# an untested source's GC is then about its parameters' share, ORDER / N = 0.0025


def test_granger_causality_of_a_coupled_var_process():
    rng = np.random.default_rng(0)
    x, y, z = coupled(N, rng)
    gc, p = G.conditional_granger(10 + y, np.vstack([x, z]), ORDER)
    assert gc[0] == pytest.approx(expected_gc_x_to_y(), rel=0.1)       # 0.370
    assert p[0] < 1e-10
    assert abs(gc[1]) < 0.01 and p[1] > 0.05          # z does not drive y
    gc_back, p_back = G.conditional_granger(x, np.vstack([y, z]), ORDER)
    assert np.all(np.abs(gc_back) < 0.01) and np.all(p_back > 0.05)   # nothing drives x


def test_no_granger_causality_between_independent_processes():
    rng = np.random.default_rng(1)
    series = lfilter([1.], [1., -0.7], rng.standard_normal((4, N)), axis=-1)
    gc, p = G.conditional_granger(series[0], series[1:], ORDER)
    assert np.all(np.abs(gc) < 0.01) and np.all(p > 0.05)


def test_population_granger_follows_upstreams_json_layout():
    rng = np.random.default_rng(2)
    x, y, z = coupled(2000, rng)
    labels = [('V1', '23E'), ('V1', '4E'), ('V2', '5E'), ('TH', '6E')]
    series = np.vstack([y, x, z, rng.standard_normal(2000)])
    k_row = [10., 50., 2., 0.5]                      # TH-6E: K <= 1, not tested
    out = G.population_granger(('V1', '23E'), labels, series, k_row, order=3)
    assert set(out) == {'V1', 'V2', 'TH'} and out['TH'] == {}
    assert set(out['V1']) == {'4E'} and set(out['V2']) == {'5E'}
    gc, p = G.conditional_granger(y, np.vstack([x, z]), order=3)
    assert out['V1']['4E'] == (pytest.approx(gc[0]), pytest.approx(p[0]))
    assert G.population_granger(('TH', '4E'), labels, series, k_row) == {}


ARCH = {'V1': 8, 'V2': 7, 'FEF': 4, 'V4': 7}
GC = {   # {target_area: {target_pop: {source_area: {source_pop: (gc, p)}}}}
    'V1': {'23E': {'V1': {'4E': (0.1, 0.01)}, 'V2': {'5E': (0.2, 0.001), '6I': (0.01, 0.5)},
                   'FEF': {}, 'V4': {}},
           '4I': {'V1': {}, 'V2': {'5E': (0.3, 0.02)}, 'FEF': {'6E': (0.1, 0.04)}, 'V4': {}}},
    'V2': {'5E': {'V1': {'23E': (0.1, 0.2)}, 'V2': {}, 'FEF': {}, 'V4': {'23E': (0.2, 1e-4)}}},
    'FEF': {'6E': {'V1': {'23E': (0.4, 1e-3)}, 'V2': {}, 'FEF': {}, 'V4': {}}},
    'V4': {'23E': {'V1': {}, 'V2': {}, 'FEF': {'5E': (np.nan, np.nan)}, 'V4': {}}},
}


def test_significant_channels_by_structural_gradient():
    """Architectural types V1 8, V2 = V4 7, FEF 4; upstream's rule: target type < source
    type is HL, > is LH, equal HZ; p < 0.05 significant, NaN never."""
    ch = G.significant_channels(GC, ARCH, areas=['V1', 'V2', 'FEF', 'V4'])
    assert ch['same-area'] == [('4E', '23E')]
    assert sorted(ch['LH']) == sorted([('5E', '23E'), ('5E', '4I'), ('6E', '4I')])   # into V1 from V2, FEF
    assert ch['HZ'] == [('23E', '5E')]                                               # V4 -> V2
    assert ch['HL'] == [('23E', '6E')]                                               # V1 -> FEF
    counts = G.channel_counts(ch)
    assert counts['LH'] == {('5E', '23E'): 1, ('5E', '4I'): 1, ('6E', '4I'): 1}
    frac = G.significant_fraction(GC, ARCH)
    assert frac['LH'] == {'total': 5, 'significant': 3}                 # FEF -> V4 (NaN) too
    assert frac['HL'] == {'total': 2, 'significant': 1} and frac['HZ'] == {'total': 1, 'significant': 1}
    assert frac['all'] == {'total': 9, 'significant': 6}
    bal = G.target_balance(ch)
    assert bal['LH'] == {'E': pytest.approx(1 / 3), 'I': pytest.approx(2 / 3)}
    assert bal['all'] == {'E': pytest.approx(3 / 5), 'I': pytest.approx(2 / 5)}


def test_indegree_table_is_relative_to_the_tested_sources():
    K = {'V1': {'23E': {'V1': {'4E': 30.}, 'V2': {'5E': 10., '6I': 60.}}}}
    rows = G.indegree_table({'V1': {'23E': GC['V1']['23E']}}, K)
    assert [r['K'] for r in rows] == [0.3, 0.1, 0.6] and [r['local'] for r in rows] == [True, False, False]
