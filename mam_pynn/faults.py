"""Expected failures, in one place: what every ``mam`` command (and the Python API where
it reads or writes files) does when an input is damaged, a write fails or the process is
told to stop.

Exit codes of every command (README, "Exit codes"):

====  ==================================================================================
0     done
2     bad input: arguments, configuration, a missing or damaged input file, an output
      that exists already (a finished run or export)
3     ``mam simulate``: the rate watchdog stopped the run (it is kept, analysable)
4     ``mam validate``: the backends disagree
5     I/O error: an output could not be written (disk full, file too large, no
      permission, read-only file system, a path through a regular file)
130   interrupted by SIGINT (Ctrl-C); 143: by SIGTERM (128 + the signal's number)
====  ==================================================================================

Each prints one line ``mam COMMAND: error: ...`` naming the file and the cause; a run or
export stopped part-way is left unfinished, exactly as after ``kill -9`` (no
``summary.json`` / ``mam_export.json``), and the line says so. ``--debug`` or
``MAM_DEBUG=1`` prints the traceback as well. Any other exception is a bug: Python's
traceback and exit status 1.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import sys
import threading
import traceback

EXIT_BAD_INPUT = 2
EXIT_WATCHDOG = 3
EXIT_DISAGREE = 4
EXIT_IO = 5
DEBUG_ENV = 'MAM_DEBUG'

#: errno values of a failed read or write that lie with the system, not with the input
IO_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS,
                       errno.EACCES, errno.EPERM, errno.ENOTDIR})


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) arrived: raised in the main thread like Ctrl-C's
    KeyboardInterrupt, so that ``finally`` blocks run and temporary files are removed."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class WriteError(OSError):
    """Writing ``filename`` failed (``errno``, ``strerror``): nothing that looks finished
    was left under that name."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


class BadFileError(ValueError):
    """An input file is damaged or does not hold what it should; the message names it."""


class DamagedFileError(BadFileError):
    """``path`` cannot be read, or does not hold what it should, for ``cause``."""

    def __init__(self, path, cause: str):
        super().__init__(f"cannot read {path}: {cause}")
        self.path = str(path)


def one_line(text: str) -> str:
    return ' '.join(str(text).split())


def from_h5py(err: BaseException) -> bool:
    """Raised inside h5py (HDF5's errors arrive as RuntimeError, KeyError, OSError, ...)."""
    tb = err.__traceback__
    while tb is not None:
        if '/h5py/' in '/' + tb.tb_frame.f_code.co_filename.replace('\\', '/'):
            return True
        tb = tb.tb_next
    return False


def _h5_errno(err: BaseException) -> int | None:
    """HDF5 reports a failed system call inside its message: '..., errno = 27, ...'."""
    m = re.search(r'errno = (\d+)', str(err))
    return int(m.group(1)) if m else None


def _is_yaml_error(err: BaseException) -> bool:
    yaml = sys.modules.get('yaml')
    return yaml is not None and isinstance(err, yaml.YAMLError)


def cause(err: BaseException) -> str:
    """A short, one-line reason for an error met while reading a file."""
    if isinstance(err, UnicodeDecodeError):
        return f"not UTF-8 text (byte {err.start} is {err.object[err.start:err.start + 1]!r})"
    if isinstance(err, json.JSONDecodeError):
        return f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    if _is_yaml_error(err):
        mark = getattr(err, 'problem_mark', None)
        what = one_line(' '.join(filter(None, (getattr(err, 'context', None),
                                               getattr(err, 'problem', None))))) or one_line(err)
        return f"not valid YAML ({what}{f' at line {mark.line + 1}' if mark else ''})"
    if isinstance(err, OSError) and err.errno == errno.EISDIR:
        return "a directory, not a file"
    if isinstance(err, FileNotFoundError):
        return "missing"
    if from_h5py(err):
        text = one_line(err.args[0] if err.args else err)
        text = re.sub(r'^Unable to (synchronously )?open (file|object) ', '', text).strip('() ')
        return f"{'unexpected content' if isinstance(err, KeyError) else 'not a readable HDF5 file'} ({text})"
    if isinstance(err, KeyError):
        return f"{err.args[0]!r} is missing" if err.args else "a key is missing"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    if isinstance(err, (TypeError, AttributeError, IndexError)):
        return f"unexpected content ({one_line(err)})"
    return one_line(err) or type(err).__name__


@contextlib.contextmanager
def reading(path):
    """Errors raised while reading ``path`` (and checking what it holds) become a
    :class:`DamagedFileError` naming it; an error that names it already stays as it is,
    a failure of the system (IO_ERRNOS) stays an OSError, now naming the file."""
    try:
        yield
    except (BadFileError, KeyboardInterrupt):
        raise
    except Exception as err:
        if isinstance(err, OSError) and err.errno in IO_ERRNOS:
            raise OSError(err.errno, err.strerror, str(path)) from err
        if isinstance(err, (ValueError, KeyError)) and str(path) in str(err):
            raise   # names the file already (a check of ours)
        if isinstance(err, (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError)) \
                or _is_yaml_error(err) or from_h5py(err):
            raise DamagedFileError(path, cause(err)) from err
        raise


def write_error(path, err: BaseException) -> OSError | None:
    """The OSError naming ``path`` for ``err``, raised while writing it; None when ``err``
    is not a failed write (a bug, or an input found bad meanwhile: raise it as it is)."""
    if isinstance(err, WriteError):
        return err
    if isinstance(err, FileNotFoundError) and err.filename is None:
        return None   # e.g. a missing data file (DataFileError) read while writing
    if isinstance(err, OSError) or from_h5py(err):
        code = err.errno if isinstance(err, OSError) and err.errno else _h5_errno(err)
        reason = os.strerror(code) if code else one_line(err)
        return WriteError(code or errno.EIO, reason, str(path))
    return None


@contextlib.contextmanager
def writing(path):
    """A failed write inside the block raises :class:`WriteError` naming ``path``."""
    try:
        yield
    except Exception as err:
        new = write_error(path, err)
        if new is None or new is err:
            raise
        raise new from err


class ChildFailed(RuntimeError):
    """A command run as a child process failed; ``exit_code`` is its exit status (128 + N:
    killed by signal N); ``bug``: it ended without the one error line of an expected failure."""

    def __init__(self, message: str, exit_code: int, bug: bool = False):
        super().__init__(message)
        self.exit_code, self.bug = exit_code, bug


def run_child(cmd, what: str, error_prefix: str, progress: bool = True, **popen) -> str:
    """Run ``cmd``, passing its stderr on (``progress``) but for its error line (starting
    with ``error_prefix``), and return its stdout. A failure raises :class:`ChildFailed`
    naming ``what`` and carrying the child's error line and exit status; interrupted
    (SIGINT, SIGTERM), the child gets SIGTERM and is waited for."""
    import subprocess
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    error, tail = None, []
    try:
        for line in proc.stderr:
            if error_prefix in line:
                error = line.split(error_prefix, 1)[1].strip()
            elif progress:
                sys.stderr.write(line)
            tail = (tail + [line])[-40:]
        out = proc.stdout.read()
        proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    rc = proc.returncode
    if rc != 0:
        why = error or (f"killed by {signal.Signals(-rc).name}" if rc < 0 else
                        one_line(''.join(tail[-5:])) or f"exit status {rc}")
        # a workflow (Snakemake) reports the exit status of the command that failed in it
        inner = re.findall(r'returned non-zero exit status (\d+)', ''.join(tail))
        code = int(inner[-1]) if error and inner else rc if rc > 0 else 128 - rc
        raise ChildFailed(f"{what} failed: {why}", exit_code=code, bug=error is None and rc > 0)
    return out


# ------------------------------------------------------------------ the commands

def exit_code(err: BaseException) -> int | None:
    """The exit status of an expected failure; None for a bug (show its traceback)."""
    if isinstance(err, KeyboardInterrupt):
        return 128 + getattr(err, 'signum', signal.SIGINT)
    if isinstance(err, ChildFailed):
        return None if err.bug else err.exit_code
    if isinstance(err, WriteError) or (isinstance(err, OSError) and err.errno in IO_ERRNOS):
        return EXIT_IO
    if from_h5py(err):
        return EXIT_IO if _h5_errno(err) in IO_ERRNOS else EXIT_BAD_INPUT
    # NotImplementedError: a configuration an exporter or backend does not support
    if isinstance(err, (OSError, ValueError, KeyError, TypeError, NotImplementedError)) \
            or _is_yaml_error(err):
        return EXIT_BAD_INPUT
    return None


def describe(err: BaseException) -> str:
    """The error as one line that names the file (where it has one) and the cause."""
    if isinstance(err, KeyboardInterrupt):
        return f"interrupted by {signal.Signals(getattr(err, 'signum', signal.SIGINT)).name}"
    if isinstance(err, KeyError) and err.args:
        return one_line(err.args[0])
    if isinstance(err, OSError) and not isinstance(err, WriteError) and err.filename \
            and err.strerror and str(err.filename) not in (err.strerror or ''):
        return one_line(f"{err.filename}: {err.strerror}"
                        + (f" ({err.filename2})" if err.filename2 else ''))
    return one_line(err) or type(err).__name__


def debug_wanted(flag: bool = False) -> bool:
    return flag or os.environ.get(DEBUG_ENV, '') not in ('', '0')


def report(prog: str, err: BaseException, unfinished: str | None = None,
           debug: bool = False) -> int | None:
    """Print ``prog: error: ...`` for an expected failure and return its exit status;
    None (nothing printed) for a bug."""
    code = exit_code(err)
    if code is None:
        return None
    if debug_wanted(debug):
        traceback.print_exception(err)
    stopped = code == EXIT_IO or isinstance(err, KeyboardInterrupt)
    note = f"; {unfinished}" if unfinished and stopped else ''
    print(f"{prog}: error: {describe(err)}{note}", file=sys.stderr, flush=True)
    return code


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM raises :class:`Interrupted` (like Ctrl-C) while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def quiet_h5py_cleanup(debug: bool = False):
    """After a failed HDF5 write, h5py's objects fail again as they are freed and print
    "Exception ignored ... Traceback" (sys.unraisablehook): echoes of the failure that is
    reported in one line. Silenced while the block runs (not with ``debug``)."""
    if debug_wanted(debug):
        yield
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        if not from_h5py(unraisable.exc_value) and 'h5py' not in repr(unraisable.object):
            previous(unraisable)
    sys.unraisablehook = hook
    try:
        yield
    finally:
        import gc
        gc.collect()             # free them now, while silenced
        sys.unraisablehook = previous


def run_command(prog: str, func, unfinished=None, debug: bool = False) -> int:
    """``func()``'s exit status (None: 0); an expected failure is reported by
    :func:`report` (``unfinished()``: what a stop part-way leaves, or None), a bug raises."""
    with sigterm_interrupts(), quiet_h5py_cleanup(debug):
        try:
            return func() or 0
        except (Exception, KeyboardInterrupt) as err:
            code = report(prog, err, unfinished() if unfinished else None, debug)
            if code is None:
                raise
            return code
