"""No import circles inside a package, and the library never imports the service.

Read from the source (ast), not by importing: an import under ``if TYPE_CHECKING:`` is a circle
for mypy and for readers even though it never runs, so it counts like any module-level import.
Imports inside functions are left out of the circle check (they run after every module has loaded)
but count for the layering check (`lowdino` must not depend on `server` or `worker` at all).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Packages each checked package must never import (at any depth of any function).
FORBIDDEN_IMPORTS = {"lowdino": ("server", "worker")}


def package_modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of `package` found under `root`."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _module_level(statements: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at import time: the body, and the branches of if / try / with at that level."""
    for statement in statements:
        yield statement
        if isinstance(statement, ast.If | ast.With):
            yield from _module_level(statement.body)
            yield from _module_level(getattr(statement, "orelse", []))
        elif isinstance(statement, ast.Try):
            for block in (statement.body, statement.orelse, statement.finalbody):
                yield from _module_level(block)
            for handler in statement.handlers:
                yield from _module_level(handler.body)


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name of `node`'s `from` part (relative imports resolved against `module`)."""
    if not node.level:
        return node.module or ""
    anchor = module.split(".")
    # In a package's __init__, `.` is the package itself; elsewhere it is the module's package.
    anchor = anchor[: len(anchor) - node.level + (1 if path.name == "__init__.py" else 0)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def imported_modules(module: str, path: Path, nodes: Iterator[ast.AST], known: set[str]) -> set[str]:
    """What `nodes` import, as dotted names: `from a import b` is a.b when `known` holds a module a.b,
    else a (b is a name defined in a)."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node)
            for alias in node.names:
                name = f"{base}.{alias.name}"
                names.add(name if name in known else base)
    return names


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports at module level (TYPE_CHECKING included)."""
    modules = package_modules(root, package)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = imported_modules(module, path, _module_level(tree.body), set(modules))
        graph[module] = (names & set(modules)) - {module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One closed path (first module repeated at the end) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan; the graphs are a few hundred modules deep at most
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_closed_path(graph, group) for group in groups]


def _closed_path(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & members):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"{group} is not strongly connected")  # cannot happen for a Tarjan group


def forbidden_imports(root: Path, package: str, forbidden: tuple[str, ...]) -> list[str]:
    """'module imports name' for every import anywhere in `package` (functions too) of a forbidden package."""
    found = []
    for module, path in package_modules(root, package).items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in sorted(imported_modules(module, path, ast.walk(tree), set())):
            if name.split(".")[0] in forbidden:
                found.append(f"{module} imports {name}")
    return found


@pytest.mark.parametrize("package", ["lowdino"])
def test_no_import_circle(package: str) -> None:
    cycles = find_cycles(import_graph(REPO_ROOT, package))
    assert not cycles, "import circles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("package", sorted(FORBIDDEN_IMPORTS))
def test_no_import_of_the_layers_above(package: str) -> None:
    assert forbidden_imports(REPO_ROOT, package, FORBIDDEN_IMPORTS[package]) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_circle_through_type_checking_and_relative_imports_is_named(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from pkg.sub.a import A\n",
            "pkg/sub/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\nA = 1\n",
            "pkg/sub/b.py": "from . import c\nB = 2\n",
            "pkg/sub/c.py": "import pkg.sub.a\n\ndef late():\n    from pkg import sub\n",
            "pkg/leaf.py": "from pkg.sub import A\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.sub.b"] == {"pkg.sub.c"}  # `from . import c`: the module, not the package
    assert graph["pkg.leaf"] == {"pkg.sub"}  # A is a name of the package, not a module
    assert find_cycles(graph) == [["pkg.sub.a", "pkg.sub.b", "pkg.sub.c", "pkg.sub.a"]]
    # The function-level import of pkg.sub from pkg.sub.c is no circle, but it is an import.
    assert forbidden_imports(tmp_path, "pkg", ("pkg",)) != []
    assert forbidden_imports(tmp_path, "pkg", ("server",)) == []


def test_a_package_without_circles_passes(tmp_path: Path) -> None:
    _write(tmp_path, {"pkg/__init__.py": "from pkg.a import A\n", "pkg/a.py": "A = 1\n"})
    assert find_cycles(import_graph(tmp_path, "pkg")) == []
