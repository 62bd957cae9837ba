"""``python -m mam_pynn.analysis RUN_DIR [--t-min MS]``: the same as ``mam analyze``."""
import argparse

from .run import DEFAULT_PARAMS, analyze_run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='python -m mam_pynn.analysis', description=__doc__)
    p.add_argument('run_dir', metavar='RUN_DIR')
    p.add_argument('--t-min', type=float, default=None,
                   help=f"skip this initial transient (ms, default {DEFAULT_PARAMS['t_min']:g})")
    p.add_argument('--force', action='store_true', help='recompute even if results are stored')
    p.add_argument('--no-figures', action='store_true')
    p.add_argument('--workers', type=int, default=None, metavar='N',
                   help='processes analysing the areas (default: as many as CPUs and memory allow)')
    args = p.parse_args(argv)
    analyze_run(args.run_dir, t_min=args.t_min, force=args.force, figures=not args.no_figures,
                workers=args.workers)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
