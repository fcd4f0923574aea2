"""``bcedge.registry``: the one name -> entry table, and distinct names for every registry in the package."""
import ast
from collections import Counter
from pathlib import Path

import pytest

import bcedge
from bcedge.registry import Registry, load_target

PACKAGE = Path(bcedge.__file__).parent


class Refused(Exception):
    pass


def test_add_register_and_lookup():
    table: Registry[int] = Registry("widget", Refused, hint="or 'auto'")
    assert table.add("a", 1) == 1

    @table.register("b")
    def b():
        return 2

    assert table.lookup("b") is b and list(table) == table.names() == ["a", "b"] and "a" in table
    with pytest.raises(Refused, match=r"unknown widget 'c'; known: a, b or 'auto'$"):
        table.lookup("c")
    table.add("a", 3)  # a later entry of the same name replaces the first
    assert table["a"] == 3 and len(table) == 2
    with pytest.raises(ValueError, match="unknown thing 'x'; known: none"):
        Registry("thing").lookup("x")


def test_load_target_imports_lazily_named_entries():
    assert load_target("bcedge.boxes") is __import__("bcedge.boxes").boxes
    assert load_target("bcedge.boxes:pairwise_iou").__name__ == "pairwise_iou"
    with pytest.raises(AttributeError):
        load_target("bcedge.boxes:nothing_here")


def _defined_names():
    """(name, file) of every module-level register_* function and Registry table in bcedge/."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("register_"):
                yield node.name, path
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                value = node.value
                if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "Registry":
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    yield from ((t.id, path) for t in targets if isinstance(t, ast.Name))


def test_every_registry_and_register_function_has_its_own_name():
    names = list(_defined_names())
    assert len(names) >= 10  # the scan finds the tables (backends, NMS, merge, formats, heads, ...)
    twice = sorted(name for name, n in Counter(name for name, _ in names).items() if n > 1)
    assert twice == [], [str(p.relative_to(PACKAGE)) for name, p in names if name in twice]
