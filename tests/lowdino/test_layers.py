"""The library's subpackages import each other in one direction only, and the leaves stay light.

Read from the source (every `import lowdino.<pkg>` / `from lowdino.<pkg> ...`, function-level ones
included), so a circle fails here before it fails at import time in some other order.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import lowdino

ROOT = Path(lowdino.__file__).resolve().parent
# Imported by the job service and the dashboard's API without torch.
LIGHT_MODULES = ("lowdino.config", "lowdino.contract.rundir", "lowdino.contract.metrics", "lowdino.errors")


def subpackage_imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        source = parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("lowdino."):
                    target = name.split(".")[1]
                    if target != source:
                        graph[source].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*trail, node, target]
            if target not in state and (found := visit(target, [*trail, node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_no_import_circle_between_subpackages() -> None:
    assert find_cycle(subpackage_imports()) is None


def test_the_contract_is_a_leaf() -> None:
    assert subpackage_imports()["contract"] <= {"errors"}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_light_modules_do_not_import_torch() -> None:
    code = f"import sys; import {', '.join(LIGHT_MODULES)}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_backbone_registry_weights_and_factory_import_downwards_only() -> None:
    def imports(module: str) -> set[str]:
        tree = ast.parse((ROOT / "backbones" / f"{module}.py").read_text())
        found = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        found |= {
            f"{node.module}.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names
        }
        return {name for name in found if name.startswith("lowdino.backbones")}

    assert imports("registry") == set()
    assert not any("factory" in name for name in imports("weights"))
    assert "lowdino.backbones.weights" in imports("factory")
