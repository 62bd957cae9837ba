"""Shared test fixtures: locations of the shared data and reference folders."""
from pathlib import Path

import pytest

import mam_pynn

SHARED = Path(mam_pynn.__file__).resolve().parents[1] / '..' / 'shared'
REFERENCE_DIR = (SHARED / 'mam-reference').resolve()


@pytest.fixture(scope='module')
def data_dir():
    """The MAM raw data directory (skips where none is found)."""
    from mam_pynn.data import default_data_dir
    found = default_data_dir()
    if found is None or not found.is_dir():
        pytest.skip("MAM data directory not found (set MAM_DATA_DIR)")
    return found


@pytest.fixture(scope='module')
def private_cache(tmp_path_factory):
    """A cache of our own: labels and derived connectivity do not touch the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('MAM_CACHE_DIR', str(tmp_path_factory.mktemp('mam_cache')))
        yield


@pytest.fixture(scope='session')
def reference_dir():
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"reference numbers not found at {REFERENCE_DIR}")
    return REFERENCE_DIR
