"""The package's structure, held by a test: data flows one way (import -> IR -> plan -> backend -> library ->
toolchain -> runner -> compare), so the import graph (function-level imports included) has no circle, no
module reaches into another's private names, the NumPy reference is a leaf that no backend imports, and
modules stay short enough to read."""
from __future__ import annotations

import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parent.parent / "dwscodegen"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import in the file, at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = ".".join(p for p in (base if node.level else "", node.module or "") if p)
            found.append((module, [a.name for a in node.names]))
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for module, names in _imports(name, path):
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in mods] or [module]
            edges[name] |= {t for t in targets if t in mods and t != name}
    return edges


def test_no_import_circle():
    edges = _graph()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]):
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_no_import_of_private_names():
    mods = _modules()
    bad = [f"{name}: {module}.{n}" for name, path in mods.items() for module, names in _imports(name, path)
           if module.startswith("dwscodegen") for n in names if n.startswith("_") and n != "__version__"]
    assert not bad, bad


def test_reference_is_a_leaf_and_backends_do_not_import_it():
    edges = _graph()
    for name, targets in edges.items():
        if name.startswith("dwscodegen.reference"):
            assert not {t for t in targets if t.startswith("dwscodegen.backends")}, name
        if name.startswith("dwscodegen.backends"):
            assert not {t for t in targets if t.startswith("dwscodegen.reference")}, name


def test_modules_are_short():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_test_module_imports_another():
    tests = Path(__file__).resolve().parent
    for path in tests.glob("test_*.py"):
        for module, _ in _imports("tests." + path.stem, path):
            assert not module.split(".")[-1].startswith("test_"), f"{path.name} imports {module}"
