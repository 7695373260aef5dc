"""The package's shape stays legible: imports run one way (no circle, function-local imports
included), no private name is imported from another module, target kinds are compared by name
only in clstm.targets, and no module or function outgrows one reader (docs/api.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "clstm"
FILES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
KIND_NAMES = {"sequence", "per_step", "per_step_bits", "regression"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in FILES}


def _resolve(name: str) -> str | None:
    """The deepest module of clstm that ``name`` (``a.b.c``, maybe an attribute) names."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in MODULES:
            return ".".join(parts[:k])
    return None


def _imports(path: Path):
    """``(imported module, names)`` of every import of clstm in a file, wherever it is."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("clstm"):
                    yield _resolve(alias.name), []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))  # fmt: skip
            if not base.startswith("clstm"):
                continue
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}")
                names = [] if target == f"{base}.{alias.name}" else [alias.name]
                yield target, names


def _graph() -> dict[str, set[str]]:
    return {
        name: {t for t, _ in _imports(path) if t is not None and t != name}
        for name, path in MODULES.items()
    }


def test_no_import_circle():
    graph, index, low, stack, on, circles = _graph(), {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


def test_no_private_name_is_imported_from_another_module():
    found = [
        f"{_module(path)} imports {name} from {target}"
        for path in FILES
        for target, names in _imports(path)
        for name in names
        if name.startswith("_") and not name.endswith("__") and target != _module(path)
    ]
    assert found == []


def test_target_kinds_are_compared_by_name_only_in_clstm_targets():
    found = []
    for path in FILES:
        if path.name == "targets.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                values = []
                for c in [node.left, *node.comparators]:
                    elements = c.elts if isinstance(c, (ast.Tuple, ast.List, ast.Set)) else [c]
                    values += [e.value for e in elements if isinstance(e, ast.Constant)]
                if KIND_NAMES & {v for v in values if isinstance(v, str)}:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == []


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(PACKAGE)) for p in FILES])
def test_modules_and_functions_fit_one_reader(path):
    tree = ast.parse(path.read_text())
    assert len(path.read_text().splitlines()) <= 600
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > 120
    ]
    assert long == []
