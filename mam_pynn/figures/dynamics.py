"""Figures of Schmidt, Bakker et al. 2018 (PLoS Comput Biol 14:e1006359): the dynamics of the
ground state (chi = 1) and of the metastable state (chi = 1.9), from finished, analysed runs.

Every number plotted comes from the run's `mam analyze` output (analysis/statistics.json and
analysis/series.npz) or its spikes.h5; the figures name the run's N and K scaling and
duration, because a down-scaled run does not reproduce the full model's dynamics.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json, read_yaml
from .common import plt, save

PAPER = 'Schmidt, Bakker et al. 2018, PLoS Comput Biol'


def run_data(run_dir) -> dict:
    """What the dynamics figures read of one analysed run (refuses an unanalysed one)."""
    run = Path(run_dir)
    stats_file = run / 'analysis' / 'statistics.json'
    if not stats_file.is_file():
        raise FileNotFoundError(f"{run}: no analysis/statistics.json; run `mam analyze {run}` first")
    stats, config, summary = (read_json(stats_file), read_yaml(run / 'config.yaml'),
                              read_json(run / 'summary.json'))
    with np.load(run / 'analysis' / 'series.npz') as f:
        series = {k: f[k] for k in f.files}
    net = config['network_params']
    conn = net['connection_params']
    scale = (f"N_scaling {net['N_scaling']:g}, K_scaling {net['K_scaling']:g}, "
             f"{summary['t_sim_ms']:g} ms simulated, χ = {conn['cc_weights_factor']:g}")
    if net['N_scaling'] < 1 or net['K_scaling'] < 1:
        scale = 'DOWN-SCALED: ' + scale
    return {'run': str(run), 'stats': stats, 'series': series, 'scale': scale,
            'areas': list(stats['populations'])}


def population_table(stats: dict, key: str, areas: list) -> tuple[np.ndarray, list]:
    """(areas, 8) matrix of one population statistic from statistics.json (NaN if absent)."""
    from ..params import POPULATION_LIST
    out = np.full((len(areas), len(POPULATION_LIST)), np.nan)
    for i, area in enumerate(areas):
        for j, pop in enumerate(POPULATION_LIST):
            value = stats['populations'][area].get(pop, {}).get(key)
            out[i, j] = np.nan if value is None else value
    return out, POPULATION_LIST


def rate_bins(t_s: float, top: float, n: int = 30) -> np.ndarray:
    """Log-spaced rate bins from one spike in the window up, widened where they would be
    narrower than the 1/T step of the rates (k spikes in T s): there each bin holds one
    spike count, so the histogram shows the distribution, not the quantisation."""
    lo, hi = 0.5 / t_s, max(1.2 * top, 3. / t_s)
    edges = np.logspace(np.log10(lo), np.log10(hi), n)
    ratio = edges[1] / edges[0]
    k0 = int(np.ceil(1. / (ratio - 1.))) + 1          # from k0 spikes on, log bins are wide enough
    low = (np.arange(k0) + 0.5) / t_s
    return np.unique(np.concatenate([low, edges[edges > low[-1] * ratio]]))


def _grid(ax, fig, matrix, areas, cols, label, cmap='viridis', norm=None):
    im = ax.imshow(matrix, aspect='auto', cmap=cmap, norm=norm)
    ax.set_yticks(range(len(areas)))
    ax.set_yticklabels(areas, fontsize=6 if len(areas) > 12 else 8)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, rotation=90)
    ax.set_xlabel('population')
    fig.colorbar(im, ax=ax, label=label)


def raster(run_dir, areas, t_start, t_stop, per_area=200, seed=0) -> dict:
    """Spike times of up to ``per_area`` neurons per area in [t_start, t_stop) (spikes.h5)."""
    import h5py
    rng = np.random.default_rng(seed)
    out = {}
    with h5py.File(Path(run_dir) / 'spikes.h5', 'r') as f:
        for area in areas:
            ids, ts = f[f'spikes/{area}/node_ids'][()], f[f'spikes/{area}/timestamps'][()]
            keep = (ts >= t_start) & (ts < t_stop)
            ids, ts = ids[keep], ts[keep]
            chosen = np.unique(ids)
            if chosen.size > per_area:
                chosen = np.sort(rng.choice(chosen, per_area, replace=False))
            sel = np.isin(ids, chosen)
            out[area] = {'times_ms': ts[sel], 'rank': np.searchsorted(chosen, ids[sel])}
    return out


def fig3_ground_state(out_dir, run_dir) -> list:
    """Ground state: raster of three areas and the population rates of all areas."""
    d = run_data(run_dir)
    areas = [a for a in ('V1', 'V2', 'FEF') if a in d['areas']] or d['areas'][:3]
    t_max = d['stats']['params']['t_max']
    t0 = max(d['stats']['params']['t_min'], t_max - 500.)
    spikes = raster(run_dir, areas, t0, t_max)
    rates, pops = population_table(d['stats'], 'rate', d['areas'])
    pyplot = plt()
    fig, (a, b) = pyplot.subplots(1, 2, figsize=(10, 5), constrained_layout=True)
    offset, centres = 0, []
    for area in areas:
        s = spikes[area]
        a.plot(s['times_ms'], s['rank'] + offset, '|', ms=1.5, color='0.2')
        height = int(s['rank'].max()) + 1 if s['rank'].size else 1
        centres.append(offset + height / 2)
        offset += height + 20
    a.set_xlabel('time (ms)')
    a.set_ylabel('neurons (a sample of each area)')
    a.set_yticks(centres)
    a.set_yticklabels(areas)
    a.set_title('A  spike raster')
    from matplotlib.colors import LogNorm
    _grid(b, fig, rates, d['areas'], pops, 'population rate (spikes/s)',
          norm=LogNorm(vmin=max(np.nanmin(rates[rates > 0]), 1e-2) if np.any(rates > 0) else 1e-2,
                       vmax=max(np.nanmax(rates), 1.)))
    b.set_title('B  population rates')
    fig.suptitle(f"{PAPER}, Fig. 3: ground state\n{d['scale']}", fontsize=9)
    data = {'scale': d['scale'], 'areas': d['areas'], 'populations': pops, 'rates': rates,
            'raster_areas': areas, 'raster': spikes}
    return save(fig, data, out_dir, 'fig3_ground_state')


def fig5_metastable(out_dir, run_dir) -> list:
    """Metastable state: rate distributions, LvR and CV per population, spectrum of V1."""
    d = run_data(run_dir)
    series, stats = d['series'], d['stats']
    lvr, pops = population_table(stats, 'lvr', d['areas'])
    cv, _ = population_table(stats, 'cv_isi', d['areas'])
    rates = series['neuron_rate']
    pyplot = plt()
    fig, axes = pyplot.subplots(2, 2, figsize=(10, 8.5), constrained_layout=True)
    bins = rate_bins((stats['params']['t_max'] - stats['params']['t_min']) * 1e-3,
                     float(np.nanmax(rates)) if rates.size else 1.)
    decades = np.diff(np.log10(bins))
    labels, offsets = series['pop_labels'], series['pop_offsets']
    kinds = {}
    for k, label in enumerate(labels):
        kinds.setdefault(str(label).split('/')[-1], []).append(rates[offsets[k]:offsets[k + 1]])
    hist = {}
    for pop in pops:
        if pop in kinds:
            r = np.concatenate(kinds[pop])
            counts, _ = np.histogram(r[r > 0], bins=bins)
            hist[pop] = counts
            axes[0, 0].step(bins[:-1], counts / max(r.size, 1) / decades, where='post', label=pop)
    axes[0, 0].set_xscale('log')
    axes[0, 0].set_xlabel('neuron rate (spikes/s; silent neurons left out)')
    axes[0, 0].set_ylabel('fraction of neurons per decade')
    axes[0, 0].legend(ncol=2)
    axes[0, 0].set_title('A  rate distributions, all areas')
    _grid(axes[0, 1], fig, lvr, d['areas'], pops, 'LvR (revised local variation)')
    axes[0, 1].set_title('B  irregularity: LvR')
    _grid(axes[1, 0], fig, cv, d['areas'], pops, 'CV of ISI')
    axes[1, 0].set_title('C  CV of interspike intervals')
    area = 'V1' if 'V1' in d['areas'] else d['areas'][0]
    i = list(series['area_labels']).index(area)
    freqs, psd = series['freqs'], series['area_psd'][i]
    ok = freqs > 0
    axes[1, 1].loglog(freqs[ok], psd[ok], color='C0')
    axes[1, 1].set_xlabel('frequency (Hz)')
    axes[1, 1].set_ylabel('power ((spikes/s)² / Hz)')
    axes[1, 1].set_title(f'D  power spectrum of the {area} rate')
    fig.suptitle(f"{PAPER}, Fig. 5: metastable state\n{d['scale']}", fontsize=9)
    data = {'scale': d['scale'], 'areas': d['areas'], 'populations': pops, 'lvr': lvr,
            'cv_isi': cv, 'rate_bins': bins, 'rate_histograms': hist, 'spectrum_area': area,
            'freqs_hz': freqs, 'psd': psd}
    return save(fig, data, out_dir, 'fig5_metastable')


def fig8_functional_connectivity(out_dir, run_dir) -> list:
    """Simulated vs experimental (fMRI) functional connectivity, with the similarity r."""
    d = run_data(run_dir)
    series, fc_stats = d['series'], d['stats']['functional_connectivity']
    if 'fc_exp' not in series:
        raise ValueError(f"{run_dir}: its analysis has no fMRI comparison "
                         f"({fc_stats.get('experimental', 'no fc_exp')})")
    signal = 'synaptic_input' if 'fc_sim_synaptic_input' in series else 'area_rate'
    sim = series['fc_sim_synaptic_input'] if signal == 'synaptic_input' else series['fc_sim']
    r = (fc_stats.get('synaptic_input', {}).get('similarity_exp') if signal == 'synaptic_input'
         else fc_stats.get('similarity_exp'))
    exp, areas = series['fc_exp'], [str(a) for a in series['area_labels']]
    pyplot = plt()
    fig, axes = pyplot.subplots(1, 3, figsize=(13, 4.4), constrained_layout=True)
    for ax, m, title in ((axes[0], sim, f'A  simulated FC ({signal.replace("_", " ")})'),
                         (axes[1], exp, 'B  experimental FC (fMRI)')):
        shown = np.array(m, float)
        np.fill_diagonal(shown, np.nan)
        im = ax.imshow(shown, cmap='RdBu_r', vmin=-1, vmax=1)
        ax.set_xticks(range(len(areas)))
        ax.set_xticklabels(areas, rotation=90, fontsize=6)
        ax.set_yticks(range(len(areas)))
        ax.set_yticklabels(areas, fontsize=6)
        ax.set_title(title)
        fig.colorbar(im, ax=ax, label='Pearson correlation', fraction=0.046)
    iu = np.triu_indices(len(areas), 1)
    axes[2].plot(exp[iu], np.asarray(sim)[iu], '.', color='0.3', ms=4)
    axes[2].set_xlabel('experimental FC')
    axes[2].set_ylabel('simulated FC')
    r_text = 'n/a' if r is None else f'{r:.2f}'
    axes[2].set_title(f'C  similarity r = {r_text} over {iu[0].size} area pairs')
    fig.suptitle(f"{PAPER}, Fig. 8: functional connectivity\n{d['scale']}: a down-scaled "
                 f"run is not expected to match fMRI", fontsize=9)
    data = {'scale': d['scale'], 'areas': areas, 'signal': signal, 'fc_sim': sim, 'fc_exp': exp,
            'similarity_exp': r}
    return save(fig, data, out_dir, 'fig8_functional_connectivity')


#: figure -> (function, which run it reads)
FIGURES = {'fig3_ground_state': (fig3_ground_state, 'ground_state'),
           'fig5_metastable': (fig5_metastable, 'metastable'),
           'fig8_functional_connectivity': (fig8_functional_connectivity, 'metastable')}
