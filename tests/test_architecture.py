"""The layout's rules, checked on the source: no import circle, imports point one way, one vocabulary.

ARCHITECTURE.md draws the same picture; a new module that breaks a rule fails here with the module
and the import that broke it, before it reaches review.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from lowdino.config import RunKind
from server.vocabulary import RunStatus

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lowdino", "server", "worker")

# server/: a capability may import the ones listed for it (and itself); `foundation` is the top-level
# modules every capability shares. http assembles the app from all of them; cli starts it.
FOUNDATION = "foundation"
SERVER_LAYERS: dict[str, set[str]] = {
    FOUNDATION: set(),
    "storage": {FOUNDATION},
    "events": {"storage", FOUNDATION},
    "workers": {"storage", FOUNDATION},
    "runs": {"events", "workers", "storage", FOUNDATION},
    "metrics": {"runs", "events", "storage", FOUNDATION},
    "campaigns": {"metrics", "runs", "workers", "events", "storage", FOUNDATION},
    "reporting": {"campaigns", "metrics", "runs", "storage", FOUNDATION},
    "http": {"reporting", "campaigns", "metrics", "runs", "workers", "events", "storage", FOUNDATION},
    "cli": {"http", "workers", "storage", FOUNDATION},
}
# The worker runs trainings: it uses the data layer and the run rules, never the HTTP side.
WORKER_MAY_IMPORT = {"runs", "metrics", "events", "workers", "storage", FOUNDATION}
# The one module allowed to spell statuses and kinds as strings (the library's kinds live in lowdino).
VOCABULARY_MODULE = "server.vocabulary"


def modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue  # frozen history: a migration keeps the names it was written with
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        yield name.removesuffix(".__init__"), path


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run on import: the body, and the bodies of top-level if / try (TYPE_CHECKING too)."""
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.Try):
            yield from _module_level(node.body)
            yield from _module_level(node.orelse)
            if isinstance(node, ast.Try):
                for handler in node.handlers:
                    yield from _module_level(handler.body)


def imported(name: str, path: Path, *, module_level_only: bool) -> set[str]:
    """Project modules `name` imports (`from a import b` counts a.b when a.b is a module)."""
    tree = ast.parse(path.read_text())
    nodes = _module_level(tree.body) if module_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    known = {module for package in PACKAGES for module, _ in modules(package)}
    return {module for module in found if module in known and module != name}


def graph() -> dict[str, set[str]]:
    return {
        name: imported(name, path, module_level_only=True)
        for package in PACKAGES
        for name, path in modules(package)
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            # A package's __init__ importing its own submodules is how packages re-export: not a circle.
            if target.startswith(node + "."):
                continue
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if state.get(target) is None and (cycle := visit(target)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if state.get(node) is None and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_no_import_circle_anywhere() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_library_imports_neither_server_nor_worker() -> None:
    for name, path in modules("lowdino"):
        wrong = {
            module
            for module in imported(name, path, module_level_only=False)
            if module.split(".")[0] in ("server", "worker")
        }
        assert not wrong, f"{name} imports {sorted(wrong)}: lowdino must not know the service"


def layer_of(module: str) -> str | None:
    """server.<capability>.x -> capability; server.settings (a top-level module) -> foundation."""
    parts = module.split(".")
    if parts[0] != "server":
        return None
    if len(parts) == 1:
        return FOUNDATION
    if parts[1] == "cli":
        return "cli"
    return parts[1] if (ROOT / "server" / parts[1]).is_dir() else FOUNDATION


def test_every_server_folder_has_a_layer() -> None:
    folders = {path.name for path in (ROOT / "server").iterdir() if (path / "__init__.py").is_file()}
    assert folders <= set(SERVER_LAYERS), f"add {sorted(folders - set(SERVER_LAYERS))} to SERVER_LAYERS"


@pytest.mark.parametrize("package", ["server", "worker"])
def test_imports_point_one_way(package: str) -> None:
    wrong = []
    for name, path in modules(package):
        own = layer_of(name) if package == "server" else "worker"
        allowed = SERVER_LAYERS[own] | {own} if package == "server" else WORKER_MAY_IMPORT | {"worker"}
        for target in imported(name, path, module_level_only=False):
            if target.split(".")[0] == "lowdino":
                continue  # the library is below everything
            layer = layer_of(target) if target.split(".")[0] == "server" else "worker"
            if layer == "worker" and package == "server":
                wrong.append(
                    f"{name} imports {target}: the server reaches the worker only through the broker"
                )
            elif layer is not None and layer not in allowed:
                wrong.append(f"{name} ({own}) imports {target} ({layer})")
    assert not wrong, "\n".join(wrong)


def bare_vocabulary(path: Path) -> list[str]:
    """String literals equal to a run status or kind, outside docstrings."""
    words = {str(member) for member in RunStatus} | {str(member) for member in RunKind}
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    # A subscript key names a field of a document (StudyCreate's "pretrain" options), not a kind.
    keys = {id(node.slice) for node in ast.walk(tree) if isinstance(node, ast.Subscript)}
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and node.value in words
        and id(node) not in docstrings
        and id(node) not in keys
    ]


def test_statuses_and_kinds_are_enum_members_not_strings() -> None:
    found = [
        line
        for package in ("server", "worker")
        for name, path in modules(package)
        if name != VOCABULARY_MODULE
        for line in bare_vocabulary(path)
    ]
    assert not found, "use RunStatus / RunKind members (server.vocabulary):\n" + "\n".join(found)
