"""One simulation of a MultiAreaModel: build, run in chunks, record, write the run.

``Simulation(M, sim_spec, backend).simulate(out_dir)`` sets up the simulator
(resolution, seed, threads), builds the network through :mod:`mam_pynn.network`
with progress, runs it in chunks of ``chunk_ms`` (progress, rate so far, and a
watchdog that stops a run whose mean rate over a chunk exceeds ``max_mean_rate``),
and writes the run directory of DESIGN.md: ``config.yaml``, ``spikes.h5`` (SONATA),
``vm.h5`` (when asked), ``figures/raster.png`` and, last, ``summary.json`` — its
presence marks a finished run, which is never overwritten. A non-empty directory
without it (left by a crashed run) is refused too: its leftovers would sit beside
the new run's files.
"""
from __future__ import annotations

import os
import resource
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import yaml

from .io import (atomic_path, atomic_write_json, atomic_write_text, h5_create, make_dir,
                 write_sonata_spikes)
from .network import build_network, check_backend, load_replacement_input, make_backend, make_plan
from .network.plan import check_areas
from .params import content_hash, resolve, sim_defaults
from .stimulus import check_stimuli



def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _plain(obj):
    """YAML/JSON-safe copy (numpy scalars and arrays, tuples, paths)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def summary_line(s: dict) -> str:
    """The one-line summary printed at the end of a run."""
    stop = ' STOPPED BY WATCHDOG' if s.get('watchdog_stopped') else ''
    return (f"{s['backend']}: {s['neurons']} neurons, {s['synapses']} synapses, "
            f"build {s['build_s']:.2f} s, sim {s['sim_s']:.2f} s for {s['t_sim_ms']:g} ms "
            f"(RTF {s['rtf']:.2f}), {s['mean_rate_hz']:.2f} spikes/s, "
            f"peak memory {s['peak_rss_mb']:.0f} MB{stop}")


def mean_rate_hz(n_spikes: int, n_recorded: int, t_done_ms: float, start_ms: float) -> float:
    """Spikes per recorded neuron and second over the recorded window [start, t_done];
    0 when nothing was recorded."""
    window_s = max(float(t_done_ms) - float(start_ms), 0.) / 1000.
    return n_spikes / n_recorded / window_s if n_recorded and window_s > 0 else 0.0


def real_time_factor(sim_s: float, t_ms: float) -> float:
    """Wall-clock seconds per second of biological time (NaN for an empty run)."""
    return sim_s / (t_ms / 1000.) if t_ms > 0 else float('nan')


def check_run_dir(run_dir, ignore=()) -> None:
    """Refuse ``run_dir`` unless it is absent or empty (names in ``ignore`` aside):
    a finished run (``summary.json``) is never overwritten, and the leftovers of a
    crashed run would be mixed into the new one."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"output path {run_dir} exists and is not a directory")
    if (run_dir / 'summary.json').exists():
        raise FileExistsError(f"run directory {run_dir} already holds a finished run "
                              f"(summary.json); choose another output directory")
    left = sorted(p.name for p in run_dir.iterdir() if p.name not in ignore) \
        if run_dir.is_dir() else []
    if left:
        raise FileExistsError(f"run directory {run_dir} holds files of an unfinished run "
                              f"({', '.join(left[:5])}{', ...' if len(left) > 5 else ''}) and "
                              f"no summary.json; remove the directory or choose another one")


def publish_summary(run_dir, summary: dict) -> Path:
    """Write ``run_dir/summary.json`` last and only if no other run wrote one meanwhile:
    the complete file is written under a unique name, then hard-linked to its final
    name (which fails when that exists)."""
    final = Path(run_dir) / 'summary.json'
    tmp = atomic_write_json(Path(run_dir) / f'.summary.{uuid.uuid4().hex}.json', _plain(summary))
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise FileExistsError(f"another run wrote {final} while this one ran; this run's "
                              f"summary is left in {tmp}") from None
    os.unlink(tmp)
    return final


def draw_raster(run_dir, t_stop: float, say=_say) -> None:
    """The same raster figure as `mam analyze` draws, in ``run_dir/figures``."""
    from .analysis.plots import figure_raster_overview
    from .analysis.spikes import read_run_info
    try:
        figure_raster_overview(read_run_info(run_dir), Path(run_dir) / 'figures', 0., t_stop)
    except ImportError:  # matplotlib is optional (imported when drawing)
        say("matplotlib not available: no raster figure")


def mpi_comm_world():
    """mpi4py's COMM_WORLD (a function, so that tests can stand in for it)."""
    from mpi4py import MPI
    return MPI.COMM_WORLD


def spike_count_over_ranks(n_processes: int):
    """f(local count) -> the count summed over the ``n_processes`` ranks, the same on
    every rank; -1 (unknown) on all ranks when any rank could not count."""
    if n_processes <= 1:
        return lambda n: int(n)
    try:
        comm = mpi_comm_world()
    except ImportError as err:
        raise RuntimeError(f"the simulator runs on {n_processes} MPI processes but mpi4py is "
                           f"not installed: the ranks cannot agree on the watchdog") from err
    if comm.Get_size() != n_processes:
        raise RuntimeError(f"the simulator runs on {n_processes} processes but MPI's "
                           f"COMM_WORLD holds {comm.Get_size()}")

    def total(n: int) -> int:
        counts = comm.allgather(int(n))
        return -1 if min(counts) < 0 else int(sum(counts))
    return total


def check_sim_numbers(params: dict) -> None:
    """Refuse, naming the key, simulation numbers NEST would abort on or divide by."""
    from .connectivity import check_number
    for key in ('t_sim', 'dt', 'chunk_ms', 'max_mean_rate'):
        check_number(params[key], f"sim_params.{key}")
    for key, low, high in (('local_num_threads', 1, 4096), ('num_processes', 1, 10 ** 7),
                           ('rng_seed', 1, 2 ** 31 - 1)):   # NEST's seed range
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not low <= value <= high:
            raise ValueError(f"sim_params.{key} must be an integer in [{low}, {high}], "
                             f"got {value!r}")
    rec = params['recording_dict']
    if not isinstance(rec['record_vm'], bool):
        raise ValueError(f"sim_params.recording_dict.record_vm must be true or false, "
                         f"got {rec['record_vm']!r}")
    check_number(rec['Nrec_vm_fraction'], 'sim_params.recording_dict.Nrec_vm_fraction', '>= 0')


class Simulation:
    """A simulation of ``network`` (a MultiAreaModel) with custom ``sim_spec``.

    Everything that can be checked is checked here, before anything is built or
    written: the backend name, the simulated and recorded areas, and the input
    replacing cortico-cortical connections.
    """

    def __init__(self, network, sim_spec: dict | None = None, backend: str = 'nest'):
        if sim_spec is not None and not isinstance(sim_spec, dict):
            raise TypeError(f"sim_spec must be a dict of simulation parameters, "
                            f"got {type(sim_spec).__name__}")
        self.network = network
        self.custom_params = dict(sim_spec or {})
        self.params = resolve(self.custom_params, sim_defaults())
        self.backend = check_backend(backend)
        area_list = list(network.area_list)
        self.areas_simulated = check_areas(self.params['areas_simulated'], area_list,
                                           'sim_params.areas_simulated')
        self.areas_recorded = check_areas(self.params['recording_dict']['areas_recorded'],
                                          area_list, 'recording_dict.areas_recorded')
        check_sim_numbers(self.params)
        self.T = float(self.params['t_sim'])
        self.check_spikes_fit(self.T)
        self.replacement_input = load_replacement_input(network, self.params)
        self.stimuli = check_stimuli(self.params['stimulus'], {a: list(network.structure[a])
                                                               for a in self.areas_simulated})
        self.label = self._make_label()
        self.summary = None

    def __repr__(self):
        return f"Simulation(label={self.label!r}, network={self.network.label!r}, backend={self.backend!r})"

    # ------------------------------------------------------------------ layout

    def populations_layout(self) -> dict:
        """{area: {pop: {'first_id', 'size'}}}: node ids local to each area, structure order."""
        out = {}
        N = dict(zip(self.network.structure_vec, np.asarray(self.network.N_vec)))
        for area in self.areas_simulated:
            first, out[area] = 0, {}
            for pop in self.network.structure[area]:
                size = int(N[f"{area}-{pop}"])
                out[area][pop] = {'first_id': first, 'size': size}
                first += size
        return out

    def check_spikes_fit(self, t_sim: float) -> None:
        """Refuse a run that can never finish: the recorded spikes alone (held in memory
        until the end; the memory planner's estimate, ``mam plan``) would exceed the
        memory of this machine."""
        import psutil
        from .hpc.memory import MEMORY_COSTS, expected_rate_hz, expected_spikes
        layout = self.populations_layout()
        recorded = sum(v['size'] for a in self.areas_recorded if a in layout for v in layout[a].values())
        start = float(self.params['recording_dict']['spike_dict'].get('start', 0.))
        spikes = expected_spikes(recorded, expected_rate_hz(self.network, self.areas_simulated),
                                 t_sim, start)
        need_mb = spikes * MEMORY_COSTS['spike_bytes'] / self.params['num_processes'] / 2 ** 20
        have_mb = psutil.virtual_memory().total / 2 ** 20
        if need_mb > have_mb:
            raise ValueError(
                f"sim_params.t_sim = {t_sim:g} ms: the run would hold ~{spikes:.3g} recorded "
                f"spikes, ~{need_mb / 1024:.3g} GB per rank (the memory planner's estimate, "
                f"mam plan), more than this machine's {have_mb / 1024:.0f} GB; shorten t_sim, "
                f"record fewer areas (recording_dict.areas_recorded) or use more MPI ranks")

    def run_config(self) -> dict:
        return _plain({'label': self.network.label, 'simulation_label': self.label,
                       'backend': self.backend, 'network_params': self.network.params,
                       'sim_params': self.params, 'populations': self.populations_layout()})

    # ------------------------------------------------------------------ run

    def external_weight_pa(self, key) -> float:
        """The model's weight (pA) of external input onto population ``key`` = (area, pop)."""
        i = list(self.network.structure_vec).index(f"{key[0]}-{key[1]}")
        return float(np.asarray(self.network.W_matrix)[i, -1])

    def build(self, progress: bool = True):
        """Set up the simulator and build the network with the configured stimuli;
        returns the :class:`~mam_pynn.network.handles.Network` to extend and ``run``."""
        from .network.handles import Network
        say = _say if progress else (lambda msg: None)
        p = self.params
        rec = p['recording_dict']
        ti = time.perf_counter()
        backend = make_backend(self.backend)   # imports the simulator: timed apart
        import_s = time.perf_counter() - ti
        t0, cpu0 = time.perf_counter(), time.process_time()
        backend.setup(float(p['dt']), int(p['rng_seed']), int(p['local_num_threads']))
        plan = make_plan(self.network, p, input_source=self.replacement_input)
        t_setup = time.perf_counter() - t0
        say(f"simulation {self.label} of model {self.network.label} on {self.backend}: "
            f"{len(plan.areas)} areas, {plan.n_neurons} neurons, {plan.n_synapses} synapses")
        vm = {'fraction': float(rec['Nrec_vm_fraction']), 'dict': rec['vm_dict']} \
            if rec['record_vm'] else None
        built = build_network(plan, backend, self.areas_recorded,
                              spike_start_ms=float(rec['spike_dict'].get('start', 0.)),
                              vm=vm, progress=say if progress else None)
        net = Network(self, built, {})
        for entry in self.stimuli:
            net.add_stimulus(entry, source='config')
        net.mark_built()
        build_s = time.perf_counter() - t0      # set-up, plan, build, stimuli
        net.build_info = {'import_s': import_s, 'setup_s': t_setup, 'build_s': build_s,
                          'build_cpu_s': time.process_time() - cpu0, 'peak_rss_build_mb': peak_rss_mb(),
                          **built.timings}
        say(f"built the network in {build_s:.2f} s (peak memory {net.build_info['peak_rss_build_mb']:.0f} MB)")
        self.net = net
        return net

    def simulate(self, out_dir=None, progress: bool = True, figures: bool = True,
                 before_summary=None) -> dict:
        """Build, run and record in one call (``build()`` then ``run()``); return the summary.

        ``out_dir`` defaults to ``runs/<simulation label>``; a non-empty directory is
        refused before anything is done (:func:`check_run_dir`).
        """
        check_run_dir(self._run_dir(out_dir))
        self.build(progress)
        return self.run(out_dir, progress=progress, figures=figures, before_summary=before_summary)

    def _run_dir(self, out_dir) -> Path:
        return Path(out_dir) if out_dir is not None else Path('runs') / self.label

    def run(self, out_dir=None, t_sim: float | None = None, progress: bool = True,
            figures: bool = True, before_summary=None, network=None) -> dict:
        """Run the built network (:meth:`build`; built here if not yet) for ``t_sim`` ms
        (default ``sim_params.t_sim``), write the run directory, return the summary dict.

        A built network runs once. ``figures=False`` draws no raster (the parts of an MPI
        run: the merged run gets one). ``before_summary(run_dir)`` runs before the simulator
        is shut down and ``summary.json`` is written, for files that belong to the run
        (NEST timers): the summary stays the last file. What the user added to the network
        is listed under ``extensions`` in config.yaml and summary.json; variables recorded
        with ``Network.record`` go to ``recordings.h5``.
        """
        net = network or getattr(self, 'net', None) or self.build(progress)
        if net.ran:
            raise RuntimeError("this network has run already (a built network runs once); "
                               "call build() again for another run")
        if t_sim is not None:
            self._set_t_sim(t_sim)
        say = _say if progress else (lambda msg: None)
        run_dir = self._run_dir(out_dir)
        check_run_dir(run_dir)
        make_dir(run_dir)
        extensions = _plain(net.provenance())
        atomic_write_text(run_dir / 'config.yaml',
                          yaml.safe_dump({**self.run_config(),
                                          **({'extensions': extensions} if extensions else {})},
                                         sort_keys=False))
        backend, built, plan = net.backend, net.built, net.plan
        net.ran = True
        cpu1 = time.process_time()
        t_done, watchdog, sim_s = self._run_chunks(backend, say)
        rss_sim, cpu2 = peak_rss_mb(), time.process_time()
        t2 = time.perf_counter()
        summary = self._write_outputs(run_dir, backend, built, t_done, say, figures)
        if net.write_recordings(run_dir / 'recordings.h5'):
            summary['recordings'] = 'recordings.h5'
        n_proc, threads = backend.process_info()
        if before_summary is not None:
            before_summary(run_dir)
        backend.end()
        info = net.build_info
        summary.update({
            'backend': self.backend, 'label': self.network.label, 'simulation_label': self.label,
            'neurons': plan.n_neurons, 'synapses': plan.n_synapses,
            'areas_simulated': list(plan.areas), 'areas_recorded': list(built.recorded_areas),
            't_sim_ms': t_done, 't_sim_requested_ms': self.T,
            'build_s': info['build_s'], 'sim_s': sim_s,
            'build_cpu_s': info['build_cpu_s'], 'sim_cpu_s': cpu2 - cpu1,
            'rtf': real_time_factor(sim_s, t_done),
            'peak_rss_mb': peak_rss_mb(), 'peak_rss_build_mb': info['peak_rss_build_mb'],
            'peak_rss_sim_mb': rss_sim, 'num_processes': n_proc, 'threads': threads,
            'import_s': info['import_s'], 'setup_s': info['setup_s'],
            **{k: info[k] for k in built.timings}, 'state_propagation_s': sim_s,
            'write_s': time.perf_counter() - t2, **watchdog, 'extensions': extensions,
        })
        publish_summary(run_dir, summary)
        self.summary = summary
        self.run_dir = run_dir          # the finished run: what M.analysis reads
        print(summary_line(summary), flush=True)
        return summary

    def _set_t_sim(self, t_sim) -> None:
        """A run length other than the configured one: it becomes sim_params.t_sim (and
        the label); the input series of het_current_nonstat cannot be extended."""
        from .connectivity import check_number
        check_number(t_sim, 't_sim')
        if float(t_sim) > self.T and self.net.plan.currents:
            raise ValueError(f"t_sim {t_sim} ms is longer than the {self.T} ms the network's "
                             f"input current series were made for (sim_params.t_sim)")
        self.check_spikes_fit(float(t_sim))
        self.T = self.params['t_sim'] = float(t_sim)
        self.label = self._make_label()

    def _make_label(self) -> str:
        return content_hash({'params': self.params, 'network_label': self.network.label,
                             'backend': self.backend})

    def _run_chunks(self, backend, say):
        """Advance in chunks; stop early when the watchdog bound is exceeded.

        Under MPI each rank counts only its own neurons' spikes: the counts are summed
        over the ranks, so that all ranks take the same decision (a rank stopping alone
        would leave the others waiting forever in the next step)."""
        chunk, bound = float(self.params['chunk_ms']), float(self.params['max_mean_rate'])
        t, sim_s, spikes_total = 0.0, 0.0, 0
        watchdog = {'watchdog_stopped': False, 'max_mean_rate': bound, 'status': 'completed'}
        count_all_ranks = spike_count_over_ranks(backend.process_info()[0])
        backend.prepare()
        try:
            while t < self.T - 1e-9:
                d = min(chunk, self.T - t)
                ts = time.perf_counter()
                n_spikes, n_neurons = backend.run(d)
                n_spikes = count_all_ranks(n_spikes)
                sim_s += time.perf_counter() - ts
                t += d
                if n_spikes < 0 or n_neurons == 0:
                    say(f"simulated {t:g}/{self.T:g} ms in {sim_s:.2f} s")
                    continue
                spikes_total += n_spikes
                rate = n_spikes / n_neurons / (d / 1000.)
                say(f"simulated {t:g}/{self.T:g} ms in {sim_s:.2f} s "
                    f"(RTF {real_time_factor(sim_s, t):.2f}), rate {rate:.2f} spikes/s in this chunk, "
                    f"{spikes_total / n_neurons / (t / 1000.):.2f} so far")
                if rate > bound:
                    say(f"WATCHDOG: mean rate {rate:.1f} spikes/s over the chunk ending at "
                        f"{t:g} ms exceeds max_mean_rate = {bound:g}; stopping the run "
                        f"and keeping what was recorded")
                    watchdog.update(watchdog_stopped=True, status='stopped_by_watchdog',
                                    stopped_at_ms=t, chunk_rate_hz=rate)
                    break
        finally:
            backend.cleanup()
        return t, watchdog, sim_s

    # ------------------------------------------------------------------ outputs

    def _write_outputs(self, run_dir, backend, built, t_done, say, figures=True) -> dict:
        layout = self.populations_layout()
        # in the backend's order: write_sonata_spikes sorts them (time, then id) in the file
        spikes = {area: backend.spikes(area) for area in built.recorded_areas}
        write_sonata_spikes(run_dir / 'spikes.h5', spikes)
        n_spikes = int(sum(len(t) for _, t in spikes.values()))
        n_rec = sum(v['size'] for a in built.recorded_areas for v in layout[a].values())
        start = float(self.params['recording_dict']['spike_dict'].get('start', 0.))
        self._write_vm(run_dir, backend, built)
        if figures:
            draw_raster(run_dir, t_done, say)
        self.spikes = spikes
        return {'spikes': n_spikes, 'recorded_neurons': n_rec, 'spike_start_ms': start,
                'mean_rate_hz': mean_rate_hz(n_spikes, n_rec, t_done, start)}

    def _write_vm(self, run_dir, backend, built):
        if not self.params['recording_dict']['record_vm']:
            return
        with atomic_path(run_dir / 'vm.h5') as tmp:
            with h5_create(tmp) as f:
                for area in built.recorded_areas:
                    data = backend.vm(area)
                    if data is None:
                        continue
                    ids, times, v = data
                    order = np.lexsort((ids, times))
                    g = f.create_group(f'report/{area}')
                    g.create_dataset('node_ids', data=ids[order].astype(np.uint64))
                    g.create_dataset('times', data=times[order]).attrs['units'] = 'ms'
                    g.create_dataset('V_m', data=v[order]).attrs['units'] = 'mV'
