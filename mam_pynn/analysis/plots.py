"""Figures of an analysed run (matplotlib, Agg), each written as PNG and PDF.

- ``raster``: all areas stacked (area list order from the top), a sample of each
  area's neurons, populations stacked by layer, excitatory blue, inhibitory red;
- ``raster_<area>``: one area in more detail (by default V1, V2 and FEF, as in
  Schmidt et al. 2018, Fig. 3);
- ``rate_map``, ``lvr_map``: area x population maps of rates and LvR;
- ``rate_distributions``: single-neuron rates per population type;
- ``rate_time_series``: area rates over time;
- ``spectra``: power spectra of the area rates;
- ``functional_connectivity``: simulated vs experimental (fMRI) FC.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from mam_pynn.io import atomic_path, make_dir
from mam_pynn.params import POPULATION_LIST

from .spikes import RunInfo, SpikeFile, split_area, sample_neurons
from .statistics import sorted_membership

EXC_COLOR, INH_COLOR = '#3a6fb0', '#c8423a'
FORMATS = ('png', 'pdf')
DETAIL_AREAS = ('V1', 'V2', 'FEF')


def pyplot():
    """pyplot that keeps a backend the user chose: Agg (files only) unless pyplot is
    already imported (a notebook's inline backend, a GUI session) or MPLBACKEND names one.
    Every figure drawn here is closed after saving, so none pops up in the user's session."""
    import matplotlib
    if 'matplotlib.pyplot' not in sys.modules and not os.environ.get('MPLBACKEND'):
        matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, figure_dir: Path, name: str) -> list[Path]:
    """Write ``fig`` as name.png and name.pdf atomically; close it."""
    paths = []
    for fmt in FORMATS:
        path = figure_dir / f"{name}.{fmt}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150 if fmt == 'png' else None)
        paths.append(path)
    pyplot().close(fig)
    return paths


def raster_sample(info: RunInfo, area: str, t_start: float, t_stop: float, n_neurons: int,
                  seed: int = 0, spike_file: SpikeFile | None = None) -> dict:
    """A raster's worth of one area: neurons sampled in proportion to population size.

    Returns {'times', 'y' (0 = top row), 'exc' (bool per spike), 'bands': [(pop, y0, y1)], 'rows'}.
    """
    sf = spike_file or SpikeFile(info.spike_file)
    ids, times, sorting = sf.read_area(area, t_start, t_stop)
    pops = split_area(info.populations[area], ids, times, t_start, t_stop, sorting)
    total = max(info.area_size(area), 1)
    out_t, out_y, out_e, bands, row = [], [], [], [], 0
    for name, ps in pops.items():
        k = max(1, int(round(n_neurons * ps.size / total))) if ps.size else 0
        sample = sample_neurons(ps, k, seed=seed, active_only=False)
        hit, pos = sorted_membership(sample, ps.neuron)
        out_t.append(ps.times[hit])
        out_y.append(row + pos[hit])
        out_e.append(np.full(hit.sum(), ps.population.excitatory))
        bands.append((name, row, row + sample.size))
        row += sample.size
    return {'times': np.concatenate(out_t) if out_t else np.empty(0),
            'y': np.concatenate(out_y) if out_y else np.empty(0),
            'exc': np.concatenate(out_e) if out_e else np.empty(0, bool),
            'bands': bands, 'rows': row}


def _draw_raster(ax, sample: dict, y0: float = 0., height: float | None = None, size: float = 1.):
    """Raster of one area into ax, rows flipped so that layer 2/3 is on top."""
    rows = max(sample['rows'], 1)
    scale = (height / rows) if height else 1.
    y = y0 + (rows - 1 - sample['y']) * scale
    for exc, color in ((True, EXC_COLOR), (False, INH_COLOR)):
        sel = sample['exc'] == exc
        ax.plot(sample['times'][sel], y[sel], '.', ms=size, color=color, mew=0, rasterized=True)


def figure_raster_overview(info: RunInfo, figure_dir: Path, t_start: float, t_stop: float,
                           n_per_area: int = 60, seed: int = 0) -> list[Path]:
    plt = pyplot()
    areas = info.areas
    fig, ax = plt.subplots(figsize=(7, max(3., 0.28 * len(areas) + 1)))
    sf = SpikeFile(info.spike_file)
    for i, area in enumerate(areas):
        sample = raster_sample(info, area, t_start, t_stop, n_per_area, seed, sf)
        _draw_raster(ax, sample, y0=len(areas) - 1 - i + 0.05, height=0.9, size=2.)
        ax.axhline(len(areas) - i, color='0.75', lw=0.4)
    ax.set_yticks(np.arange(len(areas)) + 0.5)
    ax.set_yticklabels(areas[::-1], fontsize=6)
    ax.set_ylim(0, len(areas))
    ax.set_xlim(t_start, t_stop)
    ax.set_xlabel('time (ms)')
    ax.set_title(f"run {Path(info.run_dir).name} (model {info.label[:8]}): {n_per_area} neurons "
                 "per area shown (excitatory blue, inhibitory red)", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, figure_dir, 'raster')


def figure_raster_area(info: RunInfo, area: str, figure_dir: Path, t_start: float, t_stop: float,
                       n_neurons: int = 300, seed: int = 0) -> list[Path]:
    plt = pyplot()
    sample = raster_sample(info, area, t_start, t_stop, n_neurons, seed)
    fig, ax = plt.subplots(figsize=(6, 4))
    _draw_raster(ax, sample, size=2.)
    rows = sample['rows']
    ticks, labels = [], []
    for name, y0, y1 in sample['bands']:
        top = rows - y0
        ax.axhline(top - 0.5, color='0.8', lw=0.5)
        ticks.append(rows - 0.5 * (y0 + y1) - 0.5)
        labels.append(name)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels)
    ax.set_ylim(-0.5, rows - 0.5)
    ax.set_xlim(t_start, t_stop)
    ax.set_xlabel('time (ms)')
    ax.set_title(f"{area}: {rows} sampled neurons")
    fig.tight_layout()
    return save_figure(fig, figure_dir, f"raster_{area}")


def population_matrix(stats: dict, key: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(areas x population types) array of a population statistic; NaN where missing."""
    areas = list(stats['populations'])
    names = [p for p in POPULATION_LIST
             if any(p in stats['populations'][a] for a in areas)] or POPULATION_LIST
    extra = [p for a in areas for p in stats['populations'][a] if p not in names]
    names += list(dict.fromkeys(extra))
    mat = np.full((len(areas), len(names)), np.nan)
    for i, a in enumerate(areas):
        for j, p in enumerate(names):
            v = stats['populations'][a].get(p, {}).get(key)
            if v is not None:
                mat[i, j] = v
    return mat, areas, names


def _figure_map(stats: dict, key: str, title: str, cbar: str, figure_dir: Path, name: str,
                log: bool = False, cmap: str = 'viridis') -> list[Path]:
    plt = pyplot()
    from matplotlib.colors import LogNorm
    mat, areas, names = population_matrix(stats, key)
    fig, ax = plt.subplots(figsize=(4.2, max(3., 0.2 * len(areas) + 1.2)))
    cm = plt.get_cmap(cmap).with_extremes(bad='0.85')
    norm = None
    finite = mat[np.isfinite(mat)]
    if log and (finite > 0).any():
        pos = finite[finite > 0]
        norm = LogNorm(vmin=max(pos.min(), 1e-2), vmax=max(pos.max(), pos.min() * 10))
        mat = np.where(mat > 0, mat, np.nan)
    im = ax.imshow(np.ma.masked_invalid(mat), aspect='auto', cmap=cm, norm=norm, interpolation='nearest')
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=7)
    ax.set_yticks(range(len(areas)))
    ax.set_yticklabels(areas, fontsize=6)
    ax.set_title(title, fontsize=9)
    bar = fig.colorbar(im, ax=ax, label=cbar)
    if norm is not None:
        label_log_axis(bar.ax.yaxis, norm.vmin, norm.vmax)
    fig.tight_layout()
    return save_figure(fig, figure_dir, name)


def rate_bins(t_s: float, top: float, n: int = 30) -> np.ndarray:
    """Rate bins from one spike in T = ``t_s`` seconds to above ``top``, log-spaced (about
    ``n`` edges) where that is wider than the 1/T step of the rates, one step wide below.
    Every edge lies halfway between two spike counts ((k + 1/2) / T) and the widths never
    shrink, so each bin holds whole spike counts and the histogram shows the distribution,
    not the quantisation."""
    hi = max(1.2 * top, 3. / t_s) * t_s                 # in spike counts
    growth = (hi / 0.5) ** (1. / (n - 1)) - 1.
    edges = [0.5]
    while edges[-1] < hi:
        edges.append(edges[-1] + max(1., np.round(edges[-1] * growth)))
    return np.array(edges) / t_s


def label_log_axis(axis, lo: float, hi: float) -> None:
    """Plain-number labels on a log axis spanning [lo, hi]: at 1-2-5 (under 2 decades),
    1-3 (under 3.5) or decades, and no minor-tick labels (matplotlib labels the minor ticks
    of axes spanning under ~2 decades as "2x10^1 3x10^1 ...", which overlap)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    decades = np.log10(hi / lo)
    subs = (1., 2., 5.) if decades < 2 else (1., 3.) if decades < 3.5 else (1.,)
    axis.set_major_locator(LogLocator(base=10., subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f'{v:g}'))
    axis.set_minor_formatter(NullFormatter())


def figure_rate_distributions(stats: dict, arrays: dict, figure_dir: Path) -> list[Path]:
    """Distribution of single-neuron rates per population type, all areas: fraction of the
    neurons per decade of rate, in :func:`rate_bins` of the analysed window."""
    plt = pyplot()
    labels = [str(s) for s in arrays['pop_labels']]
    offsets, rates = arrays['pop_offsets'], arrays['neuron_rate']
    by_type: dict[str, list] = {}
    for k, label in enumerate(labels):
        by_type.setdefault(label.split('/')[-1], []).append(rates[offsets[k]:offsets[k + 1]])
    names = [p for p in POPULATION_LIST if p in by_type] + [p for p in by_type if p not in POPULATION_LIST]
    fig, axes = plt.subplots(len(names) // 2 + len(names) % 2, 2, figsize=(6, 1.3 * (len(names) + 1) / 2 + 1),
                             sharex=True, squeeze=False)
    t_s = (stats['params']['t_max'] - stats['params']['t_min']) * 1e-3
    edges = rate_bins(t_s, float(rates.max()) if rates.size else 1.)
    for ax, name in zip(axes.flat, names):
        r = np.concatenate(by_type[name])
        silent = np.mean(r == 0) if r.size else 0.
        counts, _ = np.histogram(r[r > 0], bins=edges)
        ax.stairs(counts / max(r.size, 1) / np.diff(np.log10(edges)), edges, fill=True,
                  color=EXC_COLOR if name.endswith('E') else INH_COLOR)
        ax.set_xscale('log')
        ax.set_title(f"{name}: mean {r.mean():.2f} spikes/s, silent {100 * silent:.0f}%", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0, 0].set_xlim(edges[0], edges[-1])
    label_log_axis(axes[0, 0].xaxis, edges[0], edges[-1])
    for ax in axes.flat[len(names):]:
        ax.axis('off')
    for ax in axes[:, 0]:
        ax.set_ylabel('fraction / decade', fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel('rate (spikes/s)', fontsize=7)
    fig.suptitle(f"single-neuron rates over T = {1e3 * t_s:g} ms, all areas (silent neurons left out)\n"
                 f"rates come in steps of 1/T = {1 / t_s:.3g} spikes/s; each bin holds whole steps",
                 fontsize=7)
    fig.tight_layout()
    return save_figure(fig, figure_dir, 'rate_distributions')


def figure_rate_time_series(stats: dict, arrays: dict, figure_dir: Path,
                            detail: tuple[str, ...] = DETAIL_AREAS) -> list[Path]:
    """Top: smoothed rate of every area (image); bottom: a few areas as lines."""
    plt = pyplot()
    t = arrays['time_ms']
    areas = [str(a) for a in arrays['area_labels']]
    smoothed = arrays['area_rate_smoothed']
    sigma = stats['params']['sigma_ms']
    fig = plt.figure(figsize=(7, 6))
    gs = fig.add_gridspec(2, 2, height_ratios=[2, 1], width_ratios=[40, 1], wspace=0.03)
    ax1 = fig.add_subplot(gs[0, 0])
    ax2 = fig.add_subplot(gs[1, 0], sharex=ax1)
    bin_ms = stats['params']['bin_ms']
    im = ax1.imshow(smoothed, aspect='auto', cmap='magma', interpolation='nearest',
                    extent=(t[0], t[-1] + bin_ms, len(areas) - 0.5, -0.5))
    ax1.set_yticks(range(len(areas)))
    ax1.set_yticklabels(areas, fontsize=5)
    ax1.tick_params(labelbottom=False)
    fig.colorbar(im, cax=fig.add_subplot(gs[0, 1]), label='rate (spikes/s)')
    ax1.set_title(f"area rates, Gaussian kernel sigma {sigma:g} ms", fontsize=9)
    shown = [a for a in detail if a in areas] or areas[:3]
    for a in shown:
        ax2.plot(t, smoothed[areas.index(a)], lw=0.7, label=a)
    ax2.set_xlabel('time (ms)')
    ax2.set_ylabel('rate (spikes/s)')
    ax2.legend(fontsize=7, loc='upper right', ncol=len(shown))
    fig.subplots_adjust(left=0.1, right=0.92, top=0.95, bottom=0.08, hspace=0.08)
    return save_figure(fig, figure_dir, 'rate_time_series')


def figure_spectra(stats: dict, arrays: dict, figure_dir: Path) -> list[Path]:
    plt = pyplot()
    f, psd = arrays['freqs'], arrays['area_psd']
    areas = [str(a) for a in arrays['area_labels']]
    fig, ax = plt.subplots(figsize=(5, 3.8))
    colors = plt.get_cmap('viridis')(np.linspace(0, 1, max(len(areas), 2)))
    for k, a in enumerate(areas):
        ax.loglog(f, psd[k], lw=0.5, color=colors[k], alpha=0.7)
    ax.loglog(f, np.exp(np.log(np.maximum(psd, 1e-30)).mean(axis=0)), lw=2, color='k', label='geometric mean')
    label_log_axis(ax.xaxis, f[0], f[-1])
    ax.set_xlabel('frequency (Hz)')
    ax.set_ylabel('PSD of area rate ((spikes/s)$^2$/Hz)')
    seg = stats.get('spectrum', {})
    ax.set_title(f"power spectra, {areas[0]} (dark) to {areas[-1]} (light)"
                 + (f"\nWelch, {seg['len_segment']}-sample segments: {seg['resolution_hz']:.3g} Hz resolution"
                    if 'resolution_hz' in seg else ''), fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, figure_dir, 'spectra')


def figure_functional_connectivity(stats: dict, arrays: dict, figure_dir: Path) -> list[Path]:
    plt = pyplot()
    areas = [str(a) for a in arrays['area_labels']]
    si = 'fc_sim_synaptic_input' in arrays     # upstream's Fig. 8 signal, else area rates
    sim = arrays['fc_sim_synaptic_input'] if si else arrays['fc_sim']
    fc_stats = stats['functional_connectivity']
    r = (fc_stats.get('synaptic_input', {}) if si else fc_stats).get('similarity_exp')
    signal = 'synaptic input' if si else 'area rates'
    exp = arrays.get('fc_exp')
    ncol = 3 if exp is not None else 1
    fig, axes = plt.subplots(1, ncol, figsize=(5.2 * ncol, 5.2), squeeze=False)
    label_size = 6 if len(areas) > 16 else 8
    axes = axes[0]
    panels = [(f'simulated ({signal})', sim)] + ([('experimental (fMRI)', exp)] if exp is not None else [])
    for ax, (title, mat) in zip(axes, panels):
        m = np.array(mat, float)
        np.fill_diagonal(m, np.nan)
        im = ax.imshow(np.ma.masked_invalid(m), cmap='RdBu_r', vmin=-1, vmax=1, interpolation='nearest')
        ax.set_xticks(range(len(areas)))
        ax.set_xticklabels(areas, fontsize=label_size, rotation=90)
        ax.set_yticks(range(len(areas)))
        ax.set_yticklabels(areas, fontsize=label_size)
        ax.set_title(f"{title} FC", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label='Pearson correlation')
    if exp is not None:
        iu = np.triu_indices(len(areas), 1)
        ax = axes[2]
        ax.plot(exp[iu], sim[iu], '.', ms=3, color='k')
        ax.set_xlabel('experimental FC')
        ax.set_ylabel(f'simulated FC ({signal})')
        ax.set_title(f"{iu[0].size} area pairs, Pearson r = {r:.2f}" if isinstance(r, float)
                     else 'area pairs', fontsize=9)
        ax.set_box_aspect(1)
    fig.suptitle(f"functional connectivity: {signal} vs fMRI (r: correlation of the off-diagonal "
                 f"entries); a down-scaled or short run is not expected to match fMRI", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, figure_dir, 'functional_connectivity')


def make_figures(info: RunInfo, stats: dict, arrays: dict, figure_dir: str | Path,
                 raster_ms: float = 1000., detail_areas: tuple[str, ...] = DETAIL_AREAS,
                 only_missing: bool = False, verbose: bool = True) -> list[Path]:
    """Every figure of a run; returns the paths of all of them.

    ``only_missing``: draw only figures whose files are absent (results unchanged).
    """
    figure_dir = Path(figure_dir)
    make_dir(figure_dir)
    p = stats['params']
    t_start = p['t_min']
    t_stop = min(p['t_max'], t_start + raster_ms)
    seed = p.get('seed', 0)
    detail = [a for a in detail_areas if a in info.populations] or info.areas[:min(3, len(info.areas))]
    jobs = [('raster', lambda: figure_raster_overview(info, figure_dir, t_start, t_stop, seed=seed))]
    jobs += [(f"raster_{a}", lambda a=a: figure_raster_area(info, a, figure_dir, t_start, t_stop, seed=seed))
             for a in detail]
    jobs += [
        ('rate_map', lambda: _figure_map(stats, 'rate', 'population rates', 'rate (spikes/s)',
                                         figure_dir, 'rate_map', log=True)),
        ('lvr_map', lambda: _figure_map(stats, 'lvr', f"LvR (R = {p['t_ref']:g} ms)", 'LvR',
                                        figure_dir, 'lvr_map', cmap='cividis')),
        ('rate_distributions', lambda: figure_rate_distributions(stats, arrays, figure_dir)),
        ('rate_time_series', lambda: figure_rate_time_series(stats, arrays, figure_dir, tuple(detail))),
        ('spectra', lambda: figure_spectra(stats, arrays, figure_dir)),
    ]
    if len(info.areas) >= 2:   # FC of one area is the number 1: no figure
        jobs.append(('functional_connectivity',
                     lambda: figure_functional_connectivity(stats, arrays, figure_dir)))
    paths, drawn = [], 0
    for name, draw in jobs:
        files = [figure_dir / f"{name}.{fmt}" for fmt in FORMATS]
        if not (only_missing and all(f.is_file() for f in files)):
            draw()
            drawn += 1
        paths += files
    if verbose:
        print(f"  drew {drawn} of {len(jobs)} figures ({len(paths)} files) in {figure_dir}", file=sys.stderr)
    return paths
