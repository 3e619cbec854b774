"""The import graph of the library (src/kdwsd) has no cycle and keeps its layers apart.

The graph is built with ``ast`` (nothing is imported): every ``import kdwsd.x`` and ``from kdwsd.x import y``
at module level and inside functions, ``from kdwsd.pkg import name`` resolved to the submodule when
``name`` is one, relative imports resolved; imports under ``if TYPE_CHECKING:`` are ignored.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "kdwsd"
SRC = Path(__file__).resolve().parents[1] / "src" / PACKAGE

# Library layers that must never reach the training code (directly or through another module).
NOT_TRAIN = ("kdwsd.models", "kdwsd.distill", "kdwsd.evaluate", "kdwsd.efficiency")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Every import statement of a module, at any depth, except under ``if TYPE_CHECKING:``."""

    def __init__(self) -> None:
        self.nodes: list[ast.Import | ast.ImportFrom] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.nodes.append(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.nodes.append(node)


def _in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    known = modules()
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if _in_package(a.name)}
    base = node.module or ""
    if node.level:  # relative: resolved against the importing module's package
        is_package = modules()[module].name == "__init__.py"
        package = module.split(".")
        package = package if is_package else package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    if not _in_package(base):
        return set()
    found = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        found.add(sub if sub in known else base)
    return found


@cache
def graph() -> dict[str, frozenset[str]]:
    """module -> the kdwsd modules it imports (targets that are no module of src/kdwsd are kept as named)."""
    edges = {}
    for module, path in modules().items():
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        edges[module] = frozenset(t for node in visitor.nodes for t in _targets(module, node) if t != module)
    return edges


def find_cycle(edges: dict[str, frozenset[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (iterative DFS, white/grey/black colouring)."""
    colour: dict[str, int] = {}
    for root in sorted(edges):
        if colour.get(root):
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(edges.get(root, ())))]
        path = [root]
        colour[root] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop(0)
            state = colour.get(nxt, 0)
            if state == 1:
                return [*path[path.index(nxt) :], nxt]
            if state == 0:
                colour[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(edges.get(nxt, ()))))
    return None


def import_path(edges: dict[str, frozenset[str]], start: str, goal_prefix: str) -> list[str] | None:
    """A chain of imports from ``start`` to a module under ``goal_prefix`` (breadth first), or None."""
    parent: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(edges.get(node, ())):
            if nxt in parent:
                continue
            parent[nxt] = node
            if nxt == goal_prefix or nxt.startswith(goal_prefix + "."):
                chain = [nxt]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                return chain[::-1]
            queue.append(nxt)
    return None


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# ---------------------------------------------------------------------------- the graph builder itself
def test_graph_builder_sees_function_level_and_submodule_imports():
    edges = graph()
    assert len(modules()) > 20
    # stages.student imports its library only inside the stage functions
    assert "kdwsd.train.recipe" in edges["kdwsd.stages.student"]
    # `from kdwsd.stages import run_rule` inside the package __init__ is `from kdwsd.stages.runner import ...`
    assert "kdwsd.stages.runner" in edges["kdwsd.stages"]
    # `from kdwsd.proposals.edges import EdgeMapParams` (a submodule, named directly)
    assert "kdwsd.proposals.edges" in edges["kdwsd.proposals.edgeboxes"]


def test_type_checking_imports_are_ignored():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import kdwsd.train\nelse:\n"
                     "    import kdwsd.boxes\ndef f():\n    from kdwsd.losses import sigmoid_bce\n")  # fmt: skip
    visitor = _Imports()
    visitor.visit(tree)
    names = {t for node in visitor.nodes for t in _targets("kdwsd.metrics", node)}
    assert names == {"kdwsd.boxes", "kdwsd.losses"}


def test_cycle_finder_reports_the_cycle():
    edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": frozenset({"b"}), "b": frozenset()}) is None


# ---------------------------------------------------------------------------- the library
def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_only_stages_import_stages():
    offenders = sorted(
        f"{m} imports {t}"
        for m, targets in graph().items()
        if not _under(m, "kdwsd.stages")
        for t in targets
        if _under(t, "kdwsd.stages")
    )
    assert not offenders, "kdwsd.stages is imported from outside it: " + "; ".join(offenders)


def test_library_layers_never_import_train():
    edges = graph()
    offenders = []
    for module in sorted(edges):
        if any(_under(module, layer) for layer in NOT_TRAIN):
            chain = import_path(edges, module, "kdwsd.train")
            if chain:
                offenders.append(" -> ".join(chain))
    assert not offenders, "modules that (transitively) import kdwsd.train: " + "; ".join(offenders)
