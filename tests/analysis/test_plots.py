"""Figures of an analysed run: what they show of the data, and readable axes (issue 22)."""
from __future__ import annotations

import numpy as np
import pytest

import mam_pynn.analysis.plots as plots
from mam_pynn.analysis.plots import rate_bins


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """Calls a figure function and returns its matplotlib figure instead of saving it."""
    figures = []
    monkeypatch.setattr(plots, 'save_figure', lambda fig, *args: figures.append(fig))

    def draw(function, stats, arrays):
        function(stats, arrays, tmp_path)
        fig = figures.pop()
        fig.canvas.draw()
        return fig
    yield draw
    plots.pyplot().close('all')


def test_rate_bins_hold_at_least_one_spike_count_each():
    t = 1.5
    edges = rate_bins(t, 100.)
    counts = np.arange(1, 200) / t                         # the rates k spikes in t s can take
    per_bin = np.histogram(counts, edges)[0]
    assert per_bin.min() >= 1 and edges[0] < 1 / t and np.all(np.diff(edges) > 0)


def _overlapping(labels) -> list:
    boxes = [(t.get_text(), t.get_window_extent()) for t in labels if t.get_visible() and t.get_text()]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:]
            if box_a.overlaps(box_b)]


@pytest.mark.parametrize('window_ms, segment', [(500, 64), (1500, 256), (4000, 1024)])
def test_spectra_label_the_frequency_axis_without_minor_labels_or_overlaps(drawn, window_ms, segment):
    """Regression (issue 22): the 500 ms main job's spectra labelled the minor ticks of the
    log axis ("2x10^1 3x10^1 ..."), and the labels overlapped."""
    f = np.arange(1, segment // 2 + 1) * 1000. / segment
    rng = np.random.default_rng(0)
    arrays = {'freqs': f, 'area_psd': rng.lognormal(size=(3, f.size)) / f,
              'area_labels': np.array(['V1', 'V2', 'FEF'])}
    stats = {'spectrum': {'len_segment': segment, 'resolution_hz': 1000. / segment}}
    ax = drawn(plots.figure_spectra, stats, arrays).axes[0]
    assert not [t.get_text() for t in ax.xaxis.get_minorticklabels() if t.get_text()]
    shown = [t for t in ax.xaxis.get_majorticklabels() if t.get_text()
             and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
    assert len(shown) >= 2, [t.get_text() for t in shown]
    assert not _overlapping(shown)
    assert f"{segment}-sample segments" in ax.get_title()


def _histogram(ax):
    """(values, edges) of the one histogram drawn in ax."""
    from matplotlib.patches import StepPatch
    steps = [p for p in ax.patches if isinstance(p, StepPatch)]
    if steps:
        values, edges, _ = steps[0].get_data()
        return np.asarray(values), np.asarray(edges)
    bars = sorted(ax.patches, key=lambda p: p.get_x())          # ax.hist's rectangles
    return (np.array([p.get_height() for p in bars]),
            np.array([p.get_x() for p in bars] + [bars[-1].get_x() + bars[-1].get_width()]))


@pytest.mark.parametrize('window_ms', [500., 1500.])
def test_rate_histograms_have_no_empty_bins_between_occupied_steps(drawn, window_ms):
    """Regression (issue 22): in 500 ms rates come in steps of 2 spikes/s; log bins narrower
    than that step left every other bin empty (a comb). Every rate k/T, k = 1..150, occurs
    here: no bin between the lowest and highest occupied rate may be empty, and the axis
    spans the data, not 1e-2 to 1e3."""
    t_s = window_ms * 1e-3
    k = np.repeat(np.arange(0, 151), 3)                     # spike counts, silent neurons included
    rates = k / t_s
    names = ['23E', '23I']
    stats = {'params': {'t_min': 500., 't_max': 500. + window_ms}}
    arrays = {'pop_labels': np.array([f'V1/{p}' for p in names]),
              'pop_offsets': np.array([0, rates.size, 2 * rates.size]),
              'neuron_rate': np.concatenate([rates, rates])}
    fig = drawn(plots.figure_rate_distributions, stats, arrays)
    for ax in fig.axes[:len(names)]:
        values, edges = _histogram(ax)
        occupied = np.flatnonzero(values > 0)
        assert occupied.size and np.all(values[occupied[0]:occupied[-1] + 1] > 0)
        lo, hi = ax.get_xlim()
        assert 0.4 / t_s <= lo <= 1. / t_s and rates.max() < hi <= 1.5 * rates.max()
        assert not [t.get_text() for t in ax.xaxis.get_minorticklabels() if t.get_text()]
        # the fraction of neurons per decade integrates to the active fraction
        assert np.sum(values * np.diff(np.log10(edges))) == pytest.approx(np.mean(k > 0))
    assert not _overlapping(fig.axes[len(names) - 1].xaxis.get_majorticklabels())
