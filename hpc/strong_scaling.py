#!/usr/bin/env python
"""Strong scaling of one MAM configuration over (MPI ranks x threads), beNNch-style.

Runs the same network (same seed) once per layout with `mpirun -n P python -m
mam_pynn.hpc` (the distributed `mam simulate`), collects the phases per layout (network
construction; state propagation split by NEST's kernel timers into update, spike
communication, delivery, synchronisation; maximum over ranks) and the real-time factor,
writes them as JSON and draws the time per phase vs resources (stacked bars) and the
RTF. Needs the NEST built with MPI and detailed timers: `source hpc/env.sh` first.

    source hpc/env.sh
    python hpc/strong_scaling.py --config hpc/configs/scaling_subset.yaml \\
        --layouts 1x1,1x2,2x1 --out hpc/results/strong_scaling.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# NEST timer -> phase of the plot (all in seconds, maximum over threads and ranks);
# time_gather_spike_data holds collocating and communicating the spike data (NEST source)
PHASES = {
    'update': ('time_update',),
    'communicate': ('time_gather_spike_data',),
    'deliver': ('time_deliver_spike_data',),
    'synchronise': ('time_omp_synchronization_simulation', 'time_mpi_synchronization'),
}
COLORS = {'construction': '#999999', 'update': '#1f77b4', 'communicate': '#ff7f0e',
          'deliver': '#2ca02c', 'synchronise': '#d62728', 'other': '#cccccc'}


def parse_layouts(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(','):
        try:
            p, t = (int(x) for x in item.lower().split('x'))
        except ValueError:
            raise SystemExit(f"layout {item!r} is not RANKSxTHREADS (e.g. 2x1)") from None
        if p < 1 or t < 1:
            raise SystemExit(f"layout {item!r}: ranks and threads must be >= 1")
        out.append((p, t))
    return out


def check_completed(summary: dict, ranks: int, threads: int) -> None:
    """A run the watchdog stopped simulated less time than asked (exit code 3): its times
    are not comparable with the other layouts' and must not enter the table."""
    if summary.get('watchdog_stopped') or summary.get('status', 'completed') != 'completed':
        raise RuntimeError(
            f"layout {ranks}x{threads} was stopped by the watchdog at "
            f"{summary.get('stopped_at_ms', summary.get('t_sim_ms'))} ms of "
            f"{summary.get('t_sim_requested_ms')} ms (mean rate above max_mean_rate "
            f"{summary.get('max_mean_rate')} spikes/s): not a scaling measurement")


def run_layout(config: str, overrides: list[str], ranks: int, threads: int, work: Path,
               mpirun: str, timeout: float) -> dict:
    out = work / f'run_{ranks}x{threads}'
    cmd = [sys.executable, '-m', 'mam_pynn.hpc', '--out', str(out),
           '--set', f'sim_params.num_processes={ranks}',
           '--set', f'sim_params.local_num_threads={threads}']
    if config:
        cmd += ['--config', config]
    for o in overrides:
        cmd += ['--set', o]
    if ranks > 1:
        cmd = [mpirun, '-n', str(ranks)] + cmd
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"layout {ranks}x{threads} failed (rc {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    summary = json.loads((out / 'summary.json').read_text())
    check_completed(summary, ranks, threads)
    kernel = json.loads((out / 'nest_kernel.json').read_text())
    timers = kernel.get('max_over_ranks', kernel)
    phases = {'construction': summary['build_s']}
    for name, keys in PHASES.items():
        phases[name] = sum(float(timers.get(k, 0.0)) for k in keys)
    phases['other'] = max(summary['sim_s'] - sum(phases[k] for k in PHASES), 0.0)
    return {'ranks': ranks, 'threads': threads, 'cores': ranks * threads, 'wall_s': wall,
            'summary': summary, 'nest_timers': timers, 'phases_s': phases,
            'detailed_timers': 'time_update' in timers, 'loadavg': os.getloadavg()}


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = result['layouts']
    labels = [f"{r['ranks']}x{r['threads']}\n({r['cores']} core{'s' * (r['cores'] > 1)})"
              for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={'width_ratios': [3, 2]})
    bottom = [0.0] * len(rows)
    for phase, color in COLORS.items():
        vals = [r['phases_s'].get(phase, 0.0) for r in rows]
        ax1.bar(labels, vals, bottom=bottom, color=color, label=phase, edgecolor='k', lw=0.3)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax1.set_ylabel('wall-clock time (s)')
    ax1.set_xlabel('MPI ranks x threads')
    ax1.set_title('time per phase (max over ranks)', fontsize=9)
    ax1.set_ylim(0, max(bottom) * 1.45)
    ax1.legend(fontsize=7, ncol=3, loc='upper left')
    rtf = [r['summary']['rtf'] for r in rows]
    ax2.plot(range(len(rows)), rtf, 'o-', color='k')
    ax2.set_xticks(range(len(rows)), labels)
    ax2.set_ylabel('real-time factor (wall / biological time)')
    ax2.set_title('state propagation', fontsize=9)
    ax2.set_ylim(0, max(rtf) * 1.15)
    s = rows[0]['summary']
    fig.suptitle(f"{s['neurons']:,} neurons, {s['synapses']:,} synapses, "
                 f"{len(s['areas_simulated'])} areas, {s['t_sim_ms']:g} ms "
                 f"({result['machine']})", fontsize=9)
    fig.tight_layout()
    tmp = path.with_suffix('.tmp.png')
    fig.savefig(tmp, dpi=150)
    os.replace(tmp, path)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--config', help='YAML/TOML config of `mam simulate`')
    ap.add_argument('--set', action='append', default=[], dest='overrides')
    ap.add_argument('--layouts', default='1x1,1x2,2x1', help='RANKSxTHREADS list')
    ap.add_argument('--out', default=str(HERE / 'results' / 'strong_scaling.json'))
    ap.add_argument('--plot', help='PNG path (default: next to --out)')
    ap.add_argument('--mpirun', default=str(Path(sys.executable).parent / 'mpirun'))
    ap.add_argument('--timeout', type=float, default=1800.)
    ap.add_argument('--keep', help='keep the run directories here')
    ap.add_argument('--replot', action='store_true', help='only redraw the plot from --out')
    args = ap.parse_args(argv)
    if args.replot:
        out = Path(args.out)
        plot(json.loads(out.read_text()), Path(args.plot) if args.plot else out.with_suffix('.png'))
        return 0
    layouts = parse_layouts(args.layouts)
    if any(p > 1 for p, _ in layouts):
        import nest
        if not nest.GetKernelStatus('build_info')['have_mpi']:
            raise SystemExit("this NEST has no MPI: run hpc/build_nest_mpi.sh and `source hpc/env.sh`")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix='mam_scaling_') as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        for k, (p, t) in enumerate(layouts, 1):
            r = run_layout(args.config, args.overrides, p, t, work, args.mpirun, args.timeout)
            rows.append(r)
            ph = ', '.join(f"{n} {v:.2f}" for n, v in r['phases_s'].items())
            print(f"[{k}/{len(layouts)}] {p}x{t}: build {r['summary']['build_s']:.2f} s, "
                  f"sim {r['summary']['sim_s']:.2f} s, RTF {r['summary']['rtf']:.2f} ({ph})",
                  file=sys.stderr, flush=True)
    import platform
    result = {'config': args.config, 'overrides': args.overrides,
              'machine': f"{platform.node()}, {os.cpu_count()} cores", 'layouts': rows}
    from mam_pynn.io import atomic_write_json
    atomic_write_json(out, result)
    png = Path(args.plot) if args.plot else out.with_suffix('.png')
    plot(result, png)
    base = rows[0]['summary']['sim_s']
    print('strong scaling: ' + ', '.join(
        f"{r['ranks']}x{r['threads']} RTF {r['summary']['rtf']:.2f} (speed-up {base / r['summary']['sim_s']:.2f})"
        for r in rows) + f"; {out}, {png}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
