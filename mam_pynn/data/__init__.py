"""Locate, download and verify the MAM raw data files.

The files are upstream's (INM-6/multi-area-model at a pinned commit); the project
never ships them. Lookup order for the data directory:

1. an explicit ``data_dir`` argument (the CLI's ``--data-dir``),
2. the ``MAM_DATA_DIR`` environment variable,
3. ``../shared/mam-data`` next to the source checkout (development and CI),
4. a user cache filled by downloading from upstream's pinned commit (pooch).

Every file is checked against its SHA-256 from ``registry.txt`` before use.
"""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

UPSTREAM_REPO = "INM-6/multi-area-model"
UPSTREAM_COMMIT = "355d94042f4fe613e5602918082f5e667695932e"
ENV_VAR = "MAM_DATA_DIR"
_REGISTRY_FILE = Path(__file__).with_name("registry.txt")
_CHECKOUT_DEFAULT = Path(__file__).resolve().parents[2] / ".." / "shared" / "mam-data"


class DataFileError(FileNotFoundError):
    """A raw data file is missing, unreadable or fails its checksum."""


@lru_cache(maxsize=1)
def registry() -> dict[str, tuple[str, str]]:
    """Map of data file name -> (sha256, path in the upstream repository)."""
    entries = {}
    for line in _REGISTRY_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sha, upstream_path = line.split()
            entries[name] = (sha, upstream_path)
    return entries


def default_data_dir() -> Path | None:
    """The data directory from the environment or the checkout, or None."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    if _CHECKOUT_DEFAULT.is_dir():
        return _CHECKOUT_DEFAULT.resolve()
    return None


_data_dir_override: Path | None = None


def set_data_dir(path: str | os.PathLike | None) -> None:
    """Point the whole package at another data directory (the CLI's ``--data-dir``)."""
    global _data_dir_override
    if path is not None and not Path(path).is_dir():
        raise DataFileError(f"data directory {path!s} does not exist")
    _data_dir_override = Path(path) if path is not None else None
    _verified.cache_clear()


def data_dir() -> Path:
    """The data directory in use (downloading into the user cache if none is found)."""
    if _data_dir_override is not None:
        return _data_dir_override
    found = default_data_dir()
    if found is not None:
        if ENV_VAR in os.environ and not found.is_dir():
            raise DataFileError(f"{ENV_VAR}={found} is not a directory")
        return found
    return download_all()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=None)
def _verified(path: Path, size: int, mtime_ns: int, expected: str) -> bool:
    # keyed on size and mtime so that a file changed on disk is hashed again
    return _sha256(path) == expected


def data_file(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Path of the verified data file ``name`` (e.g. ``'raw_data/SLN_Data.csv'``).

    Raises DataFileError naming the file when it is unknown, missing or corrupt.
    """
    reg = registry()
    if name not in reg:
        raise DataFileError(f"{name!r} is not a MAM data file (known: {', '.join(sorted(reg))})")
    expected, _ = reg[name]
    base = Path(directory) if directory is not None else data_dir()
    path = base / name
    if not path.is_file():
        raise DataFileError(
            f"data file {name!r} is missing from {base} "
            f"(set {ENV_VAR} or --data-dir to a complete MAM data directory)")
    st = path.stat()
    if not _verified(path.resolve(), st.st_size, st.st_mtime_ns, expected):
        raise DataFileError(
            f"data file {path} is corrupt: its SHA-256 does not match upstream's "
            f"({UPSTREAM_REPO}@{UPSTREAM_COMMIT[:7]})")
    return path


def download_all(cache_dir: str | os.PathLike | None = None) -> Path:
    """Download every data file from upstream's pinned commit into a user cache.

    pooch verifies each file's SHA-256 and keeps it, so this runs once per machine.
    """
    import pooch

    base_url = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/"
    cache = Path(cache_dir) if cache_dir else Path(pooch.os_cache("mam_pynn")) / UPSTREAM_COMMIT[:7]
    fetcher = pooch.create(
        path=cache, base_url=base_url,
        registry={name: f"sha256:{sha}" for name, (sha, _) in registry().items()},
        urls={name: base_url + up for name, (_, up) in registry().items()},
    )
    for name in registry():
        fetcher.fetch(name, progressbar=False)
    return cache
