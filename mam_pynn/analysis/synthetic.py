"""Synthetic run directories with known spike statistics, for tests and benchmarks.

Writes what ``mam simulate`` writes (config.yaml, summary.json, SONATA spikes.h5)
from Poisson spike trains whose rates are slowly modulated by an activity signal
per area (a shared and an area-specific part), so that functional connectivity
is not trivial. No simulator is needed.

Command line (used by the analysis workflow's tests in place of ``mam simulate``):
``python -m mam_pynn.analysis.synthetic --out RUN_DIR [--t-sim MS] [--neurons-per-area N]``
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from mam_pynn.io import atomic_write_json, atomic_write_text, write_sonata_spikes
from mam_pynn.params import AREA_LIST, POPULATION_LIST, content_hash, network_defaults, sim_defaults

# rough laminar shares of a 1 mm^2 column's neurons (about V1's)
POPULATION_SHARE = {'23E': 0.27, '23I': 0.076, '4E': 0.28, '4I': 0.07,
                    '5E': 0.06, '5I': 0.013, '6E': 0.19, '6I': 0.039}
# population mean rates (spikes/s), within the range of the model's ground state
POPULATION_RATE = {'23E': 2.5, '23I': 10., '4E': 4., '4I': 12.,
                   '5E': 8., '5I': 15., '6E': 1.5, '6I': 20.}


def structure(area: str) -> list[str]:
    """Populations of an area: TH has no layer 4."""
    return [p for p in POPULATION_LIST if not (area == 'TH' and p.startswith('4'))]


def default_layout(neurons_per_area: int = 1290, areas: list[str] = AREA_LIST,
                   seed: int = 0) -> dict:
    """{area: {pop: {first_id, size}}}; about 41k neurons for 32 areas at the default."""
    rng = np.random.default_rng(seed)
    layout = {}
    for area in areas:
        pops = structure(area)
        share = np.array([POPULATION_SHARE[p] for p in pops])
        total = neurons_per_area * rng.uniform(0.8, 1.2)
        sizes = np.maximum(np.round(total * share / share.sum()).astype(int), 2)
        first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        layout[area] = {p: {'first_id': int(f), 'size': int(s)} for p, f, s in zip(pops, first, sizes)}
    return layout


def activity_signals(n_areas: int, n_steps: int, rng, shared: float = 0.5,
                     tau_steps: float = 50.) -> np.ndarray:
    """Unit-variance slow signals per area (rows), correlated through a shared part."""
    from scipy.ndimage import gaussian_filter1d
    white = rng.standard_normal((n_areas + 1, n_steps))
    slow = gaussian_filter1d(white, tau_steps, axis=-1, mode='wrap')
    slow /= slow.std(axis=-1, keepdims=True)
    mixed = np.sqrt(shared) * slow[:1] + np.sqrt(1. - shared) * slow[1:]
    return mixed / mixed.std(axis=-1, keepdims=True)


def modulated_poisson(rates_hz: np.ndarray, profile: np.ndarray, step_ms: float, rng
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(neuron, times) of inhomogeneous Poisson trains with rate r_i * profile(t).

    ``profile`` (mean 1, >= 0) is piecewise constant on steps of ``step_ms``.
    """
    cum = np.concatenate([[0.], np.cumsum(profile) * step_ms])  # integral of the profile, ms
    counts = rng.poisson(rates_hz * cum[-1] / 1000.)
    neuron = np.repeat(np.arange(rates_hz.size), counts)
    u = rng.uniform(0., cum[-1], neuron.size)
    times = np.interp(u, cum, np.arange(cum.size) * step_ms)
    order = np.lexsort((times, neuron))
    return neuron[order], times[order]


def columnar(trains: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(neuron, times) sorted by (neuron, time) from one array of times per neuron."""
    neuron = np.repeat(np.arange(len(trains)), [t.size for t in trains])
    times = np.concatenate([np.sort(t) for t in trains]) if trains else np.empty(0)
    return neuron.astype(np.int64), times


def poisson_trains(n: int, rate_hz: float, t_stop: float, rng, dead_time: float = 0.) -> list[np.ndarray]:
    """Poisson trains (ms); with a dead time, ISIs are dead_time + exponential."""
    trains = []
    mean_free = 1000. / rate_hz - dead_time
    for _ in range(n):
        isi = dead_time + rng.exponential(mean_free, int(2 * t_stop * rate_hz / 1000.) + 50)
        t = np.cumsum(isi)
        trains.append(t[t < t_stop])
    return trains


def make_run_dir(run_dir: str | Path, layout: dict | None = None, t_sim: float = 2000.,
                 rates: dict[str, float] | None = None, modulation: float = 0.3,
                 shared: float = 0.5, rate_spread: float = 0.5, seed: int = 0,
                 t_requested: float | None = None, verbose: bool = False) -> Path:
    """Write a synthetic finished run into ``run_dir`` and return its path.

    ``rates``: mean rate per population name (spikes/s); single-neuron rates are
    lognormal around it (``rate_spread`` = sigma of log rate); every area's rate
    is modulated by ``1 + modulation * signal(t)``. ``t_requested`` > ``t_sim``
    imitates a run stopped by the rate watchdog at ``t_sim``.
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    layout = default_layout() if layout is None else layout
    rates = {**POPULATION_RATE, **(rates or {})}
    rng = np.random.default_rng(seed)
    step = 1.0  # ms
    n_steps = int(np.ceil(t_sim / step))
    signals = activity_signals(len(layout), n_steps, rng, shared=shared)
    n_neurons = sum(int(e['size']) for pops in layout.values() for e in pops.values())

    def area_spikes():   # one area at a time: memory of one area, also at full scale
        for a, (area, pops) in enumerate(layout.items()):
            profile = np.clip(1. + modulation * signals[a], 0., None)
            profile /= profile.mean()
            ids, ts = [], []
            for pop, entry in pops.items():
                size = int(entry['size'])
                r = float(rates[pop]) * rng.lognormal(-0.5 * rate_spread ** 2, rate_spread, size)
                neuron, times = modulated_poisson(r, profile, step, rng)
                keep = times < t_sim
                ids.append(neuron[keep] + int(entry['first_id']))
                ts.append(times[keep])
            yield area, (np.concatenate(ids), np.concatenate(ts))

    n_spikes = write_sonata_spikes(run_dir / 'spikes.h5', area_spikes())

    sim_params = sim_defaults()
    t_requested = float(t_sim if t_requested is None else t_requested)
    if t_requested < t_sim:
        raise ValueError(f"t_requested={t_requested} ms must not be below t_sim={t_sim} ms")
    sim_params.update(t_sim=t_requested, areas_simulated=list(layout))
    cfg = {'network_params': network_defaults(), 'sim_params': sim_params, 'backend': 'synthetic'}
    cfg['label'] = content_hash({**cfg, 'seed': seed, 'layout': layout})
    cfg['populations'] = layout
    atomic_write_text(run_dir / 'config.yaml', yaml.safe_dump(cfg, sort_keys=False))
    atomic_write_json(run_dir / 'summary.json', {
        'backend': 'synthetic', 'label': cfg['label'], 'neurons': n_neurons, 'synapses': 0,
        'areas_simulated': list(layout), 't_sim_ms': float(t_sim), 't_sim_requested_ms': t_requested,
        'status': 'completed' if t_requested == t_sim else 'stopped_by_watchdog', 'build_s': 0.,
        'sim_s': time.perf_counter() - t0, 'rtf': 0., 'peak_rss_mb': 0., 'num_processes': 1,
        'threads': 1, 'spikes': n_spikes,
        'mean_rate_hz': n_spikes / (n_neurons * t_sim / 1000.) if n_neurons else 0.})
    if verbose:
        print(f"synthetic run {run_dir}: {len(layout)} areas, {n_neurons} neurons, "
              f"{n_spikes} spikes in {t_sim:g} ms", file=sys.stderr)
    return run_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog='python -m mam_pynn.analysis.synthetic',
                                description='write a synthetic run directory (no simulator)')
    p.add_argument('--out', required=True, metavar='RUN_DIR')
    p.add_argument('--t-sim', type=float, help='ms (default 2000)')
    p.add_argument('--neurons-per-area', type=int, help='default 1290')
    p.add_argument('--areas', help='comma-separated subset of the area list')
    p.add_argument('--seed', type=int)
    p.add_argument('--config', help='YAML with optional keys t_sim, neurons_per_area, areas, seed '
                   '(command-line values win)')
    args = p.parse_args(argv)
    opts = {'t_sim': 2000., 'neurons_per_area': 1290, 'areas': AREA_LIST, 'seed': 0}
    if args.config:
        opts.update(yaml.safe_load(Path(args.config).read_text()) or {})
    given = {'t_sim': args.t_sim, 'neurons_per_area': args.neurons_per_area, 'seed': args.seed,
             'areas': args.areas.split(',') if args.areas else None}
    opts.update({k: v for k, v in given.items() if v is not None})
    layout = default_layout(int(opts['neurons_per_area']), list(opts['areas']), seed=int(opts['seed']))
    make_run_dir(args.out, layout, t_sim=float(opts['t_sim']), seed=int(opts['seed']), verbose=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
