"""Upstream's ``M.analysis`` (multiarea_model/analysis.py) over our run directory, for
scripts ported from upstream: the same method and attribute names, upstream's
definitions (open window (t_min, t_max), t_min 500 ms, populations as dicts
{area: {pop: value}}, silent neurons in the LvR mean as 0, CV over neurons with >= 1 ISI).

Our own analysis (``mam analyze``, :func:`mam_pynn.analysis.analyze_run`) uses other,
documented definitions (analysis/README.md); this class is for comparing with upstream's
numbers. It reads the run that ``M.simulation`` wrote (``M.simulation.run_dir``) or any
run directory, and loads spikes on first use, so ``MultiAreaModel(..., analysis=True)``
works before ``simulate()`` as upstream's scripts expect.

Deliberate differences: population sizes are the simulated (integer) ones from
``config.yaml``, not the model's fractional ``N`` (the synaptic input weights by the
model's ``N``, ``K`` and ``W``, as upstream); ``pop_rate_dists`` counts every spike
(upstream's loop drops each neuron's first spike but the first neuron's); only the
``'binned'`` kernel; ``save()`` refuses to replace different results unless told.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io import atomic_path
from ..params import POPULATION_LIST
from . import statistics as st
from .bold import bold_signal
from .layout import LabelledRun, holds, jsonable, relative_path, write_file
from .spikes import SUMMARY_FILE, SpikeFile, read_run_info, recorded_only
from .synaptic_input import synaptic_input, synaptic_output

T_MIN_DEFAULT = 500.    # ms, upstream's _create_parameter_dict
LVR_T_REF = 2.0         # ms, upstream's create_pop_LvR
SAVED_JSON = ('pop_rates', 'synchrony', 'pop_cv_isi', 'pop_LvR')
SAVED_NPZ = ('pop_rate_dists', 'rate_time_series', 'rate_time_series_pops', 'synaptic_input',
             'synaptic_input_pops', 'bold_signal')


def _flatten(d: dict, prefix: str = '') -> dict:
    """{'V1/23E/histogram': array, ...} from a nested dict (npz keys)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + '/') if isinstance(v, dict) else {key: np.asarray(v)})
    return out


def binned_rate(times, n, t_min: float, t_max: float, resolution: float = 1.) -> np.ndarray:
    """Upstream's binned population rate (analysis_helpers.pop_rate_time_series, 'binned')
    in spikes/s of ``n`` neurons: bins of ``resolution`` ms shifted by half a bin (range
    (t_min + r/2, t_max + r/2)), each value repeated per ms."""
    r = resolution
    counts, _ = np.histogram(times, bins=int((t_max - t_min) / r), range=(t_min + r / 2., t_max + r / 2.))
    return np.repeat(counts / (n * r / 1000.), int(round(r)))


class Analysis:
    """``Analysis(network, simulation)`` as upstream, or ``Analysis(network, run_dir)``."""

    def __init__(self, network, simulation=None, data_list=('spikes',), load_areas=None,
                 run_dir=None):
        if list(data_list) != ['spikes']:
            raise ValueError(f"data_list {list(data_list)!r}: only ['spikes'] is supported "
                             f"(V_m traces are in the run's recordings, see README)")
        if isinstance(simulation, (str, Path)):
            simulation, run_dir = None, simulation
        self.network, self.simulation = network, simulation
        self._run_dir, self._load_areas = run_dir, load_areas
        self.interarea_speed = (None if network is None   # `mam preprocess` needs no model here
                                else network.params['delay_params']['interarea_speed'])
        self._info = self._spike_data = None

    # ------------------------------------------------------------ the run

    @property
    def run_dir(self) -> Path:
        """The given run, else the simulation's finished run, else its default folder
        (``runs/<simulation label>``) if a finished run is there (upstream's data_dir)."""
        if self._run_dir is not None:
            return Path(self._run_dir)
        run_dir = getattr(self.simulation, 'run_dir', None)
        if run_dir is None and self.simulation is not None:
            default = self.simulation._run_dir(None)
            run_dir = default if (default / SUMMARY_FILE).is_file() else None
        if run_dir is None:
            raise ValueError("no run to analyse yet: call M.simulation.simulate() first, or "
                             "pass run_dir to Analysis")
        return Path(run_dir)

    @property
    def output_dir(self) -> Path:
        return self.run_dir / 'analysis' / 'upstream'

    def _run_info(self):
        if self._info is None:
            info = recorded_only(read_run_info(self.run_dir))
            info.require_finished()
            unknown = [a for a in (self._load_areas or []) if a not in info.populations]
            if unknown:
                raise ValueError(f"load_areas {unknown} were not recorded in {self.run_dir} "
                                 f"(recorded: {', '.join(info.areas)})")
            self._info = info
        return self._info

    @property
    def spike_data(self) -> dict:
        """Upstream's arrays {area: {pop: (n, 2) [neuron index in pop, time ms]}}, time-sorted."""
        if self._spike_data is None:
            info, data = self._run_info(), {}
            sf = SpikeFile(info.spike_file)
            for area in self.areas_loaded:
                ids, times, _ = sf.read_area(area)
                order = np.argsort(times, kind='stable')
                ids, times = ids[order], times[order]
                data[area] = {}
                for p in info.populations[area]:
                    mine = (ids >= p.first_id) & (ids < p.first_id + p.size)
                    data[area][p.name] = np.column_stack([ids[mine] - p.first_id, times[mine]])
            self._spike_data = data
        return self._spike_data

    @property
    def T(self) -> float:
        """Simulated time (ms): summary.json's, shorter than asked if the watchdog stopped it."""
        return self._run_info().t_sim

    @property
    def areas_recorded(self) -> list:
        return self._run_info().areas

    @property
    def areas_simulated(self) -> list:
        return list(getattr(self.simulation, 'areas_simulated', None) or self.areas_recorded)

    @property
    def areas_loaded(self) -> list:
        return list(self._load_areas or self.areas_recorded)

    def _size(self, area, pop) -> int:
        return next(p.size for p in self._info.populations[area] if p.name == pop)

    def _params(self, defaults: dict, keywords: dict) -> dict:
        unknown = set(keywords) - set(defaults) - {'t_min', 't_max', 'areas', 'pops'}
        if unknown:
            raise KeyError(f"unknown parameter {sorted(unknown)[0]!r}; valid: "
                           f"{', '.join(sorted(set(defaults) | {'t_min', 't_max', 'areas', 'pops'}))}")
        params = {'areas': self.areas_loaded, 'pops': 'complete', 't_min': T_MIN_DEFAULT,
                  't_max': self.T, **defaults, **keywords}
        missing = [a for a in params['areas'] if a not in self.areas_loaded]
        if missing:
            raise ValueError(f"areas {missing} are not loaded (loaded: {', '.join(self.areas_loaded)})")
        if not params['t_min'] < params['t_max']:
            raise ValueError(f"t_min={params['t_min']} ms must be below t_max={params['t_max']} ms")
        return params

    def _iter(self, params):
        """(area, pop, present): upstream's 'complete' is all 8 populations (TH has no L4)."""
        pops = POPULATION_LIST if params['pops'] == 'complete' else params['pops']
        for area in params['areas']:
            for pop in pops:
                yield area, pop, pop in self.spike_data[area]

    def _window(self, data, params):
        """Spikes in upstream's open window t_min < t < t_max, sorted by (neuron, time)."""
        keep = (data[:, 1] > params['t_min']) & (data[:, 1] < params['t_max'])
        ids, t = data[keep, 0].astype(np.int64), data[keep, 1]
        order = np.lexsort((t, ids))
        return ids[order], t[order]

    def _area_times(self, area):
        return np.concatenate([x[:, 1] for x in self.spike_data[area].values()])

    def _histogram(self, times, n, p):
        return binned_rate(times, n, p['t_min'], p['t_max'], p['resolution'])

    # ------------------------------------------------------------ upstream's methods

    def create_pop_rates(self, **keywords) -> None:
        """pop_rates[area][pop] = (rate, std) in spikes/s; std of the single-neuron rates
        with ``compute_stat=True``, else NaN. [area]['total']: the area's rate (with
        compute_stat a (mean, std) pair, as upstream meant)."""
        p = self._params({'compute_stat': False}, keywords)
        d, width = {'Parameters': p}, p['t_max'] - p['t_min']
        area_rates = {}
        for area, pop, present in self._iter(p):
            if not present:
                d.setdefault(area, {})[pop] = (0., 0.)
                continue
            ids, _ = self._window(self.spike_data[area][pop], p)
            rates = st.neuron_rates(ids, self._size(area, pop), width)
            area_rates.setdefault(area, []).append(rates)
            d.setdefault(area, {})[pop] = (st.population_rate(ids.size, rates.size, width),
                                           float(rates.std()) if p['compute_stat'] else float('nan'))
        for area in p['areas']:
            if p['compute_stat']:
                rates = np.concatenate(area_rates[area])
                d[area]['total'] = (float(rates.mean()), float(rates.std()))
            else:
                t = self._area_times(area)
                n = int(np.sum((t > p['t_min']) & (t < p['t_max'])))
                d[area]['total'] = st.population_rate(n, self._info.area_size(area), width)
        self.pop_rates = d

    def create_pop_rate_dists(self, **keywords) -> None:
        """pop_rate_dists[area][pop] = {'histogram': [left bin edges, fractions] (100 bins),
        'stats': {'mu', 'sigma'}} of the single-neuron rates (silent neurons included)."""
        p = self._params({}, keywords)
        d = {'Parameters': p}
        for area, pop, present in self._iter(p):
            if not present:
                continue
            data = self.spike_data[area][pop]
            ids, _ = self._window(data, p)
            rates = st.neuron_rates(ids, self._size(area, pop), p['t_max'] - p['t_min'])
            if data.shape[0] == 0:    # upstream's answer for a population without spikes
                hist, mu, sigma = np.array([np.arange(0, 20., 0.2), np.zeros(100)]), 0., 0.
            else:
                vals, bins = np.histogram(rates, bins=100)
                hist, mu, sigma = np.array([bins[:-1], vals / vals.sum()]), rates.mean(), rates.std()
            d.setdefault(area, {})[pop] = {'histogram': hist,
                                           'stats': {'mu': float(mu), 'sigma': float(sigma)}}
        self.pop_rate_dists = d

    def create_synchrony(self, **keywords) -> None:
        """synchrony[area][pop] (and [area]['total']) = CV of the binned population rate
        (1 ms bins by default); NaN for a silent or absent population, as upstream's numpy."""
        p = self._params({'resolution': 1.0}, keywords)
        d = {'Parameters': p}

        def cv(rate):
            return float(rate.std() / rate.mean()) if rate.mean() > 0 else float('nan')
        for area, pop, present in self._iter(p):
            d.setdefault(area, {})[pop] = cv(self._histogram(
                self.spike_data[area][pop][:, 1], self._size(area, pop), p)) if present else float('nan')
        for area in p['areas']:
            d[area]['total'] = cv(self._histogram(self._area_times(area), self._info.area_size(area), p))
        self.synchrony = d

    def create_rate_time_series(self, **keywords) -> None:
        """rate_time_series[area] and rate_time_series_pops[area][pop]: binned rates
        (kernel 'binned' only), one value per ms; NaN for an absent population."""
        p = self._params({'kernel': 'binned', 'resolution': 1.0}, keywords)
        if p['kernel'] != 'binned':
            raise ValueError(f"kernel {p['kernel']!r}: only 'binned' is supported (smoothed "
                             f"series: analysis/series.npz of mam analyze)")
        d, d_pops = {'Parameters': p}, {'Parameters': p}
        for area, pop, present in self._iter(p):
            d_pops.setdefault(area, {})[pop] = self._histogram(
                self.spike_data[area][pop][:, 1], self._size(area, pop), p) if present \
                else np.full(int(p['t_max'] - p['t_min']), np.nan)
        for area in p['areas']:
            d[area] = self._histogram(self._area_times(area), self._info.area_size(area), p)
        self.rate_time_series, self.rate_time_series_pops = d, d_pops

    def create_synaptic_input(self, **keywords) -> None:
        """synaptic_input_pops[area][pop]: sum over the populations of all loaded areas of
        their binned rate filtered by exp(-t/tau_syn) (tau_syn_in for I, tau_syn_ex for E
        sources) times |W| K of the model; synaptic_input[area]: the N-weighted mean over
        the area's populations (upstream's create_synaptic_input; W, K, N of the model at
        the run's scale); also synaptic_output_pops, the filtered rates."""
        p = self._params({'kernel': 'binned', 'resolution': 1.0}, keywords)
        self.create_rate_time_series(**{**p, 'areas': self.areas_loaded, 'pops': 'complete'})
        M, series = self.network, self.rate_time_series_pops
        neuron = M.params['neuron_params']['single_neuron_dict']
        sources = [(a, q) for a in self.areas_loaded for q in M.structure[a]]
        taus = np.array([neuron['tau_syn_in' if 'I' in q else 'tau_syn_ex'] for _, q in sources])
        rates = np.array([series[a][q] for a, q in sources])
        targets = [(a, q) for a, q, _ in self._iter(p) if q in M.structure[a]]
        weights = np.array([[abs(M.W[a][q][sa][sq]) * M.K[a][q][sa][sq] for sa, sq in sources]
                            for a, q in targets])
        inputs = synaptic_input(rates, weights, taus, p['resolution'])
        d_out, d_pops, d = {'Parameters': p}, {'Parameters': p}, {'Parameters': p}
        for (a, q), tau, rate in zip(sources, taus, rates):
            if a in p['areas']:
                d_out.setdefault(a, {})[q] = synaptic_output(rate, tau, p['resolution'])
        for (a, q), x in zip(targets, inputs):
            d_pops.setdefault(a, {})[q] = x
        for area in p['areas']:
            d[area] = sum(d_pops[area][q] * M.N[area][q] for q in d_pops[area]) / M.N[area]['total']
        self.synaptic_output_pops, self.synaptic_input_pops, self.synaptic_input = d_out, d_pops, d

    def create_bold_signal(self, **keywords) -> None:
        """bold_signal[area]: BOLD of the area's synaptic input (upstream's
        compute_bold_signal.py: neuRosim's balloon of the input divided by its maximum,
        one sample per bin; :func:`mam_pynn.analysis.bold.bold_signal`). Upstream's
        Analysis lists bold_signal among the members save() writes but computes it with
        R outside the class; the parameters are create_synaptic_input's."""
        self.create_synaptic_input(**keywords)
        p = self.synaptic_input['Parameters']
        areas = list(p['areas'])
        signals = bold_signal(np.array([self.synaptic_input[a] for a in areas]),
                              acc=p['resolution'] / 1000.)
        self.bold_signal = {'Parameters': p, **dict(zip(areas, signals))}

    def create_pop_cv_isi(self, **keywords) -> None:
        """pop_cv_isi[area][pop]: upstream's CV (:func:`statistics.cv_isi_upstream`)."""
        p = self._params({}, keywords)
        d = {'Parameters': p}
        for area, pop, present in self._iter(p):
            if present:
                ids, t = self._window(self.spike_data[area][pop], p)
                d.setdefault(area, {})[pop] = st.cv_isi_upstream(ids, t, self._size(area, pop))
        self.pop_cv_isi = d

    def create_pop_LvR(self, **keywords) -> None:
        """pop_LvR[area][pop]: LvR with R = 2 ms, averaged over all neurons of the
        population with 0 for those with < 2 ISIs (upstream's pop_LvR)."""
        p = self._params({}, keywords)
        d = {'Parameters': p}
        for area, pop, present in self._iter(p):
            if not present:
                continue
            data = self.spike_data[area][pop]
            keep = (data[:, 1] >= p['t_min']) & (data[:, 1] < p['t_max'])   # upstream: searchsorted
            ids, t = data[keep, 0].astype(np.int64), data[keep, 1]
            order = np.lexsort((t, ids))
            lv = st.lvr(ids[order], t[order], self._size(area, pop), t_ref=LVR_T_REF)
            d.setdefault(area, {})[pop] = st.upstream_mean(lv)
        self.pop_LvR = d

    # ------------------------------------------------------------ storing

    def _members(self) -> list:
        return [(name, getattr(self, name)) for name in SAVED_JSON + SAVED_NPZ if hasattr(self, name)]

    def layout_files(self) -> dict:
        """The computed members as upstream's ``save()`` writes them, relative to
        ``<data_path>/<label>``: ``Analysis/<name>.json`` (the dict with its 'Parameters'),
        else one ``Analysis/<name>-<area>[-<pop>][-<leaf>].npy`` per array and
        ``Analysis/<name>-parameters`` (:mod:`.layout`)."""
        files = {}
        for name, data in self._members():
            if name in SAVED_JSON:
                files[relative_path(name)] = data
                continue
            for key, value in _flatten({k: v for k, v in data.items() if k != 'Parameters'}).items():
                files[relative_path('analysis_array', name=name, keys=key.split('/'))] = value
            files[relative_path('analysis_parameters', name=name)] = data['Parameters']
        return files

    def save(self, overwrite: bool = False, layout: str = 'ours', data_path=None,
             label: str | None = None) -> list:
        """Write the computed members, each file atomically.

        ``layout='ours'``: <run_dir>/analysis/upstream/ (scalars <name>.json, arrays
        <name>.npz with the parameters under 'Parameters'). ``layout='upstream'``:
        upstream's files under ``<data_path>/<label>/Analysis/`` (:meth:`layout_files`;
        label: the run's, as config.yaml names it), read by :class:`.layout.LabelledRun`
        and the dynamics figures.

        A stored file with other content (other parameters) is not replaced silently:
        FileExistsError naming it, before anything is written, unless ``overwrite``.
        """
        if layout == 'upstream':
            if data_path is None:
                raise ValueError("save(layout='upstream') needs data_path (the folder of labelled runs)")
            root = LabelledRun(data_path, label or self._run_info().label).root
            plan = [(root / rel, content) for rel, content in self.layout_files().items()]
            same = holds
        elif layout == 'ours':
            plan = []
            for name, data in self._members():
                if name in SAVED_JSON:
                    plan.append((self.output_dir / f'{name}.json', jsonable(data)))
                else:
                    flat = _flatten({k: v for k, v in data.items() if k != 'Parameters'})
                    flat['Parameters'] = np.array(json.dumps(jsonable(data['Parameters'])))
                    plan.append((self.output_dir / f'{name}.npz', flat))
            same = _same
        else:
            raise ValueError(f"layout {layout!r}: 'ours' or 'upstream'")
        differ = [path for path, content in plan if path.exists() and not same(path, content)]
        if differ and not overwrite:
            raise FileExistsError(f"{', '.join(map(str, differ))} hold(s) other results: "
                                  f"save(overwrite=True) replaces them")
        for path, content in plan:
            if path in differ or not path.exists():
                if path.suffix == '.npz':
                    with atomic_path(path) as tmp:
                        np.savez(tmp, **content)
                else:
                    write_file(path, content)
        return [path for path, _ in plan]


def _same(path: Path, content) -> bool:
    """Whether ``path`` already holds ``content`` (a stored result is kept then)."""
    try:
        if path.suffix == '.json':
            return json.loads(path.read_text()) == content
        with np.load(path) as z:
            return set(z.files) == set(content) and all(
                np.array_equal(z[k], v, equal_nan=v.dtype.kind == 'f') for k, v in content.items())
    except (OSError, ValueError):
        return False
