"""Fixtures: synthetic spike trains with known statistics and small synthetic run directories."""
from __future__ import annotations

import pytest

from mam_pynn.analysis.synthetic import default_layout, make_run_dir

SMALL_AREAS = ['V1', 'V2', 'FEF', 'TH']


@pytest.fixture(scope='session')
def small_run(tmp_path_factory):
    """4 areas x ~300 neurons, 3 s: a run directory that analyses in seconds."""
    layout = default_layout(300, SMALL_AREAS, seed=1)
    return make_run_dir(tmp_path_factory.mktemp('runs') / 'small', layout, t_sim=3000., seed=1)
