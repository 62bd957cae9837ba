"""Upstream's ``M.analysis`` (multiarea_model/analysis.py) over our run directory, for
scripts ported from upstream: the same method and attribute names, upstream's
definitions (open window (t_min, t_max), t_min 500 ms, populations as dicts
{area: {pop: value}}, silent neurons in the LvR mean as 0, CV over neurons with >= 1 ISI).

Our own analysis (``mam analyze``, :func:`mam_pynn.analysis.analyze_run`) uses other,
documented definitions (analysis/README.md); this class is for comparing with upstream's
numbers. It reads the run that ``M.simulation`` wrote (``M.simulation.run_dir``) or any
run directory, and loads spikes on first use.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_write_json
from . import statistics as st
from .spikes import SpikeFile, read_run_info, recorded_only

T_MIN_DEFAULT = 500.    # ms, upstream's _create_parameter_dict
LVR_T_REF = 2.0         # ms, upstream's create_pop_LvR
SAVED = ('pop_rates', 'pop_rate_dists', 'synchrony', 'pop_cv_isi', 'pop_LvR',
         'rate_time_series', 'rate_time_series_pops')


class Analysis:
    """``Analysis(network, simulation)`` as upstream, or ``Analysis(network, run_dir=...)``."""

    def __init__(self, network, simulation=None, data_list=('spikes',), load_areas=None,
                 run_dir=None):
        if list(data_list) != ['spikes']:
            raise ValueError(f"data_list {list(data_list)!r}: only ['spikes'] is supported "
                             f"(V_m traces are in the run's recordings, see README)")
        self.network, self.simulation = network, simulation
        self._run_dir, self._load_areas = run_dir, load_areas
        self.interarea_speed = network.params['delay_params']['interarea_speed']
        self._info = self.spike_data = None

    # ------------------------------------------------------------ the run

    @property
    def run_dir(self) -> Path:
        if self._run_dir is not None:
            return Path(self._run_dir)
        run_dir = getattr(self.simulation, 'run_dir', None)
        if run_dir is None:
            raise ValueError("no run to analyse yet: call M.simulation.simulate() first, or "
                             "pass run_dir to Analysis")
        return Path(run_dir)

    @property
    def output_dir(self) -> Path:
        return self.run_dir / 'analysis' / 'upstream'

    def _load(self) -> None:
        """Spikes of the loaded areas as upstream's arrays: {area: {pop: (n, 2) [id, t]}}."""
        if self._info is not None:
            return
        info = recorded_only(read_run_info(self.run_dir))
        info.require_finished()
        areas = list(self._load_areas or info.areas)
        unknown = [a for a in areas if a not in info.populations]
        if unknown:
            raise ValueError(f"load_areas {unknown} were not recorded in {self.run_dir} "
                             f"(recorded: {', '.join(info.areas)})")
        sf = SpikeFile(info.spike_file)
        self.spike_data = {}
        for area in areas:
            ids, times, _ = sf.read_area(area)
            order = np.argsort(times, kind='stable')
            ids, times = ids[order], times[order]
            self.spike_data[area] = {}
            for p in info.populations[area]:
                mine = (ids >= p.first_id) & (ids < p.first_id + p.size)
                self.spike_data[area][p.name] = np.column_stack([ids[mine] - p.first_id, times[mine]])
        self._info, self.areas_loaded = info, areas

    @property
    def T(self) -> float:
        self._load()
        return self._info.t_sim

    @property
    def areas_recorded(self) -> list:
        self._load()
        return self._info.areas

    @property
    def areas_simulated(self) -> list:
        return list(getattr(self.simulation, 'areas_simulated', None) or self.areas_recorded)

    def _size(self, area, pop) -> int:
        return next(p.size for p in self._info.populations[area] if p.name == pop)

    def _params(self, defaults: dict, keywords: dict) -> dict:
        self._load()
        unknown = set(keywords) - set(defaults) - {'t_min', 't_max'}
        if unknown:
            raise KeyError(f"unknown parameter {sorted(unknown)[0]!r}; valid: "
                           f"{', '.join(sorted(set(defaults) | {'t_min', 't_max'}))}")
        params = {'areas': self.areas_loaded, 'pops': 'complete', 't_min': T_MIN_DEFAULT,
                  't_max': self.T, **defaults, **keywords}
        return params

    def _iter(self, params):
        for area in params['areas']:
            pops = [p.name for p in self._info.populations[area]] if params['pops'] == 'complete' \
                else params['pops']
            for pop in pops:
                yield area, pop

    def _window(self, data, params):
        """Spikes in upstream's open window t_min < t < t_max."""
        keep = (data[:, 1] > params['t_min']) & (data[:, 1] < params['t_max'])
        return data[keep, 0].astype(np.int64), data[keep, 1]

    def _area_spikes(self, area, params):
        data = np.concatenate(list(self.spike_data[area].values()))
        return data[(data[:, 1] > params['t_min']) & (data[:, 1] < params['t_max'])]

    # ------------------------------------------------------------ upstream's methods

    def create_pop_rates(self, **keywords) -> None:
        """pop_rates[area][pop] = (rate, nan) in spikes/s; [area]['total'] the area's rate."""
        p = self._params({}, keywords)
        d, width = {'Parameters': p}, (p['t_max'] - p['t_min']) / 1000.
        for area, pop in self._iter(p):
            _, t = self._window(self.spike_data[area].get(pop, np.zeros((0, 2))), p)
            d.setdefault(area, {})[pop] = ((t.size / (self._size(area, pop) * width), float('nan'))
                                           if pop in self.spike_data[area] else (0., 0.))
        for area in p['areas']:
            n = self._info.area_size(area)
            d[area]['total'] = self._area_spikes(area, p).shape[0] / (n * width)
        self.pop_rates = d

    def create_pop_rate_dists(self, **keywords) -> None:
        """pop_rate_dists[area][pop] = {'histogram': [left bin edges, fractions] (100 bins),
        'stats': {'mu', 'sigma'}} of the single-neuron rates (silent neurons included)."""
        p = self._params({}, keywords)
        d = {'Parameters': p}
        for area, pop in self._iter(p):
            ids, _ = self._window(self.spike_data[area][pop], p)
            rates = st.neuron_rates(ids, self._size(area, pop), p['t_max'] - p['t_min'])
            vals, bins = np.histogram(rates, bins=100)
            d.setdefault(area, {})[pop] = {'histogram': np.array([bins[:-1], vals / max(vals.sum(), 1)]),
                                           'stats': {'mu': float(rates.mean()), 'sigma': float(rates.std())}}
        self.pop_rate_dists = d

    def _histogram(self, times, n, p, resolution):
        """Upstream's binned rate: bins of ``resolution`` ms shifted by half a bin
        (range (t_min + r/2, t_max + r/2)), each value repeated per ms."""
        bins = int((p['t_max'] - p['t_min']) / resolution)
        counts, _ = np.histogram(times, bins=bins, range=(p['t_min'] + resolution / 2.,
                                                          p['t_max'] + resolution / 2.))
        return np.repeat(counts / (n * resolution / 1000.), int(round(resolution)))

    def create_synchrony(self, **keywords) -> None:
        """synchrony[area][pop] = CV of the population rate (1 ms bins by default)."""
        p = self._params({'resolution': 1.0}, keywords)
        d = {'Parameters': p}

        def sync(times, n):
            rate = self._histogram(times, n, p, p['resolution'])
            return float(rate.std() / rate.mean()) if rate.mean() > 0 else float('inf')
        for area, pop in self._iter(p):
            data = self.spike_data[area][pop]
            d.setdefault(area, {})[pop] = sync(data[:, 1], self._size(area, pop))
        for area in p['areas']:
            d[area]['total'] = sync(self._area_spikes(area, p)[:, 1], self._info.area_size(area))
        self.synchrony = d

    def create_rate_time_series(self, **keywords) -> None:
        """rate_time_series[area] and rate_time_series_pops[area][pop]: binned rates
        (kernel 'binned' only), one value per ms."""
        p = self._params({'kernel': 'binned', 'resolution': 1.0}, keywords)
        if p['kernel'] != 'binned':
            raise ValueError(f"kernel {p['kernel']!r}: only 'binned' is supported (smoothed "
                             f"series: analysis/series.npz of mam analyze)")
        d, d_pops = {'Parameters': p}, {'Parameters': p}
        for area, pop in self._iter(p):
            data = self.spike_data[area][pop]
            d_pops.setdefault(area, {})[pop] = self._histogram(data[:, 1], self._size(area, pop), p,
                                                               p['resolution'])
        for area in p['areas']:
            d[area] = self._histogram(np.concatenate([x[:, 1] for x in self.spike_data[area].values()]),
                                      self._info.area_size(area), p, p['resolution'])
        self.rate_time_series, self.rate_time_series_pops = d, d_pops

    def create_pop_cv_isi(self, **keywords) -> None:
        """pop_cv_isi[area][pop]: upstream's CV (:func:`statistics.cv_isi_upstream`)."""
        p = self._params({}, keywords)
        d = {'Parameters': p}
        for area, pop in self._iter(p):
            ids, t = self._window(self.spike_data[area][pop], p)
            order = np.lexsort((t, ids))
            d.setdefault(area, {})[pop] = st.cv_isi_upstream(ids[order], t[order], self._size(area, pop))
        self.pop_cv_isi = d

    def create_pop_LvR(self, **keywords) -> None:
        """pop_LvR[area][pop]: LvR with R = 2 ms, averaged over all neurons of the
        population with 0 for those with < 2 ISIs (upstream's pop_LvR)."""
        p = self._params({}, keywords)
        d = {'Parameters': p}
        for area, pop in self._iter(p):
            data = self.spike_data[area][pop]
            keep = (data[:, 1] >= p['t_min']) & (data[:, 1] < p['t_max'])   # upstream: searchsorted
            ids, t = data[keep, 0].astype(np.int64), data[keep, 1]
            order = np.lexsort((t, ids))
            lv = st.lvr(ids[order], t[order], self._size(area, pop), t_ref=LVR_T_REF)
            d.setdefault(area, {})[pop] = st.upstream_mean(lv)
        self.pop_LvR = d

    def save(self) -> list:
        """Write what was computed into <run_dir>/analysis/upstream/<name>.json (atomically)."""
        from ..figures.common import jsonable
        self.output_dir.mkdir(parents=True, exist_ok=True)
        return [atomic_write_json(self.output_dir / f'{name}.json', jsonable(getattr(self, name)))
                for name in SAVED if hasattr(self, name)]
