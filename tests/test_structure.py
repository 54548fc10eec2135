"""The package's shape: the modules import each other as a tree (no cycles)."""

import ast
from pathlib import Path

import fewseg

PACKAGE = Path(fewseg.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """fewseg modules that ``path`` imports anywhere (top level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            for alias in node.names:  # "from . import x" names a module
                out.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path, name, set(files)) for name, path in files.items()}


def test_import_graph_has_no_cycles():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_stages_sit_below_the_ways_in():
    graph = import_graph()
    # The method's stages never import a way in (CLI) or the batch loop above them.
    for stage in ("fewseg.classic.model", "fewseg.result", "fewseg.match", "fewseg.evaluate", "fewseg.classic.propose"):
        assert not {m for m in graph[stage] if m.startswith(("fewseg._cli", "fewseg.cli", "fewseg.batch"))}, stage
    assert "fewseg.evaluate" not in graph["fewseg.classic.model"] and "fewseg.classic.model" not in graph["fewseg.result"]


def test_nothing_in_the_library_imports_the_napari_plugin():
    graph = import_graph()
    outside = {name for name, deps in graph.items() if not name.startswith("fewseg.napari")
               and any(d.startswith("fewseg.napari") for d in deps)}
    assert not outside, outside
    assert graph["fewseg.napari.widget"] >= {"fewseg.batch", "fewseg.evaluate"}  # the library's loop and scores
