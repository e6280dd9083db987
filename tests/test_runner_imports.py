"""The library's imports only point down: no module imports one that imports it back.

Imports are read with `ast`, those inside functions included (a lazy import that breaks
a cycle is still a cycle). Importing `a.b.c` also runs the `__init__` of each package
above it that the importer is not itself inside, so those count as imports too.
"""

import ast
from pathlib import Path

import storylab

LIB = Path(storylab.__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in (LIB / "storylab").rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The storylab modules `name` imports anywhere in its file (with the packages that run on the way)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    found = set()
    for target in targets:
        parts = target.split(".")
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            if prefix in known and prefix != name and not name.startswith(prefix + "."):
                found.add(prefix)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def test_the_library_has_no_import_cycles():
    graph = import_graph()
    assert "storylab.runner.execute" in graph["storylab.cli"]  # the graph is read at all
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_through_a_lazy_import(tmp_path):
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    import c\n")
    (tmp_path / "c.py").write_text("from a import x\n")
    graph = {n: imports_of(n, tmp_path / f"{n}.py", {"a", "b", "c"}) for n in "abc"}
    assert cycles(graph) == [["a", "b", "c"]]


def test_a_notebooks_first_cell_does_not_import_the_runner():
    """`import storylab.notebook` (every notebook's first cell) takes the parameter checks, not the
    execution machinery: `storylab.runner` loads its modules on first use."""
    import subprocess
    import sys

    heavy = ("storylab.runner.execute", "storylab.runner.report", "plotly", "papermill", "nbconvert")
    probe = f"import sys, storylab.notebook; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    from storylab.runner import ParameterError, run_notebook  # the package's names still work

    assert run_notebook.__module__ == "storylab.runner.execute" and issubclass(ParameterError, ValueError)


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` may import, directly or through others (lazy imports included)."""
    seen, todo = set(), [start]
    while todo:
        for module in graph.get(todo.pop(), ()):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return seen


def test_interpretability_does_not_import_the_diagnostics():
    """04 imports `storylab.interp`: the tokenizer helpers it shares with 06 live in `tokenizers`,
    so it pays for neither the diagnostics nor plotly."""
    imported = reachable(import_graph(), "storylab.interp")
    assert "storylab.tokenizers" in imported  # the graph is read at all
    assert not {m for m in imported if m == "storylab.diagnostics" or m.startswith("storylab.diagnostics.")}
    assert "storylab.plots" not in imported
