"""Figures of Schmidt, Bakker et al. 2018 (PLoS Comput Biol 14:e1006359), drawn from labelled
runs in upstream's data layout (:mod:`mam_pynn.analysis.layout`): the authors' published
full-scale data (``mam figures dynamics --original-data DIR``) or our runs written there by
``mam preprocess`` (what the local and cluster modes of the workflow do). One code path for
both: a figure reads nothing but its :class:`LabelledRun` readers.

How a figure is added (Fig2, 4, 6, 7, 9 follow this pattern):

1. ``def figN_name(out_dir, <role>=LabelledRun, ...) -> list[Path]``: read only through the
   readers' methods (``run.pop_rates()``, ``run.rate_time_series(area)``, ...), draw, and
   ``save(fig, data, out_dir, name)`` with every plotted number in ``data``;
2. register it in :data:`FIGURES` as ``name: (function, {role: state})``;
3. a state new to :data:`STATES` gets upstream's label (its script's ``LOAD_ORIGINAL_DATA``
   labels) and the name of our run that stands for it (a model config in the workflow's
   ``runs``).

A missing file stops the figure with one line naming the file and the figure.
"""
from __future__ import annotations

import numpy as np

from ..analysis.layout import LabelledRun
from ..params import POPULATION_LIST
from .common import plt, save

PAPER = 'Schmidt, Bakker et al. 2018, PLoS Comput Biol'

#: state -> (upstream's label of the published run, our run standing for it); upstream's
#: labels are those of its figure scripts (figures/Schmidt2018_dyn/Fig*.py)
STATES = {
    'bistability_LA': ('533d73357fbe99f6178029e6054b571b485f40f6', 'bistability_LA'),  # g -16, kappa 1 (Fig2 A)
    'bistability_HA': ('0adda4a542c3d5d43aebf7c30d876b6c5fd1d63e', 'bistability_HA'),  # g -16, kappa 1.125 (B)
    'ground_state': ('33fb5955558ba8bb15a3fdce49dfd914682ef3ea', 'ground_state'),  # chi 1, 10.5 s (Fig3)
    'metastable': ('99c0024eacc275d13f719afd59357f7d12f02b77', 'metastable'),      # chi 1.9, 100.5 s
    'metastable_spikes': ('3afaec94d650c637ef8419611c3f80b3cb3ff539', 'metastable'),  # chi 1.9, 10.5 s
}
RASTER_AREAS = ('V1', 'V2', 'FEF')      # upstream's Figs. 3 and 5
RASTER_WINDOW = (3000., 3500.)          # ms, upstream's; the last 500 ms of a shorter run
RASTER_FRACTION, RASTER_ROWS = 0.03, 300  # upstream draws 3 % of each population; small runs up to 300 rows
SERIES_T_MAX = 10500.                   # ms, upstream's time-series panel ends there


def labels(original: bool = False, overrides: dict | None = None) -> dict:
    """{state: label}: upstream's published labels, else the names of our runs."""
    out = {state: pair[0 if original else 1] for state, pair in STATES.items()}
    unknown = set(overrides or {}) - set(out)
    if unknown:
        raise ValueError(f"unknown state(s) {sorted(unknown)}; states: {', '.join(out)}")
    return {**out, **(overrides or {})}


def parse_labels(items: list[str]) -> dict:
    """{state: label} from STATE=LABEL items."""
    out = {}
    for item in items:
        state, sep, label = item.partition('=')
        if not sep or not state or not label:
            raise ValueError(f"--label expects STATE=LABEL, got {item!r}")
        out[state] = label
    return out


def describe(run: LabelledRun) -> str:
    """The run's scale, length and chi from its custom_params (ours and upstream's Simulation
    write {'sim_params', 'network_params'}); a down-scaled run says so."""
    try:
        params = run.custom_params()
    except FileNotFoundError:
        return f"run {run.label[:12]}: parameters not in the data"
    net = params.get('network_params') or {}
    conn = net.get('connection_params') or {}
    t_sim = (params.get('sim_params') or {}).get('t_sim', params.get('T'))
    n, k = net.get('N_scaling', 1.), net.get('K_scaling', 1.)
    chi = conn.get('cc_weights_factor', params.get('cc_weights_factor', 1.))
    text = (f"N_scaling {n:g}, K_scaling {k:g}, {t_sim:g} ms simulated, χ = {chi:g}"
            if t_sim is not None else f"N_scaling {n:g}, K_scaling {k:g}, χ = {chi:g}")
    return ('DOWN-SCALED: ' + text) if n < 1 or k < 1 else text


def population_table(table: dict, areas: list) -> np.ndarray:
    """(areas, 8) matrix of a {area: {pop: value}} dictionary, NaN where a population is absent."""
    return np.array([[table.get(area, {}).get(pop, np.nan) for pop in POPULATION_LIST] for area in areas],
                    float)


def raster(run: LabelledRun, area: str, t_start: float, t_stop: float) -> dict:
    """Upstream's raster sample: of each population the neurons with the lowest ids, 3 % of
    its size as upstream's (more in a small run, up to RASTER_ROWS rows per area), their
    spikes in [t_start, t_stop]; rows stacked with layer 2/3 on top."""
    data = {pop: run.spikes(area, pop) for pop in POPULATION_LIST if run.has('spikes', area=area, pop=pop)}
    if not data:
        run.spikes(area, POPULATION_LIST[0])       # no spike file of the area: say which is missing
    gids = run.network_gids() if run.has('network_gids') else {}
    sizes = {pop: (gids[(area, pop)][1] - gids[(area, pop)][0] + 1) if (area, pop) in gids
             else (int(d[:, 0].max() - d[:, 0].min()) + 1 if d.size else 0) for pop, d in data.items()}
    fraction = min(1., max(RASTER_FRACTION, RASTER_ROWS / max(sum(sizes.values()), 1)))
    times, rows, exc, bands, row = [], [], [], [], 0
    for pop, d in data.items():
        n = max(int(sizes[pop] * fraction), 1)
        first = gids[(area, pop)][0] if (area, pop) in gids else (d[:, 0].min() if d.size else 0)
        keep = (d[:, 0] >= first) & (d[:, 0] < first + n) & (d[:, 1] >= t_start) & (d[:, 1] <= t_stop)
        times.append(d[keep, 1])
        rows.append(row + (d[keep, 0] - first).astype(int))
        exc.append(np.full(keep.sum(), pop.endswith('E')))
        bands.append((pop, row, row + n))
        row += n
    return {'times_ms': np.concatenate(times) if times else np.empty(0),
            'row': np.concatenate(rows) if rows else np.empty(0, int),
            'excitatory': np.concatenate(exc) if exc else np.empty(0, bool),
            'bands': bands, 'rows': row}


def _boxplot(ax, matrix, xlabel):
    """Upstream's panels D-F: one box per population over the areas, layer 2/3 on top."""
    from ..analysis.plots import EXC_COLOR, INH_COLOR
    cols = [matrix[:, j][np.isfinite(matrix[:, j])] for j in range(matrix.shape[1])][::-1]
    box = ax.boxplot(cols, orientation='horizontal', patch_artist=True, whis=1.5, showmeans=True,
                     meanprops={'marker': 'x', 'markeredgecolor': 'k', 'markersize': 4})
    for patch, pop in zip(box['boxes'], POPULATION_LIST[::-1]):
        patch.set_facecolor(EXC_COLOR if pop.endswith('E') else INH_COLOR)
        patch.set_alpha(0.8)
    ax.set_yticks(range(1, len(POPULATION_LIST) + 1))
    ax.set_yticklabels([f'L{p[:-1].replace("23", "2/3")}{p[-1]}' for p in POPULATION_LIST[::-1]])
    ax.set_xlabel(xlabel)


def state_figure(out_dir, name: str, title: str, stats: LabelledRun, spikes: LabelledRun) -> list:
    """Upstream's Figs. 3 and 5 (one layout for the two states): A-C rasters of V1, V2, FEF
    (``spikes``); D-F population rates, correlation coefficients and LvR of all areas as
    boxes per population; G area rates of V1, V2, FEF (binned, and with Shimazaki's kernel)."""
    from ..analysis.plots import EXC_COLOR, INH_COLOR
    areas = stats.areas()
    rates = population_table(stats.pop_rates(), areas)
    cc = population_table(stats.corrcoeff(), areas)
    lvr = population_table(stats.pop_LvR(), areas)
    # of the spikes run only its spike files are read, as upstream's Fig. 5 reads them
    shown = series_areas = [a for a in RASTER_AREAS if a in areas] or areas[:3]
    p = stats.rate_time_series_parameters('full')
    window = RASTER_WINDOW if p['t_max'] >= RASTER_WINDOW[1] else (max(p['t_min'], p['t_max'] - 500.), p['t_max'])
    sample = {area: raster(spikes, area, *window) for area in shown}
    n = int(min(p['t_max'], SERIES_T_MAX) - p['t_min'])
    time_ms = p['t_min'] + np.arange(n)
    full = {a: stats.rate_time_series(a)[:n] for a in series_areas}
    kernel = {a: stats.rate_time_series(a, method='auto_kernel')[:n] for a in series_areas}

    pyplot = plt()
    fig = pyplot.figure(figsize=(12, 9.5), constrained_layout=True)
    grid = fig.add_gridspec(2, 4, height_ratios=[2.2, 1.])
    for k, area in enumerate(shown):
        ax, s = fig.add_subplot(grid[0, k]), sample[area]
        y = s['rows'] - 1 - s['row']
        for flag, color in ((True, EXC_COLOR), (False, INH_COLOR)):
            sel = s['excitatory'] == flag
            ax.plot(s['times_ms'][sel], y[sel], '.', ms=1.5, mew=0, color=color, rasterized=True)
        ticks = [(s['rows'] - 0.5 * (lo + hi), pop) for pop, lo, hi in s['bands'] if pop.endswith('E')]
        ax.set_yticks([t for t, _ in ticks])
        ax.set_yticklabels([f'L{pop[:-1].replace("23", "2/3")}' for _, pop in ticks])
        ax.set_ylim(-1, s['rows'])
        ax.set_xlim(*window)
        ax.set_xlabel('time (ms)')
        ax.set_title(f"{'ABC'[k]}  {area}")
    right = grid[0, 3].subgridspec(3, 1)
    for k, (matrix, label, letter) in enumerate(((rates, 'rate (spikes/s)', 'D'),
                                                 (cc, 'correlation coefficient', 'E'),
                                                 (lvr, 'irregularity (LvR)', 'F'))):
        ax = fig.add_subplot(right[k])
        _boxplot(ax, matrix, label)
        ax.set_title(f'{letter}  over {len(areas)} areas', fontsize=9)
    bottom = grid[1, :].subgridspec(len(series_areas), 1)
    for k, area in enumerate(series_areas):
        ax = fig.add_subplot(bottom[k])
        ax.plot(time_ms, full[area], color='0.6', lw=0.5, label='binned (1 ms)')
        ax.plot(time_ms, kernel[area], color='k', lw=1., label='optimal kernel')
        ax.set_ylabel(f'{area}\n(spikes/s)')
        if k == 0:
            ax.set_title('G  area rates', loc='left')
            ax.legend(loc='upper right', ncol=2, fontsize=7)
        if k < len(series_areas) - 1:
            ax.set_xticklabels([])
    ax.set_xlabel('time (ms)')
    fig.suptitle(f"{PAPER}, {title}\nrun {stats.label}: {describe(stats)}"
                 + (f"; rasters: run {spikes.label}" if spikes.label != stats.label else ''), fontsize=9)
    data = {'scale': describe(stats), 'label': stats.label, 'spikes_label': spikes.label,
            'areas': areas, 'populations': POPULATION_LIST, 'rates': rates, 'corrcoeff': cc,
            'lvr': lvr, 'raster_window_ms': window,
            'raster': {a: {k: v for k, v in s.items() if k != 'bands'} for a, s in sample.items()},
            'series_areas': series_areas, 'time_ms': time_ms, 'rate_binned': full,
            'rate_auto_kernel': kernel}
    return save(fig, data, out_dir, name)


def fig3_ground_state(out_dir, stats: LabelledRun, spikes: LabelledRun) -> list:
    """Fig. 3: the ground state (chi = 1)."""
    return state_figure(out_dir, 'fig3_ground_state', 'Fig. 3: ground state', stats, spikes)


def fig5_metastable(out_dir, stats: LabelledRun, spikes: LabelledRun) -> list:
    """Fig. 5: the metastable state (chi = 1.9); upstream draws the rasters from a 10.5 s
    run and the rest from a 100.5 s run."""
    return state_figure(out_dir, 'fig5_metastable', 'Fig. 5: metastable state', stats, spikes)


def _architecture(areas) -> dict:
    """{area: architectural type} of the MAM data (Fig. 2's x axis)."""
    from ..anatomy import load_raw_data, process_raw_data
    arch = process_raw_data(load_raw_data())['architecture_completed']
    return {a: int(arch[a]) for a in areas}


def rate_matrix_panels(fig, top, bottom, rates: np.ndarray, areas, arch: dict, title: str,
                       colorbar: bool = True) -> None:
    """Upstream's matrix_plot and rate_histogram_plot (Figs. 2, 4 E): the (areas, 8) rates
    as a log-coloured matrix (populations top to bottom, black where an area lacks one) in
    the grid cell ``top``, histograms of the excitatory and inhibitory rates in ``bottom``."""
    from matplotlib.colors import LogNorm
    from ..analysis.plots import EXC_COLOR, INH_COLOR
    pyplot = plt()
    cmap = pyplot.get_cmap('RdBu_r').with_extremes(bad='k', under='0.3')
    ax = fig.add_subplot(top)
    im = ax.pcolormesh(np.ma.masked_invalid(rates.T[::-1]), norm=LogNorm(vmin=1e-3, vmax=500.), cmap=cmap)
    ax.set_yticks(np.arange(len(POPULATION_LIST)) + 0.5)
    ax.set_yticklabels([f'L{p[:-1].replace("23", "2/3")}{p[-1]}' for p in POPULATION_LIST][::-1])
    ax.set_xticks(np.arange(len(areas)) + 0.5)
    ax.set_xticklabels([f'{a} ({arch[a]})' for a in areas], rotation=90, fontsize=5)
    ax.set_xlabel('area (architectural type)')
    ax.set_title(title, loc='left', fontsize=7)
    if colorbar:
        fig.colorbar(im, ax=ax, label='rate (spikes/s); black: no population')
    sub = bottom.subgridspec(2, 1)
    bins = np.logspace(-5.5, 3, 50)
    for row, (sel, color, name) in enumerate(((slice(0, None, 2), EXC_COLOR, 'excitatory'),
                                              (slice(1, None, 2), INH_COLOR, 'inhibitory'))):
        a2 = fig.add_subplot(sub[row])
        values = rates[:, sel].ravel()
        a2.hist(values[np.isfinite(values)], bins=bins, color=color)
        a2.set_xscale('log')
        a2.set_ylabel(f'{name}\n(count)', fontsize=7)
        if row == 0:
            a2.set_xticklabels([])
        else:
            a2.set_xlabel('rate (spikes/s); 0 shown at 10⁻⁵')


def zero_shown(rates: np.ndarray) -> np.ndarray:
    """Upstream's matrix_plot input: a rate of 0 drawn at 1e-5 spikes/s (log axes)."""
    return np.where(rates == 0., 1e-5, rates)


def fig2_bistability(out_dir, la: LabelledRun, ha: LabelledRun, la_post: LabelledRun) -> list:
    """Fig. 2 (upstream's Fig2_bistability.py): the population rates of every area (areas in
    upstream's order, i.e. by architectural type) A in the low-activity state of the
    unstabilized model (kappa = 1), B in its high-activity state (kappa = 1.125), C in the
    stabilized model's ground state (chi = 1), each with the histograms of the excitatory and
    the inhibitory populations' rates (a rate of 0 drawn at 1e-5, as upstream). The phase-space
    sketch is not redrawn."""
    runs = {'A': ('low activity (κ = 1)', la), 'B': ('high activity (κ = 1.125)', ha),
            'C': ('stabilized ground state (χ = 1)', la_post)}
    areas = la_post.areas()
    arch = _architecture(areas)
    rates = {}
    for key, (_, run) in runs.items():
        rates[key] = zero_shown(population_table(run.pop_rates(), areas))
    pyplot = plt()
    fig = pyplot.figure(figsize=(13, 7), constrained_layout=True)
    grid = fig.add_gridspec(2, 3, height_ratios=[1.3, 1.])
    for k, (key, (title, run)) in enumerate(runs.items()):
        rate_matrix_panels(fig, grid[0, k], grid[1, k], rates[key], areas, arch,
                           f'{key}  {title}, run {run.label[:16]}', colorbar=k == 2)
    fig.suptitle(f"{PAPER}, Fig. 2: bistability of the unstabilized model (grey: rate 0, drawn at 10⁻⁵)\n"
                 + '\n'.join(f'{key}: {describe(run)}' for key, (_, run) in runs.items()), fontsize=8)
    data = {key: {'label': run.label, 'scale': describe(run), 'rates': rates[key]}
            for key, (_, run) in runs.items()}
    data.update({'areas': areas, 'populations': POPULATION_LIST, 'architecture': arch,
                 'zero_rate_shown_at': 1e-5})
    return save(fig, data, out_dir, 'fig2_bistability')


#: starts per chi of Fig. 4 B's theory (upstream: 1000; ~0.1 s each here): the environment
#: variable MAM_FIG4_STARTS sets another number (the tests use a few)
FIG4_STARTS = 200


def fig4_metastability(out_dir, ground: LabelledRun, run: LabelledRun) -> list:
    """Fig. 4 (upstream's Fig4_metastability.py, Fig4_theory.py): A the rate of V1 in the
    runs (upstream: chi = 1, 1.8, 1.9, 2, 2.1, 2.5; here the ground and the metastable
    state); B the mean-field theory's end states from random initial rates per chi, as the
    histogram of their population means, integrated as upstream's 2018 data were (input held
    for 0.1 ms, :func:`~mam_pynn.theory.metastability.held_input_end_states`); C the
    critical eigenvalue of the state reached from zero rates per chi; E the population
    rates of the metastable run. The sketch D is not redrawn."""
    import os
    from ..theory import metastability as ms
    starts = int(os.environ.get('MAM_FIG4_STARTS', FIG4_STARTS))
    series = {}                                  # state -> (chi, time ms, V1 rate)
    for state, r in (('ground_state', ground), ('metastable', run)):
        x = r.rate_time_series('V1')
        series[state] = (chi(r), r.rate_time_series_parameters('full')['t_min'] + np.arange(x.size), x)
    hist, means = {}, {}
    for c in ms.CHI_LIST:
        end = ms.held_input_end_states(c, starts)
        means[c] = end[:, :, -1].mean(axis=1)
        hist[c] = ms.mean_activity_histogram(end)
    lam = {c: ms.critical_eigenvalue(c) for c in ms.CHI_LIST[:-1]}    # upstream: chi 1 to 2.1
    areas = run.areas()
    arch = _architecture(areas)
    rates = zero_shown(population_table(run.pop_rates(), areas))

    pyplot = plt()
    fig = pyplot.figure(figsize=(13, 9), constrained_layout=True)
    grid = fig.add_gridspec(2, 3, width_ratios=[2.2, 1., 1.])
    left = grid[0, 0].subgridspec(len(series), 1)
    for k, (c, t, x) in enumerate(series.values()):
        ax = fig.add_subplot(left[k])
        ax.plot(t * 1e-3, x, lw=0.6, color='k')
        ax.set_ylabel('V1 rate\n(spikes/s)', fontsize=7)
        ax.text(0.99, 0.85, f'χ = {c:g}', transform=ax.transAxes, ha='right', fontsize=8)
        if k == 0:
            ax.set_title('A  V1 rate in the runs', loc='left')
    ax.set_xlabel('time (s)')
    mid = grid[0, 1].subgridspec(len(ms.CHI_LIST), 1)
    for k, c in enumerate(ms.CHI_LIST):
        ax = fig.add_subplot(mid[k])
        counts, edges = hist[c]
        ax.bar(edges[:-1], counts, width=np.diff(edges), align='edge', color='k')
        ax.set_yticks([])
        ax.set_xlim(*ms.HISTOGRAM_RANGE)
        ax.text(0.5, 0.6, f'χ = {c:g}', transform=ax.transAxes, ha='left', fontsize=7)
        if k == 0:
            ax.set_title(f'B  theory: end states ({starts} starts)', loc='left', fontsize=9)
        if k < len(ms.CHI_LIST) - 1:
            ax.set_xticklabels([])
    ax.set_xlabel('mean activity (spikes/s)')
    ax = fig.add_subplot(grid[0, 2])
    chis = list(lam)
    ax.plot([lam[c] for c in chis], range(len(chis)), 'o', color='tab:blue')
    ax.axvline(1., color='k')
    ax.set_yticks(range(len(chis)))
    ax.set_yticklabels([f'{c:g}' for c in chis])
    ax.invert_yaxis()
    ax.set_xlim(0.4, 1.1)
    ax.set_xlabel('max Re(λ) (critical eigenvalue)')
    ax.set_ylabel('χ')
    ax.set_title('C  stability (< 1: stable)', loc='left')
    rate_matrix_panels(fig, grid[1, 1:].subgridspec(1, 1)[0], grid[1, 0], rates, areas, arch,
                       f'E  population rates of run {run.label[:16]} (χ = {chi(run):g})')
    fig.suptitle(f"{PAPER}, Fig. 4: metastability\nruns {ground.label}, {run.label}: {describe(run)}\n"
                 f"theory: full-scale mean field, {starts} random starts per χ (upstream 1000)", fontsize=9)
    data = {'label': run.label, 'ground_label': ground.label, 'scale': describe(run),
            'v1_rate': {state: {'chi': c, 'rate': x} for state, (c, _, x) in series.items()}, 'starts': starts,
            'theory_histogram': {f'{c:g}': {'counts': h[0], 'edges': h[1]} for c, h in hist.items()},
            'theory_mean_activity': {f'{c:g}': m for c, m in means.items()},
            'critical_eigenvalue': {f'{c:g}': v for c, v in lam.items()},
            'areas': areas, 'populations': POPULATION_LIST, 'rates': rates}
    return save(fig, data, out_dir, 'fig4_metastability')


#: environment variable naming the folder of Chu et al. 2014's data (CRCNS pvc-5, extracted)
CHU2014_ENV = 'MAM_CHU2014_DIR'
FIG6_RASTER_S = 3.                      # s of each phase's raster (upstream: 5-8 s, 392-395 s)


def fig6_comparison_exp_spiking_data(out_dir, ground: LabelledRun, run: LabelledRun) -> list:
    """Fig. 6 (upstream's Fig6_comparison_exp_spiking_data.py): A the spectrogram of Chu et
    al.'s V1 population rate, B, C rasters of a low- and a high-fluctuation phase, D the V1
    spectra of the 140-neuron subsample in the runs (upstream: chi 1, 1.9, 2.5; here the
    ground and the metastable state), E the experimental spectra per phase with the
    metastable run's, F the V1 rate histograms. The experimental data are read from the
    folder in $MAM_CHU2014_DIR (:mod:`mam_pynn.analysis.chu2014`); without it A-C, E and the
    experimental histograms say how to get them."""
    import os
    from ..analysis import chu2014
    folder = os.environ.get(CHU2014_ENV)
    sims = {state: (chi(r), *r.power_spectrum('V1', method='subsample'))      # a run too short for
            for state, r in (('ground_state', ground), ('metastable', run))    # a spectrum has none
            if r.has('power_spectrum', method='subsample', area='V1')}
    bins, hist_sim = run.rate_histogram('V1')
    exp = chu2014.process(folder, bins) if folder else None

    pyplot = plt()
    fig, axes = pyplot.subplots(2, 3, figsize=(13, 7.5), constrained_layout=True)
    ax = axes[0, 0]
    ax.set_title('A  spectrogram, V1 data (Chu et al. 2014)', loc='left')
    if exp is not None:
        f, t, Sxx = exp['spectrogram_freq'], exp['spectrogram_time'], exp['spectrogram_Sxx']
        low = f <= 30.
        from matplotlib.colors import LogNorm
        im = ax.pcolormesh(t, f[low], np.maximum(Sxx[low], 1e-3), norm=LogNorm(1e-1, 1e2), cmap='inferno')
        fig.colorbar(im, ax=ax, label='power ((spikes/s)²/Hz)')
        ax.set_xlabel('time (s)')
        ax.set_ylabel('frequency (Hz)')
        low_power = Sxx[f <= chu2014.F_CRIT].sum(axis=0)
        starts = {'low': t[low_power <= chu2014.POWER_THRESHOLD], 'high': t[low_power > chu2014.POWER_THRESHOLD]}
        order = np.argsort(exp['neuron_depths'], kind='stable')
        for ax, phase in zip(axes[0, 1:], ('low', 'high')):
            ax.set_title(f"{'BC'[phase == 'high']}  {phase}-fluctuation phase", loc='left')
            if not starts[phase].size:
                ax.text(0.5, 0.5, f'no {phase}-fluctuation segment', ha='center', transform=ax.transAxes)
                continue
            t0 = (starts[phase][0] - 0.5 * chu2014.SPECTROGRAM_NPERSEG / chu2014.FS) * 1e3
            for row, i in enumerate(order):
                x = exp['spike_data_1mm'][i]
                x = x[(x >= t0) & (x < t0 + FIG6_RASTER_S * 1e3)]
                ax.plot(x * 1e-3, np.full(x.size, row), '.', color='k', ms=1, rasterized=True)
            ax.set_xlabel('time (s)')
            ax.set_ylabel('neuron (by depth)')
    else:
        for ax in (axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 1]):
            ax.text(0.5, 0.5, f"experimental data not given:\nregister at CRCNS, download pvc-5,\n"
                    f"set {CHU2014_ENV}=<extracted folder>", ha='center', va='center',
                    transform=ax.transAxes, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, 1].set_title('B  low-fluctuation phase', loc='left')
        axes[0, 2].set_title('C  high-fluctuation phase', loc='left')
    ax = axes[1, 0]
    for k, (c, f, power) in enumerate(sims.values()):
        sel = (f > 0.) & (f <= 60.)
        ax.plot(f[sel], power[sel], color=('tab:red', 'k', 'tab:blue')[k % 3], label=f'sim, χ = {c:g}')
    ax.set_yscale('log')
    ax.set_xlabel('frequency (Hz)')
    ax.set_ylabel('power ((spikes/s)²/Hz)')
    if sims:
        ax.legend(fontsize=7)
    ax.set_title('D  V1 spectra, 140-neuron subsample', loc='left')
    if not sims:
        ax.text(0.5, 0.5, 'no spectrum: the runs are shorter than a Welch segment', ha='center',
                transform=ax.transAxes, fontsize=8)
    ax = axes[1, 1]
    ax.set_title('E  experiment vs sim', loc='left')
    if exp is not None:
        f = exp['power_spectrum_freq']
        sel = (f > 0.) & (f <= 60.)
        for phase, color in zip(chu2014.PHASES, ('tab:green', 'tab:purple', 'goldenrod')):
            ax.plot(f[sel], exp[f'power_spectrum_V1_{phase}'][sel], color=color, label=f'exp, {phase}')
        if 'metastable' in sims:
            _, f19, p19 = sims['metastable']
            sel = (f19 > 0.) & (f19 <= 60.)
            ax.plot(f19[sel], p19[sel], color='k', label=f'sim, χ = {chi(run):g}')
        ax.set_yscale('log')
        ax.set_xlabel('frequency (Hz)')
        ax.set_ylabel('power ((spikes/s)²/Hz)')
        ax.legend(fontsize=7)
    ax = axes[1, 2]
    width = np.diff(bins).mean() if bins.size > 1 else 1.
    ax.bar(bins, hist_sim, width=width, align='edge', color='0.6', label=f'sim, χ = {chi(run):g}')
    if exp is not None:
        for phase, color in zip(('low', 'high', 'full'), ('tab:green', 'tab:purple', 'goldenrod')):
            counts = exp[f'rate_histogram_{phase}']
            ax.step(bins[:-1], counts / max(counts.sum(), 1), where='post', color=color, label=f'exp, {phase}')
    ax.set_xlabel('rate (spikes/s)')
    ax.set_ylabel('fraction of neurons')
    ax.legend(fontsize=7)
    ax.set_title('F  V1 rate distributions', loc='left')
    fig.suptitle(f"{PAPER}, Fig. 6: comparison with spiking data of macaque V1 (Chu et al. 2014)\n"
                 f"runs {ground.label}, {run.label}: {describe(run)}"
                 + ('' if exp is not None else f'; experimental data: not given (${CHU2014_ENV})'), fontsize=9)
    data = {'label': run.label, 'ground_label': ground.label, 'scale': describe(run),
            'sim_spectra': {state: {'chi': c, 'freq': f, 'power': p} for state, (c, f, p) in sims.items()},
            'rate_histogram_bins': bins, 'rate_histogram_sim': hist_sim,
            'experiment': None if exp is None else {
                'folder': str(folder), 'neurons': len(exp['spike_data_1mm']),
                'power_spectrum_freq': exp['power_spectrum_freq'],
                **{f'power_spectrum_{ph}': exp[f'power_spectrum_V1_{ph}'] for ph in chu2014.PHASES},
                **{f'rate_histogram_{ph}': exp[f'rate_histogram_{ph}'] for ph in ('low', 'high', 'full')}}}
    return save(fig, data, out_dir, 'fig6_comparison_exp_spiking_data')


FIG7_WINDOW = (10750., 11250.)          # ms, upstream's panel A; the last 500 ms of a shorter run
FIG7_PAIRS = ('V1', 'V2', 'FEF')        # panel B: V1 with these


def fig7_temporal_hierarchy(out_dir, run: LabelledRun) -> list:
    """Fig. 7 (upstream's Fig7_temporal_hierarchy.py): A area rates / their mean in a 500 ms
    window, areas ordered by their first rise above twice the mean; B cross-correlation
    of V1 with V1, V2, FEF and their extremum times; C, D the extremum times of all area
    pairs (cross_correlation files; MDP left out) in area order and in the order of the
    temporal hierarchy fitted to them; G the hierarchy as a ranked plot (upstream: on the
    cortical surface). Added: H each area's intrinsic time scale (exponential fit to the
    rate autocorrelation) against its hierarchy value. Not drawn: upstream's E, F (spectrum
    and critical eigenvector of the mean-field theory)."""
    from ..analysis.timescales import (count_violations, intrinsic_timescale, peak_matrix,
                                       temporal_hierarchy)
    areas = run.areas()
    p = run.rate_time_series_parameters('full')
    rates = {a: run.rate_time_series(a) for a in areas}
    window = FIG7_WINDOW if p['t_max'] >= FIG7_WINDOW[1] else (max(p['t_min'], p['t_max'] - 500.), p['t_max'])
    i0, i1 = int(window[0] - p['t_min']), int(window[1] - p['t_min'])
    rise = {}
    for a in areas:
        x = rates[a][i0:i1]
        above = np.flatnonzero(x > 2. * x.mean())
        rise[a] = int(above[0]) if above.size else x.size - 1
    order_a = sorted(areas, key=lambda a: rise[a])          # stable: ties keep area order
    matrix = np.array([rates[a][i0:i1] / max(rates[a][i0:i1].mean(), 1e-12) for a in order_a])
    t = run.array('cross_correlation_time')
    times, _ = peak_matrix(lambda i, j: (t, run.cross_correlation(areas[i], areas[j])[1][0][1]), areas)
    h = temporal_hierarchy(times, areas)
    sorted_idx = [areas.index(a) for a in h['areas']]
    violations = count_violations(h['hierarchy'], times[np.ix_(sorted_idx, sorted_idx)])   # upstream's print
    tau = {}
    for a in areas:
        try:
            tau[a] = intrinsic_timescale(rates[a])[0]
        except (RuntimeError, ValueError):
            tau[a] = float('nan')

    pyplot = plt()
    fig = pyplot.figure(figsize=(13, 10.5), constrained_layout=True)
    grid = fig.add_gridspec(2, 3)
    ax = fig.add_subplot(grid[0, 0])
    vmax = min(12., max(2., float(np.nanpercentile(matrix, 99.5))))    # upstream's 12 where reached
    im = ax.pcolormesh(np.arange(i1 - i0 + 1) + window[0], np.arange(len(areas) + 1), matrix,
                       cmap='inferno', vmin=0., vmax=vmax, rasterized=True)
    ax.set_yticks(np.arange(len(areas)) + 0.5)
    ax.set_yticklabels(order_a, fontsize=5.5)
    ax.set_xlabel('time (ms)')
    fig.colorbar(im, ax=ax, label='rate / mean rate of the window')
    ax.set_title('A  area rates (ordered by first rise)', loc='left')
    ax = fig.add_subplot(grid[0, 1])
    pair = {}
    for k, b in enumerate(a for a in FIG7_PAIRS if a in areas):
        c = run.cross_correlation(FIG7_PAIRS[0], b)[1][0][1]
        tp = times[areas.index(FIG7_PAIRS[0]), areas.index(b)]
        color = str(0.25 * k)
        ax.plot(t, c, color=color, label=f'{FIG7_PAIRS[0]}-{b}')
        if np.isfinite(tp):
            ax.axvline(tp, color=color, ls='--', lw=0.8)
        pair[b] = {'cc': c[np.abs(t) <= 100.], 'extremum_ms': tp}
    ax.set_xlim(-100., 100.)
    ax.set_xlabel('time lag τ (ms)')
    ax.set_ylabel('C(τ) ((spikes/s)²)')
    ax.legend(fontsize=7)
    ax.set_title('B  cross-correlation, extremum (dashed)', loc='left')
    vlim = np.nanmax(np.abs(times)) or 1.
    for k, (idx, title) in enumerate(((list(range(len(areas))), 'C  extremum times, area order'),
                                      (sorted_idx, 'D  ordered by the hierarchy'))):
        ax = fig.add_subplot(grid[0, 2] if k == 0 else grid[1, 0])
        m = np.ma.masked_invalid(times[np.ix_(idx, idx)])
        im = ax.imshow(m, cmap='RdBu_r', vmin=-vlim, vmax=vlim)
        names = [areas[i] for i in idx]
        ax.set_xticks(range(len(idx)))
        ax.set_xticklabels(names, rotation=90, fontsize=5)
        ax.set_yticks(range(len(idx)))
        ax.set_yticklabels(names, fontsize=5)
        ax.set_xlabel('area B')
        ax.set_ylabel('area A')
        fig.colorbar(im, ax=ax, label='extremum time of C_AB (ms)', fraction=0.046)
        ax.set_title(title, loc='left')
    ax = fig.add_subplot(grid[1, 1])
    ax.barh(range(len(h['areas'])), h['hierarchy'], color=pyplot.get_cmap('inferno')(0.2 + 0.6 * h['hierarchy']))
    ax.set_yticks(range(len(h['areas'])))
    ax.set_yticklabels(h['areas'], fontsize=6)
    ax.set_xlabel('temporal hierarchy (0: leads, 1: follows)')
    ax.set_title(f'G  hierarchy, ranked ({violations:g} violations)', loc='left')
    ax = fig.add_subplot(grid[1, 2])
    hv = dict(zip(h['areas'], h['hierarchy']))
    xs = np.array([hv[a] for a in h['areas']])
    ys = np.array([tau[a] for a in h['areas']])
    ax.plot(xs, ys, 'o', color='0.3', ms=4)
    for a, x, y in zip(h['areas'], xs, ys):
        if np.isfinite(y):
            ax.annotate(a, (x, y), fontsize=5.5, xytext=(2, 2), textcoords='offset points')
    ok = np.isfinite(ys)
    rho = (float(np.corrcoef(np.argsort(np.argsort(xs[ok])), np.argsort(np.argsort(ys[ok])))[0, 1])
           if ok.sum() > 2 else float('nan'))
    ax.set_yscale('log')
    ax.set_xlabel('temporal hierarchy')
    ax.set_ylabel('intrinsic time scale τ (ms)')
    ax.set_title(f'H  (not in the paper) Spearman ρ = {rho:.2f}', loc='left')
    scale = describe(run)
    fig.suptitle(f"{PAPER}, Fig. 7: temporal hierarchy\nrun {run.label}: {scale}; "
                 f"surface maps (G) drawn as a ranked plot", fontsize=9)
    data = {'scale': scale, 'label': run.label, 'areas': areas, 'window_ms': window,
            'order_A': order_a, 'rate_over_mean': matrix, 'lags_ms': t[np.abs(t) <= 100.], 'pairs_B': pair,
            'extremum_times': times, 'hierarchy_areas': h['areas'], 'hierarchy': h['hierarchy'],
            'violations': violations, 'intrinsic_timescale_ms': tau, 'spearman_tau_hierarchy': rho}
    return save(fig, data, out_dir, 'fig7_temporal_hierarchy')


def chi(run: LabelledRun) -> float:
    """The run's cortico-cortical weight factor chi (custom_params; 1 if not given)."""
    params = run.custom_params()
    conn = (params.get('network_params') or {}).get('connection_params') or {}
    return float(conn.get('cc_weights_factor', params.get('cc_weights_factor')) or 1.)


def alluvial(ax, left: dict, right: dict, areas, names=('', ''), gap: float = 1.5, colors=None):
    """An alluvial diagram of two partitions {area: cluster} of ``areas``: a column of
    stacked blocks per partition (one unit of height per area, clusters in order of first
    area), a band per (left, right) pair of clusters as wide as the areas they share,
    coloured by the left cluster, the left blocks labelled with their areas."""
    import matplotlib.colors as mcolors
    areas = list(areas)
    order = {side: list(dict.fromkeys(part[a] for a in areas)) for side, part in (('L', left), ('R', right))}
    colors = colors or [mcolors.to_hex(c) for c in plt().get_cmap('tab10').colors]

    def blocks(side):
        y, out = 0., {}
        for c in order[side]:
            n = sum(1 for a in areas if (left if side == 'L' else right)[a] == c)
            out[c] = [y, y + n]
            y += n + gap
        return out
    lb, rb = blocks('L'), blocks('R')
    total = max(max(v[1] for v in lb.values()), max(v[1] for v in rb.values()))
    lpos = {c: v[0] for c, v in lb.items()}
    rpos = {c: v[0] for c, v in rb.items()}
    x = np.linspace(0.08, 0.92, 60)
    s = 3 * ((x - 0.08) / 0.84) ** 2 - 2 * ((x - 0.08) / 0.84) ** 3
    for lc in order['L']:
        for rc in order['R']:
            n = sum(1 for a in areas if left[a] == lc and right[a] == rc)
            if not n:
                continue
            y0, y1 = lpos[lc], rpos[rc]
            lpos[lc] += n
            rpos[rc] += n
            lo = y0 + (y1 - y0) * s
            ax.fill_between(x, total - lo, total - lo - n, color=colors[order['L'].index(lc) % len(colors)],
                            alpha=0.75, lw=0)
    for side, bl, x0 in (('L', lb, 0.), ('R', rb, 0.92)):
        for k, (c, (y0, y1)) in enumerate(bl.items()):
            ax.add_patch(plt().Rectangle((x0, total - y1), 0.08, y1 - y0, color='0.15'))
            ax.text(x0 + 0.04, total - 0.5 * (y0 + y1), str(c), color='w', ha='center', va='center',
                    fontsize=8, fontweight='bold')
            if side == 'L':
                members = [a for a in areas if left[a] == c]
                ax.text(-0.01, total - 0.5 * (y0 + y1), ' '.join(members), ha='right', va='center',
                        fontsize=5.5, wrap=True)
    ax.text(0.04, total + 0.8, names[0], ha='center', va='bottom', fontsize=8)
    ax.text(0.96, total + 0.8, names[1], ha='center', va='bottom', fontsize=8)
    ax.set_xlim(-0.45, 1.)
    ax.set_ylim(-0.5, total + 2.5)
    ax.axis('off')


def fig8_interactions(out_dir, run: LabelledRun, ground: LabelledRun) -> list:
    """Fig. 8 (upstream's Fig8_interactions.py): A-C the FC of the simulated synaptic input,
    of the simulated BOLD signal and of fMRI, areas ordered by the Louvain communities of A;
    D the similarity (Pearson r over all off-diagonal entries) of each run's synaptic-input
    FC to fMRI against chi (here the runs of the ground and the metastable state), the
    BOLD FC's (red) and the structural connectivity's (dashed); E, F alluvial diagrams:
    map-equation communities of the structural connectivity -> Louvain communities of
    A -> Louvain communities of the fMRI FC."""
    from ..analysis.interactions import (fc_correlation, louvain_communities, map_equation_communities,
                                         structural_connectivity, zero_diagonal)
    from ..analysis.statistics import load_experimental_fc
    from ..model import MultiAreaModel
    from ..theory.metastability import fig4_network_params
    areas = run.areas()
    sim = run.functional_connectivity('synaptic_input')
    if sim.shape != (len(areas), len(areas)):
        raise ValueError(f"{run.path('functional_connectivity', method='synaptic_input')}: "
                         f"{sim.shape} matrix for {len(areas)} areas")
    bold = run.functional_connectivity('bold_signal') if run.has('functional_connectivity',
                                                                 method='bold_signal') else None
    exp = load_experimental_fc(areas)
    part_sim = run.communities('synaptic_input')
    part_exp = louvain_communities(exp, areas)
    M = MultiAreaModel(fig4_network_params(1.))        # upstream's Fig. 8 network (full scale)
    full = list(M.area_list)
    struct_full = structural_connectivity(M)
    # self-links left out: the infomap of 2018 ignored them by default, infomap 2 counts them
    # (with them every area is its own module)
    membership, method = map_equation_communities(zero_diagonal(struct_full), full)
    part_struct = {a: membership[full.index(a)] for a in areas}
    idx = [full.index(a) for a in areas]
    struct = struct_full[np.ix_(idx, idx)]
    order = np.argsort([part_sim[a] for a in areas], kind='mergesort')
    ordered = [areas[i] for i in order]
    points = {}
    for state, r in (('ground_state', ground), ('metastable', run)):
        if r.has('functional_connectivity', method='synaptic_input'):
            points[state] = (chi(r), fc_correlation(r.functional_connectivity('synaptic_input'), exp))
    r_bold = fc_correlation(bold, exp) if bold is not None else float('nan')
    r_struct = fc_correlation(struct, exp)

    pyplot = plt()
    fig = pyplot.figure(figsize=(12, 13), constrained_layout=True)
    grid = fig.add_gridspec(3, 1, height_ratios=[1.25, 0.6, 1.5])
    top = grid[0].subgridspec(1, 3)
    for k, (m, title) in enumerate(((sim, 'A  simulated FC (synaptic input)'),
                                    (bold, 'B  simulated FC (BOLD)'), (exp, 'C  experimental FC (fMRI)'))):
        ax = fig.add_subplot(top[k])
        ax.set_title(title, loc='left')
        if m is None:
            ax.text(0.5, 0.5, 'not available:\nthe run is too short for the BOLD FC\n'
                    '(upstream discards the first 5 s)', ha='center', va='center', transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        shown = np.array(m, float)[np.ix_(order, order)]
        np.fill_diagonal(shown, 0.)
        im = ax.imshow(shown, cmap='RdBu_r', vmin=-1, vmax=1)
        ax.set_xticks(range(len(areas)))
        ax.set_xticklabels(ordered, rotation=90, fontsize=5.5)
        ax.set_yticks(range(len(areas)))
        ax.set_yticklabels(ordered, fontsize=5.5)
        fig.colorbar(im, ax=ax, label='FC (Pearson correlation)', fraction=0.046, shrink=0.8)
    ax = fig.add_subplot(grid[1])
    for label, (x, y) in points.items():
        ax.plot(x, y, '^' if x == 1. else 'o', color='k', ms=7)
    if np.isfinite(r_bold):
        ax.plot(chi(run), r_bold, 'o', color='tab:red', ms=7, label='BOLD FC vs fMRI')
    ax.axhline(r_struct, ls='--', color='k', label='structural connectivity vs fMRI')
    ax.plot([], [], 'o', color='k', label='synaptic-input FC vs fMRI (▲ ground state)')
    ax.set_xlim(0.9, 2.7)
    ax.set_ylim(min(-0.1, *(y - 0.05 for _, y in points.values())), 0.6)    # upstream's range
    ax.set_xlabel('cortico-cortical weight factor χ')
    ax.set_ylabel('r (Pearson) with fMRI FC')
    ax.legend(loc='upper right', fontsize=7)
    ax.set_title(f'D  similarity to fMRI ({len(points)} runs here; the paper: 11 values of χ)', loc='left')
    bottom = grid[2].subgridspec(1, 2)
    ax = fig.add_subplot(bottom[0])
    alluvial(ax, part_struct, part_sim, areas, names=('structure (map eq.)', 'simulated FC (Louvain)'))
    ax.set_title('E  structural -> simulated FC communities', loc='left')
    ax = fig.add_subplot(bottom[1])
    alluvial(ax, part_sim, part_exp, areas, names=('simulated FC', 'fMRI FC (Louvain)'))
    ax.set_title('F  simulated -> experimental FC communities', loc='left')
    scale = describe(run)
    note = ': a down-scaled run is not expected to match fMRI' if scale.startswith('DOWN') else ''
    fig.suptitle(f"{PAPER}, Fig. 8: interactions between areas\nrun {run.label}: {scale}{note}; "
                 f"structure: {method}", fontsize=9)
    data = {'scale': scale, 'label': run.label, 'areas': areas, 'order': ordered, 'signal': 'synaptic_input',
            'fc_sim': sim, 'fc_bold': bold, 'fc_exp': exp, 'structural_connectivity': struct,
            'similarity_exp': {state: {'chi': x, 'r': y} for state, (x, y) in points.items()},
            'similarity_bold': r_bold, 'similarity_struct': r_struct, 'structure_method': method,
            'communities': {'structure': part_struct, 'sim': part_sim, 'exp': part_exp}}
    return save(fig, data, out_dir, 'fig8_interactions')


FIG9_LAYERS = ('23', '4', '5', '6')
FIG9_CLASSES = (('HL', 'high to low type (HL)'), ('HZ', 'horizontal (HZ)'), ('LH', 'low to high type (LH)'))
FIG9_MAX_LW = 7.                        # points, the widest channel of all six diagrams
FIG9_K_BINS = np.logspace(-5., 0., 51)   # upstream's relative in-degree bins (10^-5 ... 10^-0.1), and [0.79, 1]


def granger_table(run: LabelledRun, areas) -> dict:
    """{target area: {target pop: {source area: {source pop: (gc, p)}}}} of the run's
    granger_causality files ({} if it has none: they are written only on request)."""
    return {a: {p: run.granger_causality(a, p) for p in POPULATION_LIST
                if run.has('granger_causality', area=a, pop=p)} for a in areas}


def laminar_channels(gc: dict, arch: dict) -> tuple[dict, dict]:
    """Fig. 9 A: per structural gradient, the significant (p < 0.05) channels source pop ->
    target pop counted over the area pairs (upstream's Fig9_significant_channels.py), the
    number of ordered area pairs of the gradient and the fraction of them with each channel;
    and the channels themselves (:func:`..analysis.granger.significant_channels`)."""
    from collections import Counter
    from ..analysis.granger import gradient, significant_channels
    areas = [a for a in gc if gc[a]]
    channels = significant_channels({a: gc[a] for a in areas}, arch, areas)
    out = {}
    for g, pairs in channels.items():
        n = sum(gradient(t, s, arch) == g for t in areas for s in areas)
        counts = Counter(map(tuple, pairs))
        out[g] = {'area_pairs': n, 'channels': [[sp, tp, k, k / n] for (sp, tp), k in sorted(counts.items())]}
    return out, channels


def fig9_model():
    """Upstream's Fig9_path_analysis.py model: full scale, chi = 1.9 (Fig. 4's
    parameters), with its theory; its K (K_stable) is also that of Fig9_laminar_interactions.py."""
    from ..model import MultiAreaModel
    from ..theory.metastability import fig4_network_params
    return MultiAreaModel(fig4_network_params(1.9), theory=True)


def la_state_paths(run: LabelledRun, M) -> dict:
    """Fig. 9 B (upstream's Fig9_path_analysis.py): the shortest population paths of
    ``M`` (:func:`fig9_model`) on the gain at the run's rates of the low-activity phase
    (pop_rates_LA_state.json), per area pair the population pair joined, counted per
    structural gradient. A run without that file (shorter than 3.6 s) gives its mean rates
    (pop_rates.json) instead, and 'rates' says so."""
    from ..anatomy import load_raw_data, process_raw_data
    from ..theory.metastability import fig4_network_params
    from ..theory.paths import path_gain_matrix
    from .anatomy import laminar_path_data
    if run.has('pop_rates_LA_state'):
        key, table = 'pop_rates_LA_state', run.pop_rates_LA_state()
        source = "low-activity rates 3.5-3.6 s (pop_rates_LA_state.json), upstream's"
    else:
        key, table = 'pop_rates', run.pop_rates()
        source = ("run's mean rates (pop_rates.json), NOT upstream's low-activity rates "
                  "3.5-3.6 s (pop_rates_LA_state.json; the run is shorter)")
    rates = np.array([table.get(a, {}).get(p, np.nan) for a, p in
                      (x.split('-', 1) for x in M.structure_vec)], float)
    if not np.all(np.isfinite(rates)):
        raise ValueError(f"{run.path(key)}: {int(np.sum(~np.isfinite(rates)))} of "
                         f"{rates.size} populations without a rate (the path analysis needs all 32 areas)")
    d = laminar_path_data(M, process_raw_data(load_raw_data()), gain=path_gain_matrix(M.theory, rates))
    return {'params': fig4_network_params(1.9), 'rates': source, 'leading_eigenvalue': d['leading_eigenvalue'],
            'pair_counts': {g: d['pair_counts'][g] for g, _ in FIG9_CLASSES},
            'area_pairs': {g: sum(r['arch_class'] == g for r in d['paths']) for g, _ in FIG9_CLASSES}}


def laminar_diagram(ax, channels, width: float, title: str) -> None:
    """Upstream's Fig. 9 diagram: the source area's E populations (left, layers top to
    bottom), the target area's E and I (right), one arrow per channel [source, target,
    count, fraction], ``width`` points per unit of fraction."""
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path as MPath
    y = {layer: 3 - k for k, layer in enumerate(FIG9_LAYERS)}
    xs, xe, xi = 0., 1., 1.25
    channels = [c for c in channels if c[0].endswith('E')]    # sources drawn: E (upstream's too)
    for sp, tp, _, frac in sorted(channels, key=lambda c: c[3]):
        x1 = xe if tp.endswith('E') else xi
        y0, y1 = y[sp[:-1]], y[tp[:-1]]
        xm = 0.5 * (xs + x1)
        path = MPath([(xs + 0.06, y0), (xm, y0), (xm, y1), (x1 - 0.07, y1)],
                     [MPath.MOVETO, MPath.CURVE4, MPath.CURVE4, MPath.CURVE4])
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle='-|>', mutation_scale=6 + width * frac,
                                     lw=max(0.3, width * frac), color='0.45', alpha=0.8, zorder=1))
    for layer, yy in y.items():
        ax.plot(xs, yy, '^', ms=10, color='#4a72b0', mec='k', mew=0.5, zorder=3)
        ax.plot(xe, yy, '^', ms=10, color='#4a72b0', mec='k', mew=0.5, zorder=3)
        ax.plot(xi, yy, 'o', ms=9, color='#e0605e', mec='k', mew=0.5, zorder=3)
        ax.text(xs - 0.1, yy, layer.replace('23', '2/3') + 'E', ha='right', va='center', fontsize=8)
        ax.text(xi + 0.1, yy, layer.replace('23', '2/3'), ha='left', va='center', fontsize=8)
    if not channels:
        ax.text(0.5 * (xs + xe), 1.5, 'no significant channel', ha='center', va='center', fontsize=8,
                color='tab:red', bbox={'fc': 'w', 'ec': 'none'})
    ax.text(xs, 3.55, 'source', ha='center', fontsize=7)
    ax.text(0.5 * (xe + xi), 3.55, 'target E  I', ha='center', fontsize=7)
    ax.set_xlim(-0.45, 1.6)
    ax.set_ylim(-0.5, 3.9)
    ax.axis('off')
    ax.set_title(title, loc='left', fontsize=9)


def fig9_laminar_interactions(out_dir, run: LabelledRun) -> list:
    """Fig. 9 (upstream's Fig9_laminar_interactions.py, drawn in matplotlib instead of
    TeX): A the significant Granger channels between the populations of two areas per
    structural gradient (arrow width: the fraction of the gradient's area pairs with that
    channel significant), B the population pairs joined by the shortest paths of the
    gain at the low-activity rates (width: fraction of area pairs), C the share of
    significant source-target pairs, D the share of distinct channels onto E and I, E the
    histograms of the tested pairs' relative in-degrees (K / the target's tested total, of
    the full-scale model), significant ones dark, local ones coloured. A run without
    Granger files gets one line saying how to write them."""
    from ..analysis.granger import indegree_table, significant_fraction, target_balance
    areas = run.areas()
    gc = granger_table(run, areas)
    scale = describe(run)
    pyplot = plt()
    data = {'scale': scale, 'label': run.label, 'areas': areas}
    if not any(gc.values()):
        msg = ("the run has no Analysis/granger_causality/granger_causality_<area>_<pop>.json: write them "
               "with `mam preprocess RUN_DIR --out DATA_PATH --granger` (or upstream's compute_granger_causality.py)")
        fig = pyplot.figure(figsize=(11, 2))
        fig.text(0.5, 0.5, f"{PAPER}, Fig. 9: laminar interactions\nrun {run.label}: {msg}", ha='center',
                 va='center', fontsize=8, wrap=True)
        print(f"fig9_laminar_interactions: {run.root}: {msg}", flush=True)
        return save(fig, {**data, 'missing': msg}, out_dir, 'fig9_laminar_interactions')
    arch = _architecture(areas)
    lam, channels = laminar_channels(gc, arch)
    M = fig9_model()
    try:
        paths, why = la_state_paths(run, M), None
    except (FileNotFoundError, ValueError) as err:
        paths, why = None, str(err)
    frac = significant_fraction({a: gc[a] for a in areas if gc[a]}, arch)
    balance = target_balance(channels)
    rows = indegree_table({a: gc[a] for a in areas if gc[a]}, M.K)
    hist = {}
    for key, local in (('areal', False), ('local', True)):
        k = np.array([r['K'] for r in rows if r['local'] == local])
        sig = np.array([r['K'] for r in rows if r['local'] == local and r['p'] < 0.05])
        hist[key] = {'all': np.histogram(k, FIG9_K_BINS)[0], 'significant': np.histogram(sig, FIG9_K_BINS)[0],
                     'mean_all': float(k.mean()) if k.size else float('nan'),
                     'mean_significant': float(sig.mean()) if sig.size else float('nan')}
    path_fracs = ([] if paths is None else
                  [{g: [[sp, tp, k, k / paths['area_pairs'][g]] for sp, tp, k in paths['pair_counts'][g]]
                    for g, _ in FIG9_CLASSES}])
    top = max([c[3] for g, _ in FIG9_CLASSES for c in lam[g]['channels']] +
              [c[3] for p in path_fracs for g in p for c in p[g]] + [1e-12])
    width = FIG9_MAX_LW / top

    fig = pyplot.figure(figsize=(12, 10), constrained_layout=True)
    grid = fig.add_gridspec(3, 3, height_ratios=[1, 1, 0.8])
    for k, (g, name) in enumerate(FIG9_CLASSES):
        laminar_diagram(fig.add_subplot(grid[0, k]), lam[g]['channels'], width,
                        f"{'A  ' if k == 0 else ''}{name}: {lam[g]['area_pairs']} area pairs")
        ax = fig.add_subplot(grid[1, k])
        if paths is None:
            ax.axis('off')
            if k == 0:
                ax.set_title('B  paths of the gain at low activity', loc='left', fontsize=9)
                ax.text(0., 0.5, f"not available: {why}", transform=ax.transAxes, fontsize=7, wrap=True)
        else:
            laminar_diagram(ax, path_fracs[0][g], width,
                            f"{'B  ' if k == 0 else ''}paths, {name}: {paths['area_pairs'][g]} area pairs")

    ax = fig.add_subplot(grid[2, 0])
    order = ('all', 'HL', 'HZ', 'LH', 'same-area')
    pct = [100. * frac[g]['significant'] / frac[g]['total'] if frac[g]['total'] else np.nan for g in order]
    ax.bar(range(5), pct, color=['k', '0.2', '0.2', '0.2', '#8c6bb1'])
    ax.set_xticks(range(5))
    ax.set_xticklabels(['Σ', 'HL', 'HZ', 'LH', 'local'])
    ax.set_ylabel('significant connections (%)')
    ax.set_title('C  significant source-target pairs', loc='left', fontsize=9)
    ax = fig.add_subplot(grid[2, 1])
    groups = ('all', 'HL', 'HZ', 'LH')
    for j, (pole, color) in enumerate((('E', '#4a72b0'), ('I', '#e0605e'))):
        ax.bar(np.arange(4) + 5 * j, [balance[g][pole] for g in groups], color=color, edgecolor='w')
        ax.text(1.5 + 5 * j, 1.02, f'→ {pole}', ha='center', fontsize=9)
    ax.set_xticks(list(range(4)) + list(range(5, 9)))
    ax.set_xticklabels(['Σ', 'HL', 'HZ', 'LH'] * 2, fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel('relative proportion')
    if not np.isfinite(balance['all']['E']):
        ax.text(4., 0.5, 'no significant channel between areas', ha='center', fontsize=8, color='tab:red')
    ax.set_title('D  distinct channels onto E and I', loc='left', fontsize=9)
    ax = fig.add_subplot(grid[2, 2])
    peak = 1
    for key, part, color, label in (('areal', 'all', '0.7', 'other area'), ('local', 'all', '#f4a6a0', 'same area'),
                                    ('local', 'significant', '#8c6bb1', 'same area, significant'),
                                    ('areal', 'significant', '0.1', 'other area, significant')):
        ax.stairs(hist[key][part], FIG9_K_BINS, fill=True, color=color, label=label)
        peak = max(peak, int(hist[key][part].max()))
    for key, part, color in (('areal', 'all', '0.7'), ('areal', 'significant', '0.1'),
                             ('local', 'all', '#f4a6a0'), ('local', 'significant', '#8c6bb1')):
        ax.plot(hist[key][f'mean_{part}'], 1.1 * peak, 'v', color=color, ms=7)
    ax.set_xscale('log')
    ax.set_ylim(0, 1.2 * peak)
    ax.set_xlabel('relative in-degree (▼ means)')
    ax.set_ylabel('count (tested pairs)')
    ax.legend(fontsize=6, loc='upper left', frameon=False)
    ax.set_title('E  relative in-degree', loc='left', fontsize=9)
    fig.suptitle(f"{PAPER}, Fig. 9: laminar interactions\nrun {run.label}: {scale}; "
                 f"{sum(len(v) for v in gc.values())} target populations with Granger files (VAR order 25, "
                 f"Levene p < 0.05)\narrow width ∝ fraction of the gradient's area pairs with the channel "
                 f"(widest: {top:.3g} = {FIG9_MAX_LW:g} pt, the same scale in all six diagrams)"
                 + (f"\nB: the gain at the {paths['rates']}" if paths else ''), fontsize=9)
    data.update({'significant_channels': lam, 'paths': paths, 'paths_missing': why,
                 'significant_fraction': frac, 'target_balance': balance, 'width_pt_per_fraction': width,
                 'relative_indegree_bins': FIG9_K_BINS, 'relative_indegree_hist': hist})
    return save(fig, data, out_dir, 'fig9_laminar_interactions')


#: figure -> (function, {argument: state it reads})
FIGURES = {'fig2_bistability': (fig2_bistability, {'la': 'bistability_LA', 'ha': 'bistability_HA',
                                                   'la_post': 'ground_state'}),
           'fig3_ground_state': (fig3_ground_state, {'stats': 'ground_state', 'spikes': 'ground_state'}),
           'fig4_metastability': (fig4_metastability, {'ground': 'ground_state', 'run': 'metastable'}),
           'fig5_metastable': (fig5_metastable, {'stats': 'metastable', 'spikes': 'metastable_spikes'}),
           'fig6_comparison_exp_spiking_data': (fig6_comparison_exp_spiking_data,
                                                {'ground': 'ground_state', 'run': 'metastable'}),
           'fig7_temporal_hierarchy': (fig7_temporal_hierarchy, {'run': 'metastable'}),
           'fig8_interactions': (fig8_interactions, {'run': 'metastable', 'ground': 'ground_state'}),
           'fig9_laminar_interactions': (fig9_laminar_interactions, {'run': 'metastable'})}


def readers(data_path, original: bool = False, overrides: dict | None = None) -> dict:
    """{state: LabelledRun} under ``data_path``: upstream's published labels (``original``)
    or our runs' names, each overridable (``overrides`` {state: label})."""
    return {state: LabelledRun(data_path, label) for state, label in labels(original, overrides).items()}
