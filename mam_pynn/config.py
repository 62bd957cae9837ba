"""Configuration files of every ``mam`` command and of the workflows: YAML or TOML with
the optional sections ``network_params``, ``sim_params``, ``theory_params``, ``backend``,
plus ``section.key=value`` overrides. Core code (the MPI runner, tests, workflows) reads
configs here, so nothing but the command line imports the command line."""
from __future__ import annotations

from pathlib import Path

import yaml

from .faults import cause, one_line
from .io import load_yaml

CONFIG_SECTIONS = ('network_params', 'sim_params', 'theory_params', 'backend')


class ConfigError(ValueError):
    """The configuration file or an override is malformed."""


def load_config(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """Read a YAML/TOML config and apply ``section.key=value`` overrides."""
    cfg: dict = {}
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"config file {path} is a directory, not a file")
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            text = path.read_text()
            if path.suffix == '.toml':
                import tomllib
                cfg = tomllib.loads(text)
            else:
                cfg = load_yaml(text) or {}
        except (ValueError, yaml.YAMLError) as err:  # parser errors differ by format
            why = cause(err) if path.suffix != '.toml' or isinstance(err, UnicodeDecodeError) \
                else f"not valid TOML ({one_line(err)})"
            raise ConfigError(f"config file {path}: {why}") from err
        if not isinstance(cfg, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections")
    for item in overrides:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        keys = key.split('.')
        node = cfg
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {k!r} is not a section")
        node[keys[-1]] = _override_value(key, value)
    unknown = set(cfg) - set(CONFIG_SECTIONS)
    if unknown:
        import difflib
        name = sorted(unknown)[0]
        close = difflib.get_close_matches(name, CONFIG_SECTIONS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; valid sections: {', '.join(CONFIG_SECTIONS)}"
        raise KeyError(f"unknown config section {name!r}{hint}")
    return cfg


def _override_value(key: str, value: str):
    """A ``--set`` value read as YAML, with YAML 1.2's numbers (``1e-3``) as in files."""
    try:
        return load_yaml(value)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: {value!r} is not a valid YAML value ({one_line(err)})") from err
