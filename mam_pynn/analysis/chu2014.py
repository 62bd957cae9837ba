"""Spiking data of Chu, Chien & Hung (2014), macaque V1 at rest (CRCNS pvc-5), processed as
upstream's figures/Schmidt2018_dyn/process_chu2014_data.py does for Schmidt et al. 2018,
Fig. 6; and a synthetic data set in the same file format for tests.

The data need a (free) CRCNS registration, so they are read from a folder the user gives:
download pvc-5 from https://portal.nersc.gov/project/crcns/download/pvc-5 and extract it;
``process(folder)`` takes the extracted folder (holding crcns-pvc5/rawSpikeTime) or the
rawSpikeTime folder itself. Each ``times_<session>_ch<N>.mat`` holds ``cluster_class``
(spikes x [cluster id, time in ms]) of electrode N; every cluster id (0 included, as
upstream) is one neuron. Channel N lies at depth index (N - 65) mod 8; only neurons of
channels <= 112 (electrodes within 1 mm) are used.

From their spikes: per-neuron rates in 1 ms bins (spikes/s); the population rate's
spectrogram (4096-sample boxcar segments, no overlap); segments whose power up to 40 Hz
sums to more than 125 are phases of high fluctuations, the others of low; the samples
within 5 s of a segment's centre belong to its phase (overlapping windows repeat samples,
as upstream's list concatenation); Welch spectra (1024-sample boxcar segments,
1000 overlapping) of the mean-free population rate per phase and in full; histograms of
the neurons' mean rates per phase, in bins the caller gives (upstream: the simulation's
rate_histogram_bins.npy).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

FS = 1000.                      # Hz, 1 ms bins
SPECTROGRAM_NPERSEG = 4096
WELCH_NPERSEG, WELCH_NOVERLAP = 1024, 1000
F_CRIT, POWER_THRESHOLD = 40., 125.      # Hz, (spikes/s)^2 / Hz summed over f <= F_CRIT
PHASE_HALF_WINDOW_S = 5.
MAX_CHANNEL_1MM = 112
FIRST_CHANNEL, DEPTHS = 65, 8
FILE_PATTERN = re.compile(r'^times_(?P<session>.+)_ch(?P<channel>\d+)\.mat$')
PHASES = ('low_fluct', 'high_fluct', 'full')


def channel_depth(channel: int) -> int:
    """Depth index of an electrode (crcns-pvc5-data-description.pdf): (channel - 65) mod 8."""
    return (int(channel) - FIRST_CHANNEL) % DEPTHS


def spike_folder(folder) -> Path:
    """The rawSpikeTime folder: ``folder`` itself or folder/crcns-pvc5/rawSpikeTime."""
    folder = Path(folder)
    for candidate in (folder / 'crcns-pvc5' / 'rawSpikeTime', folder):
        if candidate.is_dir() and any(FILE_PATTERN.match(p.name) for p in candidate.iterdir()):
            return candidate
    raise FileNotFoundError(
        f"{folder}: no Chu et al. 2014 spike files (times_<session>_ch<N>.mat) there or in "
        f"crcns-pvc5/rawSpikeTime; get CRCNS pvc-5 (free registration at crcns.org) from "
        f"https://portal.nersc.gov/project/crcns/download/pvc-5 and extract it")


def read_neurons(folder, session: str | None = None) -> list[tuple[int, np.ndarray]]:
    """[(channel, spike times in ms), ...], one entry per cluster of every file, files in
    channel order (upstream: os.listdir's order), clusters in id order. ``session``
    keeps the files of one recording (upstream reads every file of the folder)."""
    from scipy.io import loadmat
    files = []
    for path in spike_folder(folder).iterdir():
        m = FILE_PATTERN.match(path.name)
        if m and (session is None or m['session'] == session):
            files.append((int(m['channel']), path))
    if not files:
        raise FileNotFoundError(f"{folder}: no spike files of session {session!r}")
    neurons = []
    for channel, path in sorted(files):
        try:
            cc = np.atleast_2d(loadmat(path)['cluster_class'])
        except (KeyError, ValueError) as err:
            raise ValueError(f"{path}: no readable 'cluster_class' ({err})") from err
        for cluster in np.unique(cc[:, 0]):
            neurons.append((channel, cc[cc[:, 0] == cluster, 1].astype(float)))
    return neurons


def binned_rates(trains: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(time (bins,) ms, rates (neurons, bins) spikes/s): 1 ms bins from the first to the
    last spike of all neurons (upstream's edges arange(t_min, t_max + 1, 1))."""
    t_min = min(t.min() for t in trains)
    t_max = max(t.max() for t in trains)
    edges = np.arange(t_min, t_max + 1., 1.)
    n_bins = edges.size - 1
    neuron = np.repeat(np.arange(len(trains)), [t.size for t in trains])
    t = np.concatenate(trains)
    idx = np.searchsorted(edges, t, side='right') - 1          # np.histogram's bins,
    idx[t == edges[-1]] = n_bins - 1                            # the last one closed
    keep = (idx >= 0) & (idx < n_bins)
    counts = np.bincount(neuron[keep] * n_bins + idx[keep], minlength=len(trains) * n_bins)
    return edges[:-1], counts.reshape(len(trains), n_bins) * 1e3


def phase_samples(time: np.ndarray, segment_times: np.ndarray) -> list[int]:
    """Sample indices with time - 5 s < ``time`` (ms) <= time + 5 s of each segment time
    (s), concatenated (repeats kept). As upstream, the sample times are those of the
    recording while the segment times count from the first sample."""
    out = []
    for ts in segment_times:
        out += list(np.flatnonzero((time > 1e3 * (ts - PHASE_HALF_WINDOW_S)) &
                                   (time <= 1e3 * (ts + PHASE_HALF_WINDOW_S))))
    return out


def process(folder, rate_histogram_bins, session: str | None = None) -> dict:
    """Upstream's Analysis/ files of the Chu et al. data, by name (without .npy):
    spike_data_1mm (neurons,) object array of spike times (ms); neuron_depths
    (neurons,); rate_time_series_V1 (neurons, bins) and rate_time_series_time (bins,);
    spectrogram_freq, spectrogram_time (s), spectrogram_Sxx (freq, segments);
    power_spectrum_freq and power_spectrum_V1_<low_fluct|high_fluct|full>;
    rate_histogram_bins and rate_histogram_<low|high|full> (counts of neurons)."""
    from scipy.signal import spectrogram, welch
    neurons = [(ch, t) for ch, t in read_neurons(folder, session) if ch <= MAX_CHANNEL_1MM]
    if not neurons:
        raise ValueError(f"{folder}: no neuron on channels <= {MAX_CHANNEL_1MM}")
    trains = [t for _, t in neurons]
    time, rates = binned_rates(trains)
    pop_rate = rates.mean(axis=0)
    pop_rate = pop_rate - pop_rate.mean()
    f, t, Sxx = spectrogram(pop_rate, fs=FS, nperseg=SPECTROGRAM_NPERSEG, noverlap=0, window='boxcar')
    low_power = Sxx[f <= F_CRIT].sum(axis=0)
    samples = {'low_fluct': phase_samples(time, t[low_power <= POWER_THRESHOLD]),
               'high_fluct': phase_samples(time, t[low_power > POWER_THRESHOLD]),
               'full': None}
    out = {'spike_data_1mm': np.array(trains + [None], dtype=object)[:-1],
           'neuron_depths': np.array([channel_depth(ch) for ch, _ in neurons]),
           'rate_time_series_V1': rates, 'rate_time_series_time': time,
           'spectrogram_freq': f, 'spectrogram_time': t, 'spectrogram_Sxx': Sxx}
    bins = np.asarray(rate_histogram_bins, float)
    for phase, idx in samples.items():
        x = pop_rate if idx is None else pop_rate[idx]
        if x.size < WELCH_NPERSEG:
            out[f'power_spectrum_V1_{phase}'] = np.full(WELCH_NPERSEG // 2 + 1, np.nan)
        else:
            out['power_spectrum_freq'], out[f'power_spectrum_V1_{phase}'] = welch(
                x - x.mean(), fs=FS, noverlap=WELCH_NOVERLAP, nperseg=WELCH_NPERSEG, window='boxcar')
        mean_rates = rates.mean(axis=1) if idx is None else (
            rates[:, idx].mean(axis=1) if idx else np.full(len(trains), np.nan))
        out[f"rate_histogram_{phase.replace('_fluct', '')}"] = np.histogram(
            mean_rates[np.isfinite(mean_rates)], bins=bins)[0]
    out.setdefault('power_spectrum_freq', np.fft.rfftfreq(WELCH_NPERSEG, 1. / FS))
    out['rate_histogram_bins'] = bins
    return out


def write_synthetic(folder, phases_s=((0., 40., 'low'), (40., 80., 'high'), (80., 120., 'low')),
                    channels=range(66, 127), neurons_per_channel: int = 2, rate: float = 10.,
                    oscillation_hz: float = 2., depth: float = 1., session: str = '090425blk10',
                    seed: int = 0) -> Path:
    """Spike files in pvc-5's format (folder/crcns-pvc5/rawSpikeTime/times_<session>_ch<N>.mat
    with 'cluster_class' = [cluster id, time ms]) from inhomogeneous Poisson neurons: rate
    ``rate`` modulated by a shared sinusoid of ``oscillation_hz`` with relative ``depth``
    in the 'high' phases, constant in the 'low' ones. Cluster ids 0..n-1 per channel.
    Upstream's threshold (125) is absolute: with >= ~60 neurons at 10 spikes/s on channels
    <= 112 the two kinds of phase fall clearly on either side of it (the spiking noise
    sums to ~3300 / neurons below 40 Hz, the 2 Hz oscillation to ~200).
    Returns the rawSpikeTime folder."""
    from scipy.io import savemat
    rng = np.random.default_rng(seed)
    out = Path(folder) / 'crcns-pvc5' / 'rawSpikeTime'
    out.mkdir(parents=True, exist_ok=True)
    t_end = max(stop for _, stop, _ in phases_s) * 1e3
    grid = np.arange(0., t_end, 1.)
    profile = np.ones_like(grid)
    for start, stop, kind in phases_s:
        inside = (grid >= start * 1e3) & (grid < stop * 1e3)
        if kind == 'high':
            profile[inside] += depth * np.sin(2 * np.pi * oscillation_hz * grid[inside] / 1e3)
    cum = np.concatenate([[0.], np.cumsum(profile)])             # ms-weighted integral
    for channel in channels:
        rows = []
        for cluster in range(neurons_per_channel):
            n = rng.poisson(rate * cum[-1] / 1e3)
            times = np.sort(np.interp(rng.uniform(0., cum[-1], n), cum, np.r_[grid, t_end]))
            rows.append(np.column_stack([np.full(n, float(cluster)), times]))
        savemat(out / f'times_{session}_ch{channel}.mat', {'cluster_class': np.vstack(rows)})
    return out


#: upstream's subsample matching the recorded neurons (compute_rate_time_series.py, 'subsample')
SUBSAMPLE_NEURONS, SUBSAMPLE_MIN_RATE = 140, 0.56


def subsampled_rate_series(spikes: dict, sizes: dict, t_min: float, t_max: float,
                           n_neurons: int = SUBSAMPLE_NEURONS, min_rate: float = SUBSAMPLE_MIN_RATE,
                           strict: bool = True, taken: dict | None = None):
    """A simulated area's rate as if recorded like Chu et al.'s 140 neurons (upstream's
    rate_time_series_subsample_<area>.npy, for Fig. 6's spectra): per population the
    first round(140 N_pop / N_area) neurons (in id order, among those that spiked in
    (t_min, t_max]) whose rate exceeds 0.56 spikes/s; their binned rate (upstream's
    shifted 1 ms bins); the area's series is the mean weighted by the neurons taken.

    ``spikes``: {pop: (neuron ids, times ms)}; ``sizes``: {pop: model size N_pop}.
    Returns (area series (bins,), {pop: series}). A population with fewer active
    neurons than its share is an error (upstream: an IndexError); with ``strict=False``
    (a down-scaled run) all of its active neurons are taken. ``taken``, if given, receives
    {pop: [neurons taken, neurons wanted]}.
    """
    from .upstream_api import binned_rate
    total = sum(sizes[p] for p in spikes)
    series, used = {}, {}
    for pop, (ids, times) in spikes.items():
        ids, times = np.asarray(ids), np.asarray(times, float)
        keep = (times > t_min) & (times <= t_max)
        ids, times = ids[keep], times[keep]
        want = int(np.round(n_neurons * sizes[pop] / total))
        candidates, counts = np.unique(ids, return_counts=True)
        active = candidates[counts / (1e-3 * (t_max - t_min)) > min_rate]
        if active.size < want and strict:
            raise ValueError(f"population {pop}: {active.size} neurons above {min_rate} spikes/s, "
                             f"{want} needed for the {n_neurons}-neuron subsample")
        n = min(want, active.size)
        chosen = np.isin(ids, active[:n])
        series[pop] = binned_rate(times[chosen], max(n, 1), t_min, t_max)
        used[pop] = n
        if taken is not None:
            taken[pop] = [n, want]
    pops = list(series)
    weights = [used[p] for p in pops]
    if not sum(weights):
        return np.zeros_like(series[pops[0]]), series
    area = np.average(np.array([series[p] for p in pops]), axis=0, weights=weights)
    return area, series
