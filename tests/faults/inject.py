"""`mam ARGS` with a signal sent mid-run, at a point chosen in advance (the child process of
tests/faults/test_faults.py):

    python inject.py [--signal NAME --at MODULE:FUNCTION[:K]] -- ARGS...

Before the K-th call (default 1) of MODULE.FUNCTION, this process sends itself the signal
NAME (INT, TERM, KILL): a real signal, handled (or not, for KILL) as one from outside
would be, at a point where the command has started but not finished. ``os:replace`` and
``os:link`` are the moments an atomic write makes a file final. Otherwise this is the
``mam`` command itself (``mam_pynn.cli.main``).
"""
import argparse
import importlib
import os
import signal
import sys


def arm(sig: int, target: str) -> None:
    module, name, *k = target.split(':')
    owner = importlib.import_module(module)
    original, calls, at = getattr(owner, name), [0], int(k[0]) if k else 1

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at:
            os.kill(os.getpid(), sig)
        return original(*args, **kwargs)
    setattr(owner, name, wrapper)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--signal')
    ap.add_argument('--at', action='append', default=[])
    ap.add_argument('args', nargs=argparse.REMAINDER)
    opts = ap.parse_args()
    args = opts.args[1:] if opts.args[:1] == ['--'] else opts.args
    for target in opts.at:
        arm(getattr(signal, f'SIG{opts.signal}'), target)
    from mam_pynn.cli import main as mam
    return mam(args)


if __name__ == '__main__':
    sys.exit(main())
