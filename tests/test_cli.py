"""The `mam` command line: configuration loading, overrides and clear errors."""
import re

import pytest

from mam_pynn.cli import ConfigError, build_parser, load_config, main


def test_yaml_config_and_overrides(tmp_path):
    f = tmp_path / 'c.yaml'
    f.write_text('network_params:\n  N_scaling: 0.1\nbackend: nest\n')
    cfg = load_config(f, ['network_params.K_scaling=0.2', 'sim_params.areas_simulated=[V1, V2]'])
    assert cfg['network_params'] == {'N_scaling': 0.1, 'K_scaling': 0.2}
    assert cfg['sim_params']['areas_simulated'] == ['V1', 'V2']
    assert cfg['backend'] == 'nest'


def test_toml_config(tmp_path):
    f = tmp_path / 'c.toml'
    f.write_text('[network_params]\nN_scaling = 0.5\n[network_params.connection_params]\ng = -12.0\n')
    cfg = load_config(f)
    assert cfg['network_params']['connection_params']['g'] == -12.0


@pytest.mark.parametrize('text, match', [
    ('network_param:\n  N_scaling: 0.1\n', "did you mean 'network_params'"),
    ('- 1\n- 2\n', 'mapping'),
    ('network_params: [\n', 'not valid'),
])
def test_bad_config_files(tmp_path, text, match):
    f = tmp_path / 'c.yaml'
    f.write_text(text)
    with pytest.raises((ConfigError, KeyError), match=match):
        load_config(f)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match='does not exist'):
        load_config(tmp_path / 'absent.yaml')


def test_malformed_override():
    with pytest.raises(ConfigError, match='section.key=value'):
        load_config(None, ['N_scaling'])


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    for cmd in ['connectivity', 'simulate', 'theory', 'export', 'analyze', 'preprocess', 'validate', 'plan',
                'jobscript']:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([cmd, '--help'])
        assert exc.value.code == 0
        assert '--config' in capsys.readouterr().out


def test_every_option_is_described():
    """Each argument of each subcommand has a help text (``mam X --help`` explains it)."""
    import argparse
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {action.dest}" for name, p in sub.choices.items() for action in p._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert not missing, f"options without help: {missing}"


def test_errors_exit_2_with_message(tmp_path, capsys):
    rc = main(['connectivity', '--config', str(tmp_path / 'absent.yaml'), '--out', str(tmp_path / 'x.json')])
    assert rc == 2
    assert 'does not exist' in capsys.readouterr().err
    assert not (tmp_path / 'x.json').exists()


def test_override_values():
    cfg = load_config(None, ['network_params.surface=1e-3', 'network_params.N_scaling=1',
                             'backend=nest', 'sim_params.x=nan'])
    assert cfg['network_params']['surface'] == 1e-3 and isinstance(cfg['network_params']['surface'], float)
    assert cfg['network_params']['N_scaling'] == 1 and cfg['backend'] == 'nest'
    assert cfg['sim_params']['x'] == 'nan'  # only finite numbers are converted


def test_malformed_override_value():
    with pytest.raises(ConfigError, match=r"network_params.N_scaling: '\[' is not a valid YAML"):
        load_config(None, ['network_params.N_scaling=['])


@pytest.mark.parametrize('argv, match', [
    (['connectivity', '--set', 'network_params.connection_params.K_stable=nofile.npy'],
     "K_stable: no file 'nofile.npy'"),
    (['connectivity', '--set', 'network_params.N_scaling=['], 'not a valid YAML'),
    (['connectivity', '--set', 'network_params.connection_params.g=11'], 'connection_params.g'),
])
def test_errors_in_overrides_exit_2(argv, match, tmp_path, capsys, private_cache):
    out = tmp_path / 'x.json'
    assert main(argv + ['--out', str(out)]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not out.exists()


def test_unwritable_output_exits_5(tmp_path, capsys):
    """An output path through a regular file cannot be written: exit 5 (I/O error, see
    mam_pynn.faults), one line naming the file in the way."""
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    config = tmp_path / 'c.yaml'
    config.write_text('network_params: {}\n')
    rc = main(['jobscript', '--config', str(config), '--nodes', '1', '--ranks-per-node', '1', '--threads', '1',
               '--out', str(blocker / 'job.sh')])
    assert rc == 5
    assert 'a_file is a file, not a folder' in capsys.readouterr().err


def test_analyze_t_min_defaults_to_analyze_run(monkeypatch):
    import mam_pynn.analysis as analysis
    seen = []
    monkeypatch.setattr(analysis, 'analyze_run',
                        lambda run_dir, t_min, workers: seen.append((t_min, workers)))
    assert main(['analyze', 'some_run']) == 0
    assert main(['analyze', 'some_run', '--t-min', '200', '--workers', '3']) == 0
    assert seen == [(None, None), (200., 3)]


@pytest.mark.parametrize('key, value', [
    ('network_params.connection_params.lognormal_weights', 'true'),
    ('network_params.connection_params.replace_non_simulated_areas', 'het_current_nonstat'),
])
def test_unsupported_export_exits_2_naming_the_key(key, value, tmp_path, capsys, private_cache):
    """Found by tests/test_properties.py: an export the writer does not support raised
    NotImplementedError through `mam` (a traceback) instead of a refusal naming the key."""
    import numpy as np
    from mam_pynn.params import AREA_LIST, POPULATION_LIST
    prefix = tmp_path / 'rates'   # the current mode's input rates (read only by a simulation)
    for area in AREA_LIST:
        for pop in POPULATION_LIST:
            np.save(f"{prefix}-{area}-{pop}.npy", np.full(11, 5.))
    out = tmp_path / 'sonata'
    sets = {key: value, 'network_params.N_scaling': '0.001', 'network_params.K_scaling': '0.002',
            'network_params.fullscale_rates': 'fullscale_rates.json',
            'network_params.connection_params.replace_cc_input_source': str(prefix),
            'sim_params.areas_simulated': '[V1]', 'sim_params.t_sim': '10'}
    argv = ['export', 'sonata', *(a for k, v in sets.items() for a in ('--set', f'{k}={v}')),
            '--out', str(out)]
    assert main(argv) == 2
    assert key.rsplit('.', 1)[1] in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
