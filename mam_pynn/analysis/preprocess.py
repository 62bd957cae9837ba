"""``mam preprocess RUN_DIR --out DATA_PATH [--label L]``: a finished run directory written
into upstream's layout ``<DATA_PATH>/<L>/`` (:mod:`.layout`), the files that upstream's
``Analysis.save()`` and ``figures/Schmidt2018_dyn/Snakefile_preprocessing`` write, so that the
dynamics figures read our runs and the authors' published data with the same code.

What is written is the table :data:`PRODUCTS`, {file pattern: function}: each function takes
the :class:`Context` (the run's spikes in upstream's form, its sizes and window, the model,
and a reader of what earlier entries wrote) and returns {path under <label>/: content}; it
raises :class:`Skip` with the reason when the run cannot give it (e.g. a window shorter than
a spectrum segment). A new computation plugs in with one line::

    PRODUCTS['Analysis/bold_signal/bold_signal_{area}.npy'] = bold_products

Definitions are upstream's (open window (t_min, t_max), t_min 500 ms as its scripts, rates
per simulated neuron, see :mod:`.upstream_api`); each function names the script it follows.
The label folder is written whole into a temporary sibling and renamed at the end; a
finished one is not replaced unless ``overwrite``.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from ..params import AREA_LIST
from . import statistics as st
from .layout import LabelledRun, MissingFile, relative_path, write_file
from .spikes import CONFIG_FILE, read_run_info, recorded_only
from .upstream_api import Analysis

T_MIN = 500.                # ms, upstream's scripts
CC_NEURONS, CC_ID_RANGE = 2000, 3000   # compute_corrcoeff.py: first 2000 active of 3001 ids
AUTO_KERNEL_T_MAX = 10500.  # ms, compute_rate_time_series.py 'auto_kernel' stops there
WELCH = {'fs': 1000., 'nperseg': st.DEFAULT_LEN_SEGMENT, 'noverlap': 1000}  # compute_power_spectrum.py
LA_STATE = (3500., 3600.)   # ms, the low-activity phase of Fig9_path_analysis.py


class Skip(Exception):
    """This product cannot be computed from this run (the reason is recorded)."""


class Context:
    """What the products read: the run (spikes as upstream's Analysis holds them), its
    window, the model (rebuilt from config.yaml on first use) and the files written so far."""

    def __init__(self, run_dir, out: LabelledRun, t_min: float = T_MIN):
        self.run_dir = Path(run_dir)
        self.info = recorded_only(read_run_info(run_dir))
        self.info.require_finished()
        self.out, self.label = out, out.label
        self.analysis = Analysis(None, run_dir=self.run_dir)
        self.t_min, self.T = float(t_min), self.info.t_sim
        if not self.t_min < self.T:
            raise ValueError(f"t_min={self.t_min} ms is not below the run's {self.T} ms ({run_dir})")
        order = [a for a in AREA_LIST if a in self.info.populations]
        self.areas = order + [a for a in self.info.areas if a not in order]
        self.window = {'t_min': self.t_min, 't_max': self.T, 'resolution': 1.}

    def pops(self, area: str) -> list[str]:
        return [p.name for p in self.info.populations[area]]

    def size(self, area: str, pop: str) -> int:
        return next(p.size for p in self.info.populations[area] if p.name == pop)

    def spikes(self, area: str, pop: str) -> np.ndarray:
        """(n, 2) [neuron index in the population, time ms], time-sorted."""
        return self.analysis.spike_data[area][pop]

    def parameters(self, **extra) -> dict:
        """The '_Parameters.json' of upstream's compute scripts."""
        return {'areas': self.areas, 'pops': 'complete', 'resolution': 1., 't_min': self.t_min,
                't_max': self.T, **extra}

    @cached_property
    def config(self) -> dict:
        return yaml.safe_load((self.run_dir / CONFIG_FILE).read_text()) or {}

    @cached_property
    def model(self):
        """The run's MultiAreaModel (W, K, N at its scale); needs the raw data."""
        from .synaptic_input import run_model
        try:
            return run_model(self.run_dir)
        except OSError as err:
            raise Skip(f"the run's model cannot be rebuilt: {err}") from err

    def binned(self, times: np.ndarray, n: int, t_max: float | None = None) -> np.ndarray:
        """Upstream's binned rate (pop_rate_time_series, 1 ms) of spikes in (t_min, t_max]."""
        t_max = self.T if t_max is None else t_max
        keep = (times > self.t_min) & (times <= t_max)
        return self.analysis._histogram(times[keep], n, {**self.window, 't_max': t_max})


# ------------------------------------------------------------ the products

def custom_params(ctx: Context) -> dict:
    """``custom_params_<label>``: upstream's Simulation writes {'sim_params',
    'network_params', 'network_label'}; its compute scripts read 'T' and the chi factors
    at the top level, so those are there too."""
    cfg, conn = ctx.config, (ctx.config.get('network_params') or {}).get('connection_params') or {}
    content = {'sim_params': cfg.get('sim_params'), 'network_params': cfg.get('network_params'),
               'network_label': cfg.get('label'), 'T': ctx.T,
               'cc_weights_factor': conn.get('cc_weights_factor'),
               'cc_weights_I_factor': conn.get('cc_weights_I_factor')}
    return {relative_path('custom_params', label=ctx.label): content}


def spike_files(ctx: Context) -> dict:
    """``recordings/<label>-spikes-<area>-<pop>.npy`` ((n, 2): global id from 1, time) and
    ``network_gids.txt``, ids numbered through the run's areas and populations."""
    files, lines, gid = {}, [], 1
    for area in ctx.areas:
        for pop in ctx.pops(area):
            data = ctx.spikes(area, pop)
            files[relative_path('spikes', label=ctx.label, area=area, pop=pop)] = np.column_stack(
                [data[:, 0] + gid, data[:, 1]])
            lines.append(f"{area},{pop},{gid},{gid + ctx.size(area, pop) - 1}")
            gid += ctx.size(area, pop)
    files[relative_path('network_gids')] = '\n'.join(lines) + '\n'
    return files


def analysis_members(ctx: Context) -> dict:
    """What upstream's ``M.analysis.save()`` writes after its create_* methods (pop_rates,
    pop_rate_dists, synchrony, rate time series, pop_cv_isi, pop_LvR)."""
    a = ctx.analysis
    for create in (a.create_pop_rates, a.create_pop_rate_dists, a.create_synchrony,
                   a.create_rate_time_series, a.create_pop_cv_isi, a.create_pop_LvR):
        create(t_min=ctx.t_min)
    return a.layout_files()


def corrcoeff(ctx: Context) -> dict:
    """compute_corrcoeff.py: per population, the mean pairwise correlation coefficient of
    1 ms spike counts in [t_min, T] of the first 2000 neurons with spikes there among the
    3001 ids from the first that ever spiked (NaN entries as 0)."""
    out = {}
    for area in ctx.areas:
        out[area] = {}
        for pop in ctx.pops(area):
            data = ctx.spikes(area, pop)
            ids, t = data[:, 0].astype(np.int64), data[:, 1]
            keep = (t >= ctx.t_min) & (t <= ctx.T)
            if ids.size:
                keep &= ids <= ids.min() + CC_ID_RANGE
            sample = np.unique(ids[keep])[:CC_NEURONS]
            # bins [t_min + k, t_min + k + 1), the last one closed at T as np.histogram's
            counts = st.count_matrix(ids[keep], np.minimum(t[keep], ctx.T - 1e-9), sample,
                                     ctx.t_min, ctx.T, 1.)
            cc = st.correlation_matrix(counts)
            off = np.nan_to_num(cc[~np.eye(sample.size, dtype=bool)], nan=0.)
            out[area][pop] = float(off.mean()) if off.size else float('nan')
    return {relative_path('corrcoeff'): out}


def _series_files(ctx: Context, method: str, pop_series: dict, t_max: float, kernel: str,
                  **extra) -> dict:
    """One method's folder of compute_rate_time_series.py: the populations' series, the
    area's as their average weighted by population size, and the parameters."""
    files = {}
    for area in ctx.areas:
        series = [pop_series[(area, pop)] for pop in ctx.pops(area)]
        weights = [ctx.size(area, pop) for pop in ctx.pops(area)]
        for pop, s in zip(ctx.pops(area), series):
            files[relative_path('rate_time_series_pop', method=method, area=area, pop=pop)] = s
        files[relative_path('rate_time_series', method=method, area=area)] = np.average(
            series, axis=0, weights=weights)
    files[relative_path('rate_time_series_parameters', method=method)] = ctx.parameters(
        kernel=kernel, t_max=t_max, **extra)
    return files


def rate_time_series_full(ctx: Context) -> dict:
    """'full': binned (1 ms) rate of all neurons of each population."""
    series = {(a, p): ctx.binned(ctx.spikes(a, p)[:, 1], ctx.size(a, p))
              for a in ctx.areas for p in ctx.pops(a)}
    return _series_files(ctx, 'full', series, ctx.T, 'binned')


def rate_time_series_auto_kernel(ctx: Context) -> dict:
    """'auto_kernel': elephant's instantaneous_rate with the kernel width of Shimazaki &
    Shinomoto (2010) ('auto'), 1 ms, from t_min to min(T, 10.5 s), of each population's
    merged spike train divided by its size. A population
    with too few spikes for a width (elephant needs more than two in practice) gets zeros
    and is listed in the parameters ('no_kernel_width': ['area/pop', ...])."""
    import neo
    import quantities as pq
    from elephant.statistics import instantaneous_rate
    t_max = min(ctx.T, AUTO_KERNEL_T_MAX)
    series, no_width = {}, []
    for area in ctx.areas:
        for pop in ctx.pops(area):
            t = ctx.spikes(area, pop)[:, 1]
            t = t[(t > ctx.t_min) & (t <= t_max)]
            series[(area, pop)] = np.zeros(int(t_max - ctx.t_min))
            if t.size < 2:      # no kernel width can be estimated from < 2 spikes
                no_width.append(f'{area}/{pop}')
                continue
            train = neo.SpikeTrain(t * pq.ms, t_start=0. * pq.ms, t_stop=t_max * pq.ms)
            try:
                rate = instantaneous_rate(train, 1. * pq.ms, t_start=ctx.t_min * pq.ms, t_stop=t_max * pq.ms)
            except ValueError:  # elephant's width search found no candidate (a few spikes)
                no_width.append(f'{area}/{pop}')
                continue
            series[(area, pop)] = np.asarray(rate.magnitude)[:, 0] / ctx.size(area, pop)
    return _series_files(ctx, 'auto_kernel', series, t_max, 'auto', no_kernel_width=no_width)


def rate_histogram(ctx: Context) -> dict:
    """compute_rate_histogram.py: distribution (100 bins, fractions) of the single-neuron
    rates of each area, silent neurons included, window (t_min, T); the bins of the last
    area are the run's bins file, as upstream's (its workflow computes V1 only)."""
    files, bins = {}, None
    for area in ctx.areas:
        rates = []
        for pop in ctx.pops(area):
            data = ctx.spikes(area, pop)
            ids = data[(data[:, 1] > ctx.t_min) & (data[:, 1] < ctx.T), 0].astype(np.int64)
            rates.append(st.neuron_rates(ids, ctx.size(area, pop), ctx.T - ctx.t_min))
        vals, edges = np.histogram(np.concatenate(rates), bins=100)
        files[relative_path('rate_histogram', area=area)] = vals / vals.sum()
        bins = edges[:-1]
    files[relative_path('rate_histogram_bins')] = bins
    files['Analysis/rate_histogram/rate_histogram_Parameters.json'] = ctx.parameters()
    return files


def _spectra(method: str):
    def power_spectrum(ctx: Context) -> dict:
        """compute_power_spectrum.py: scipy's Welch (its default Hann window; the script's
        'boxcar' is never passed), 1024 samples overlapping by 1000, of the mean-removed
        area rate of ``method``, frequency 0 included."""
        from scipy.signal import welch
        files = {}
        for area in ctx.areas:
            series = ctx.out.rate_time_series(area, method=method)
            if series.size < WELCH['nperseg']:
                raise Skip(f"the {series.size} ms window is shorter than upstream's "
                           f"{WELCH['nperseg']}-sample Welch segment")
            freq, power = welch(series - series.mean(), **WELCH)
            files[relative_path('power_spectrum', method=method, area=area)] = power
        files[relative_path('power_spectrum_freq', method=method)] = freq
        return files
    return power_spectrum


def synaptic_input(ctx: Context) -> dict:
    """compute_synaptic_input.py: each population's input, the source rates 'full' weighted
    by |W| K of the run's model and filtered by exp(-t/tau_syn_ex), and each area's, their
    mean weighted by the populations' sizes (:mod:`.synaptic_input`)."""
    from .synaptic_input import area_synaptic_input, population_synaptic_input
    labels = [f'{a}/{p}' for a in ctx.areas for p in ctx.pops(a)]
    rates = np.array([ctx.out.rate_time_series(*label.split('/')) for label in labels])
    per_pop = population_synaptic_input(ctx.model, labels, rates)
    areas, signals = area_synaptic_input(ctx.model, labels, rates, per_pop=per_pop)
    files = {relative_path('synaptic_input', area=area): signal for area, signal in zip(areas, signals)}
    files.update({relative_path('synaptic_input_pop', area=a, pop=p): signal
                  for (a, p), signal in per_pop.items()})
    files['Analysis/synaptic_input/synaptic_input_Parameters.json'] = ctx.parameters()
    return files


def bold_signal(ctx: Context) -> dict:
    """compute_bold_signal.py: each area's BOLD signal, neuRosim's balloon model driven by
    its synaptic input divided by the maximum, one sample per ms (:func:`.bold.bold_signal`)."""
    from .bold import bold_signal as balloon_bold
    inputs = np.array([ctx.out.synaptic_input(area) for area in ctx.areas])
    silent = [a for a, x in zip(ctx.areas, inputs) if not np.max(x) > 0]
    if silent:
        raise Skip(f"no synaptic input in {', '.join(silent)}: upstream divides each area's input "
                   f"by its maximum")
    signals = balloon_bold(inputs)
    return {relative_path('bold_signal', area=area): signal for area, signal in zip(ctx.areas, signals)}


def _functional_connectivity(method: str, read):
    def functional_connectivity(ctx: Context) -> dict:
        """compute_functional_connectivity.py: Pearson correlation between the areas' series."""
        if len(ctx.areas) < 2:
            raise Skip("one area: no functional connectivity")
        series = np.array([read(ctx.out, area) for area in ctx.areas])
        return {relative_path('functional_connectivity', method=method):
                st.functional_connectivity(series)}
    return functional_connectivity


def functional_connectivity_bold(ctx: Context) -> dict:
    """compute_functional_connectivity.py for 'bold_signal': Pearson correlation of the
    areas' BOLD signals after upstream's 5000-sample (5 s) transient."""
    from .bold import BOLD_TRANSIENT_SAMPLES, bold_functional_connectivity
    bold = np.array([ctx.out.bold_signal(area) for area in ctx.areas])
    if bold.shape[-1] <= BOLD_TRANSIENT_SAMPLES + 2:
        raise Skip(f"the BOLD signal has {bold.shape[-1]} samples, not more than upstream's "
                   f"{BOLD_TRANSIENT_SAMPLES}-sample (5 s) transient")
    if len(ctx.areas) < 2:
        raise Skip("one area: no functional connectivity")
    return {relative_path('functional_connectivity', method='bold_signal'): bold_functional_connectivity(bold)}


def _communities(method: str):
    def communities(ctx: Context) -> dict:
        """compute_louvain_communities.py: Louvain communities of the FC of ``method``
        (:func:`.interactions.louvain_communities`)."""
        from .interactions import louvain_communities
        fc = ctx.out.functional_connectivity(method)
        return {relative_path('communities', method=method): louvain_communities(fc, ctx.areas)}
    return communities


def cross_correlation(ctx: Context) -> dict:
    """compute_cross_correlation.py: smoothed cross-correlation functions of the area rates
    'full' of every ordered pair of areas (:func:`.timescales.cross_correlation`)."""
    from .timescales import cross_correlation as cross
    series = {area: ctx.out.rate_time_series(area) for area in ctx.areas}
    files = {}
    for a1 in ctx.areas:
        for a2 in ctx.areas:
            lags, files[relative_path('cross_correlation', area=a1, area2=a2)] = cross(series[a1], series[a2])
    files[relative_path('cross_correlation_time')] = lags
    return files


def rate_time_series_subsample(ctx: Context) -> dict:
    """'subsample' (Fig. 6's spectra): the rates of 140 neurons per area, as many as Chu et
    al. 2014 recorded (:func:`.chu2014.subsampled_rate_series`). A population of a
    down-scaled run with fewer neurons above 0.56 spikes/s than its share gives all of
    them; the parameters list those ('fewer_neurons': {area: {pop: [taken, wanted]}})."""
    from .chu2014 import subsampled_rate_series
    files, fewer = {}, {}
    for area in ctx.areas:
        spikes = {pop: (ctx.spikes(area, pop)[:, 0], ctx.spikes(area, pop)[:, 1]) for pop in ctx.pops(area)}
        taken = {}
        series, pops = subsampled_rate_series(spikes, {p: ctx.size(area, p) for p in ctx.pops(area)},
                                              ctx.t_min, ctx.T, strict=False, taken=taken)
        files.update({relative_path('rate_time_series_pop', method='subsample', area=area, pop=p): x
                      for p, x in pops.items()})
        files[relative_path('rate_time_series', method='subsample', area=area)] = series
        short = {p: v for p, v in taken.items() if v[0] < v[1]}
        if short:
            fewer[area] = short
    files[relative_path('rate_time_series_parameters', method='subsample')] = ctx.parameters(
        kernel='binned_subsample', fewer_neurons=fewer)
    return files


GRANGER_SAMPLES_PER_PARAMETER = 4    # a VAR of a short run: samples per parameter of an equation


def granger_causality(ctx: Context) -> dict:
    """compute_granger_causality.py: the conditional Granger causality onto every population
    from each source with in-degree K > 1 (the run's model) given the others
    (:func:`.granger.population_granger`, VAR of order 25 on the rates 'full'). A run too
    short for a VAR on all of a target's sources (fewer than 4 samples per parameter of an
    equation) keeps its strongest ones (largest K); the parameters say how many."""
    from .granger import MIN_INDEGREE, ORDER, population_granger
    labels = [(a, p) for a in ctx.areas for p in ctx.pops(a)]
    series = np.array([ctx.out.rate_time_series(a, p) for a, p in labels])
    max_sources = series.shape[1] // (GRANGER_SAMPLES_PER_PARAMETER * ORDER) - 1
    if max_sources < 1:
        raise Skip(f"{series.shape[1]} samples cannot fit a VAR of order {ORDER}")
    K, files, capped = ctx.model.K, {}, 0
    for i, (area, pop) in enumerate(labels):
        k = np.array([K[area][pop][sa][sp] for sa, sp in labels], float)
        k[i] = 0.
        strong = np.argsort(-k, kind='stable')[:max_sources]
        capped += int(np.count_nonzero(k > MIN_INDEGREE) > max_sources)
        kept = np.zeros_like(k)
        kept[strong] = k[strong]
        files[relative_path('granger_causality', area=area, pop=pop)] = population_granger(
            (area, pop), labels, series, kept, ORDER)
    files['Analysis/granger_causality/granger_causality_Parameters.json'] = ctx.parameters(
        order=ORDER, min_indegree=MIN_INDEGREE, max_sources=max_sources, targets_capped=capped)
    return files


def pop_rates_la_state(ctx: Context) -> dict:
    """pop_rates_LA_state.json (Fig9_path_analysis.py): {area: {pop: rate}} in the
    low-activity phase 3500-3600 ms."""
    t0, t1 = LA_STATE
    if ctx.T < t1:
        raise Skip(f"the run ends at {ctx.T:g} ms, before the low-activity phase {t0:g}-{t1:g} ms")
    a = Analysis(None, run_dir=ctx.run_dir)
    a.create_pop_rates(t_min=t0, t_max=t1)
    return {relative_path('pop_rates_LA_state'): {
        area: {pop: a.pop_rates[area][pop][0] for pop in ctx.pops(area)} for area in ctx.areas}}


#: {file pattern under <label>/: function(Context) -> {path: content}}, in the order they
#: are computed (later ones read earlier ones' files through ctx.out)
PRODUCTS = {
    'custom_params_{label}': custom_params,
    'recordings/{label}-spikes-{area}-{pop}.npy, recordings/network_gids.txt': spike_files,
    'Analysis/{pop_rates,pop_LvR,pop_cv_isi,synchrony}.json, Analysis/{pop_rate_dists,'
    'rate_time_series,rate_time_series_pops}-*.npy': analysis_members,
    'Analysis/corrcoeff.json': corrcoeff,
    'Analysis/rate_time_series_full/rate_time_series_full_{area}[_{pop}].npy': rate_time_series_full,
    'Analysis/rate_time_series_auto_kernel/rate_time_series_auto_kernel_{area}[_{pop}].npy':
        rate_time_series_auto_kernel,
    'Analysis/rate_histogram/rate_histogram_{area}.npy': rate_histogram,
    'Analysis/power_spectrum_full/power_spectrum_full_{area}.npy': _spectra('full'),
    'Analysis/rate_time_series_subsample/rate_time_series_subsample_{area}[_{pop}].npy':
        rate_time_series_subsample,
    'Analysis/power_spectrum_subsample/power_spectrum_subsample_{area}.npy': _spectra('subsample'),
    'Analysis/synaptic_input/synaptic_input_{area}[_{pop}].npy': synaptic_input,
    'Analysis/functional_connectivity_synaptic_input.npy':
        _functional_connectivity('synaptic_input', lambda r, area: r.synaptic_input(area)),
    'Analysis/functional_connectivity_rate_time_series_full.npy':
        _functional_connectivity('rate_time_series_full', lambda r, area: r.rate_time_series(area)),
    'Analysis/FC_synaptic_input_communities.json': _communities('synaptic_input'),
    'Analysis/bold_signal/bold_signal_{area}.npy': bold_signal,
    'Analysis/functional_connectivity_bold_signal.npy': functional_connectivity_bold,
    'Analysis/FC_bold_signal_communities.json': _communities('bold_signal'),
    'Analysis/cross_correlation/cross_correlation_{area}_{area2}.npy': cross_correlation,
    'Analysis/pop_rates_LA_state.json': pop_rates_la_state,
}

#: products computed only when named in ``preprocess(extra=...)``, after PRODUCTS: the Granger
#: causality of all 254 populations takes ~14 min for a down-scaled 2 s run on 2 cores,
#: and only the dynamics Fig. 9 reads it (`mam preprocess --granger`)
ON_REQUEST = {
    'Analysis/granger_causality/granger_causality_{area}_{pop}.json': granger_causality,
}


def preprocess(run_dir, data_path, label: str | None = None, t_min: float = T_MIN,
               only: list[str] | None = None, overwrite: bool = False, verbose: bool = True,
               extra: list[str] = ()) -> dict:
    """Write ``run_dir`` into ``<data_path>/<label>/`` (label: the run's, from config.yaml).

    ``only``: the PRODUCTS patterns to compute (default all); ``extra``: ON_REQUEST ones
    to compute after them. Returns {'root', 'written'
    (patterns), 'skipped' {pattern: reason}, 'files' (count)} and prints a summary line.
    """
    t0 = time.perf_counter()
    info = read_run_info(run_dir)
    target = LabelledRun(data_path, label or info.label)
    if target.root.exists() and not overwrite:
        raise FileExistsError(f"{target.root} exists: preprocess(overwrite=True) "
                              f"(`mam preprocess --overwrite`) replaces it")
    known = {**PRODUCTS, **ON_REQUEST}
    unknown = [p for p in (only or []) if p not in PRODUCTS] + [p for p in extra if p not in ON_REQUEST]
    if unknown:
        raise KeyError(f"unknown product {unknown[0]!r}; known: {'; '.join(known)}")
    target.data_path.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.data_path, prefix=f'.{target.label}.'))
    written, skipped, n_files = [], {}, 0
    try:
        out = LabelledRun(target.data_path, target.label, figure='mam preprocess')
        out.root = staging              # later products read what earlier ones wrote
        ctx = Context(run_dir, out, t_min)
        names = [p for p in PRODUCTS if not only or p in only] + list(extra)
        for k, pattern in enumerate(names, 1):
            t = time.perf_counter()
            try:
                files = known[pattern](ctx)
            except (Skip, MissingFile) as why:
                if isinstance(why, MissingFile):
                    why = f"needs {why.path.relative_to(staging)}, which was not written"
                skipped[pattern] = str(why)
                _log(verbose, f"[{k}/{len(names)}] skipped {pattern}: {why}")
                continue
            for rel, content in files.items():
                write_file(staging / rel, content)
            written.append(pattern)
            n_files += len(files)
            _log(verbose, f"[{k}/{len(names)}] {pattern}: {len(files)} files "
                          f"({time.perf_counter() - t:.1f} s)")
        write_file(staging / 'Analysis' / 'preprocess.json',
                   {'run_dir': str(Path(run_dir).resolve()), 't_min': ctx.t_min, 't_max': ctx.T,
                    'written': written, 'skipped': skipped})
        if target.root.exists():        # overwrite: the old folder goes once the new one is whole
            old = Path(tempfile.mkdtemp(dir=target.data_path, prefix=f'.{target.label}.old.'))
            target.root.rename(old / 'x')
            staging.rename(target.root)
            shutil.rmtree(old)
        else:
            staging.rename(target.root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"preprocessed {run_dir} into {target.root}: {len(written)} products, {n_files} files"
          f"{f', {len(skipped)} skipped' if skipped else ''} in {time.perf_counter() - t0:.1f} s",
          flush=True)
    return {'root': target.root, 'written': written, 'skipped': skipped, 'files': n_files}


def _log(verbose: bool, msg: str) -> None:
    if verbose:
        print(msg, file=sys.stderr, flush=True)
