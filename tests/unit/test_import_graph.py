"""No import cycle in the package, and every module imports on its own.

The graph is read from the source (every ``import``, module-level or inside a function, except
``if TYPE_CHECKING:`` blocks, which never run): a cycle hidden behind a function-level import
is still a cycle here. Isolation: each module is imported in a fresh forked interpreter that
holds no module of ours, so an import that only works after some other module was imported
first fails.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("trecs_eval", "baselines", "reference_pipeline", "reports")


def module_names() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the four packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """Our modules that ``name`` imports (``from pkg import sub`` counts as importing ``pkg.sub``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_blocks(tree)
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                out.add(target if target in modules else base)
    return {m for m in out if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_level_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from trecs_eval import measure\n\nif TYPE_CHECKING:\n"
                      "    from trecs_eval import pipeline\n")
    assert imports_of("x.m", source, {"trecs_eval.measure", "trecs_eval.pipeline"}) == {"trecs_eval.measure"}


def test_the_package_import_graph_has_no_cycle():
    graph = import_graph()
    assert graph.get("trecs_eval.measure")  # the graph is not empty
    assert cycles(graph) == []


ISOLATION_SCRIPT = textwrap.dedent('''
    import importlib, os, sys
    # third-party libraries first (never ours): each forked child then pays only for our modules
    for heavy in ("numpy", "scipy.linalg", "pandas", "PIL.Image", "torch", "matplotlib.pyplot"):
        importlib.import_module(heavy)
    assert not any(m.split(".")[0] in {PACKAGES!r} for m in sys.modules)
    failures = []
    for name in sys.argv[1:]:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                importlib.import_module(name)
                code = 0
            except BaseException as err:  # report any failure, then exit the child
                os.write(write, f"{{name}}: {{type(err).__name__}}: {{err}}".encode()[:2000])
                code = 1
            os._exit(code)
        os.close(write)
        message = os.read(read, 4096).decode()
        os.close(read)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            failures.append(message or f"{{name}}: exit status {{status}}")
    print("\\n".join(failures))
    sys.exit(1 if failures else 0)
''').format(PACKAGES=set(PACKAGES))


@pytest.mark.slow  # ~15 s of CPU: 100 forked imports
def test_every_module_imports_on_its_own():
    names = sorted(n for n in module_names() if not n.endswith("__main__"))  # __main__ runs the CLI
    done = subprocess.run([sys.executable, "-c", ISOLATION_SCRIPT, *names], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
