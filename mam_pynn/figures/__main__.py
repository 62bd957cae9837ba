"""``python -m mam_pynn.figures PAPER [FIGURE ...] --out DIR [--data DATA_PATH | --original-data
DIR] [--label STATE=LABEL ...]``: draw figures directly (the figures/ Snakefiles call this once
per figure). The dynamics figures read labelled runs in upstream's data layout: ours
(``mam preprocess``, labelled by state) or the authors' published ones (upstream's labels)."""
from __future__ import annotations

import argparse
import sys

from ..faults import run_command
from . import PAPERS, make_figures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='python -m mam_pynn.figures', description=__doc__)
    p.add_argument('paper', choices=list(PAPERS), help='which paper')
    p.add_argument('figures', nargs='*', help='figure names (default: all of the paper)')
    p.add_argument('--out', required=True, help='output folder')
    data = p.add_mutually_exclusive_group()
    data.add_argument('--data', metavar='DATA_PATH',
                      help='dynamics: folder of our labelled runs (mam preprocess), labelled by state')
    data.add_argument('--original-data', metavar='DIR',
                      help="dynamics: the authors' published data, read with upstream's labels")
    p.add_argument('--label', action='append', default=[], metavar='STATE=LABEL',
                   help='dynamics: read this label for a state, e.g. metastable=99c0024e...')
    args = p.parse_args(argv)

    def draw():
        runs = None
        if args.data or args.original_data:
            from .dynamics import parse_labels, readers
            runs = readers(args.data or args.original_data, original=bool(args.original_data),
                           overrides=parse_labels(args.label))
        make_figures(args.paper, args.out, args.figures, runs)
    return run_command('mam figures', draw)


if __name__ == '__main__':
    sys.exit(main())
