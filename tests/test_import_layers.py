"""The project's import graph: no cycles among its modules, and arrows between rooms point down.

Imports are read statically from the source (those inside functions count too: a deferred
import is still an arrow), so this test needs no TensorFlow and names the offending files.
Rooms of metrabs/ (docs/ARCHITECTURE.md): commands (the modules at the top of metrabs/) →
training/, serving/ → data/, model/ → the other packages (eval/ → acae/ → posepile/); the
rehearsal/ tool sits above them all and nothing imports it.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ('posepile', 'acae', 'eval', 'metrabs', 'rehearsal')
METRABS_ROOMS = ('model', 'data', 'training', 'serving')


def _project_modules() -> dict[str, pathlib.Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob('*.py'):
            parts = path.relative_to(ROOT).with_suffix('').parts
            name = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)
            modules[name] = path
    return modules


MODULES = _project_modules()


def _owning_module(dotted: str) -> str | None:
    """The project module a dotted import target lives in ('a.b.c' -> 'a.b' if c is a name)."""
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition('.')[0]
    return dotted or None


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == '__init__.py' else module.rpartition('.')[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            names = [base] + [f'{base}.{alias.name}' for alias in node.names]
        else:
            continue
        for name in names:
            owner = _owning_module(name)
            # A package's own __init__ is not an arrow from its submodules.
            if owner and owner != module and not module.startswith(owner + '.'):
                targets.add(owner)
    return targets


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_cycle_finder_finds_a_planted_cycle():
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}, 'e': set()}
    assert _cycles(graph) == [['a', 'b', 'c']]
    assert _cycles({'a': {'b'}, 'b': set()}) == []


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    assert not cycles, 'import cycles: ' + '; '.join(' <-> '.join(c) for c in cycles)


def _room(module: str) -> str:
    """'posepile' / 'acae' / 'eval', 'metrabs.<room>', or 'metrabs.commands' (top of metrabs/)."""
    parts = module.split('.')
    if parts[0] != 'metrabs':
        return parts[0]
    if len(parts) > 1 and parts[1] in METRABS_ROOMS:
        return f'metrabs.{parts[1]}'
    return 'metrabs.commands'


# What each room may import besides itself.
ALLOWED = {
    'posepile': set(),
    'acae': {'posepile'},
    'eval': {'posepile', 'acae'},
    'metrabs.model': {'posepile', 'acae'},
    'metrabs.data': {'posepile'},
    'metrabs.training': {'posepile', 'acae', 'eval', 'metrabs.model', 'metrabs.data'},
    'metrabs.serving': {'posepile', 'acae', 'metrabs.model'},
    'metrabs.commands': {'posepile', 'acae', 'eval', 'metrabs.model', 'metrabs.data',
                         'metrabs.training', 'metrabs.serving'},
    'rehearsal': {'posepile', 'acae', 'eval', 'metrabs.model', 'metrabs.data',
                  'metrabs.training', 'metrabs.serving', 'metrabs.commands'},
}


def test_every_module_has_a_room():
    assert {_room(m) for m in MODULES} <= set(ALLOWED)
    assert {'metrabs.train', 'metrabs.export', 'metrabs.pseudo_gt', 'metrabs.demo'} <= {
        m for m in MODULES if _room(m) == 'metrabs.commands'}


def test_arrows_point_down():
    upward = sorted(f'{MODULES[m].relative_to(ROOT)} imports {t}'
                    for m, targets in GRAPH.items() for t in targets
                    if _room(t) != _room(m) and _room(t) not in ALLOWED[_room(m)])
    assert not upward, '\n'.join(upward)


@pytest.mark.parametrize('command', ['train', 'export', 'pseudo_gt', 'demo'])
def test_commands_are_not_imported_by_the_rooms(command):
    # The rehearsal sits above the commands (it runs them and reads their constants).
    importers = sorted(m for m, targets in GRAPH.items()
                       if f'metrabs.{command}' in targets
                       and _room(m) not in ('metrabs.commands', 'rehearsal'))
    assert not importers
