"""Name -> builder tables for backbones and detection heads: a new one is a new file plus one line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

BACKBONES: dict[str, Callable] = {}
HEADS: dict[str, "HeadSpec"] = {}


def register_backbone(name: str):
    def add(builder: Callable) -> Callable:
        BACKBONES[name] = builder
        return builder

    return add


@dataclass(frozen=True)
class HeadSpec:
    """How to build a head on a backbone body, and its export graph (``deploy``)."""

    build: Callable       # (body, num_classes, meta) -> torchvision detection model
    deploy: Callable      # (model, normalised batch) -> (boxes (B,A,4), scores (B,A,C))
    two_stage: bool = False


def register_head(name: str, deploy: Callable, two_stage: bool = False):
    def add(builder: Callable) -> Callable:
        HEADS[name] = HeadSpec(builder, deploy, two_stage)
        return builder

    return add


def lookup(table: dict[str, Callable], name: str, what: str) -> Callable:
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(sorted(table))}")
    return table[name]
