"""Fixtures of the figure tests: each paper's figures drawn once per session by the CLI."""
import json
import subprocess
import sys
from pathlib import Path

import pytest


def mam_figures(paper, out, *extra):
    res = subprocess.run([sys.executable, '-m', 'mam_pynn.cli', 'figures', paper, '--out', str(out),
                          *extra], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res


@pytest.fixture(scope='session')
def drawn(tmp_path_factory):
    """{paper: folder} of `mam figures anatomy` and `mam figures meanfield` output."""
    out = tmp_path_factory.mktemp('figures')
    results = {paper: mam_figures(paper, out) for paper in ('anatomy', 'meanfield')}
    return {'out': out, 'results': results}


def load(drawn, paper, name) -> dict:
    return json.loads((Path(drawn['out']) / paper / f'{name}.json').read_text())


@pytest.fixture(scope='session')
def model():
    from mam_pynn.model import MultiAreaModel
    return MultiAreaModel({})
