"""The layer rules, checked by scanning every import in bcedge/ (lazy ones inside functions too):
the run road never reaches the build road, models never reach the exporter, and no two top-level
parts of the package import each other, directly or around a loop; bcedge.testing is for tests and
benchmarks only."""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import bcedge

PACKAGE = Path(bcedge.__file__).parent
RUN_ROAD = ("runtime", "backends", "report", "watch")
BUILD_ROAD = ("models", "train", "convert", "cli")
ALLOWED = {("backends/torch.py", "models")}  # the torch backend builds the model it runs


def _part(module: str) -> str | None:
    """bcedge.runtime.merge -> runtime; bcedge.artifact -> artifact; bcedge itself -> None."""
    names = module.split(".")
    return names[1] if names[0] == "bcedge" and len(names) > 1 else None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """Every bcedge module ``path`` imports, absolute or relative, at top level or inside functions."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from bcedge import runtime`
    return {name for name in found if name.split(".")[0] == "bcedge"}


@lru_cache(maxsize=1)
def _imports() -> list[tuple[str, str, str]]:
    """(file relative to bcedge/, its top-level part, imported top-level part) for each import across parts."""
    rows = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        source = _part(_module_name(path))
        for name in _imported(path):
            target = _part(name)
            is_part = target and ((PACKAGE / target).is_dir() or (PACKAGE / f"{target}.py").is_file())
            if source and is_part and target != source:  # not bcedge.__version__ and the like
                rows.append((rel, source, target))
    return rows


def test_the_scanner_sees_imports_including_lazy_ones():
    rows = set(_imports())
    assert ("backends/torch.py", "backends", "models") in rows        # inside a method
    assert ("runtime/counter.py", "runtime", "backends") in rows
    assert any(source == "cli" and target == "watch" for _, source, target in rows)  # in a handler


def test_the_run_road_never_imports_the_build_road():
    wrong = sorted(f"{rel} imports bcedge.{target}" for rel, source, target in _imports()
                   if source in RUN_ROAD and target in BUILD_ROAD and (rel, target) not in ALLOWED)
    assert wrong == []


def test_models_never_import_the_exporter():
    assert sorted(rel for rel, source, target in _imports() if source == "models" and target == "convert") == []


def test_only_tests_and_benchmarks_import_the_test_doubles():
    assert sorted(rel for rel, source, target in _imports() if target == "testing" and source != "testing") == []


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a path [a, b, ..., a], or [] when there is none."""
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_cycle_finder_finds_a_loop():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_cycles_between_top_level_parts():
    graph: dict[str, set[str]] = {}
    for _, source, target in _imports():
        graph.setdefault(source, set()).add(target)
    assert _cycle(graph) == []
