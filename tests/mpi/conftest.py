"""MPI tests: they need the NEST built with MPI (hpc/build_nest_mpi.sh) and mpich's mpirun.

Each test starts `mpirun -n 2 python ...` with the environment of hpc/env.sh; without
the MPI build, the tests are skipped with the reason, unless MAM_REQUIRE_NEST_MPI=1 (CI,
after building it): then a missing build or mpirun fails the NEST tests instead of hiding
a failed build behind skips.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def nest_mpi_site() -> str | None:
    """site-packages of the NEST built by hpc/build_nest_mpi.sh, or None."""
    from mam_pynn.hpc import nest_mpi_prefix
    prefix = nest_mpi_prefix()
    marker = prefix / '.mam_build_ok'
    return marker.read_text().strip() if marker.is_file() else None


def mpi_base_env() -> dict | None:
    """mpich's mpirun on PATH and NEURON pointed at its libmpi; None without mpirun."""
    if not (VENV_BIN / 'mpirun').exists():
        return None
    env = dict(os.environ)
    env['PATH'] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    libmpi = VENV_BIN.parent / 'lib' / 'libmpi.so.12'
    if libmpi.exists():
        env['MPI_LIB_NRN_PATH'] = str(libmpi)
    env['OMP_NUM_THREADS'] = '1'
    return env


@pytest.fixture(scope='session')
def mpi_env():
    """Environment for `mpirun -n 2` runs (NEURON; no NEST with MPI needed)."""
    env = mpi_base_env()
    if env is None:
        pytest.skip(f"no mpirun in {VENV_BIN} (pip install mpich)")
    return env


@pytest.fixture(scope='session')
def nest_mpi_env():
    """The environment of hpc/env.sh: mpi_env plus the NEST built with MPI."""
    base, site = mpi_base_env(), nest_mpi_site()
    missing = (f"no mpirun in {VENV_BIN} (pip install mpich)" if base is None else
               "NEST with MPI not built (run hpc/build_nest_mpi.sh)" if site is None else None)
    if missing and os.environ.get('MAM_REQUIRE_NEST_MPI') == '1':
        pytest.fail(f"MAM_REQUIRE_NEST_MPI=1 but {missing}", pytrace=False)
    if missing:
        pytest.skip(missing)
    env = dict(base)
    env['PYTHONPATH'] = site + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    return env


def _run(cmd, env, timeout=900, ranks=None, cwd=None):
    """Run a command (under `mpirun -n ranks` when given); fail with its stderr."""
    if ranks:
        cmd = [str(VENV_BIN / 'mpirun'), '-n', str(ranks)] + list(cmd)
    proc = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or REPO)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope='session')
def mpi_run():
    """``mpi_run(cmd, env, timeout=, ranks=)``: run (under mpirun -n ranks), assert rc 0."""
    return _run
