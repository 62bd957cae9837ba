"""``python -m mam_pynn.figures PAPER [FIGURE ...] --out DIR [--data DATA_PATH | --original-data
DIR] [--label STATE=LABEL ...]``: draw figures directly (the figures/ Snakefiles call this once
per figure). The dynamics figures (and meanfield's Fig. 9) read labelled runs in upstream's
data layout: ours (``mam preprocess``, labelled by state) or the authors' published ones
(upstream's labels)."""
from __future__ import annotations

import argparse
import sys

from ..faults import run_command
from . import PAPERS, make_figures, states_needed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='python -m mam_pynn.figures', description=__doc__)
    p.add_argument('paper', choices=list(PAPERS), help='which paper')
    p.add_argument('figures', nargs='*', help='figure names (default: all of the paper)')
    p.add_argument('--out', required=True, help='output folder')
    data = p.add_mutually_exclusive_group()
    data.add_argument('--data', metavar='DATA_PATH',
                      help='folder of our labelled runs (mam preprocess), labelled by state '
                      '(dynamics; meanfield: Fig. 9)')
    data.add_argument('--original-data', metavar='DIR',
                      help="dynamics: the authors' published data, read with upstream's labels")
    p.add_argument('--label', action='append', default=[], metavar='STATE=LABEL',
                   help='read this label for a state, e.g. metastable=99c0024e... (dynamics) or '
                   'fig9_K_prime=LABEL (meanfield: an upstream run of Fig. 9 in its data_path)')
    args = p.parse_args(argv)

    def draw():
        runs = None
        from .dynamics import parse_labels
        if args.paper != 'dynamics' and args.original_data:
            raise ValueError("--original-data is for the dynamics figures (upstream publishes no "
                             "data of Schuecker et al.'s Fig. 9: give its run with --data and --label)")
        if args.paper != 'dynamics' and (args.data or args.label):
            from ..analysis.layout import LabelledRun
            labels, needed = parse_labels(args.label), states_needed(args.paper)
            if not args.data or set(labels) - set(needed):
                raise ValueError(f"--label needs --data and one of the states {', '.join(needed)}")
            runs = {state: LabelledRun(args.data, labels.get(state, state)) for state in needed}
        elif args.data or args.original_data:
            from .dynamics import readers
            runs = readers(args.data or args.original_data, original=bool(args.original_data),
                           overrides=parse_labels(args.label))
        make_figures(args.paper, args.out, args.figures, runs)
    return run_command('mam figures', draw)


if __name__ == '__main__':
    sys.exit(main())
