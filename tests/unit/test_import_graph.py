"""The import graph of `pool`, `api` and `worldgen`: no cycles, and the layers of
docs/architecture.md ("Dependency rules") respected. Imports inside functions count too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pool", "api", "worldgen")

# What each layer may import from the project (besides itself); docs/architecture.md.
ALLOWED: dict[str, set[str]] = {
    "pool.core": set(),
    "pool.infra": {"pool.core"},
    "pool.store": {"pool.core", "pool.infra"},
    "pool.daemon": {"pool.core", "pool.infra", "pool.store", "worldgen"},
    "pool.sim": {"pool.core", "pool.infra", "pool.store"},
    "api": {"pool.core", "pool.infra", "pool.store", "worldgen"},
    "pool.entry": {"pool.core", "pool.infra", "pool.store", "pool.daemon", "pool.sim", "api",
                   "worldgen"},
    "worldgen": set(),
}
# The root package holds only `__version__`; anything may read it.
EVERYONE = {"pool"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """Project modules `name` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import mod` imports the module pkg.mod when there is one.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                yield target


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: set(_imports(name, path, modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> str:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return module.partition(".")[0]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_imports_inside_functions() -> None:
    graph = _graph()
    # pool.entry.cli imports the simulator only when `simulate` runs.
    assert "pool.sim.cli" in graph["pool.entry.cli"]


def test_no_module_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_layers_import_only_what_the_dependency_rules_allow() -> None:
    broken = sorted(
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) != _layer(module)
        and _layer(target) not in ALLOWED[_layer(module)] | EVERYONE
    )
    assert broken == []


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = sorted(m for m in _graph() if _layer(m) not in ALLOWED.keys() | EVERYONE)
    assert unplaced == []


def test_both_drivers_run_the_one_state_machine_and_decide_nothing_themselves() -> None:
    """docs/architecture.md, "One state machine": the daemon's pool and the simulator reach
    the decisions only through `pool.core.machine`."""
    graph = _graph()
    for driver in ("pool.daemon.warm_pool", "pool.sim.engine"):
        assert "pool.core.machine" in graph[driver], driver
        assert "pool.core.policy" not in graph[driver], driver
