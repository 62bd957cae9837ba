"""What every fault test asserts: the exit code, one line naming the file, no traceback,
nothing that was there before changed; and the faults themselves (damaged files, a child
`mam` with a signal or a file-size limit)."""
import contextlib
import hashlib
import io
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py

INJECT = Path(__file__).with_name('inject.py')
ERROR_LINE = re.compile(r'^(mam \w+|python -m mam_pynn\.hpc): error: ')
DAMAGES = ('truncated', 'random', 'directory', 'wrong_type')
#: content of the right format but the wrong shape, per suffix ('wrong_type')
WRONG = {'.json': '[1, 2]\n', '.yaml': '- 1\n- 2\n', '.csv': 'a b\n1 2\n'}


def quiet_main(argv) -> tuple[int, str]:
    """`mam ARGV` in this process: (exit status, stderr)."""
    from mam_pynn.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main([str(a) for a in argv])
    return rc, err.getvalue()


def snapshot(root) -> dict:
    """{relative path: sha256 of the file | 'dir'} of everything under ``root``."""
    root = Path(root)
    out = {}
    for p in sorted(root.rglob('*')):
        rel = str(p.relative_to(root))
        out[rel] = 'dir' if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_unchanged(before: dict, root) -> None:
    """Every file and folder of ``before`` is still there, byte for byte."""
    after = snapshot(root)
    changed = [k for k, v in before.items() if after.get(k) != v]
    assert not changed, f"changed or removed under {root}: {changed}"


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ERROR_LINE.match(line)]


def assert_one_line(proc_rc: int, stderr: str, code: int, *names: str) -> str:
    """Exit ``code``, no traceback, exactly one error line, the last one, naming ``names``."""
    assert proc_rc == code, f"exit {proc_rc}, expected {code}:\n{stderr[-4000:]}"
    assert 'Traceback' not in stderr, stderr[-4000:]
    lines = error_lines(stderr)
    assert len(lines) == 1, f"expected one error line:\n{stderr[-4000:]}"
    assert lines[0] == stderr.rstrip().splitlines()[-1], f"the error is not the last line:\n{stderr[-2000:]}"
    for name in names:
        assert str(name) in lines[0], f"{name} not named in: {lines[0]}"
    return lines[0]


def damage(path: Path, how: str) -> None:
    """Damage one file: 'truncated' (first half), 'random' (random bytes, same size),
    'directory' (a folder in its place), 'wrong_type' (its format, the wrong content)."""
    data = path.read_bytes()
    if how == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    elif how == 'random':
        path.write_bytes(random.Random(path.name).randbytes(max(len(data), 64)))
    elif how == 'directory':
        path.unlink()
        path.mkdir()
    elif how == 'wrong_type':
        if path.suffix == '.h5':
            path.unlink()
            with h5py.File(path, 'w') as f:
                f['x'] = [1, 2]
        else:
            path.write_text(WRONG.get(path.suffix, 'text\n'))
    else:
        raise ValueError(how)


def copy_tree(src, dst) -> Path:
    shutil.copytree(src, dst)
    return Path(dst)


def run_mam(args, signal: str | None = None, at=(), fsize: int | None = None,
            timeout: float = 600, cwd=None) -> subprocess.CompletedProcess:
    """`mam ARGS` in a child process (tests/faults/inject.py): ``signal`` sent before the
    first call of each of ``at`` (MODULE:FUNCTION[:K]); ``fsize``: RLIMIT_FSIZE (bytes)."""
    cmd = [sys.executable, str(INJECT)]
    if signal:
        cmd += ['--signal', signal] + [a for t in at for a in ('--at', t)]
    if fsize is not None:
        cmd += ['--fsize', str(fsize)]
    cmd += ['--', *map(str, args)]
    env = {**os.environ, 'MPLBACKEND': 'Agg', 'PYTHONPATH': os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get('PYTHONPATH', '')])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:       # what a killed command left running (its workers, Snakemake) goes too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 9)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
