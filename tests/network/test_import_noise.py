"""What a run prints: no harmless start-up noise of pyNN.nest/NEST, real warnings kept."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('pyNN.nest')

NOISE = ('CMake Error', 'Problem running cmake', 'nest-config', '-- N E S T --',
         'backward compatibility')


def _env():
    env = dict(os.environ)
    # as `bash run.sh` does: the venv's bin, holding NEST's nest-config, first on PATH
    env['PATH'] = str(Path(sys.executable).parent) + os.pathsep + env.get('PATH', '')
    env.pop('PYNEST_QUIET', None)
    return env


def test_import_pynn_nest_is_quiet_but_keeps_real_warnings(tmp_path):
    code = ("import os, warnings; os.environ['PYNEST_QUIET'] = '1'\n"
            "import sys; from mam_pynn.network.base import import_pynn; import_pynn('nest')\n"
            "warnings.warn('a real warning')\n"
            # libNeuroML (pyNN.morphology's, unused by pyNN.nest) is not loaded, yet importable
            "print('neuroml loaded:', 'neuroml' in sys.modules); import neuroml.writers\n")
    out = subprocess.run([sys.executable, '-W', 'default', '-c', code], cwd=tmp_path,
                         env=_env(), capture_output=True, text=True, check=True)
    text = out.stdout + out.stderr
    assert not [n for n in NOISE if n in text], text
    assert 'a real warning' in text
    assert 'neuroml loaded: False' in text


def test_mam_simulate_prints_no_start_up_noise(tmp_path):
    mam = Path(sys.executable).parent / 'mam'
    run = subprocess.run(
        [str(mam), 'simulate', '--out', str(tmp_path / 'run'),
         '--set', 'sim_params.areas_simulated=[V1]',
         '--set', 'network_params.N_scaling=0.002', '--set', 'network_params.K_scaling=0.002',
         '--set', 'network_params.fullscale_rates=fullscale_rates.json',
         '--set', 'network_params.connection_params.replace_non_simulated_areas=hom_poisson_stat',
         '--set', 'sim_params.t_sim=20'],
        cwd=tmp_path, env=_env(), capture_output=True, text=True)
    text = run.stdout + run.stderr
    assert run.returncode == 0, text
    assert not [n for n in NOISE if n in text], text
    assert 'neurons' in (run.stdout or run.stderr).splitlines()[-1]   # the one-line summary
