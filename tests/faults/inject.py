"""`mam ARGS` with a signal sent mid-run, at a point chosen in advance (the child process of
tests/faults/test_faults.py):

    python inject.py [--signal NAME --at MODULE:FUNCTION[:K]] [--fsize BYTES] -- ARGS...

Before the K-th call (default 1) of MODULE.FUNCTION, this process sends itself the signal
NAME (INT, TERM, KILL): a real signal, handled (or not, for KILL) as one from outside
would be, at a point where the command has started but not finished. ``os:replace`` and
``os:link`` are the moments an atomic write makes a file final. ``--fsize``: writes beyond
BYTES fail (RLIMIT_FSIZE, EFBIG) from the moment the command starts, as when the disk fills
up during a run; set after the imports, because MPI's start-up (mpi4py, imported by
elephant and PyNN) creates shared-memory files, which the limit would refuse too.
Otherwise this is the ``mam`` command itself (``mam_pynn.cli.main``).
"""
import argparse
import importlib
import os
import resource
import signal
import sys
import threading


def arm(sig: int, target: str) -> None:
    """MODULE:FUNCTION[:K[:SECONDS]]: the signal before the K-th call, or SECONDS after it."""
    module, name, *k = target.split(':')
    owner = importlib.import_module(module)
    original, calls = getattr(owner, name), [0]
    at, delay = (int(k[0]) if k else 1), (float(k[1]) if len(k) > 1 else 0.)

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at:
            if delay:
                threading.Timer(delay, os.kill, (os.getpid(), sig)).start()
            else:
                os.kill(os.getpid(), sig)
        return original(*args, **kwargs)
    setattr(owner, name, wrapper)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--signal')
    ap.add_argument('--at', action='append', default=[])
    ap.add_argument('--fsize', type=int)
    ap.add_argument('args', nargs=argparse.REMAINDER)
    opts = ap.parse_args()
    args = opts.args[1:] if opts.args[:1] == ['--'] else opts.args
    for target in opts.at:
        arm(getattr(signal, f'SIG{opts.signal}'), target)
    from mam_pynn.cli import main as mam
    if opts.fsize is not None:
        for module in ('elephant', 'pyNN.nest'):   # they start MPI (mpi4py) when imported
            try:
                importlib.import_module(module)
            except ImportError:
                pass
        resource.setrlimit(resource.RLIMIT_FSIZE, (opts.fsize, resource.RLIM_INFINITY))
    return mam(args)


if __name__ == '__main__':
    sys.exit(main())
