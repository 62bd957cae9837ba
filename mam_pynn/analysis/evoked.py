"""The response each area gives to a transient stimulus (``sim_params.stimulus``), and its
latency: the classic "a pulse into V1 travels up the hierarchy" experiment.

Per area, the rate (all its neurons, ``bin_ms`` bins) around each pulse of the first
stimulus, averaged over its pulses (trials: ``repeat``); the baseline is the
``baseline_ms`` before each onset, the latency the first bin after the onset whose
trial-averaged rate exceeds baseline mean + ``threshold_sd`` baseline SDs in
``consecutive`` bins in a row (NaN: no response within the pulse and ``after_ms``).
"""
from __future__ import annotations

import numpy as np

from ..faults import reading
from ..io import read_yaml
from .spikes import SpikeFile, read_run_info

BIN_MS, BASELINE_MS, AFTER_MS, THRESHOLD_SD, CONSECUTIVE = 2., 100., 100., 3., 2


def run_stimulus(run_dir, info=None) -> dict | None:
    """The first stimulus of the run's config (config.yaml), normalised, or None."""
    from pathlib import Path
    from ..stimulus import check_stimuli
    path = Path(run_dir) / 'config.yaml'
    with reading(path):
        stimuli = ((read_yaml(path) or {}).get('sim_params') or {}).get('stimulus') or []
    if not stimuli:
        return None
    info = info or read_run_info(run_dir)
    structure = {a: [p.name for p in pops] for a, pops in info.populations.items()}
    return check_stimuli(stimuli[:1], structure)[0]


def hierarchy_levels(areas) -> dict:
    """{area: hierarchy level} of the processed anatomy (levels from the raw data,
    completed for MIP and MDP as upstream does)."""
    from ..anatomy import load_raw_data, process_raw_data
    levels = process_raw_data(load_raw_data())['hierarchy_completed']
    return {a: float(levels[a]) for a in areas}


def latency(rate: np.ndarray, time_ms: np.ndarray, onset: float, mean: float, sd: float,
            threshold_sd: float = THRESHOLD_SD, consecutive: int = CONSECUTIVE) -> float:
    """Start (ms after ``onset``) of the first run of ``consecutive`` bins above
    mean + threshold_sd * sd at or after the onset; NaN if none."""
    above = (rate > mean + threshold_sd * sd) & (time_ms >= onset)
    run = np.convolve(above.astype(int), np.ones(consecutive, int), 'valid') == consecutive
    hits = np.flatnonzero(run)
    return float(time_ms[hits[0]] - onset) if hits.size else float('nan')


def evoked_response(run_dir, bin_ms: float = BIN_MS, baseline_ms: float = BASELINE_MS,
                    after_ms: float = AFTER_MS) -> dict:
    """Each recorded area's rate around the run's first stimulus, baseline and latency."""
    from ..stimulus import onsets
    info = read_run_info(run_dir)
    stim = run_stimulus(run_dir, info)
    if stim is None:
        raise ValueError(f"{run_dir}: the run has no sim_params.stimulus")
    duration = stim['duration']
    # trials whose whole window was recorded
    trials = [t for t in onsets(stim) if t - baseline_ms >= info.t_record_start
              and t + duration + after_ms <= info.t_sim]
    if not trials:
        raise ValueError(f"{run_dir}: no pulse of the stimulus has {baseline_ms:g} ms of recorded "
                         f"baseline before and {after_ms:g} ms after it (recording "
                         f"{info.t_record_start:g}-{info.t_sim:g} ms, pulses at {onsets(stim)} ms)")
    rel = np.arange(-baseline_ms, duration + after_ms + 1e-9, bin_ms)  # edges, relative to onset
    time_ms = rel[:-1]
    sf = SpikeFile(info.spike_file)
    areas = [a for a in info.areas if a in sf.areas]
    rates, base, lat = {}, {}, {}
    for area in areas:
        _, times, _ = sf.read_area(area)
        counts = sum(np.histogram(times, t + rel)[0] for t in trials)
        rate = counts / len(trials) / info.area_size(area) / (bin_ms * 1e-3)
        pre = rate[time_ms + bin_ms <= 0]
        rates[area], base[area] = rate, (float(pre.mean()), float(pre.std()))
        lat[area] = latency(rate, time_ms, 0., *base[area])
    with reading(info.run_dir / 'config.yaml'):
        net = read_yaml(info.run_dir / 'config.yaml').get('network_params') or {}
    scale = (f"N_scaling {net.get('N_scaling', 1.):g}, K_scaling {net.get('K_scaling', 1.):g}, "
             f"{len(info.areas)} areas simulated")
    return {'areas': areas, 'time_ms': time_ms, 'scale': scale, 'bin_ms': bin_ms, 'onset_ms': 0.,
            'stop_ms': duration, 'trials_ms': trials, 'stimulus': stim, 'rates': rates,
            'baseline_mean': {a: base[a][0] for a in areas},
            'baseline_sd': {a: base[a][1] for a in areas}, 'latency_ms': lat,
            'hierarchy': hierarchy_levels(areas),
            'definition': f"latency: first {CONSECUTIVE} consecutive {bin_ms:g} ms bins of the "
                          f"area rate above baseline mean + {THRESHOLD_SD:g} SD "
                          f"(baseline: the {baseline_ms:g} ms before the onset), rates averaged over "
                          f"{len(trials)} pulse{'s' if len(trials) > 1 else ''}"}


def figure_evoked(data: dict, figure_dir) -> list:
    """Evoked rate per area (relative to baseline), and latency vs hierarchy level:
    evoked_response.png/.pdf and .json (every plotted number) in ``figure_dir``."""
    from ..figures.common import plt as pyplot, save
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    areas, t = data['areas'], data['time_ms'] - data['onset_ms']
    levels = data['hierarchy']
    cmap = plt.get_cmap('viridis')
    lo, hi = min(levels.values()), max(levels.values())
    for area in sorted(areas, key=lambda x: levels[x]):
        colour = cmap((levels[area] - lo) / max(hi - lo, 1e-9))
        a.plot(t, data['rates'][area] - data['baseline_mean'][area], color=colour, lw=0.8)
    a.axvspan(0, data['stop_ms'] - data['onset_ms'], color='0.9', zorder=0, label='stimulus')
    a.set_xlabel('time after stimulus onset (ms)')
    a.set_ylabel('area rate - baseline (spikes/s)')
    a.legend(loc='upper right')
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(lo, hi))
    fig.colorbar(sm, ax=a, label='hierarchy level')
    a.set_title('A  evoked response per area')
    lat = np.array([data['latency_ms'][x] for x in areas])
    lev = np.array([levels[x] for x in areas])
    ok = np.isfinite(lat)
    b.plot(lev[ok], lat[ok], 'o', color='C0')
    for x, y, name in zip(lev[ok], lat[ok], np.array(areas)[ok]):
        b.annotate(name, (x, y), fontsize=7, xytext=(3, 2), textcoords='offset points')
    b.set_xlabel('hierarchy level (0 = V1 ... 1)')
    b.set_ylabel('latency (ms)')
    b.set_title(f'B  latency ({ok.sum()} of {len(areas)} areas respond)')
    stim = data['stimulus']
    what = (f"{stim['kind']} {stim.get('rate', stim.get('amplitude'))}"
            f"{' spikes/s' if stim['kind'] == 'poisson' else ' pA'} into {', '.join('-'.join(t) for t in stim['targets'])}")
    fig.suptitle(f"Stimulus {stim['label']}: {what}, {stim['duration']:g} ms pulses at "
                 f"{', '.join(f'{t:g}' for t in data['trials_ms'][:4])}{' ...' if len(data['trials_ms']) > 4 else ''} ms\n"
                 f"{data['definition']}; {data['scale']}", fontsize=9)
    return save(fig, data, figure_dir, 'evoked_response')


def evoked_figures(run_dir, figure_dir) -> list:
    """The evoked-response figure of a run with a stimulus (``mam analyze``); [] without."""
    from pathlib import Path
    if run_stimulus(run_dir) is None:
        return []
    return [p for p in figure_evoked(evoked_response(run_dir), figure_dir)
            if Path(p).suffix == '.png']
