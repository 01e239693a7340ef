"""The shape of the code: no import cycles in dojoflow/, and a public API that resolves and stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dojoflow"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the dojoflow modules it imports (anywhere in the file, TYPE_CHECKING blocks included)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if "builtin" not in p.parts}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
                # `from pkg import submodule` depends on the submodule; `from pkg import name` on pkg
                targets = submodules + ([base] if len(submodules) < len(node.names) else [])
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_dojoflow_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 60 and "dojoflow.cli.common" in graph["dojoflow.cli.episodes"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_no_command_module_imports_the_cli_app():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("dojoflow.cli."):
            assert "dojoflow.cli" not in targets, f"{name} imports the app module"


def test_every_public_api_name_resolves_and_the_api_is_light():
    code = ("import sys, dojoflow.api as api\n"
            "heavy = [m for m in ('prefect', 'mlflow', 'pandas', 'sklearn') if m in sys.modules]\n"
            "names = [n for n in api.__all__ if getattr(api, n, None) is None]\n"
            "import dojoflow\n"
            "assert dojoflow.EpisodeConfig is api.EpisodeConfig\n"
            "print(heavy, names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"


def test_every_module_says_what_it_is_for():
    missing = [module_name(p) for p in PACKAGE.rglob("*.py")
               if "builtin" not in p.parts and not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []
