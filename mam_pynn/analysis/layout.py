"""Upstream's data layout of one labelled simulation, ``<data_path>/<label>/``: the one place
for its file names, and a reader with one method per quantity the dynamics figures read.

This is the layout of the authors' published full-scale data (figures/README.md says where
to get it) and of what ``mam preprocess`` writes from our run directories, so that both are
drawn by the same figure code. The names, formats and nesting follow upstream
(INM-6/multi-area-model @355d940):

- ``multiarea_model/analysis.py`` ``Analysis.save()``: dictionaries as ``Analysis/<name>.json``
  (with their ``'Parameters'``), arrays as ``Analysis/<name>-<area>[-<pop>][-<leaf>].npy``
  with ``Analysis/<name>-parameters`` (JSON, no suffix); spikes as
  ``recordings/<label>-spikes-<area>-<pop>.npy`` ((n, 2): NEST global id, time in ms);
- ``figures/Schmidt2018_dyn/Snakefile_preprocessing`` and its ``compute_*.py``: one folder
  per method under ``Analysis/`` (``rate_time_series_full/rate_time_series_full_V1.npy``,
  ``..._V1_23E.npy``, ``rate_time_series_full_Parameters.json``; ``power_spectrum_*``,
  ``rate_histogram``, ``cross_correlation``, ``synaptic_input``, ``bold_signal``,
  ``granger_causality``) and ``Analysis/corrcoeff.json``,
  ``Analysis/functional_connectivity_<method>.npy``, ``Analysis/FC_<method>_communities.json``.

A file that is not there is a ``FileNotFoundError`` of one line naming the file, the figure
that needs it and what writes it. Series start at the ``t_min`` of their parameters (500 ms
in upstream's scripts), one value per ms; matrices over areas are in ``areas()`` order.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..params import AREA_LIST

#: quantity -> (file pattern under <data_path>/<label>/, what writes it upstream; `mam
#: preprocess` writes those our code computes). Fields: label, area, pop, area2, method, name.
FILES = {
    'custom_params': ('custom_params_{label}', "upstream's Simulation (JSON of its parameters)"),
    'network_gids': ('recordings/network_gids.txt', "upstream's Simulation"),
    'spikes': ('recordings/{label}-spikes-{area}-{pop}.npy', "upstream's Analysis.load_data"),
    # Analysis.save(): dictionaries (with 'Parameters')
    'pop_rates': ('Analysis/pop_rates.json', "Analysis.create_pop_rates + save(), compute_pop_rates.py"),
    'pop_LvR': ('Analysis/pop_LvR.json', "Analysis.create_pop_LvR + save(), compute_pop_LvR.py"),
    'pop_cv_isi': ('Analysis/pop_cv_isi.json', "Analysis.create_pop_cv_isi + save()"),
    'synchrony': ('Analysis/synchrony.json', "Analysis.create_synchrony + save()"),
    # Analysis.save(): arrays, one file per leaf of the nested dict, and its parameters
    'analysis_array': ('Analysis/{name}-{keys}.npy', "Analysis.create_<name> + save()"),
    'analysis_parameters': ('Analysis/{name}-parameters', "Analysis.create_<name> + save()"),
    # Snakefile_preprocessing and compute_*.py
    'corrcoeff': ('Analysis/corrcoeff.json', 'compute_corrcoeff.py'),
    'pop_rates_LA_state': ('Analysis/pop_rates_LA_state.json',
                           'rates of the low-activity phase (3500-3600 ms) for Fig9_path_analysis.py'),
    'rate_time_series': ('Analysis/rate_time_series_{method}/rate_time_series_{method}_{area}.npy',
                         'compute_rate_time_series.py'),
    'rate_time_series_pop': ('Analysis/rate_time_series_{method}/rate_time_series_{method}_{area}_{pop}.npy',
                             'compute_rate_time_series.py'),
    'rate_time_series_parameters': ('Analysis/rate_time_series_{method}/rate_time_series_{method}_Parameters.json',
                                    'compute_rate_time_series.py'),
    'rate_histogram': ('Analysis/rate_histogram/rate_histogram_{area}.npy', 'compute_rate_histogram.py'),
    'rate_histogram_bins': ('Analysis/rate_histogram/rate_histogram_bins.npy', 'compute_rate_histogram.py'),
    'power_spectrum': ('Analysis/power_spectrum_{method}/power_spectrum_{method}_{area}.npy',
                       'compute_power_spectrum.py'),
    'power_spectrum_freq': ('Analysis/power_spectrum_{method}/power_spectrum_{method}_freq.npy',
                            'compute_power_spectrum.py'),
    'cross_correlation': ('Analysis/cross_correlation/cross_correlation_{area}_{area2}.npy',
                          'compute_cross_correlation.py'),
    'cross_correlation_time': ('Analysis/cross_correlation/cross_correlation_time.npy',
                               'compute_cross_correlation.py'),
    'synaptic_input': ('Analysis/synaptic_input/synaptic_input_{area}.npy', 'compute_synaptic_input.py'),
    'synaptic_input_pop': ('Analysis/synaptic_input/synaptic_input_{area}_{pop}.npy',
                           'compute_synaptic_input.py'),
    'synaptic_input_parameters': ('Analysis/synaptic_input/synaptic_input_Parameters.json',
                                  'compute_synaptic_input.py'),
    'bold_signal': ('Analysis/bold_signal/bold_signal_{area}.npy', 'compute_bold_signal.py'),
    'functional_connectivity': ('Analysis/functional_connectivity_{method}.npy',
                                'compute_functional_connectivity.py'),
    'communities': ('Analysis/FC_{method}_communities.json', 'compute_louvain_communities.py'),
    'granger_causality': ('Analysis/granger_causality/granger_causality_{area}_{pop}.json',
                          'compute_granger_causality.py'),
}


class MissingFile(FileNotFoundError):
    """A file of the layout is not there (``path``)."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


def relative_path(key: str, **fields) -> str:
    """The file of ``key`` relative to ``<data_path>/<label>``, fields filled in."""
    if key not in FILES:
        raise KeyError(f"no file kind {key!r} in upstream's layout; known: {', '.join(FILES)}")
    if 'keys' in fields and not isinstance(fields['keys'], str):
        fields['keys'] = '-'.join(fields['keys'])
    return FILES[key][0].format(**fields)


def _nan(obj):
    """JSON data with null (our writer) or NaN (upstream's json.dump) as float NaN."""
    if isinstance(obj, dict):
        return {k: _nan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan(v) for v in obj]
    return float('nan') if obj is None else obj


def _rate(value) -> float:
    """Upstream's Analysis stores a rate as [rate, sd] ([0, 0]: no such population, NaN
    here); its compute scripts store the rate."""
    if isinstance(value, (list, tuple)):
        return float('nan') if list(value) == [0., 0.] else float(value[0])
    return float(value)


class LabelledRun:
    """One simulation in upstream's layout, ``<data_path>/<label>``; ``figure`` names the
    figure reading it, for the error message of a missing file."""

    def __init__(self, data_path, label: str, figure: str | None = None):
        self.data_path, self.label, self.figure = Path(data_path), str(label), figure
        self.root = self.data_path / self.label

    def __repr__(self) -> str:
        return f"LabelledRun({str(self.data_path)!r}, {self.label!r})"

    def path(self, key: str, **fields) -> Path:
        return self.root / relative_path(key, label=self.label, **fields)

    def has(self, key: str, **fields) -> bool:
        return self.path(key, **fields).is_file()

    def file(self, key: str, **fields) -> Path:
        """The existing file of ``key``, else FileNotFoundError naming it and who needs it."""
        path = self.path(key, **fields)
        if not path.is_file():
            who = self.figure or 'this figure'
            raise MissingFile(f"{path}: missing; {who} reads it (written by {FILES[key][1]}; "
                              f"`mam preprocess` writes it from a run directory)", path)
        return path

    def json(self, key: str, **fields):
        try:
            return _nan(json.loads(self.file(key, **fields).read_text()))
        except ValueError as err:
            raise ValueError(f"{self.path(key, **fields)}: not readable JSON ({err})") from err

    def array(self, key: str, pickled: bool = False, **fields) -> np.ndarray:
        return np.load(self.file(key, **fields), allow_pickle=pickled)

    # ------------------------------------------------------------ the run

    def custom_params(self) -> dict:
        """Upstream's ``custom_params_<label>``: {'sim_params', 'network_params', ...}."""
        return self.json('custom_params')

    def areas(self) -> list[str]:
        """The run's areas (upstream's order): the rate time series' parameters, else the
        areas of pop_rates.json."""
        if self.has('rate_time_series_parameters', method='full'):
            areas = self.rate_time_series_parameters('full')['areas']
        else:
            areas = [a for a in self.json('pop_rates') if a != 'Parameters']
        return [a for a in AREA_LIST if a in areas] + [a for a in areas if a not in AREA_LIST]

    def spikes(self, area: str, pop: str) -> np.ndarray:
        """(n, 2) floats: global neuron id, spike time (ms) of one population. Upstream
        saves these from a pandas frame, as pickled object arrays (it loads them with
        allow_pickle=True, and so does this method: read only data you trust)."""
        return np.asarray(self.array('spikes', pickled=True, area=area, pop=pop), float).reshape(-1, 2)

    def network_gids(self) -> dict:
        """{(area, pop): (first gid, last gid)} from recordings/network_gids.txt."""
        out = {}
        for line in self.file('network_gids').read_text().split():
            area, pop, first, last = line.split(',')
            out[(area, pop)] = (int(first), int(last))
        return out

    # ------------------------------------------------------------ dictionaries {area: {pop: value}}

    def _table(self, key: str, value=float) -> dict:
        return {area: {pop: value(v) for pop, v in pops.items()}
                for area, pops in self.json(key).items() if area != 'Parameters'}

    def pop_rates(self) -> dict:
        """{area: {pop: rate (spikes/s), 'total': area rate}}. Upstream's Analysis stores
        (0., 0.) for a population the area lacks (TH's layer 4; a present one has (rate,
        NaN)): those are left out."""
        return {area: {pop: v for pop, v in pops.items() if not np.isnan(v)}
                for area, pops in self._table('pop_rates', _rate).items()}

    def pop_rates_LA_state(self) -> dict:
        return self._table('pop_rates_LA_state', _rate)

    def pop_LvR(self) -> dict:
        return self._table('pop_LvR')

    def pop_cv_isi(self) -> dict:
        return self._table('pop_cv_isi')

    def synchrony(self) -> dict:
        return self._table('synchrony')

    def corrcoeff(self) -> dict:
        return self._table('corrcoeff')

    def parameters(self, name: str) -> dict:
        """The 'Parameters' of an Analysis member: in <name>.json, else <name>-parameters."""
        if name in FILES and FILES[name][0].endswith('.json'):
            return self.json(name)['Parameters']
        return self.json('analysis_parameters', name=name)

    def analysis_array(self, name: str, *keys) -> np.ndarray:
        """One array of an Analysis member saved by ``save()``, e.g.
        ``analysis_array('rate_time_series_pops', 'V1', '23E')``."""
        return self.array('analysis_array', name=name, keys=keys)

    def pop_rate_dists(self, area: str, pop: str) -> dict:
        """Analysis.pop_rate_dists[area][pop]: {'histogram': (2, bins) [left edges, fractions],
        'stats': {'mu', 'sigma'}}."""
        get = self.analysis_array
        return {'histogram': get('pop_rate_dists', area, pop, 'histogram'),
                'stats': {'mu': float(get('pop_rate_dists', area, pop, 'stats', 'mu')),
                          'sigma': float(get('pop_rate_dists', area, pop, 'stats', 'sigma'))}}

    # ------------------------------------------------------------ preprocessed series

    def rate_time_series(self, area: str, pop: str | None = None, method: str = 'full') -> np.ndarray:
        """Population (``pop``) or area rate (spikes/s per neuron), one value per ms from
        the parameters' t_min; ``method`` 'full' (binned, all neurons), 'subsample'
        (140 neurons, as Chu et al. 2014) or 'auto_kernel' (Shimazaki's optimal kernel)."""
        if pop is None:
            return self.array('rate_time_series', method=method, area=area)
        return self.array('rate_time_series_pop', method=method, area=area, pop=pop)

    def rate_time_series_parameters(self, method: str = 'full') -> dict:
        return self.json('rate_time_series_parameters', method=method)

    def rate_histogram(self, area: str) -> tuple[np.ndarray, np.ndarray]:
        """(left bin edges, fractions) of the area's single-neuron rates. Upstream keeps one
        bins file per run, that of the last area it computed (V1 in its workflow)."""
        return self.array('rate_histogram_bins'), self.array('rate_histogram', area=area)

    def power_spectrum(self, area: str, method: str = 'subsample') -> tuple[np.ndarray, np.ndarray]:
        """(frequencies in Hz, power) of the area's rate series of ``method``."""
        return (self.array('power_spectrum_freq', method=method),
                self.array('power_spectrum', method=method, area=area))

    def cross_correlation(self, area: str, area2: str) -> tuple[np.ndarray, np.ndarray]:
        """(lags in ms, (2, 2, lags) correlation functions of the two areas' rates)."""
        return (self.array('cross_correlation_time'),
                self.array('cross_correlation', area=area, area2=area2))

    def synaptic_input(self, area: str, pop: str | None = None) -> np.ndarray:
        if pop is None:
            return self.array('synaptic_input', area=area)
        return self.array('synaptic_input_pop', area=area, pop=pop)

    def bold_signal(self, area: str) -> np.ndarray:
        return self.array('bold_signal', area=area)

    def functional_connectivity(self, method: str = 'synaptic_input') -> np.ndarray:
        """(areas, areas) FC of ``method`` ('synaptic_input', 'bold_signal', ...)."""
        return self.array('functional_connectivity', method=method)

    def communities(self, method: str = 'synaptic_input') -> dict:
        """{area: community} of the FC of ``method`` (Louvain)."""
        return {a: int(c) for a, c in self.json('communities', method=method).items()}

    def granger_causality(self, area: str, pop: str) -> dict:
        """{source area: {source pop: (causality, p value)}} onto (area, pop)."""
        return {sa: {sp: tuple(v) for sp, v in pops.items()}
                for sa, pops in self.json('granger_causality', area=area, pop=pop).items()}


# ------------------------------------------------------------ writing files of the layout

def jsonable(obj):
    """Strict JSON data: arrays as lists, NaN/inf as null (the reader turns null into NaN)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj.item() if isinstance(obj, np.generic) else obj


def write_file(path, content) -> Path:
    """One file of the layout, atomically: an array as .npy, a str as text, else JSON."""
    from ..io import atomic_path, atomic_write_json, atomic_write_text
    path = Path(path)
    if isinstance(content, np.ndarray):
        with atomic_path(path) as tmp, open(tmp, 'wb') as f:
            np.save(f, content, allow_pickle=False)
        return path
    if isinstance(content, str):
        return atomic_write_text(path, content)
    return atomic_write_json(path, jsonable(content))


def holds(path, content) -> bool:
    """Whether ``path`` already holds ``content`` (then it is kept as it is)."""
    path = Path(path)
    try:
        if isinstance(content, np.ndarray):
            stored = np.load(path, allow_pickle=False)
            return stored.shape == content.shape and np.array_equal(
                stored, content, equal_nan=content.dtype.kind == 'f')
        if isinstance(content, str):
            return path.read_text() == content
        return json.loads(path.read_text()) == jsonable(content)
    except (OSError, ValueError):
        return False
