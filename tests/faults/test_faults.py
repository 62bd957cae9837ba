"""Faults, as a hostile user or a failing machine makes them, against every `mam` command:
signals mid-run (SIGINT, SIGTERM, SIGKILL), a file-size limit on writes (RLIMIT_FSIZE, as
a full disk), an unwritable output path (through a regular file: holds for root too),
every file of a run directory and of a SONATA export damaged in turn (truncated, random
bytes, a folder in its place, its format with the wrong content) and bad configuration.
Each asserts the exit code (mam_pynn.faults), one line naming the file, no traceback, and
that nothing that was there before changed. The default suite runs the files each command
reads and the signals and limits on `mam simulate`; `-m slow` runs every command and file.
"""
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fault_checks import (DAMAGES, assert_one_line, assert_unchanged, copy_tree, damage,
                          error_lines, quiet_main, run_mam, snapshot)
from mam_pynn.faults import EXIT_BAD_INPUT, EXIT_IO

EXIT_SIGNAL = {'INT': 128 + signal.SIGINT, 'TERM': 128 + signal.SIGTERM, 'KILL': -signal.SIGKILL}


# ----------------------------------------------------------------------- configuration

def test_yaml_numbers_as_written_and_keys_written_twice(tmp_path, config):
    """YAML 1.1 (PyYAML) reads 2e-3 and 1.0e+308 as text; a key written twice was dropped."""
    from mam_pynn.config import load_config
    f = tmp_path / 'c.yaml'
    f.write_text('network_params:\n  N_scaling: 2e-3\n  K_scaling: 1e-2\n  surface: 1.0e+2\n')
    assert load_config(f)['network_params'] == {'N_scaling': 0.002, 'K_scaling': 0.01, 'surface': 100.}
    assert load_config(None, ['sim_params.t_sim=1e3'])['sim_params']['t_sim'] == 1000.
    f.write_text('network_params:\n  N_scaling: 0.01\n  K_scaling: 0.01\n  N_scaling: 0.02\n')
    rc, err = quiet_main(['plan', '--config', f])
    assert_one_line(rc, err, EXIT_BAD_INPUT, f, "'N_scaling' appears twice", 'lines 2 and 4')


def test_config_naming_a_directory(tmp_path):
    rc, err = quiet_main(['plan', '--config', tmp_path])
    assert_one_line(rc, err, EXIT_BAD_INPUT, f"{tmp_path} is a directory")


def test_scalings_no_simulator_can_count(tmp_path):
    out = tmp_path / 'c.json'
    rc, err = quiet_main(['connectivity', '--set', 'network_params.N_scaling=1.0e+308',
                          '--set', 'network_params.fullscale_rates=fullscale_rates.json', '--out', out])
    assert_one_line(rc, err, EXIT_BAD_INPUT, 'N_scaling = 1e+308', 'more than a simulator can count')
    assert not out.exists() and err.count('\n') == 1      # no overflow warnings either


def test_a_run_that_can_never_finish_is_refused(tmp_path, config):
    """t_sim 1e15 ms (31,700 years): the planner's spike estimate exceeds any memory."""
    out = tmp_path / 'run'
    rc, err = quiet_main(['simulate', '--config', config, '--set', 'sim_params.t_sim=1.0e+15',
                          '--out', out])
    assert_one_line(rc, err, EXIT_BAD_INPUT, 'sim_params.t_sim = 1e+15 ms', 'memory')
    assert not out.exists()


def test_figures_out_naming_a_file(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('mine\n')
    rc, err = quiet_main(['figures', 'anatomy', '--out', blocker])
    assert_one_line(rc, err, EXIT_IO, f'{blocker} is a file, not a folder')
    assert blocker.read_text() == 'mine\n'


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    rc, err = quiet_main(['plan', '--config', tmp_path, '--debug'])
    assert rc == EXIT_BAD_INPUT and 'Traceback' in err and len(error_lines(err)) == 1
    monkeypatch.setenv('MAM_DEBUG', '1')
    rc, err = quiet_main(['plan', '--config', tmp_path])
    assert rc == EXIT_BAD_INPUT and 'Traceback' in err


def test_a_bug_still_shows_its_traceback(monkeypatch):
    """Unexpected exceptions are bugs: not turned into an error line."""
    import mam_pynn.hpc as hpc

    def broken(*args, **kwargs):
        raise ZeroDivisionError('a bug')
    monkeypatch.setattr(hpc, 'plan', broken)
    with pytest.raises(ZeroDivisionError):
        quiet_main(['plan'])


# ----------------------------------------------------------------------- damaged files

#: files each command reads (the others are not read: damaging them changes nothing)
RUN_FILES_READ = ('config.yaml', 'summary.json', 'spikes.h5')
SONATA_FILES_READ = ('circuit_config.json', 'simulation_config.json', 'mam_export.json',
                     'network/node_types.csv', 'network/nodes.h5', 'network/edges_to_V1.h5',
                     'network/external_node_types.csv', 'network/external_nodes.h5',
                     'network/external_edges.h5', 'components/point_neuron_models/V1_4E.json',
                     'components/point_neuron_models/poisson_0.json')


@pytest.mark.parametrize('how', DAMAGES)
@pytest.mark.parametrize('name', RUN_FILES_READ)
def test_analyze_a_damaged_run_directory(name, how, finished_run, tmp_path):
    run = copy_tree(finished_run, tmp_path / 'run')
    damage(run / name, how)
    before = snapshot(run)
    rc, err = quiet_main(['analyze', run, '--t-min', '0'])
    assert_one_line(rc, err, EXIT_BAD_INPUT, run / name)
    assert_unchanged(before, run)
    assert not (run / 'analysis' / 'manifest.json').exists()


def test_analyze_a_run_whose_config_is_not_yaml(finished_run, tmp_path):
    run = copy_tree(finished_run, tmp_path / 'run')
    (run / 'config.yaml').write_text('populations: [V1\nsim_params: {t_sim: 100}\n')
    before = snapshot(run)
    rc, err = quiet_main(['analyze', run])
    assert_one_line(rc, err, EXIT_BAD_INPUT, run / 'config.yaml', 'not valid YAML')
    assert_unchanged(before, run)


@pytest.mark.parametrize('how', DAMAGES)
@pytest.mark.parametrize('name', SONATA_FILES_READ)
def test_simulate_a_damaged_sonata_export(name, how, sonata_export, config, tmp_path):
    circuit = copy_tree(sonata_export, tmp_path / 'sonata')
    damage(circuit / name, how)
    before = snapshot(circuit)
    out = tmp_path / 'run'
    rc, err = quiet_main(['simulate', '--sonata', circuit, '--config', config, '--out', out])
    assert_one_line(rc, err, EXIT_BAD_INPUT, circuit / name)
    assert_unchanged(before, circuit)
    assert not out.exists()          # checked before anything was written


# ----------------------------------------------------------------------- unwritable outputs

@pytest.mark.parametrize('command', ['connectivity', 'simulate', 'theory', 'export', 'jobscript',
                                     'analyze'])
def test_output_path_through_a_regular_file(command, config, finished_run, tmp_path):
    """An output path under a regular file cannot be created, whoever runs it (root too)."""
    blocker = tmp_path / 'a_file'
    blocker.write_text('mine\n')
    out = blocker / 'out'
    c = ['--config', config]
    argv = {'connectivity': ['connectivity', *c, '--out', out / 'c.npz'],
            'simulate': ['simulate', *c, '--out', out],
            'theory': ['theory', *c, '--out', out / 'rates.npz'],
            'export': ['export', 'sonata', *c, '--out', out, '--workers', '1'],
            'jobscript': ['jobscript', *c, '--nodes', 1, '--ranks-per-node', 1, '--threads', 1,
                          '--out', out / 'job.sh']}
    if command == 'analyze':       # the run's analysis/ folder is a file
        run = copy_tree(finished_run, tmp_path / 'run')
        (run / 'analysis').write_text('mine\n')
        before = snapshot(run)
        rc, err = quiet_main(['analyze', run, '--t-min', '0'])
        assert_one_line(rc, err, EXIT_IO, run / 'analysis')
        assert_unchanged(before, run)
        return
    rc, err = quiet_main(argv[command])
    assert_one_line(rc, err, EXIT_IO, f'{blocker} is a file, not a folder')
    assert blocker.read_text() == 'mine\n'


# ----------------------------------------------------------------------- mam simulate

@pytest.mark.parametrize('sig', ['INT', 'TERM', pytest.param('KILL', marks=pytest.mark.slow)])
def test_simulate_stopped_while_simulating(sig, config, tmp_path):
    """A signal while NEST simulates: the run is left unfinished, as after kill -9, and
    says so; a second run into it and `mam analyze` refuse it, naming it."""
    out = tmp_path / 'run'
    cmd = [sys.executable, '-m', 'mam_pynn.cli', 'simulate', '--config', str(config),
           '--set', 'sim_params.t_sim=100000', '--out', str(out)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:          # wait until it simulates (progress after each 100 ms)
        lines.append(line)
        if line.startswith('simulated 200/'):
            break
    proc.send_signal(getattr(signal, f'SIG{sig}'))
    t0 = time.monotonic()
    lines += proc.stderr.readlines()
    proc.wait(timeout=120)
    err = ''.join(lines)
    assert time.monotonic() - t0 < 60
    if sig == 'KILL':
        assert proc.returncode == EXIT_SIGNAL['KILL'] and 'Traceback' not in err
    else:
        assert_one_line(proc.returncode, err, EXIT_SIGNAL[sig], f'interrupted by SIG{sig}',
                        f'run directory {out} is left unfinished')
    assert (out / 'config.yaml').is_file() and not (out / 'summary.json').exists()
    before = snapshot(out)
    rc, err = quiet_main(['simulate', '--config', config, '--out', out])
    assert_one_line(rc, err, EXIT_BAD_INPUT, f'run directory {out} holds files of an unfinished run')
    rc, err = quiet_main(['analyze', out])
    assert_one_line(rc, err, EXIT_BAD_INPUT, f'unfinished run: {out / "summary.json"} is missing')
    assert_unchanged(before, out)


def test_simulate_with_a_file_size_limit(config, tmp_path):
    """A write that fails part-way (as on a full disk): h5py's RuntimeError is one line
    naming the file; nothing looks finished, no temporary file is left."""
    out = tmp_path / 'run'
    proc = run_mam(['simulate', '--config', config, '--out', out], fsize=8192)
    assert_one_line(proc.returncode, proc.stderr, EXIT_IO, f'cannot write {out / "spikes.h5"}',
                    'File too large', f'run directory {out} is left unfinished')
    assert sorted(p.name for p in out.iterdir()) == ['config.yaml']


def test_api_failed_write_raises_oserror_naming_the_file(tmp_path):
    """The Python API: a failed write is an OSError (WriteError) naming the file, and no
    file of that name (nor a temporary one) is left."""
    code = (f"import numpy as np\nfrom mam_pynn.io import write_sonata_spikes\n"
            f"try:\n    write_sonata_spikes({str(tmp_path / 's.h5')!r}, "
            f"{{'V1': (np.arange(10000), np.arange(10000.))}})\n"
            f"except OSError as err:\n    print(type(err).__name__, err.errno, err.filename, err)\n")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          preexec_fn=lambda: __import__('resource').setrlimit(
                              __import__('resource').RLIMIT_FSIZE, (8192, -1)))
    assert proc.stdout.split()[:3] == ['WriteError', '27', str(tmp_path / 's.h5')], proc.stderr
    assert 'File too large' in proc.stdout
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------- every command (slow)

def commands(config, run, export, out) -> dict:
    """name -> (argv, files that must not exist after a stop, where a signal is sent
    (MODULE:FUNCTION[:K]: before its K-th call), RLIMIT_FSIZE that fails a write)."""
    c = ['--config', config]
    replace = 'os:replace'
    return {
        'connectivity': (['connectivity', *c, '--out', out / 'c.npz'], [out / 'c.npz'], replace, 4096),
        'simulate': (['simulate', *c, '--out', out / 'run'], [out / 'run' / 'summary.json'],
                     'os:replace:2', 8192),
        'simulate-sonata': (['simulate', '--sonata', export, *c, '--out', out / 'run'],
                            [out / 'run' / 'summary.json'], 'os:replace:2', 8192),
        'theory': (['theory', *c, '--out', out / 'rates.npz'], [out / 'rates.npz'], replace, 4096),
        'export-sonata': (['export', 'sonata', *c, '--out', out / 'sonata', '--workers', 1],
                          [out / 'sonata' / 'mam_export.json'], 'os:replace:3', 8192),
        'export-neuroml': (['export', 'neuroml', *c, '--out', out / 'nml'],
                           [out / 'nml' / 'LEMS_MAM.xml'], 'os:replace:3', 65536),
        'analyze': (['analyze', run, '--t-min', 0], [run / 'analysis' / 'manifest.json'],
                    'os:replace:2', 8192),
        'jobscript': (['jobscript', *c, '--nodes', 1, '--ranks-per-node', 1, '--threads', 1,
                       '--out', out / 'job.sh'], [out / 'job.sh'], replace, 100),
        'plan': (['plan', *c], [], 'mam_pynn.hpc:plan_text', None),
        'validate': (['validate', *c, '--backends', 'nest,neuron', '--seeds', 2, '--out', out / 'val'],
                     [out / 'val' / 'report.json'], 'mam_pynn.validate:run_statistics:2', 8192),
        # Snakemake's workflow: the signal 4 s after it started
        'figures': (['figures', 'anatomy', '--out', out / 'fig'], [], 'mam_pynn.faults:run_child:1:4',
                    65536),
    }


COMMANDS = ['connectivity', 'simulate', 'simulate-sonata', 'theory', 'export-sonata',
            'export-neuroml', 'analyze', 'jobscript', 'plan', 'validate', 'figures']


def _temporaries(root) -> list:
    """Temporary files of atomic writes (hidden siblings), Snakemake's folder aside."""
    return [p for p in root.rglob('.*') if p.is_file() and '.snakemake' not in p.parts]


def _setup(name, config, finished_run, sonata_export, tmp_path):
    run = copy_tree(finished_run, tmp_path / 'finished')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'earlier.txt').write_text('an earlier result\n')   # must survive
    argv, finals, at, fsize = commands(config, run, sonata_export, out)[name]
    return argv, finals, at, fsize, {run: snapshot(run), out: snapshot(out)}


@pytest.mark.slow
@pytest.mark.parametrize('sig', ['INT', 'TERM', 'KILL'])
@pytest.mark.parametrize('name', COMMANDS)
def test_every_command_stopped_mid_run(name, sig, config, finished_run, sonata_export, tmp_path):
    argv, finals, at, _, before = _setup(name, config, finished_run, sonata_export, tmp_path)
    proc = run_mam(argv, signal=sig, at=[at], cwd=tmp_path)
    if sig == 'KILL':
        assert proc.returncode == EXIT_SIGNAL['KILL'] and 'Traceback' not in proc.stderr
    else:
        assert_one_line(proc.returncode, proc.stderr, EXIT_SIGNAL[sig], f'interrupted by SIG{sig}')
        assert not _temporaries(tmp_path), _temporaries(tmp_path)    # removed on the way out
    for f in finals:
        assert not f.exists(), f"{f} looks finished after SIG{sig}"
    for root, snap in before.items():
        assert_unchanged(snap, root)


@pytest.mark.slow
@pytest.mark.parametrize('name', [c for c in COMMANDS if c != 'plan'])
def test_every_command_with_a_file_size_limit(name, config, finished_run, sonata_export, tmp_path):
    argv, finals, _, fsize, before = _setup(name, config, finished_run, sonata_export, tmp_path)
    proc = run_mam(argv, fsize=fsize, cwd=tmp_path)
    line = assert_one_line(proc.returncode, proc.stderr, EXIT_IO, 'File too large')
    assert 'cannot write /' in line
    for f in finals:
        assert not f.exists(), f"{f} looks finished after a failed write"
    assert not _temporaries(tmp_path), _temporaries(tmp_path)
    for root, snap in before.items():
        assert_unchanged(snap, root)


def _all_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.is_file())


@pytest.fixture(scope='module')
def analysed_run(finished_run, tmp_path_factory):
    run = copy_tree(finished_run, tmp_path_factory.mktemp('faults') / 'analysed')
    rc, err = quiet_main(['analyze', run, '--t-min', '0'])
    assert rc == 0, err
    return run


@pytest.mark.slow
@pytest.mark.parametrize('how', DAMAGES)
def test_every_file_of_a_run_directory_damaged(how, analysed_run, tmp_path):
    """Every file of an analysed run in turn: a file `mam analyze` reads is named (exit 2);
    one it does not read (figures, NEST's timers) or recomputes (its own results, checked
    by their key) leaves the run's own files unchanged."""
    own = ('config.yaml', 'summary.json', 'spikes.h5', 'nest_kernel.json')
    for name in _all_files(analysed_run):
        run = copy_tree(analysed_run, tmp_path / f'{how}-{name.replace("/", "_")}')
        damage(run / name, how)
        before = snapshot(run)
        rc, err = quiet_main(['analyze', run, '--t-min', '0'])
        if name in RUN_FILES_READ:
            assert_one_line(rc, err, EXIT_BAD_INPUT, run / name)
            assert_unchanged(before, run)
        elif how == 'directory':     # a folder where analyze writes: cannot write it
            assert_one_line(rc, err, EXIT_IO, run / name)
        else:
            assert rc == 0 and 'Traceback' not in err, (name, err[-3000:])
            assert_unchanged({k: v for k, v in before.items() if k in own}, run)


@pytest.mark.slow
@pytest.mark.parametrize('how', DAMAGES)
def test_every_file_of_a_sonata_export_damaged(how, sonata_export, config, tmp_path):
    """Every file of an export in turn (each of its ~100 input-rate files too): a file the
    loader reads is named (exit 2) before anything is written; one it does not read (the
    edge-type tables, node sets, bmtk's config: other readers' files) changes nothing."""
    read = set(SONATA_FILES_READ)
    circuit = copy_tree(sonata_export, tmp_path / 'sonata')
    for name in _all_files(circuit):
        original = (circuit / name).read_bytes()
        damage(circuit / name, how)
        before = snapshot(circuit)
        out = tmp_path / f'run-{name.replace("/", "_")}'
        rc, err = quiet_main(['simulate', '--sonata', circuit, '--config', config, '--out', out])
        if name in read or name.startswith('components/point_neuron_models/'):
            assert_one_line(rc, err, EXIT_BAD_INPUT, circuit / name)
            assert not out.exists()
        else:
            assert rc == 0 and json.loads((out / 'summary.json').read_text())['spikes'] > 0, err
        assert_unchanged(before, circuit)
        (shutil.rmtree if (circuit / name).is_dir() else Path.unlink)(circuit / name)
        (circuit / name).write_bytes(original)     # undamaged again for the next file
