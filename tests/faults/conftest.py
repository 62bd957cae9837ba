"""Fixtures of the fault tests: one small configuration, one finished run and one SONATA
export made once per session and copied before each damage."""
import pytest
import yaml

from fault_checks import quiet_main

#: V1 alone at 0.2 % of its neurons (392), 100 ms: a run, an export and an analysis in seconds
SMALL = {
    'network_params': {'N_scaling': 0.002, 'K_scaling': 0.005,
                       'fullscale_rates': 'fullscale_rates.json',
                       'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}},
    'sim_params': {'areas_simulated': ['V1'], 't_sim': 100., 'rng_seed': 3},
}


@pytest.fixture(scope='session')
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp('faults') / 'small.yaml'
    path.write_text(yaml.safe_dump(SMALL))
    return path


@pytest.fixture(scope='session')
def finished_run(config, tmp_path_factory):
    run = tmp_path_factory.mktemp('faults') / 'run'
    rc, err = quiet_main(['simulate', '--config', config, '--out', run])
    assert rc == 0, err
    return run


@pytest.fixture(scope='session')
def sonata_export(config, tmp_path_factory):
    out = tmp_path_factory.mktemp('faults') / 'sonata'
    rc, err = quiet_main(['export', 'sonata', '--config', config, '--out', out, '--workers', '1'])
    assert rc == 0, err
    return out
