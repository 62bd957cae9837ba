"""``python -m mam_pynn.figures PAPER [FIGURE ...] --out DIR [--run STATE=RUN_DIR ...]``:
draw figures directly (the figures/ Snakefiles call this once per figure)."""
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
    p.add_argument('--run', action='append', default=[], metavar='STATE=RUN_DIR',
                   help='an analysed run a dynamics figure reads, e.g. ground_state=runs/gs')
    args = p.parse_args(argv)
    runs = {}
    for item in args.run:
        state, sep, path = item.partition('=')
        if not sep:
            p.error(f"--run expects STATE=RUN_DIR, got {item!r}")
        runs[state] = path
    return run_command('mam figures', lambda: make_figures(args.paper, args.out, args.figures, runs))


if __name__ == '__main__':
    sys.exit(main())
