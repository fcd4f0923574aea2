"""Name -> builder tables for backbones and detection heads: a new one is a new file plus one line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bcedge.registry import Registry

BACKBONES: Registry[Callable] = Registry("backbone")   # name -> (pretrained) -> BackboneBody
HEADS: Registry["HeadSpec"] = Registry("head")
register_backbone = BACKBONES.register


@dataclass(frozen=True)
class HeadSpec:
    """How to build a head on a backbone body, and its export graph (``deploy``)."""

    build: Callable       # (body, num_classes, meta) -> torchvision detection model
    deploy: Callable      # (model, normalised batch) -> (boxes (B,A,4), scores (B,A,C))
    two_stage: bool = False


def register_head(name: str, deploy: Callable, two_stage: bool = False):
    def add(builder: Callable) -> Callable:
        HEADS.add(name, HeadSpec(builder, deploy, two_stage))
        return builder

    return add
