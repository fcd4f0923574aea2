"""``Registry``: the one way the package keeps name -> entry tables (backends, NMS kernels, merge
strategies, image and dataset formats, heads, backbones, bench profiles, CLI commands).

    HEADS: Registry[HeadSpec] = Registry("head")
    HEADS.add("fcos", spec)                 # or @HEADS.register("fcos") on a function or class
    HEADS.lookup("fcos")                    # unknown names: "unknown head 'x'; known: fcos, ..."

A registry is a dict (``in``, iteration in registration order, ``[name]``), so code that only reads
it needs nothing new. Entries that must not be imported until used are ``"module"`` or
``"module:attribute"`` strings, resolved by ``load_target``.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """Name -> entry; ``what`` names the kind of entry in errors, raised as ``error``."""

    def __init__(self, what: str, error: type[Exception] = ValueError, hint: str = "") -> None:
        super().__init__()
        self.what, self.error, self.hint = what, error, hint   # hint: appended to the known names ("or 'auto'")

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` as ``name`` (a later entry of the same name replaces it); returns it."""
        self[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """``add`` as a decorator."""
        return lambda entry: self.add(name, entry)

    def lookup(self, name: str) -> T:
        """The entry registered as ``name``, or ``error`` naming the known ones."""
        if name not in self:
            known = ", ".join(self) or "none"
            raise self.error(f"unknown {self.what} {name!r}; known: {known}{' ' + self.hint if self.hint else ''}")
        return self[name]

    def names(self) -> list[str]:
        return list(self)


def load_target(target: str) -> Any:
    """Import ``"package.module"`` (the module) or ``"package.module:attribute"`` (that attribute)."""
    module, _, attribute = target.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attribute) if attribute else obj
