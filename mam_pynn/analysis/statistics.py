"""Spike statistics on columnar arrays (vectorised numpy), with Elephant for spectra.

Inputs are a population's spikes sorted by (neuron, time): ``neuron`` (indices
0..size-1) and ``times`` (ms), already restricted to the window [t_min, t_max).
Per-neuron statistics come back as arrays of length ``size`` with NaN where a
neuron has too few spikes. Definitions follow Schmidt et al. (2018):

- rate: spikes / (neurons x duration), silent neurons included;
- CV of the inter-spike intervals (ISIs), per neuron, averaged over neurons;
- LvR, the revised local variation of Shinomoto et al. (2009), with the
  refractory period R as correction term;
- synchrony: the coefficient of variation (std / mean) of the population spike
  count histogram in bins of 1 ms;
- pairwise correlation coefficients of spike counts in 1 ms bins for a sample of
  active neurons;
- functional connectivity: Pearson correlation of the areas' activity time series.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mam_pynn.params import SINGLE_NEURON_DICT

#: LvR's refractory correction R when a run does not give its neurons' t_ref (ms)
DEFAULT_T_REF = float(SINGLE_NEURON_DICT['t_ref'])

#: at least this many ISIs for a neuron's CV or LvR to be defined (LvR needs ISI pairs)
MIN_INTERVALS = 2


DEFAULT_LEN_SEGMENT = 1024   # samples: upstream's Welch segment


def spike_counts(neuron: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(neuron, minlength=size)[:size]


def neuron_rates(neuron: np.ndarray, size: int, duration_ms: float) -> np.ndarray:
    """Single-neuron rates (spikes/s), silent neurons included."""
    return spike_counts(neuron, size) / (duration_ms / 1000.)


def population_rate(n_spikes: int, size: int, duration_ms: float) -> float:
    """Population-averaged rate (spikes/s); NaN for an empty population."""
    return n_spikes / (size * duration_ms / 1000.) if size > 0 else float('nan')


def intervals(neuron: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, isi): all inter-spike intervals and the neuron each belongs to."""
    same = neuron[1:] == neuron[:-1]
    return neuron[1:][same], np.diff(times)[same]


def _cv_of_intervals(owner: np.ndarray, isi: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(per-neuron CV (std/mean, ddof=0) of the ISIs, number of ISIs per neuron)."""
    n = np.bincount(owner, minlength=size).astype(float)
    with np.errstate(invalid='ignore', divide='ignore'):
        mean = np.bincount(owner, isi, minlength=size) / n
        var = np.bincount(owner, (isi - mean[owner]) ** 2, minlength=size) / n
        return np.sqrt(var) / mean, n


def cv_isi(neuron: np.ndarray, times: np.ndarray, size: int,
           min_intervals: int = MIN_INTERVALS) -> np.ndarray:
    """Per-neuron CV (std/mean, ddof=0) of the ISIs; NaN below ``min_intervals`` ISIs."""
    cv, n = _cv_of_intervals(*intervals(neuron, times), size)
    cv[n < max(min_intervals, 1)] = np.nan
    return cv


def _lvr_of_intervals(owner: np.ndarray, isi: np.ndarray, size: int, t_ref: float,
                      min_intervals: int) -> np.ndarray:
    pair = owner[1:] == owner[:-1]
    i1, i2, who = isi[:-1][pair], isi[1:][pair], owner[1:][pair]
    s = i1 + i2
    terms = (1. - 4. * i1 * i2 / s ** 2) * (1. + 4. * t_ref / s)
    n_pairs = np.bincount(who, minlength=size).astype(float)
    with np.errstate(invalid='ignore', divide='ignore'):
        out = 3. * np.bincount(who, terms, minlength=size) / n_pairs
    n_isi = np.bincount(owner, minlength=size)
    out[n_isi < max(min_intervals, 2)] = np.nan
    return out


def lvr(neuron: np.ndarray, times: np.ndarray, size: int, t_ref: float = DEFAULT_T_REF,
        min_intervals: int = MIN_INTERVALS) -> np.ndarray:
    """Per-neuron revised local variation LvR (Shinomoto et al. 2009).

    LvR = 3/(n-1) sum_i (1 - 4 I_i I_{i+1} / (I_i + I_{i+1})^2) (1 + 4 R / (I_i + I_{i+1}))
    over the n ISIs I of a neuron, R = ``t_ref`` (ms). About 1 for Poisson spiking
    with dead time R, 0 for regular spiking. NaN below ``min_intervals`` ISIs.
    """
    return _lvr_of_intervals(*intervals(neuron, times), size, t_ref, min_intervals)


def cv_isi_upstream(neuron: np.ndarray, times: np.ndarray, size: int) -> float:
    """Upstream's population CV of ISI (analysis_helpers.pop_cv_isi): the mean of the
    per-neuron CVs over the neurons with >= 1 ISI, so a neuron with two spikes counts as
    CV 0; 0.0 without any. Ours (``cv_isi``) needs >= 2 ISIs. Upstream takes the spikes in
    the open window (t_min, t_max): select them so before calling."""
    return _upstream_cv(cv_isi(neuron, times, size, min_intervals=1))


def _upstream_cv(cv_one_interval: np.ndarray) -> float:
    finite = cv_one_interval[np.isfinite(cv_one_interval)]
    return float(finite.mean()) if finite.size else 0.0


def irregularity(neuron: np.ndarray, times: np.ndarray, size: int,
                 t_ref: float = DEFAULT_T_REF) -> tuple[np.ndarray, float, np.ndarray]:
    """(``cv_isi``, ``cv_isi_upstream``, ``lvr``) of one population from one pass over
    its intervals (the same numbers as the three functions)."""
    owner, isi = intervals(neuron, times)
    cv, n = _cv_of_intervals(owner, isi, size)
    cv[n < 1] = np.nan
    upstream = _upstream_cv(cv)
    cv[n < MIN_INTERVALS] = np.nan
    return cv, upstream, _lvr_of_intervals(owner, isi, size, t_ref, MIN_INTERVALS)


def upstream_mean(values: np.ndarray) -> float:
    """Upstream's population LvR: undefined neurons count as 0 (includes silent ones)."""
    return float(np.mean(np.nan_to_num(values, nan=0.))) if values.size else float('nan')


def nanmean(values: np.ndarray) -> float:
    """Mean over the neurons where a value is defined; NaN if there is none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float('nan')


def n_bins(t_min: float, t_max: float, bin_ms: float) -> int:
    n = int(np.floor((t_max - t_min) / bin_ms + 1e-9))
    if n < 1:
        raise ValueError(f"window [{t_min}, {t_max}) ms is shorter than one bin of {bin_ms} ms")
    return n


def spike_histogram(times: np.ndarray, t_min: float, t_max: float, bin_ms: float = 1.) -> np.ndarray:
    """Spike counts in consecutive bins of ``bin_ms`` starting at t_min."""
    nb = n_bins(t_min, t_max, bin_ms)
    idx = np.floor((times - t_min) / bin_ms).astype(np.int64)
    idx = idx[(idx >= 0) & (idx < nb)]
    return np.bincount(idx, minlength=nb)


def rate_series(times: np.ndarray, size: int, t_min: float, t_max: float,
                bin_ms: float = 1.) -> np.ndarray:
    """Binned population rate (spikes/s per neuron)."""
    return counts_to_rates(spike_histogram(times, t_min, t_max, bin_ms), size, bin_ms)


def counts_to_rates(counts: np.ndarray, size: int, bin_ms: float = 1.) -> np.ndarray:
    """Spike counts per bin of ``size`` neurons as a rate (spikes/s per neuron)."""
    return counts / (max(size, 1) * bin_ms / 1000.)


def gaussian_kernel(sigma_ms: float, bin_ms: float, cutoff: float = 5.) -> np.ndarray:
    """Gaussian sampled on the bin grid over +-cutoff sigma, summing to 1."""
    if sigma_ms <= 0:
        raise ValueError(f"kernel width sigma must be > 0 ms, got {sigma_ms}")
    half = int(np.ceil(cutoff * sigma_ms / bin_ms))
    t = np.arange(-half, half + 1) * bin_ms
    k = np.exp(-0.5 * (t / sigma_ms) ** 2)
    return k / k.sum()


def smooth(series: np.ndarray, sigma_ms: float, bin_ms: float = 1.) -> np.ndarray:
    """Convolve binned series (last axis time) with a Gaussian.

    Near the edges the kernel is renormalised to its part inside the window, so a
    constant rate stays constant up to the window's ends.
    """
    from scipy.ndimage import convolve1d
    series = np.asarray(series, float)
    kernel = gaussian_kernel(sigma_ms, bin_ms)
    inside = convolve1d(np.ones(series.shape[-1]), kernel, mode='constant', cval=0.)
    return convolve1d(series, kernel, axis=-1, mode='constant', cval=0.) / inside


def synchrony(times: np.ndarray, t_min: float, t_max: float, bin_ms: float = 1.) -> float:
    """CV (std/mean) of the population spike count histogram; NaN without spikes."""
    return counts_synchrony(spike_histogram(times, t_min, t_max, bin_ms))


def counts_synchrony(counts: np.ndarray) -> float:
    """:func:`synchrony` of a spike count histogram."""
    m = counts.mean()
    return float(counts.std() / m) if m > 0 else float('nan')


def sorted_membership(sorted_values: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hit, pos): whether each x is in ``sorted_values`` and its index there (valid where hit).

    A vectorised ``isin`` that also gives positions, used to pick sampled neurons' spikes.
    """
    pos = np.searchsorted(sorted_values, x)
    inside = pos < sorted_values.size
    hit = np.zeros(np.shape(x), bool)
    hit[inside] = sorted_values[pos[inside]] == x[inside]
    return hit, pos


def count_matrix(neuron: np.ndarray, times: np.ndarray, sample: np.ndarray,
                 t_min: float, t_max: float, bin_ms: float = 1.):
    """Sparse spike counts (len(sample) x bins, CSR) of the sampled neurons (``sample`` sorted)."""
    from scipy.sparse import csr_matrix
    nb = n_bins(t_min, t_max, bin_ms)
    sample = np.asarray(sample, np.int64)
    row_of = np.full(max(int(neuron.max(initial=-1)), int(sample.max(initial=-1))) + 1, -1, np.int64)
    row_of[sample] = np.arange(sample.size)      # a table lookup per spike, not a search
    row = row_of[neuron]
    hit = row >= 0
    col = np.floor((times[hit] - t_min) / bin_ms).astype(np.int64)
    ok = (col >= 0) & (col < nb)
    return csr_matrix((np.ones(ok.sum()), (row[hit][ok], col[ok])), shape=(sample.size, nb))


def correlation_matrix(counts) -> np.ndarray:
    """Pearson correlation coefficients of the rows (NaN for rows without variance).

    Works on sparse counts without densifying: cov = (X X^T - s s^T / n) / n.
    """
    from scipy.sparse import issparse
    if not issparse(counts):
        counts = np.asarray(counts, float)
    n = counts.shape[1]
    gram = counts @ counts.T
    gram = gram.toarray() if issparse(gram) else np.asarray(gram)
    s = np.asarray(counts.sum(axis=1)).ravel()
    cov = gram / n - np.outer(s, s) / n ** 2
    sd = np.sqrt(np.clip(np.diag(cov), 0., None))
    with np.errstate(invalid='ignore', divide='ignore'):
        cc = cov / np.outer(sd, sd)
    cc[sd == 0, :] = np.nan
    cc[:, sd == 0] = np.nan
    return np.clip(cc, -1., 1.)


def mean_off_diagonal(cc: np.ndarray) -> float:
    """Mean of the off-diagonal entries, NaN ones left out."""
    if cc.ndim != 2 or cc.shape[0] < 2:
        return float('nan')
    vals = cc[~np.eye(cc.shape[0], dtype=bool)]
    return nanmean(vals)


#: the default Welch segment, as statistics.json and the summary line state it
WELCH_SEGMENT_RULE = ('1024 samples (upstream) or, for fewer than 4096 bins, the largest power of '
                      'two <= bins / 4 (>= 7 half-overlapping segments averaged)')


def welch_segment(length: int, len_segment: int | None = None) -> int:
    """Welch segment length (samples) for a series of ``length`` samples.

    ``len_segment`` None: :data:`WELCH_SEGMENT_RULE` (the caller records it). An explicit
    ``len_segment`` is used as given and refused (ValueError naming
    spectrum_len_segment) when the series is shorter."""
    if length < 4:
        raise ValueError(f"a spectrum needs at least 4 samples, got {length}")
    if len_segment is not None:
        if len_segment > length:
            raise ValueError(f"analysis parameter spectrum_len_segment={len_segment} is longer than "
                             f"the analysed window ({length} samples): shorten it or the bins, or "
                             f"analyse a longer window")
        return int(len_segment)
    return int(min(DEFAULT_LEN_SEGMENT, 2 ** int(np.floor(np.log2(max(length / 4., 4.))))))


def power_spectrum(series: np.ndarray, bin_ms: float = 1., len_segment: int | None = None,
                   overlap: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density (Elephant's ``welch_psd``) of mean-removed series,
    segments of :func:`welch_segment` samples, half-overlapping (upstream lets them
    overlap by 1000 of 1024 samples: :func:`power_spectrum_upstream`).
    Returns (frequencies in Hz without 0, psd) with psd along the last axis.
    """
    from elephant.spectral import welch_psd
    x = np.atleast_2d(np.asarray(series, float))
    x = x - x.mean(axis=-1, keepdims=True)
    seg = welch_segment(x.shape[-1], len_segment)
    freqs, psd = welch_psd(x, len_segment=seg, overlap=overlap, fs=1000. / bin_ms, axis=-1)
    freqs = np.asarray(freqs, float)
    keep = freqs > 0
    psd = np.asarray(psd)[..., keep]
    return freqs[keep], psd if np.ndim(series) > 1 else psd[0]


def power_spectrum_upstream(series: np.ndarray, bin_ms: float = 1.) -> tuple[np.ndarray, np.ndarray]:
    """Upstream's paper spectra: scipy.signal.welch, 1024-sample segments overlapping by
    1000 samples (constant detrend), of the binned rates; refused for windows shorter than
    1024 bins. Returns (frequencies in Hz without 0, psd)."""
    from scipy.signal import welch
    x = np.atleast_2d(np.asarray(series, float))
    if x.shape[-1] < DEFAULT_LEN_SEGMENT:
        raise ValueError(f"analysis parameter spectrum_method='upstream' needs >= {DEFAULT_LEN_SEGMENT} "
                         f"bins (upstream's nperseg), the window has {x.shape[-1]}")
    freqs, psd = welch(x, fs=1000. / bin_ms, nperseg=DEFAULT_LEN_SEGMENT, noverlap=1000, axis=-1)
    keep = freqs > 0
    psd = psd[..., keep]
    return freqs[keep], psd if np.ndim(series) > 1 else psd[0]


def bootstrap_mean_cc_se(cc: np.ndarray, draws: int = 50, seed: int = 0) -> float:
    """Sampling error of the mean pairwise correlation: the SD over bootstrap resamples
    of the neurons (with replacement) of the mean off-diagonal entry of ``cc``.

    A resample is its multiplicities m (how often each neuron was drawn): its pairs of
    distinct neurons k != l number m_k m_l, so its mean is m'Cm / m'Fm with C the finite
    off-diagonal entries (0 elsewhere) and F their indicator; all draws at once, in
    numpy's own loops (no BLAS threads: the same result in any process)."""
    n = cc.shape[0]
    if n < 3:
        return float('nan')
    idx = np.random.default_rng(seed).integers(0, n, (draws, n))
    m = np.bincount((idx + n * np.arange(draws)[:, None]).ravel(),
                    minlength=draws * n).reshape(draws, n).astype(float)
    finite = np.isfinite(cc)
    np.fill_diagonal(finite, False)
    pairs = (np.einsum('di,ij->dj', m, finite.astype(float)) * m).sum(1) \
        if finite.sum() < n * (n - 1) else n * n - (m * m).sum(1)   # exact: integers
    with np.errstate(invalid='ignore', divide='ignore'):
        means = (np.einsum('di,ij->dj', m, np.where(finite, cc, 0.)) * m).sum(1) / pairs
    return float(np.nanstd(means))


def functional_connectivity(area_series: np.ndarray) -> np.ndarray:
    """Correlation matrix of the areas' activity time series (rows: areas); always
    (areas, areas), also for one area (np.corrcoef gives a scalar there)."""
    series = np.atleast_2d(np.asarray(area_series, float))
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.atleast_2d(np.corrcoef(series)).reshape(len(series), len(series))


def fc_similarity(sim: np.ndarray, exp: np.ndarray) -> float:
    """Pearson correlation between the off-diagonal entries (upper triangle) of two FCs."""
    sim, exp = np.asarray(sim, float), np.asarray(exp, float)
    if sim.shape != exp.shape or sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"FC matrices must be square and alike, got {sim.shape} and {exp.shape}")
    iu = np.triu_indices(sim.shape[0], k=1)
    a, b = sim[iu], exp[iu]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float('nan')
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


#: the experimental FC data file (in the MAM data directory)
FMRI_FILE = 'Fig8_exp_func_conn.csv'


def load_experimental_fc(areas: list[str], path=None) -> np.ndarray:
    """Experimental resting-state fMRI FC between ``areas`` (Schmidt et al. 2018, Fig. 8).

    The tab-separated file has comment lines, a header of area names and a
    symmetric matrix. It lists each of its 77 areas twice (two blocks); like
    upstream's reader, the last occurrence of a name wins, i.e. the second block.
    """
    if path is None:
        from mam_pynn.data import data_file
        path = data_file(FMRI_FILE)
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip() and not ln.startswith('#')]
    names = lines[0].split('\t')
    mat = np.array([[float(v) for v in ln.split('\t')] for ln in lines[1:]])
    if mat.shape != (len(names), len(names)):
        raise ValueError(f"{path}: expected a {len(names)}x{len(names)} matrix, got {mat.shape}")
    last = {name: i for i, name in enumerate(names)}
    missing = [a for a in areas if a not in last]
    if missing:
        raise KeyError(f"areas {missing} are not in the experimental FC file {path}")
    idx = np.array([last[a] for a in areas])
    return mat[np.ix_(idx, idx)]
