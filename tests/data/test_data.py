"""Data access: lookup order, checksum verification, clear errors."""
import shutil

import pytest

from mam_pynn import data


def test_every_registered_file_verifies():
    for name in data.registry():
        assert data.data_file(name).is_file()


def test_registry_covers_upstream_paths():
    reg = data.registry()
    assert len(reg) == 33
    assert reg['raw_data/SLN_Data.csv'][1] == 'multiarea_model/data_multiarea/raw_data/SLN_Data.csv'


@pytest.fixture
def data_copy(tmp_path):
    dst = tmp_path / 'mam-data'
    shutil.copytree(data.data_dir(), dst)
    for p in dst.rglob('*'):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def test_corrupt_file_is_detected_by_checksum(data_copy):
    victim = data_copy / 'raw_data' / 'SLN_Data.csv'
    blob = bytearray(victim.read_bytes())
    blob[100] ^= 1  # a single flipped bit
    victim.write_bytes(bytes(blob))
    with pytest.raises(data.DataFileError, match='SLN_Data.csv is corrupt'):
        data.data_file('raw_data/SLN_Data.csv', data_copy)
    # the other files stay usable
    assert data.data_file('raw_data/Numbers_V1.csv', data_copy).is_file()


def test_missing_file_is_named(data_copy):
    (data_copy / 'fullscale_rates.json').unlink()
    with pytest.raises(data.DataFileError, match="'fullscale_rates.json' is missing"):
        data.data_file('fullscale_rates.json', data_copy)


def test_unknown_file_name():
    with pytest.raises(data.DataFileError, match='not a MAM data file'):
        data.data_file('raw_data/nonexistent.csv')


def test_environment_variable_selects_directory(data_copy, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(data_copy))
    assert data.data_dir() == data_copy
    assert data.data_file('K_prime_original.npy') == data_copy / 'K_prime_original.npy'


def test_set_data_dir_rejects_missing_directory(tmp_path):
    with pytest.raises(data.DataFileError, match='does not exist'):
        data.set_data_dir(tmp_path / 'nowhere')


def test_set_data_dir_overrides_and_resets(data_copy):
    data.set_data_dir(data_copy)
    try:
        assert data.data_dir() == data_copy
    finally:
        data.set_data_dir(None)
    assert data.data_dir() != data_copy


def test_download_uses_pinned_commit_and_checksums(tmp_path, monkeypatch):
    """Without network access, check what pooch is asked for: pinned URLs and SHA-256 hashes."""
    import pooch
    seen = {}

    def fake_fetch(self, name, progressbar=False):
        seen[name] = (self.get_url(name), self.registry[name])
        return str(tmp_path / name)

    monkeypatch.setattr(pooch.Pooch, 'fetch', fake_fetch)
    cache = data.download_all(tmp_path)
    assert cache == tmp_path
    url, known_hash = seen['raw_data/SLN_Data.csv']
    assert data.UPSTREAM_COMMIT in url and url.endswith('multiarea_model/data_multiarea/raw_data/SLN_Data.csv')
    assert known_hash == 'sha256:' + data.registry()['raw_data/SLN_Data.csv'][0]
    assert len(seen) == len(data.registry())
