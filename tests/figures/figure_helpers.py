"""Helpers of the figure tests (a module of its own: `from conftest import ...` resolves to
whichever tests/*/conftest.py was imported first when several folders run together)."""
import json
import subprocess
import sys
from pathlib import Path


def mam_figures(paper, out, *extra):
    res = subprocess.run([sys.executable, '-m', 'mam_pynn.cli', 'figures', paper, '--out', str(out),
                          *extra], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res


def load(drawn, paper, name) -> dict:
    return json.loads((Path(drawn['out']) / paper / f'{name}.json').read_text())
