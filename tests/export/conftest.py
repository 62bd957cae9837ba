import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import standin  # noqa: E402
from standin import SUBSET  # noqa: E402


@pytest.fixture(scope='session')
def small_model():
    """V1 and V2 at N_scaling = K_scaling = 0.01, other areas replaced by Poisson input."""
    return standin.model(0.01, 0.01, {'connection_params': {'replace_non_simulated_areas':
                                                            'hom_poisson_stat'}})


@pytest.fixture(scope='session')
def small_sim_params():
    return {'t_sim': 300., 'areas_simulated': SUBSET, 'rng_seed': 7,
            'recording_dict': {'areas_recorded': SUBSET}}


@pytest.fixture(scope='session')
def small_export(small_model, small_sim_params, tmp_path_factory):
    from mam_pynn.export.sonata import export_sonata
    out = tmp_path_factory.mktemp('sonata')
    summary = export_sonata(small_model, small_sim_params, out)
    return out, summary
