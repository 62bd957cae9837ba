"""Read a run directory's spikes as columnar arrays, one (area, population) at a time.

The run-directory contract (DESIGN.md): ``config.yaml`` maps every area's local
node ids to populations (``populations: {area: {pop: {first_id, size}}}``),
``summary.json`` (written last) says how long the run really went (``t_sim_ms``,
shorter than requested when the watchdog stopped it) and ``spikes.h5`` is a SONATA spike file with ``/spikes/<area>/node_ids`` and
``/spikes/<area>/timestamps`` (ms). Spikes stay in numpy arrays (neuron index,
time); Neo ``SpikeTrain`` objects are made only for a chosen sample of neurons,
because one Python object per neuron is too slow for whole areas.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from ..faults import BadFileError, reading
from ..io import read_h5, read_json, read_yaml
from .statistics import DEFAULT_T_REF

CONFIG_FILE = 'config.yaml'
SPIKE_FILE = 'spikes.h5'
SUMMARY_FILE = 'summary.json'


class RunDirError(BadFileError):
    """A run directory is missing a file or breaks the run-directory contract."""


@dataclass(frozen=True)
class Population:
    """Where one population's neurons sit among its area's local node ids."""
    area: str
    name: str
    first_id: int
    size: int

    @property
    def label(self) -> str:
        return f"{self.area}/{self.name}"

    @property
    def excitatory(self) -> bool:
        return self.name.endswith('E')


@dataclass(frozen=True)
class RunInfo:
    """What analysis needs from ``config.yaml`` and ``summary.json``: layout, simulated
    time, recording start, refractory period, how the run ended."""
    run_dir: Path
    label: str
    populations: dict[str, list[Population]]  # area -> populations in structure order
    t_sim: float              # ms really simulated (summary.json), else requested (config.yaml)
    dt: float
    t_ref: float
    status: str | None = None  # summary.json's 'status'; None: no summary.json, unfinished
    t_requested: float | None = None  # config.yaml's sim_params.t_sim
    t_record_start: float = 0.  # recording_dict.spike_dict.start

    def require_finished(self) -> None:
        """Raise unless ``summary.json`` was written, i.e. the run ended (its time is known)."""
        if self.status is None:
            raise RunDirError(f"unfinished run: {self.run_dir / SUMMARY_FILE} is missing "
                              f"(the simulation is still running or did not end)")

    def check_window(self, t_min: float, t_max: float) -> None:
        check_window(t_min, t_max, self.t_sim, self.t_record_start)

    @property
    def areas(self) -> list[str]:
        return list(self.populations)

    @property
    def spike_file(self) -> Path:
        return self.run_dir / SPIKE_FILE

    def all_populations(self) -> list[Population]:
        return [p for pops in self.populations.values() for p in pops]

    def area_size(self, area: str) -> int:
        return sum(p.size for p in self.populations[area])


def read_run_info(run_dir: str | Path) -> RunInfo:
    """Parse ``config.yaml`` (checking the population layout) and ``summary.json``.

    A run without ``summary.json`` is still read (the simulation draws its raster
    before writing it), with the requested time and ``status`` None; readers of
    spikes call ``RunInfo.require_finished`` (``iter_areas``, ``analyze_run``).
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    if not cfg_path.exists():
        raise RunDirError(f"{cfg_path} is missing: is {run_dir} a finished run directory?")
    with reading(cfg_path):
        return _run_info(run_dir, cfg_path, read_yaml(cfg_path) or {})


def _run_info(run_dir: Path, cfg_path: Path, cfg: dict) -> RunInfo:
    if not isinstance(cfg, dict):
        raise RunDirError(f"{cfg_path} holds no mapping (a {type(cfg).__name__})")
    layout = cfg.get('populations')
    if not isinstance(layout, dict) or not layout:
        raise RunDirError(f"{cfg_path} has no 'populations' mapping {{area: {{pop: {{first_id, size}}}}}}")
    populations: dict[str, list[Population]] = {}
    for area, pops in layout.items():
        area = str(area)
        if not isinstance(pops, dict) or not pops:
            raise RunDirError(f"{cfg_path}: populations of area {area!r} must be a non-empty mapping")
        plist = []
        for name, entry in pops.items():
            try:
                first_id, size = int(entry['first_id']), int(entry['size'])
            except (TypeError, KeyError, ValueError) as err:
                raise RunDirError(f"{cfg_path}: population {area}/{name} needs integer "
                                  f"'first_id' and 'size' ({err})") from err
            if first_id < 0 or size < 0:
                raise RunDirError(f"{cfg_path}: population {area}/{name} has a negative first_id or size")
            plist.append(Population(area, str(name), first_id, size))
        by_id = sorted(plist, key=lambda p: p.first_id)
        for a, b in zip(by_id, by_id[1:]):
            if a.first_id + a.size > b.first_id:
                raise RunDirError(f"{cfg_path}: node ids of {a.label} and {b.label} overlap")
        populations[area] = plist  # structure order, as written
    sim = cfg.get('sim_params') or {}
    if 't_sim' not in sim:
        raise RunDirError(f"{cfg_path}: sim_params.t_sim is missing")
    neuron = ((cfg.get('network_params') or {}).get('neuron_params') or {}).get('single_neuron_dict') or {}
    start = ((sim.get('recording_dict') or {}).get('spike_dict') or {}).get('start', 0.)
    t_sim, status = float(sim['t_sim']), None
    summary_path = run_dir / SUMMARY_FILE
    if summary_path.exists():
        with reading(summary_path):
            summary = read_json(summary_path)
            if not isinstance(summary, dict) or 't_sim_ms' not in summary:
                raise RunDirError(f"{summary_path} has no readable 't_sim_ms'")
            t_sim, status = float(summary['t_sim_ms']), str(summary.get('status', 'completed'))
    return RunInfo(run_dir=run_dir, label=str(cfg.get('label', run_dir.name)),
                   populations=populations, t_sim=t_sim, dt=float(sim.get('dt', 0.1)),
                   t_ref=float(neuron.get('t_ref', DEFAULT_T_REF)), status=status,
                   t_requested=float(sim['t_sim']), t_record_start=float(start or 0.))


@dataclass
class PopulationSpikes:
    """One population's spikes in a time window, sorted by (neuron, time).

    ``neuron`` holds indices 0..size-1 within the population, ``times`` ms.
    """
    population: Population
    neuron: np.ndarray
    times: np.ndarray
    t_start: float
    t_stop: float

    @property
    def size(self) -> int:
        return self.population.size

    @property
    def duration_s(self) -> float:
        return (self.t_stop - self.t_start) / 1000.

    def __len__(self) -> int:
        return self.times.size


class SpikeFile:
    """Lazy reader of a SONATA spike file: an area's arrays are read only when asked."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise RunDirError(f"spike file {self.path} is missing")
        with reading(self.path), read_h5(self.path) as f:
            if not isinstance(f.get('spikes'), h5py.Group):
                raise RunDirError(f"{self.path} is not a SONATA spike file: no /spikes group")
            self._areas = list(f['spikes'].keys())

    @property
    def areas(self) -> list[str]:
        return list(self._areas)

    def largest_area_bytes(self) -> int:
        """Memory of the largest area's spikes once read (64-bit ids and times)."""
        import h5py
        with h5py.File(self.path, 'r') as f:
            return max((16 * f['spikes'][a]['timestamps'].size for a in self._areas
                        if 'timestamps' in f['spikes'][a]), default=0)

    def read_area(self, area: str, t_min: float | None = None,
                  t_max: float | None = None) -> tuple[np.ndarray, np.ndarray, str]:
        """(node_ids, times, sorting) of one area, restricted to t_min <= t < t_max.

        An area without a group in the file has recorded no spikes.
        """
        if area not in self._areas:
            return np.empty(0, np.int64), np.empty(0, np.float64), 'by_time'
        with reading(self.path), read_h5(self.path) as f:
            grp = f['spikes'][area]
            for name in ('node_ids', 'timestamps'):
                if name not in grp:
                    raise RunDirError(f"{self.path}: /spikes/{area}/{name} is missing")
            sorting = sorting_name(grp.attrs.get('sorting', 'none'))
            ts = grp['timestamps']
            if grp['node_ids'].shape != ts.shape:
                raise RunDirError(f"{self.path}: /spikes/{area} node_ids {grp['node_ids'].shape} and "
                                  f"timestamps {ts.shape} differ in length")
            if sorting == 'by_time' and ts.size and (t_min is not None or t_max is not None):
                # time-sorted: all timestamps are read to find the window, node ids only in it
                times_all = ts[()]
                lo = 0 if t_min is None else int(np.searchsorted(times_all, t_min, 'left'))
                hi = times_all.size if t_max is None else int(np.searchsorted(times_all, t_max, 'left'))
                times = times_all[lo:hi]
                ids = grp['node_ids'].astype(np.int64)[lo:hi]   # converted by HDF5, no copy
            else:
                times = ts[()]
                ids = grp['node_ids'].astype(np.int64)[()]
                keep = np.ones(times.size, bool)
                if t_min is not None:
                    keep &= times >= t_min
                if t_max is not None:
                    keep &= times < t_max
                if not keep.all():
                    times, ids = times[keep], ids[keep]
        return ids.astype(np.int64, copy=False), times.astype(np.float64, copy=False), sorting


#: SONATA's ``sorting`` attribute: an enum (uint8) or, in some writers, a string
SONATA_SORTING = {0: 'none', 1: 'by_id', 2: 'by_time'}


def sorting_name(value) -> str:
    """'none', 'by_id' or 'by_time' from an enum value or a string."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value
    return SONATA_SORTING.get(int(value), 'none')


def recorded_only(info: RunInfo, spike_file: SpikeFile | None = None) -> RunInfo:
    """``info`` restricted to the areas present in the spike file (areas not recorded are
    not silent, so they are left out rather than counted as zero)."""
    sf = spike_file or SpikeFile(info.spike_file)
    present = set(sf.areas)
    kept = {a: p for a, p in info.populations.items() if a in present}
    if not kept:
        raise RunDirError(f"{sf.path} holds none of the areas of config.yaml "
                          f"({', '.join(info.areas[:5])}...)")
    return replace(info, populations=kept)


def stable_order(ids: np.ndarray) -> np.ndarray:
    """``np.argsort(ids, kind='stable')`` for non-negative integer ids, as least-significant
    digit first passes over 16-bit digits: numpy sorts 16-bit keys by radix sort, 2-3x
    faster than its timsort of 64-bit ones."""
    top = int(ids.max()) if ids.size else 0
    if top >= 2 ** 32:
        return np.argsort(ids, kind='stable')
    order = np.argsort((ids & 0xFFFF).astype(np.uint16), kind='stable')
    if top >= 2 ** 16:
        order = order[np.argsort((ids[order] >> 16).astype(np.uint16), kind='stable')]
    return order


def population_spikes(populations: list[Population], node_ids: np.ndarray, times: np.ndarray,
                      t_start: float, t_stop: float, sorting: str = 'none') -> Iterator[PopulationSpikes]:
    """An area's spikes split into its populations, one at a time (the memory of one
    population beside the area's arrays), each sorted by (neuron, time)."""
    n_pops = len(populations)
    if node_ids.size and node_ids.min() < 0:
        raise RunDirError(f"area {populations[0].area if populations else '?'}: negative node ids")
    # the population of every id (n_pops: none), one past the last id too, for the ids
    # beyond it (``take`` clips them there without a copy of the ids)
    table = np.full(max([p.first_id + p.size for p in populations], default=0) + 1, n_pops,
                    np.uint8 if n_pops < 255 else np.int64)
    for k, pop in enumerate(populations):      # id ranges do not overlap (read_run_info checks)
        table[pop.first_id:pop.first_id + pop.size] = k
    which = table.take(node_ids, mode='clip')
    by_pop = np.argsort(which, kind='stable')      # a radix sort: keeps the order within
    edges = np.searchsorted(which[by_pop], np.arange(n_pops + 2, dtype=which.dtype))
    del which
    for k, pop in enumerate(populations):
        idx = by_pop[edges[k]:edges[k + 1]]
        neuron, ts = node_ids[idx] - pop.first_id, times[idx]
        sort = stable_order(neuron) if sorting == 'by_time' else np.lexsort((ts, neuron))
        yield PopulationSpikes(pop, neuron[sort], ts[sort], t_start, t_stop)
    if edges[-1] > edges[-2]:
        area = populations[0].area if populations else '?'
        bad = np.unique(node_ids[by_pop[edges[-2]:edges[-1]]])[:5]
        raise RunDirError(f"area {area}: {edges[-1] - edges[-2]} spikes have node ids outside every "
                          f"population of config.yaml (e.g. {bad.astype(np.int64).tolist()})")


def split_area(populations: list[Population], node_ids: np.ndarray, times: np.ndarray,
               t_start: float, t_stop: float, sorting: str = 'none') -> dict[str, PopulationSpikes]:
    """Split an area's spikes into populations, each sorted by (neuron, time)."""
    return {ps.population.name: ps
            for ps in population_spikes(populations, node_ids, times, t_start, t_stop, sorting)}


def iter_areas(info: RunInfo, t_min: float = 0., t_max: float | None = None,
               spike_file: SpikeFile | None = None) -> Iterator[tuple[str, dict[str, PopulationSpikes]]]:
    """Yield (area, {pop: PopulationSpikes}) for every area, reading one area at a time."""
    info.require_finished()
    t_max = info.t_sim if t_max is None else t_max
    info.check_window(t_min, t_max)
    sf = spike_file or SpikeFile(info.spike_file)
    unknown = set(sf.areas) - set(info.populations)
    if unknown:
        raise RunDirError(f"{sf.path} has spikes of areas not in config.yaml: {sorted(unknown)}")
    for area, pops in info.populations.items():
        ids, times, sorting = sf.read_area(area, t_min, t_max)
        yield area, split_area(pops, ids, times, t_min, t_max, sorting)


def load_population(info: RunInfo, area: str, pop: str, t_min: float = 0.,
                    t_max: float | None = None) -> PopulationSpikes:
    """One population's spikes (reads its whole area from disk)."""
    if area not in info.populations:
        raise KeyError(f"area {area!r} is not in this run; areas: {', '.join(info.areas)}")
    names = [p.name for p in info.populations[area]]
    if pop not in names:
        raise KeyError(f"population {pop!r} is not in area {area}; populations: {', '.join(names)}")
    info.require_finished()
    t_max = info.t_sim if t_max is None else t_max
    info.check_window(t_min, t_max)
    ids, times, sorting = SpikeFile(info.spike_file).read_area(area, t_min, t_max)
    return split_area(info.populations[area], ids, times, t_min, t_max, sorting)[pop]


def check_window(t_min: float, t_max: float, t_sim: float, t_record_start: float = 0.) -> None:
    """The window must lie where spikes were recorded: [t_record_start, t_sim]."""
    if not (0. <= t_min < t_max):
        raise ValueError(f"analysis window needs 0 <= t_min < t_max, got t_min={t_min}, t_max={t_max} ms")
    if t_min < t_record_start - 1e-9:
        raise ValueError(f"t_min={t_min} ms is before the spike recording start "
                         f"(recording_dict.spike_dict.start = {t_record_start} ms): rates would be too low")
    if t_max > t_sim + 1e-9:
        raise ValueError(f"t_max={t_max} ms is beyond the simulated time t_sim={t_sim} ms")


def spike_trains(spikes: PopulationSpikes, neurons: np.ndarray | list[int]) -> list:
    """Neo SpikeTrains (ms) of the chosen neurons, for Elephant; one object per neuron."""
    import neo
    import quantities as pq
    neurons = np.asarray(neurons, dtype=np.int64)
    if neurons.size and (neurons.min() < 0 or neurons.max() >= spikes.size):
        raise IndexError(f"{spikes.population.label}: neuron indices must lie in 0..{spikes.size - 1}")
    bounds = np.searchsorted(spikes.neuron, np.stack([neurons, neurons + 1]))
    return [neo.SpikeTrain(spikes.times[lo:hi] * pq.ms, t_start=spikes.t_start * pq.ms,
                           t_stop=spikes.t_stop * pq.ms, name=f"{spikes.population.label}#{n}")
            for n, lo, hi in zip(neurons, bounds[0], bounds[1])]


def active_neurons(spikes: PopulationSpikes) -> np.ndarray:
    """The neurons with spikes, ascending (``np.unique`` of the neuron-sorted ids)."""
    ids = spikes.neuron
    return ids[np.concatenate([[True], ids[1:] != ids[:-1]])] if ids.size else ids[:0]


def sample_neurons(spikes: PopulationSpikes, n: int, seed: int = 0, active_only: bool = True) -> np.ndarray:
    """Up to ``n`` distinct neuron indices, drawn reproducibly (active ones only by default)."""
    pool = active_neurons(spikes) if active_only else np.arange(spikes.size)
    if pool.size <= n:
        return pool
    rng = np.random.default_rng([seed, spikes.population.first_id, spikes.size])
    return np.sort(rng.choice(pool, size=n, replace=False))
