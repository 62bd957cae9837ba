"""Fixtures of the figure tests: each paper's figures drawn once per session by the CLI."""
import pytest

from figure_helpers import mam_figures


@pytest.fixture(scope='session')
def drawn(tmp_path_factory):
    """{paper: folder} of `mam figures anatomy` and `mam figures meanfield` output."""
    out = tmp_path_factory.mktemp('figures')
    results = {paper: mam_figures(paper, out) for paper in ('anatomy', 'meanfield')}
    return {'out': out, 'results': results}


@pytest.fixture(scope='session')
def model():
    from mam_pynn.model import MultiAreaModel
    return MultiAreaModel({})
