"""The package's layout: folders in course order, every import pointing one way, no cycles.

    presets, runtime, files  <-  data  <-  models  <-  evaluation  <-  training  <-  course, cli

Parsed from the source (ast), so the test sees imports inside functions too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "matsed_lite"
# A module may import modules of its own layer or of lower ones.
LAYERS = {"base": 0, "data": 1, "models": 2, "evaluation": 3, "training": 4, "course": 5,
          "entry": 6}
BASE = {"matsed_lite", "matsed_lite.presets", "matsed_lite.runtime", "matsed_lite.files"}
ENTRY = {"matsed_lite.cli", "matsed_lite.commands", "matsed_lite.__main__"}
# Imports of package modules inside functions: allowed in the CLI, where they keep
# `matsed-lite --help` from loading torch (commands.py's docstring says so), and elsewhere
# only under a comment saying which start-up time they save.
LAZY_ALLOWED = {"matsed_lite.cli", "matsed_lite.commands"}
MAX_LINES = 450


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> int:
    if module in BASE:
        return LAYERS["base"]
    if module in ENTRY:
        return LAYERS["entry"]
    return LAYERS[module.split(".")[1]]


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """Absolute names of the package modules an ImportFrom brings in."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("matsed_lite"):
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if _exists(sub) else target)
    return out


def _exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _graph():
    """{module: [(imported module, line, lazy), ...]} for the whole package (lazy: inside
    a function without a comment on why)."""
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source, str(path))
        top_level = {id(n) for n in tree.body}
        edges = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = _resolve(module, path.name == "__init__.py", node)
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("matsed_lite")]
            else:
                continue
            # An import in a function counts as lazy unless a comment just above it
            # (or on it) says what start-up time it saves.
            near = " ".join(lines[max(0, node.lineno - 3):node.lineno]).lower()
            lazy = id(node) not in top_level and "start-up" not in near
            edges += [(n, node.lineno, lazy) for n in names]
        graph[module] = edges
    return graph


GRAPH = _graph()


def test_every_module_is_in_a_layer():
    for module in GRAPH:
        _layer(module)  # raises KeyError for a module outside the known folders


def test_imports_point_down_the_layers():
    upward = [f"{m} (layer {_layer(m)}) imports {n} (layer {_layer(n)}) at line {line}"
              for m, edges in GRAPH.items() for n, line, _ in edges
              if n != m and _layer(n) > _layer(m)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    deps = {m: {n for n, _, _ in edges if n != m and n in GRAPH} for m, edges in GRAPH.items()}
    # The package __init__ is imported by everything below it implicitly; its own
    # imports must not come back to it, which the DFS below checks like any other edge.
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(deps[m]):
            if state.get(n) == "open":
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(deps):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_package_imports_inside_functions_only_in_the_cli():
    lazy = [f"{m} line {line}: {n}" for m, edges in GRAPH.items() if m not in LAZY_ALLOWED
            for n, line, inside in edges if inside]
    assert not lazy, "move these imports to the top of the module:\n" + "\n".join(lazy)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path} has {n} lines (at most {MAX_LINES}): split it where it already cuts"


def test_the_checker_sees_an_upward_import(tmp_path):
    # The rules above can fail: an upward edge is found by the same code.
    tree = ast.parse("from ..training.engine import fit\n")
    names = _resolve("matsed_lite.data.audio", False, tree.body[0])
    assert names == ["matsed_lite.training.engine"]
    assert _layer(names[0]) > _layer("matsed_lite.data.audio")
