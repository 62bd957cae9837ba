"""Shared test fixtures: locations of the shared data and reference folders."""
from pathlib import Path

import pytest

import mam_pynn

SHARED = Path(mam_pynn.__file__).resolve().parents[1] / '..' / 'shared'
REFERENCE_DIR = (SHARED / 'mam-reference').resolve()


@pytest.fixture(scope='session')
def reference_dir():
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"reference numbers not found at {REFERENCE_DIR}")
    return REFERENCE_DIR
