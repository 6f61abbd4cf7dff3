"""The package's shape: imports point one way (no cycle, function-level imports included)."""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'gan_jax')

# Function-level imports of gan_jax modules that are there for a reason other than a cycle.
LAZY_IMPORTS = {
    # The TFD builder imports TensorFlow Datasets, which reading MNIST's IDX files must not need.
    ('gan_jax.data', 'gan_jax.datasets.tfd'),
}


def _modules() -> dict[str, str]:
  """Module name -> file path, for every module of the package."""
  out = {}
  for folder, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(folder, name)
        rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, '.')
        out[rel[:-len('.__init__')] if rel.endswith('.__init__') else rel] = path
  return out


def _imports(path: str, modules: dict) -> list[tuple[str, bool]]:
  """(gan_jax module imported, whether at function level) for each import in the file."""
  tree = ast.parse(open(path).read())
  top_level = {id(node) for node in tree.body}
  found = []
  for node in ast.walk(tree):
    names = []
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      # `from gan_jax import x` imports the module gan_jax.x when there is one.
      names = [f'{node.module}.{a.name}' if f'{node.module}.{a.name}' in modules else node.module
               for a in node.names]
    for name in names:
      if name == 'gan_jax' or name.startswith('gan_jax.'):
        found.append((name, id(node) not in top_level))
  return found


def _graph():
  modules = _modules()
  edges = {m: set() for m in modules}
  lazy = set()
  for module, path in modules.items():
    for target, in_function in _imports(path, modules):
      if target == module:
        continue
      edges[module].add(target)
      if in_function:
        lazy.add((module, target))
  return edges, lazy


def _cycle(edges) -> list[str] | None:
  """One import cycle as a list of modules, or None."""
  state, stack = {}, []

  def visit(m):
    state[m] = 'open'
    stack.append(m)
    for n in sorted(edges.get(m, ())):
      if state.get(n) == 'open':
        return stack[stack.index(n):] + [n]
      if n not in state:
        found = visit(n)
        if found:
          return found
    state[m] = 'done'
    stack.pop()
    return None

  for m in sorted(edges):
    if m not in state:
      found = visit(m)
      if found:
        return found
  return None


def test_no_import_cycle():
  edges, _ = _graph()
  # The package's __init__ re-exports the API; no module below it may import it back.
  importers_of_init = sorted(m for m, targets in edges.items() if 'gan_jax' in targets)
  assert not importers_of_init, f'modules importing the package itself: {importers_of_init}'
  cycle = _cycle(edges)
  assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


def test_no_function_level_import_but_the_listed_lazy_ones():
  _, lazy = _graph()
  assert lazy <= LAZY_IMPORTS, f'function-level imports: {sorted(lazy - LAZY_IMPORTS)}'


def test_the_cycle_finder_finds_one():
  assert _cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
  assert _cycle({'a': {'b'}, 'b': set()}) is None


@pytest.mark.parametrize('module', sorted(_modules()))
def test_modules_stay_readable(module):
  with open(_modules()[module]) as f:
    lines = len(f.readlines())
  assert lines <= 420, f'{module} has {lines} lines: split it by concern (~400 at most)'
