"""The module graph of lengthgen reads top-down: no import cycle, imports inside functions
included, and the layers import only what is below them."""

from __future__ import annotations

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lengthgen")


def _modules() -> dict[str, str]:
  """Dotted module name -> file, for every .py under lengthgen/."""
  out = {}
  root = os.path.dirname(PACKAGE)
  for folder, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
        out[dotted.removesuffix(".__init__")] = path
  return out


def _ancestors(name: str) -> list[str]:
  parts = name.split(".")
  return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph() -> dict[str, set[str]]:
  """module -> lengthgen modules it imports anywhere in its file (functions included).

  Importing ``a.b.c`` also runs ``a`` and ``a.b``, so those count as imported too, except
  the importer's own enclosing packages (already running when it is imported). Taking a name
  from an enclosing package (``from a.b import name`` inside ``a.b.c``, ``name`` not a
  submodule) does count.
  """
  modules = _modules()
  graph = {}
  for name, path in modules.items():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    targets = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        targets |= {a.name for a in node.names}
      elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        for a in node.names:  # a submodule by name, else a name defined in the module
          sub = f"{node.module}.{a.name}"
          targets.add(sub if sub in modules else node.module)
    edges, enclosing = set(), set(_ancestors(name))
    for t in targets:
      if t in modules:
        edges |= {t} | (set(_ancestors(t)) - enclosing)
    edges.discard(name)
    graph[name] = {e for e in edges if e in modules and e != "lengthgen"}
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  state, stack = {}, []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == "open":
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        found = visit(nxt)
        if found:
          return found
    stack.pop()
    state[node] = "done"
    return None

  for node in sorted(graph):
    if node not in state:
      found = visit(node)
      if found:
        return found
  return None


def test_no_import_cycle():
  cycle = find_cycle(import_graph())
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b"}, "b": set()}) is None


def _reaches(graph, start, prefix) -> list[str]:
  return sorted(e for e in graph[start] if e == prefix or e.startswith(prefix + "."))


@pytest.mark.parametrize("module,forbidden", [
    ("lengthgen.config", "lengthgen"),  # the schema is the bottom layer
    ("lengthgen.attention", "lengthgen.config"),
    ("lengthgen.attention", "lengthgen.positional"),
    ("lengthgen.attention.layer", "lengthgen.config"),
    ("lengthgen.kernels.flash", "lengthgen.positional"),
    ("lengthgen.analysis", "lengthgen.train"),
    ("lengthgen.build", "lengthgen.train"),
    ("lengthgen.workdir", "lengthgen.train"),
])
def test_layers_import_only_what_is_below_them(module, forbidden):
  graph = import_graph()
  prefix = forbidden if forbidden != "lengthgen" else "lengthgen."
  bad = [e for e in graph[module] if e == forbidden or e.startswith(prefix.rstrip(".") + ".")]
  if forbidden == "lengthgen":
    bad = [e for e in graph[module] if e.startswith("lengthgen.")]
  assert not bad, f"{module} imports {bad}"
