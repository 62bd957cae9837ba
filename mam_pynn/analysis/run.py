"""``analyze_run``: from a finished run directory to statistics and figures.

Results go to ``RUN_DIR/analysis/`` (``statistics.json`` for scalars per
population and area, ``series.npz`` for time series, spectra, per-neuron values
and FC matrices, ``manifest.json`` last) and figures to ``RUN_DIR/figures/``.
A second call with the same spike file and parameters reloads the results
instead of recomputing them.

The analysed time ends where the run really ended (``summary.json``'s
``t_sim_ms``): a run stopped early by the rate watchdog is analysed up to the
stop, with a warning and its status recorded in ``statistics.json``.
"""
from __future__ import annotations

import json
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

from mam_pynn.data import DataFileError
from mam_pynn.io import atomic_path, atomic_write_json, make_dir
from mam_pynn.params import content_hash

from . import statistics as st
from mam_pynn.mpi import available_cpus, available_memory_bytes

from .spikes import (RunDirError, RunInfo, SpikeFile, population_spikes, read_run_info, recorded_only,
                     sample_neurons)

#: bump when a definition changes, so stored results are recomputed
ANALYSIS_VERSION = 2   # 2: spectrum segment recorded, cc bootstrap SE, synaptic-input FC

DEFAULT_PARAMS = {
    't_min': 500.,            # ms, skip the initial transient
    't_max': None,            # ms, default: end of the simulation
    't_ref': None,            # ms, LvR's refractory correction R; default: the neurons' t_ref
    'bin_ms': 1.,             # histograms, synchrony, spectra, correlations
    'sigma_ms': 5.,           # Gaussian kernel of the smoothed rates (and FC)
    'cc_neurons': 500,        # active neurons sampled per population for correlations
    'cc_sample': 'random',    # 'random': cc_neurons drawn; 'upstream': the first <= 2000 by id
    'spectrum_method': 'welch',   # 'welch': half-overlapping segments; 'upstream': 1024/1000
    'spectrum_len_segment': None,  # samples; None: 1024, shorter for short windows (recorded)
    'spectrum_overlap': 0.5,
    'seed': 0,                # neuron sampling
}
# a worker's peak memory over the largest area's spike data (64-bit ids and times),
# measured on the full-scale synthetic run (benchmarks/bench_analysis.py)
AREA_MEMORY_FACTOR = 3.0
PARALLEL_MIN_BYTES = 16 * 2 ** 20
UPSTREAM_CC_NEURONS = 2000   # upstream's correlation sample: the first active neurons by id
STATS_FILE = 'statistics.json'
SERIES_FILE = 'series.npz'
MANIFEST_FILE = 'manifest.json'


def _log(verbose: bool, msg: str) -> None:
    if verbose:
        print(msg, file=sys.stderr, flush=True)


def analysis_params(info: RunInfo, **overrides) -> dict:
    """Defaults updated with ``overrides`` (unknown names rejected, None means default),
    window resolved and every value checked (ValueError naming the parameter)."""
    unknown = set(overrides) - set(DEFAULT_PARAMS)
    if unknown:
        raise KeyError(f"unknown analysis parameter(s) {sorted(unknown)}; valid: {', '.join(DEFAULT_PARAMS)}")
    p = {**DEFAULT_PARAMS, **{k: v for k, v in overrides.items() if v is not None}}
    p['t_max'] = info.t_sim if p['t_max'] is None else float(p['t_max'])
    p['t_ref'] = info.t_ref if p['t_ref'] is None else float(p['t_ref'])
    p['t_min'] = float(p['t_min'])
    if overrides.get('t_min') is None and p['t_min'] >= p['t_max'] > info.t_record_start:
        # a run shorter than the default transient: analyse all of it rather than nothing
        warnings.warn(f"the run ({info.t_sim:g} ms) is not longer than the default transient "
                      f"t_min = {p['t_min']:g} ms: analysing it from the recording start "
                      f"({info.t_record_start:g} ms), transient included", stacklevel=2)
        p['t_min'] = float(info.t_record_start)
    if p['t_min'] >= p['t_max']:
        raise ValueError(f"t_min={p['t_min']} ms must be below t_max={p['t_max']} ms "
                         f"(the run has t_sim={info.t_sim} ms)")
    info.check_window(p['t_min'], p['t_max'])
    checks = {'bin_ms': (float, lambda v: v > 0, '> 0'), 'sigma_ms': (float, lambda v: v > 0, '> 0'),
              't_ref': (float, lambda v: v >= 0, '>= 0'), 'cc_neurons': (int, lambda v: v >= 2, '>= 2'),
              'spectrum_len_segment': (int, lambda v: v >= 4, '>= 4 (or null)'),
              'spectrum_overlap': (float, lambda v: 0 < v < 1, 'strictly between 0 and 1'),
              'seed': (int, lambda v: v >= 0, '>= 0')}
    choices = {'cc_sample': ('random', 'upstream'), 'spectrum_method': ('welch', 'upstream')}
    for name, allowed in choices.items():
        if p[name] not in allowed:
            raise ValueError(f"analysis parameter {name}={p[name]!r} must be one of {', '.join(allowed)}")
    for name, (kind, ok, rule) in checks.items():
        if name == 'spectrum_len_segment' and p[name] is None:
            continue
        try:
            value = kind(p[name])
            valid = np.isfinite(value) and value == p[name] and ok(value)
        except (TypeError, ValueError):
            valid = False
        if not valid:
            what = 'an integer' if kind is int else 'a number'
            raise ValueError(f"analysis parameter {name}={p[name]!r} must be {what} {rule}")
        p[name] = value
    return p


def cache_key(info: RunInfo, params: dict) -> str:
    """Identifies a result: spike file (size, mtime), how long the run went, layout,
    parameters, definitions."""
    stat = info.spike_file.stat()
    return content_hash({'spikes': [stat.st_size, stat.st_mtime_ns],
                         'run': [info.t_sim, info.status], 'populations':
                         {a: [[p.name, p.first_id, p.size] for p in ps] for a, ps in info.populations.items()},
                         'params': params, 'version': ANALYSIS_VERSION})


def area_statistics(info: RunInfo, params: dict, area: str) -> dict:
    """Everything one area's spikes give: its populations' and its own scalars, rate
    series and single-neuron values, one population at a time. Areas are independent
    (see :func:`compute_statistics`)."""
    t_min, t_max, bin_ms = params['t_min'], params['t_max'], params['bin_ms']
    duration = t_max - t_min
    ids, times, sorting = SpikeFile(info.spike_file).read_area(area, t_min, t_max)
    pops_out, labels, sizes, series = {}, [], [], []
    per_neuron = {'rate': [], 'cv_isi': [], 'lvr': []}
    counts = np.zeros(st.n_bins(t_min, t_max, bin_ms), np.int64)   # the area's histogram
    for ps in population_spikes(info.populations[area], ids, times, t_min, t_max, sorting):
        rates = st.neuron_rates(ps.neuron, ps.size, duration)
        cv, cv_upstream, lv = st.irregularity(ps.neuron, ps.times, ps.size, t_ref=params['t_ref'])
        hist = st.spike_histogram(ps.times, t_min, t_max, bin_ms)
        counts += hist
        if params['cc_sample'] == 'upstream':   # upstream: the first <= 2000 active neurons by id
            sample = np.unique(ps.neuron)[:UPSTREAM_CC_NEURONS]
        else:
            sample = sample_neurons(ps, params['cc_neurons'], seed=params['seed'])
        cc = st.correlation_matrix(st.count_matrix(ps.neuron, ps.times, sample, t_min, t_max, bin_ms))
        pops_out[ps.population.name] = {
            'size': ps.size, 'spikes': len(ps),
            'rate': st.population_rate(len(ps), ps.size, duration),
            'rate_sd': float(rates.std()) if ps.size else float('nan'),
            'rate_median': float(np.median(rates)) if ps.size else float('nan'),
            'silent_fraction': float(np.mean(rates == 0)) if ps.size else float('nan'),
            'cv_isi': st.nanmean(cv), 'cv_isi_upstream': cv_upstream,
            'lvr': st.nanmean(lv), 'lvr_upstream': st.upstream_mean(lv),
            'n_irregularity': int(np.isfinite(lv).sum()),
            'synchrony': st.counts_synchrony(hist),
            'corrcoef': st.mean_off_diagonal(cc), 'corrcoef_se': st.bootstrap_mean_cc_se(cc, seed=params['seed']),
            'cc_neurons': int(sample.size)}
        for key, vals in (('rate', rates), ('cv_isi', cv), ('lvr', lv)):
            per_neuron[key].append(vals)
        labels.append(ps.population.label)
        sizes.append(ps.size)
        series.append(st.counts_to_rates(hist, ps.size, bin_ms))
    n_area = info.area_size(area)
    n_spikes = sum(p['spikes'] for p in pops_out.values())   # the histogram drops a last partial bin
    per_neuron = {k: np.concatenate(v) for k, v in per_neuron.items()}
    area_out = {
        'size': n_area, 'spikes': n_spikes,
        'rate': st.population_rate(n_spikes, n_area, duration),
        'cv_isi': st.nanmean(per_neuron['cv_isi']),
        'lvr': st.nanmean(per_neuron['lvr']), 'lvr_upstream': st.upstream_mean(per_neuron['lvr']),
        'synchrony': st.counts_synchrony(counts)}
    return {'populations': pops_out, 'area': area_out, 'labels': labels, 'sizes': sizes,
            'pop_series': series, 'area_series': st.counts_to_rates(counts, n_area, bin_ms),
            'neuron': {k: v.astype(np.float32) for k, v in per_neuron.items()}}


def default_workers(info: RunInfo) -> int:
    """Processes for the areas: one for a small run (under PARALLEL_MIN_BYTES of spikes
    in its largest area: starting processes would cost more than it saves), else the
    CPUs available, no more than there are areas, and no more than half the available
    memory allows at AREA_MEMORY_FACTOR x the largest area's spike data each."""
    largest = SpikeFile(info.spike_file).largest_area_bytes()
    if largest < PARALLEL_MIN_BYTES:
        return 1
    workers = min(available_cpus(), len(info.areas))
    per_area = AREA_MEMORY_FACTOR * largest
    available = available_memory_bytes()
    if per_area > 0 and available is not None:
        workers = min(workers, int(0.5 * available // per_area))
    return max(1, workers)


def map_areas(info: RunInfo, params: dict, workers: int, verbose: bool = True) -> dict:
    """{area: area_statistics(...)} by ``workers`` processes (forked on Linux), each
    holding one area at a time, largest first; the same function as in one process, so
    the same numbers."""
    areas = sorted(info.areas, key=lambda a: -info.area_size(a))
    out = {}

    def done(area, res):
        out[area] = res
        _log(verbose, f"  [{len(out)}/{len(areas)}] {area}: {res['area']['spikes']} spikes, "
                      f"{res['area']['rate']:.2f} spikes/s")

    if workers <= 1:
        for area in areas:
            done(area, area_statistics(info, params, area))
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    ctx = mp.get_context('fork' if sys.platform.startswith('linux') else 'spawn')
    with ProcessPoolExecutor(min(workers, len(areas)), mp_context=ctx) as pool:
        futures = {pool.submit(area_statistics, info, params, a): a for a in areas}
        for fut in as_completed(futures):
            done(futures[fut], fut.result())
    return out


def compute_statistics(info: RunInfo, params: dict, verbose: bool = True,
                       workers: int | None = 1) -> tuple[dict, dict]:
    """All statistics of a run: (scalars for JSON, arrays for NPZ). The areas are
    analysed by ``workers`` processes (None: :func:`default_workers`), then combined."""
    t_min, t_max, bin_ms = params['t_min'], params['t_max'], params['bin_ms']
    duration = t_max - t_min
    nb = st.n_bins(t_min, t_max, bin_ms)
    unknown = set(SpikeFile(info.spike_file).areas) - set(info.populations)
    if unknown:
        raise RunDirError(f"{info.spike_file} has spikes of areas not in config.yaml: {sorted(unknown)}")
    workers = default_workers(info) if workers is None else int(workers)
    _log(verbose and workers > 1, f"  {workers} processes")
    by_area = map_areas(info, params, workers, verbose)
    pops_out, areas_out = {}, {}
    pop_labels, pop_series, area_series, offsets = [], [], [], [0]
    per_neuron = {'rate': [], 'cv_isi': [], 'lvr': []}
    for area in info.areas:
        res = by_area.pop(area)
        pops_out[area], areas_out[area] = res['populations'], res['area']
        pop_labels += res['labels']
        pop_series += res['pop_series']
        area_series.append(res['area_series'])
        offsets += list(offsets[-1] + np.cumsum(res['sizes']))
        for key in per_neuron:
            per_neuron[key].append(res['neuron'][key])

    pop_series = np.array(pop_series).reshape(len(pop_labels), nb)
    area_series = np.array(area_series).reshape(len(info.areas), nb)
    area_smoothed = st.smooth(area_series, params['sigma_ms'], bin_ms)
    if params['spectrum_method'] == 'upstream':
        freqs, pop_psd = st.power_spectrum_upstream(pop_series, bin_ms)
        _, area_psd = st.power_spectrum_upstream(area_series, bin_ms)
        spectrum = {'method': 'scipy.signal.welch, nperseg 1024, noverlap 1000 (upstream)',
                    'len_segment': st.DEFAULT_LEN_SEGMENT, 'overlap_samples': 1000}
    else:
        seg = st.welch_segment(nb, params['spectrum_len_segment'])
        default = params['spectrum_len_segment'] is None
        if default and nb < st.DEFAULT_LEN_SEGMENT:   # not even one upstream segment fits
            warnings.warn(f"spectra: the {duration:g} ms window has {nb} bins, fewer than upstream's "
                          f"{st.DEFAULT_LEN_SEGMENT}-sample Welch segment: using {seg} samples "
                          f"({1000. / (seg * bin_ms):.3g} Hz resolution; recorded in statistics.json)",
                          stacklevel=2)
        freqs, pop_psd = st.power_spectrum(pop_series, bin_ms, seg, params['spectrum_overlap'])
        _, area_psd = st.power_spectrum(area_series, bin_ms, seg, params['spectrum_overlap'])
        spectrum = {'method': 'Welch (elephant.spectral.welch_psd)', 'len_segment': seg,
                    'segment_rule': st.WELCH_SEGMENT_RULE if default else 'spectrum_len_segment as given',
                    'overlap_samples': int(seg * params['spectrum_overlap'])}
    spectrum['resolution_hz'] = 1000. / (spectrum['len_segment'] * bin_ms)
    fc = st.functional_connectivity(area_smoothed)
    arrays = {
        'pop_labels': np.array(pop_labels), 'area_labels': np.array(info.areas),
        'time_ms': t_min + bin_ms * np.arange(nb), 'pop_rate_series': pop_series,
        'area_rate_series': area_series, 'area_rate_smoothed': area_smoothed,
        'freqs': freqs, 'pop_psd': pop_psd, 'area_psd': area_psd, 'fc_sim': fc,
        'pop_offsets': np.array(offsets), **{f"neuron_{k}": np.concatenate(v) if v else np.empty(0)
                                             for k, v in per_neuron.items()}}
    fc_out = {'measure': 'Pearson correlation of area rates smoothed with a Gaussian '
                         f"(sigma {params['sigma_ms']} ms)"}
    try:
        exp = st.load_experimental_fc(info.areas)
    except DataFileError as err:
        if _data_file_present(st.FMRI_FILE):  # present but failing its checksum: corrupt
            raise
        fc_out['experimental'] = f"not compared: {err}"
    except (KeyError, OSError) as err:  # areas outside the fMRI data, or no data directory
        fc_out['experimental'] = f"not compared: {err}"
    else:
        arrays['fc_exp'] = exp
        fc_out['similarity_exp'] = st.fc_similarity(fc, exp) if len(info.areas) >= 3 else float('nan')
        fc_out['n_pairs'] = len(info.areas) * (len(info.areas) - 1) // 2
    if len(info.areas) >= 2:
        from .synaptic_input import area_synaptic_input, run_model
        try:
            model = run_model(info.run_dir)
        except OSError as err:   # no raw data to rebuild the model's W and K: say so
            model, fc_out['synaptic_input'] = None, {'not computed': str(err)}
    if len(info.areas) >= 2 and model is not None:
        _, signals = area_synaptic_input(model, pop_labels, pop_series, bin_ms)
        arrays['fc_sim_synaptic_input'] = fc_si = st.functional_connectivity(signals)
        fc_out['synaptic_input'] = {
            'measure': "Pearson correlation of the areas' synaptic-input signals (upstream's Fig. 8: "
                       "source rates weighted by |W| K, filtered by exp(-t/tau_syn))",
            'similarity_exp': (st.fc_similarity(fc_si, exp) if 'fc_exp' in arrays and len(info.areas) >= 3
                               else float('nan'))}
    n_total = int(sum(a['size'] for a in areas_out.values()))
    spikes_total = int(sum(a['spikes'] for a in areas_out.values()))
    all_lvr = arrays['neuron_lvr']
    network = {'neurons': n_total, 'spikes': spikes_total,
               'rate': st.population_rate(spikes_total, n_total, duration),
               'cv_isi': st.nanmean(arrays['neuron_cv_isi']), 'lvr': st.nanmean(all_lvr),
               'lvr_upstream': st.upstream_mean(all_lvr)}
    run = {'status': info.status, 't_sim_ms': info.t_sim, 't_sim_requested_ms': info.t_requested}
    stats = {'label': info.label, 'run': run, 'params': params, 'network': network, 'areas': areas_out,
             'populations': pops_out, 'functional_connectivity': fc_out, 'spectrum': spectrum}
    return stats, arrays


def _data_file_present(name: str) -> bool:
    """Whether data file ``name`` exists in the data directory (to tell corrupt from missing)."""
    from mam_pynn.data import data_dir
    try:
        return (data_dir() / name).is_file()
    except OSError:
        return False


def _jsonable(obj):
    """NaN/inf become null: strict JSON."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def save_results(analysis_dir: Path, key: str, stats: dict, arrays: dict) -> None:
    """Both files carry ``key``: a crash between the two writes leaves a detectable mismatch."""
    make_dir(analysis_dir)
    with atomic_path(analysis_dir / SERIES_FILE) as tmp:
        np.savez(tmp, **arrays, cache_key=np.array(key))
    atomic_write_json(analysis_dir / STATS_FILE, _jsonable({'key': key, **stats}))


def load_results(analysis_dir: Path, key: str) -> tuple[dict, dict] | None:
    """Stored results for ``key``, or None when absent, stale, mismatched or unreadable."""
    try:
        stats = json.loads((analysis_dir / STATS_FILE).read_text())
        if not isinstance(stats, dict) or stats.get('key') != key:
            return None
        with np.load(analysis_dir / SERIES_FILE) as z:
            if 'cache_key' not in z.files or str(z['cache_key']) != key:
                return None
            arrays = {k: z[k] for k in z.files if k != 'cache_key'}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):   # damaged: recompute
        return None
    return stats, arrays


def analyze_run(run_dir: str | Path, t_min: float | None = None, figures: bool = True,
                force: bool = False, verbose: bool = True, workers: int | None = None,
                **params) -> dict:
    """Statistics (and figures) of a finished run; prints progress and a one-line summary.

    ``t_min`` (None: ``DEFAULT_PARAMS['t_min']``) and ``params`` override
    ``DEFAULT_PARAMS`` (t_max, t_ref, bin_ms, sigma_ms, cc_neurons, ...). ``workers``:
    processes analysing the areas (None: :func:`default_workers`); the results do not
    depend on it.
    Returns the statistics dict (as stored in ``analysis/statistics.json``) plus
    ``files`` (what was written) and ``from_cache``.
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    info.require_finished()
    if info.status != 'completed':
        warnings.warn(f"run {run_dir} ended with status {info.status!r} after {info.t_sim:g} of "
                      f"{info.t_requested:g} ms: analysing the simulated {info.t_sim:g} ms",
                      RuntimeWarning, stacklevel=2)
    info = recorded_only(info)
    p = analysis_params(info, t_min=t_min, **params)
    key = cache_key(info, p)
    analysis_dir, figure_dir = make_dir(run_dir / 'analysis'), run_dir / 'figures'
    loaded = None if force else load_results(analysis_dir, key)
    if loaded is None:
        _log(verbose, f"analyzing {run_dir} ({len(info.areas)} areas, window {p['t_min']:g}-{p['t_max']:g} ms)")
        stats, arrays = compute_statistics(info, p, verbose, workers)
        # figures of the previous results would look current: remove them (by name, in
        # this run's figure folder, in case the run directory was moved)
        for f in _read_manifest(analysis_dir).get('figures', []):
            (figure_dir / Path(f).name).unlink(missing_ok=True)
        save_results(analysis_dir, key, stats, arrays)
        stats = json.loads((analysis_dir / STATS_FILE).read_text())
    else:
        _log(verbose, f"statistics of {run_dir} are up to date; reloaded from {analysis_dir}")
        stats, arrays = loaded
    t_stats = time.perf_counter() - t0
    files = [analysis_dir / STATS_FILE, analysis_dir / SERIES_FILE]
    if figures:
        from .plots import make_figures
        manifest = _read_manifest(analysis_dir)
        # by name in this run's figure folder (the run directory may have been moved)
        expected = [figure_dir / Path(f).name for f in manifest.get('figures', [])]
        fresh = loaded is not None and manifest.get('key') == key and bool(expected)
        if not (fresh and all(f.is_file() for f in expected)):
            _log(verbose, f"drawing figures into {figure_dir}")
            expected = make_figures(info, stats, arrays, figure_dir, only_missing=fresh, verbose=verbose)
            from .evoked import evoked_figures   # runs with sim_params.stimulus
            expected += evoked_figures(run_dir, figure_dir)
        files += expected
    manifest_path = analysis_dir / MANIFEST_FILE
    atomic_write_json(manifest_path, {'key': key, 'run_dir': str(run_dir),
                                      'files': [str(f) for f in files],
                                      'figures': [str(f) for f in files[2:]]})
    files.append(manifest_path)
    net, fc = stats['network'], stats['functional_connectivity']
    sim_fc = fc.get('similarity_exp')
    si_fc = fc.get('synaptic_input', {}).get('similarity_exp')
    fc_txt = (f"FC vs fMRI r={si_fc:.2f} (synaptic input; area rates r={sim_fc:.2f}; a down-scaled "
              f"or short run is not expected to match)" if isinstance(si_fc, float) and np.isfinite(si_fc)
              else f"FC vs fMRI r={sim_fc:.2f} (area rates)" if isinstance(sim_fc, float) and np.isfinite(sim_fc)
              else "FC vs fMRI n/a")
    print(f"analyzed {run_dir.name}: {len(stats['areas'])} areas, {net['neurons']} neurons, "
          f"{net['spikes']} spikes, rate {_fmt(net['rate'])} spikes/s, CV {_fmt(net['cv_isi'])}, "
          f"LvR {_fmt(net['lvr'])}, {fc_txt}; spectra {_spectrum_txt(stats)}; stats {t_stats:.1f} s, total "
          f"{time.perf_counter() - t0:.1f} s{' (cached)' if loaded is not None else ''}",
          )
    return {**stats, 'files': [str(f) for f in files], 'from_cache': loaded is not None}


def _spectrum_txt(stats: dict) -> str:
    sp = stats.get('spectrum', {})
    return (f"{sp['len_segment']}-sample segments, {sp['resolution_hz']:.3g} Hz resolution"
            if 'resolution_hz' in sp else 'n/a')


def _fmt(x) -> str:
    return 'n/a' if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.2f}"


def _read_manifest(analysis_dir: Path) -> dict:
    try:
        manifest = json.loads((analysis_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}
