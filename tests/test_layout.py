"""The house (issue 15.4): one direction of data flow between the package's modules.

Imports are read from the source (ast), including those inside functions: no module
but mam_pynn/cli.py imports the command line, and the module-level imports between the
package's modules form no cycle.
"""
import ast
from pathlib import Path

import pytest

import mam_pynn

PACKAGE = Path(mam_pynn.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """mam_pynn modules that ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    here = module_name(path).split('.')
    package = here if path.name == '__init__.py' else here[:-1]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith('mam_pynn')}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = '.'.join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ''
            if mod.startswith('mam_pynn'):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names}   # 'from . import cli'
    return out


MODULES = {module_name(p): p for p in PACKAGE.rglob('*.py')}


def test_only_the_command_line_imports_the_command_line():
    offenders = sorted(name for name, path in MODULES.items()
                       if name != 'mam_pynn.cli' and 'mam_pynn.cli' in imports(path))
    assert not offenders, f"these modules import mam_pynn.cli: {offenders}"


def _graph():
    graph = {}
    for name, path in MODULES.items():
        graph[name] = {m for m in imports(path, top_level_only=True) if m in MODULES and m != name}
    return graph


def find_cycle(graph: dict) -> list | None:
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 'done'
        return None
    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_modules():
    graph = _graph()
    # a package's __init__ re-exporting its own submodules is not a cycle between stages
    for name in graph:
        graph[name] = {m for m in graph[name] if not (MODULES[name].name == '__init__.py'
                                                      and m.startswith(name + '.'))}
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None


@pytest.mark.parametrize('source, expected', [
    ('from ..cli import load_config', {'mam_pynn.cli', 'mam_pynn.cli.load_config'}),
    ('def f():\n    from mam_pynn import cli', {'mam_pynn', 'mam_pynn.cli'}),
])
def test_imports_are_found_also_inside_functions(tmp_path, source, expected):
    path = PACKAGE / 'network' / '_probe_layout.py'
    try:
        path.write_text(source)
        assert imports(path) >= expected
    finally:
        path.unlink()


def test_test_modules_have_unique_basenames():
    """Test folders hold no __init__.py, so pytest imports test modules by basename: two
    files of one name in different folders stop the whole collection (CI failed so once)."""
    tests = Path(__file__).parent
    names: dict[str, list[str]] = {}
    for path in tests.rglob('*.py'):
        if path.name != 'conftest.py' and '__pycache__' not in path.parts:
            names.setdefault(path.name, []).append(str(path.relative_to(tests)))
    clashes = {name: paths for name, paths in names.items() if len(paths) > 1}
    assert not clashes, f"test modules share a basename: {clashes}"


def test_every_import_of_the_package_names_a_module_that_exists():
    """A relative import that resolves to no module fails only when its function runs:
    caught here for all of them (moving modules into packages changes their depth)."""
    missing = set()
    for name, path in MODULES.items():
        for mod in imports(path):
            parent = mod.rsplit('.', 1)[0]
            if mod not in MODULES and parent not in MODULES:   # 'from .x import name'
                missing.add(f"{name}: {mod}")
    assert not missing, f"imports of modules that do not exist: {sorted(missing)}"
