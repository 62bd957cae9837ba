"""One rank of a 2-rank NEST run dies (SIGTERM: it says so; SIGKILL: mpirun says so): the
other rank stops too, no merged summary.json appears, the error names the rank, and the
run directory is left unfinished (a second run into it is refused)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
VENV_BIN = Path(sys.executable).parent
CONFIG = {
    'network_params': {'N_scaling': 0.002, 'K_scaling': 0.005,
                       'fullscale_rates': 'fullscale_rates.json',
                       'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}},
    'sim_params': {'areas_simulated': ['V1'], 't_sim': 100000., 'num_processes': 2},
}


@pytest.mark.parametrize('sig', ['TERM', 'KILL'])
def test_a_rank_that_dies_stops_the_run(sig, nest_mpi_env, tmp_path):
    config, out = tmp_path / 'c.yaml', tmp_path / 'run'
    config.write_text(yaml.safe_dump(CONFIG))
    cmd = [str(VENV_BIN / 'mpirun'), '-n', '2', sys.executable, '-m', 'mam_pynn.cli', 'simulate',
           '--config', str(config), '--out', str(out)]
    proc = subprocess.Popen(cmd, env=nest_mpi_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    lines, pid = [], None
    try:
        for line in proc.stdout:       # until rank 1 is known and rank 0 simulates
            lines.append(line)
            if line.startswith('rank 1 of 2 (pid '):
                pid = int(line.split('(pid ')[1].split(')')[0])
            if line.startswith('simulated 200/') and pid:
                break
        assert pid, ''.join(lines)[-3000:]
        os.kill(pid, getattr(signal, f'SIG{sig}'))
        t0 = time.monotonic()
        lines += proc.stdout.readlines()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = ''.join(lines)
    assert proc.returncode != 0 and time.monotonic() - t0 < 60, text[-3000:]
    assert not (out / 'summary.json').exists()            # no merged summary
    assert 'Traceback' not in text, text[-3000:]
    if sig == 'TERM':
        assert 'mam simulate: error: rank 1 of 2: interrupted by SIGTERM; stopping all 2 ranks' in text, text[-3000:]
    else:                              # mpirun names the pid; the rank's first line maps it
        assert f'PID {pid} ' in text and f'rank 1 of 2 (pid {pid})' in text, text[-3000:]
    rerun = subprocess.run(cmd[3:], env=nest_mpi_env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 2 and 'holds files of an unfinished run' in rerun.stderr, rerun.stderr[-2000:]
