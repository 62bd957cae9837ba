"""Comparison of nested JSON-like data (dicts, lists, numbers, strings) for the tests that
check our data stages against upstream's files."""
import math

import pytest


def assert_nested_close(ours, theirs, path: str = '', rel: float = 1e-9, strict: bool = False):
    """Same keys, lengths and values; floats to ``rel`` (NaN equals NaN). ``strict``: also
    the same key order and the same types (a float stays a float, an int an int)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), path
        assert (list(ours) == list(theirs)) if strict else (set(ours) == set(theirs)), f"keys of {path}"
        for key in theirs:
            assert_nested_close(ours[key], theirs[key], f"{path}/{key}", rel, strict)
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_nested_close(a, b, f"{path}[{i}]", rel, strict)
    elif isinstance(theirs, float) and math.isnan(theirs):
        assert isinstance(ours, float) and math.isnan(ours), path
    elif isinstance(theirs, (int, float)) and not isinstance(theirs, bool):
        if strict:
            assert type(ours) is type(theirs), f"{path}: {ours!r} is not a {type(theirs).__name__}"
        assert ours == pytest.approx(theirs, rel=rel, abs=0), f"{path}: {ours!r} != {theirs!r}"
    else:
        assert (type(ours) is type(theirs) or not strict) and ours == theirs, f"{path}: {ours!r} != {theirs!r}"
