"""The ``mam`` command: one entry point, one subcommand per workflow stage.

Every subcommand reads the same configuration: a YAML or TOML file with the
optional sections ``network_params``, ``sim_params``, ``theory_params`` and
``backend`` (deep-updated over the defaults), plus ``--set section.key=value``
overrides. Heavy modules (simulators, Elephant) are imported only by the
subcommand that needs them.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import CONFIG_SECTIONS, ConfigError, load_config  # noqa: F401 (public via cli)
from .faults import EXIT_DISAGREE, EXIT_WATCHDOG
from .io import make_dir


def _model(cfg: dict, **kwargs):
    from .model import MultiAreaModel
    return MultiAreaModel(cfg.get('network_params', {}), **kwargs)


def _sim_params(cfg: dict) -> dict:
    from .params import resolve, sim_defaults
    return resolve(cfg.get('sim_params', {}), sim_defaults())


def cmd_connectivity(cfg, args):
    from .connectivity import connectivity_format, summary_line, write_connectivity
    connectivity_format(args.out)  # a bad suffix fails before the model is built
    make_dir(Path(args.out).parent)   # so does an output folder that cannot be made
    M = _model(cfg)
    write_connectivity(M, args.out)
    print(summary_line(M))


def cmd_simulate(cfg, args):
    backend = args.backend or cfg.get('backend', 'nest')
    if args.sonata:
        from .export.sonata import simulate_sonata
        summary = simulate_sonata(args.sonata, cfg.get('sim_params', {}), backend=backend, out_dir=args.out)
    else:
        M = _model(cfg, simulation=True, sim_spec=cfg.get('sim_params', {}), backend=backend)
        from .hpc import run_distributed   # one rank: simulate(); P ranks: merged parts
        summary = run_distributed(M.simulation, args.out)
    return EXIT_WATCHDOG if summary.get('watchdog_stopped') else 0


def cmd_theory(cfg, args):
    from .theory import write_theory
    make_dir(Path(args.out).parent)   # before the work: an output folder that cannot be made
    M = _model(cfg)
    write_theory(M, args.out, theory_spec=cfg.get('theory_params', {}), stabilize=args.stabilize)


def cmd_export(cfg, args):
    M = _model(cfg)
    if args.format == 'sonata':
        from .export.sonata import export_sonata
        export_sonata(M, _sim_params(cfg), args.out, workers=args.workers, overwrite=args.overwrite)
    else:
        from .export.neuroml import export_neuroml
        export_neuroml(M, _sim_params(cfg), args.out, overwrite=args.overwrite)


def cmd_analyze(cfg, args):
    from .analysis import analyze_run
    analyze_run(args.run_dir, t_min=args.t_min, workers=args.workers)


def cmd_preprocess(cfg, args):
    from .analysis.preprocess import ON_REQUEST, T_MIN, preprocess
    preprocess(args.run_dir, args.out, label=args.label,
               t_min=T_MIN if args.t_min is None else args.t_min, overwrite=args.overwrite,
               extra=list(ON_REQUEST) if args.granger else [])


def cmd_validate(cfg, args):
    from .validate import validate
    report = validate(cfg, backends=args.backends.split(','), seeds=args.seeds, out_dir=args.out)
    return 0 if report.get('agree', False) else EXIT_DISAGREE


def cmd_plan(cfg, args):
    from .hpc import plan, plan_text
    result = plan(cfg.get('network_params', {}), cfg.get('sim_params', {}),
                  memory_per_node_gb=args.memory_per_node)
    print(plan_text(result))


def cmd_jobscript(cfg, args):
    from .hpc import jobscript
    text = jobscript(args.config, nodes=args.nodes, ranks_per_node=args.ranks_per_node,
                     threads=args.threads, scheduler=args.scheduler, out_dir=args.run_dir)
    if args.out:
        from .io import atomic_write_text
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)


def cmd_figures(cfg, args):
    from .figures.dynamics import parse_labels
    from .figures.workflow import run_figures
    return run_figures(args.paper, args.out, config_file=args.figures_config, cores=args.cores,
                       data_dir=args.data_dir, original_data=args.original_data,
                       labels=parse_labels(args.labels), k_prime=args.k_prime)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--config', metavar='FILE', help='YAML or TOML file with network_params, '
                        'sim_params, theory_params, backend (each optional)')
    common.add_argument('--set', metavar='KEY=VALUE', action='append', default=[], dest='overrides',
                        help='override one parameter, e.g. network_params.N_scaling=0.01 (repeatable)')
    common.add_argument('--data-dir', metavar='DIR',
                        help='MAM raw data directory (default: $MAM_DATA_DIR, ../shared/mam-data, '
                        'or a verified download)')
    common.add_argument('--debug', action='store_true',
                        help='on an error, print the traceback too (or set MAM_DEBUG=1)')

    parser = argparse.ArgumentParser(prog='mam', description='The multi-area model of macaque '
                                     'visual cortex as a PyNN model.')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    p = sub.add_parser('connectivity', parents=[common], help='write N, K, synapse counts, weights')
    p.add_argument('--out', required=True, metavar='FILE', help='.yaml, .json or .npz')
    p.set_defaults(func=cmd_connectivity)

    p = sub.add_parser('simulate', parents=[common], help='build and run the network')
    p.add_argument('--out', required=True, metavar='RUN_DIR',
                   help='run directory to create (refused if it holds a run or leftovers)')
    p.add_argument('--backend', choices=['nest', 'neuron', 'brian2'],
                   help="simulator (default: the config's backend, else nest)")
    p.add_argument('--sonata', metavar='DIR', help='run a SONATA circuit written by `mam export sonata`')
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser('theory', parents=[common], help='mean-field stationary rates')
    p.add_argument('--out', required=True, metavar='FILE',
                   help=".npz or .json (rates, mu, sigma, convergence); .npy: K' (--stabilize)")
    p.add_argument('--stabilize', action='store_true', help="compute the stabilized in-degrees K'")
    p.set_defaults(func=cmd_theory)

    p = sub.add_parser('export', parents=[common], help='write the network as SONATA or NeuroML')
    p.add_argument('format', choices=['sonata', 'neuroml'], help='exchange format')
    p.add_argument('--out', required=True, metavar='DIR', help='folder of the export')
    p.add_argument('--workers', type=int, default=None, metavar='N',
                   help='SONATA: processes writing edge files in parallel (default: the CPUs available)')
    p.add_argument('--overwrite', action='store_true', help='replace a finished export in DIR')
    p.set_defaults(func=cmd_export)

    p = sub.add_parser('analyze', parents=[common], help='statistics and figures of a finished run')
    p.add_argument('run_dir', metavar='RUN_DIR', help='a finished run (holds summary.json)')
    p.add_argument('--t-min', type=float, default=None,
                   help="skip this initial transient (ms; default: analyze_run's default)")
    p.add_argument('--workers', type=int, default=None, metavar='N',
                   help='processes analysing the areas (default: the CPUs available, fewer if '
                        'memory is short; 1 for small runs); the results do not depend on it')
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser('preprocess', parents=[common], help="write a finished run into upstream's "
                       "data layout DATA_PATH/LABEL/ (what the dynamics figures read)")
    p.add_argument('run_dir', metavar='RUN_DIR', help='a finished run (holds summary.json)')
    p.add_argument('--out', required=True, metavar='DATA_PATH', help='folder of labelled runs')
    p.add_argument('--label', help="the run's folder name (default: its label in config.yaml)")
    p.add_argument('--t-min', type=float, default=None,
                   help="skip this initial transient (ms; default 500, upstream's)")
    p.add_argument('--overwrite', action='store_true', help='replace DATA_PATH/LABEL if it exists')
    p.add_argument('--granger', action='store_true', help='also the Granger causality of every population '
                   '(dynamics Fig. 9; ~14 min for a down-scaled 2 s run on 2 cores)')
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser('validate', parents=[common], help='compare backends statistically')
    p.add_argument('--backends', default='nest,neuron,brian2', metavar='A,B,...',
                   help='comma-separated backends to compare (default: nest,neuron,brian2)')
    p.add_argument('--seeds', type=int, default=5, metavar='N',
                   help='independent runs per backend, seeds 1..N (at least 2; default 5); '
                   'more seeds make the permutation tests able to reject smaller differences')
    p.add_argument('--out', required=True, metavar='DIR',
                   help='report folder (report.json, report.md, report.png, the runs)')
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser('plan', parents=[common], help='memory and node estimate')
    p.add_argument('--memory-per-node', type=float, metavar='GB',
                   help='memory of one node: also print the nodes needed')
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser('jobscript', parents=[common], help='write a cluster job script')
    p.add_argument('--nodes', type=int, required=True, help='compute nodes')
    p.add_argument('--ranks-per-node', type=int, required=True, help='MPI ranks per node')
    p.add_argument('--threads', type=int, required=True, help='OpenMP threads per rank')
    p.add_argument('--scheduler', default='slurm', choices=['slurm'], help='batch system')
    p.add_argument('--run-dir', default=None, metavar='RUN_DIR', help='run directory of the job')
    p.add_argument('--out', metavar='FILE', help='write the script here (default: stdout)')
    p.set_defaults(func=cmd_jobscript)

    p = sub.add_parser('figures', help="redraw a paper's figures (anatomy, meanfield, dynamics)")
    p.add_argument('paper', choices=['anatomy', 'meanfield', 'dynamics'],
                   help='anatomy: Schmidt et al. 2018 Brain Struct Funct; meanfield: Schuecker et '
                   'al. 2017; dynamics: Schmidt et al. 2018 PLoS Comput Biol (simulates first)')
    p.add_argument('--out', required=True, metavar='DIR', help='figures go to DIR/PAPER/')
    p.add_argument('--config', dest='figures_config', metavar='FILE',
                   help='figures workflow settings (default: figures/config.yaml); e.g. '
                   'configs/figures/fullscale_cluster.yaml writes cluster job scripts')
    p.add_argument('--cores', type=int, default=1, metavar='N', help='Snakemake cores (default 1)')
    p.add_argument('--data-dir', metavar='DIR', help='MAM raw data directory')
    p.add_argument('--debug', action='store_true', help='on an error, print the traceback too')
    p.add_argument('--original-data', metavar='DIR',
                   help="dynamics: draw from the authors' published simulation data in DIR "
                   "(upstream's layout DIR/<label>/Analysis/..., see figures/README.md); nothing is simulated")
    p.add_argument('--label', dest='labels', action='append', default=[], metavar='STATE=LABEL',
                   help="dynamics with --original-data: read LABEL for a state (ground_state, metastable, "
                   "metastable_spikes) instead of upstream's")
    p.add_argument('--k-prime', choices=['ours', 'upstream'], default=None,
                   help="meanfield: the stabilized K' the figures draw first: ours (default, "
                   "computed and cached) or upstream's K_prime_original.npy (figures then go "
                   "to DIR/meanfield_upstream_K/)")
    p.set_defaults(func=cmd_figures, config=None, overrides=[])
    return parser


def _unfinished(args) -> str | None:
    """What a command stopped part-way (interrupted, a write failed) leaves behind."""
    folder = getattr(args, 'run_dir', None) if args.command == 'analyze' else getattr(args, 'out', None)
    if args.command in ('simulate', 'export', 'analyze', 'validate', 'figures') \
            and not (folder and Path(folder).is_dir()):
        return None    # stopped before its folder was made: nothing left
    if args.command == 'simulate':
        return (f"run directory {args.out} is left unfinished (no summary.json), as after a "
                f"crash or kill -9: remove it before running again")
    if args.command == 'export':
        done = 'mam_export.json' if args.format == 'sonata' else 'LEMS_MAM.xml'
        return f"the export in {args.out} is left unfinished (no {done}); run again with --overwrite"
    if args.command == 'analyze':
        return f"the analysis of {args.run_dir} is unfinished; running mam analyze again redoes it"
    if args.command in ('validate', 'figures'):
        return f"{args.out} is left unfinished; running the command again completes it"
    out = getattr(args, 'out', None)
    return f"{out} was not written" if out else None


def main(argv: list[str] | None = None) -> int:
    """The ``mam`` command; exit codes and error lines: :mod:`mam_pynn.faults`."""
    from .faults import run_command
    args = build_parser().parse_args(argv)
    os.environ.setdefault('PYNEST_QUIET', '1')   # no NEST start-up banner

    def command():
        from .data import set_data_dir
        if args.data_dir:
            set_data_dir(args.data_dir)
        cfg = load_config(args.config, args.overrides)
        return args.func(cfg, args)
    return run_command(f"mam {args.command}", command, unfinished=lambda: _unfinished(args),
                       debug=args.debug)


if __name__ == '__main__':
    sys.exit(main())
