"""Configuration files of every ``mam`` command and of the workflows: YAML or TOML with
the optional sections ``network_params``, ``sim_params``, ``theory_params``, ``backend``,
plus ``section.key=value`` overrides. Core code (the MPI runner, tests, workflows) reads
configs here, so nothing but the command line imports the command line."""
from __future__ import annotations

import math
from pathlib import Path

import yaml

CONFIG_SECTIONS = ('network_params', 'sim_params', 'theory_params', 'backend')


class ConfigError(ValueError):
    """The configuration file or an override is malformed."""


def load_config(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """Read a YAML/TOML config and apply ``section.key=value`` overrides."""
    cfg: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        text = path.read_text()
        try:
            if path.suffix == '.toml':
                import tomllib
                cfg = tomllib.loads(text)
            else:
                cfg = yaml.safe_load(text) or {}
        except Exception as err:  # parser errors differ by format
            raise ConfigError(f"config file {path} is not valid {path.suffix[1:] or 'YAML'}: {err}") from err
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
    """A ``--set`` value read as YAML; a number YAML 1.1 keeps as a string (``1e-3``)
    becomes a float."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: {value!r} is not a valid YAML value ({err})") from err
    if isinstance(parsed, str):
        try:
            number = float(parsed)
        except ValueError:
            return parsed
        if math.isfinite(number):  # 'nan', 'inf' stay strings
            return number
    return parsed
