"""The package's structure: the layers contract holds (and would catch a back edge), no import
cycles between modules, no overlong functions."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "roleplay"
MAX_FUNCTION_LINES = 80

# lint-imports run from this interpreter, with the editable install's import hooks taken out: they
# sit in sys.meta_path ahead of PYTHONPATH and would always hand grimp the checkout's package.
_LINT = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path_hooks[:] = [h for h in sys.path_hooks if "__editable__" not in getattr(h, "__module__", "")]
sys.path_importer_cache.clear()
from importlinter.cli import lint_imports_command
sys.argv = ["lint-imports", *sys.argv[1:]]
sys.exit(lint_imports_command())
"""


def _lint_imports(config: Path, *, package_parent: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(package_parent)
    return subprocess.run(
        [sys.executable, "-c", _LINT, "--no-cache", "--no-logo", str(config)],
        cwd=package_parent, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_layers_contract_holds():
    done = _lint_imports(REPO / "pyproject.toml", package_parent=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 1 kept, 0 broken" in done.stdout, done.stdout


def test_layers_contract_catches_an_upward_import(tmp_path):
    """The same contract on a copy of the package where core imports the CLI must fail, naming the edge."""
    copy = tmp_path / "roleplay"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    errors = copy / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport roleplay.cli  # a deliberate back edge\n")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")

    done = _lint_imports(tmp_path / "pyproject.toml", package_parent=tmp_path)

    assert done.returncode != 0, done.stdout + done.stderr
    assert "BROKEN" in done.stdout, done.stdout
    assert "roleplay.core.errors -> roleplay.cli" in done.stdout, done.stdout


def _module_graph() -> dict[str, set[str]]:
    grimp = pytest.importorskip("grimp")
    # grimp reads every import statement, also those inside functions (the lazy imports)
    graph = grimp.build_graph("roleplay", include_external_packages=False)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
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
                    work.append((child, iter(sorted(edges.get(child, ())))))
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


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules():
    edges = _module_graph()
    assert len(edges) > 40  # the whole package was read
    cycles = _cycles(edges)
    described = [
        " <-> ".join(c) + ": " + "; ".join(f"{a} -> {b}" for a in c for b in sorted(edges[a]) if b in c)
        for c in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(described)


def _long_functions() -> list[str]:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    return long


def test_no_function_is_longer_than_80_lines():
    long = _long_functions()
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
