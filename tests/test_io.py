"""Atomic file output: nothing half-written is ever left under the final name."""
import os

import pytest

from mam_pynn import io


def test_atomic_path_writes_with_the_usual_mode_and_syncs(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, 'fsync', lambda fd: synced.append(fd) or real_fsync(fd))
    path = io.atomic_write_text(tmp_path / 'sub' / 'f.txt', 'hello')
    assert path.read_text() == 'hello' and synced
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~io._UMASK
    assert [p.name for p in path.parent.iterdir()] == ['f.txt']


def test_failure_inside_leaves_no_file(tmp_path):
    target = tmp_path / 'f.txt'
    with pytest.raises(RuntimeError, match='boom'):
        with io.atomic_path(target) as tmp:
            tmp.write_text('half')
            raise RuntimeError('boom')
    assert not list(tmp_path.iterdir())


def test_failure_keeps_the_old_content(tmp_path):
    target = tmp_path / 'f.txt'
    target.write_text('old')
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text('new')
            raise RuntimeError('boom')
    assert target.read_text() == 'old' and [p.name for p in tmp_path.iterdir()] == ['f.txt']
