"""Backbone bodies, registered by name (``BACKBONES``), one file each: EfficientNet-Lite0/1/2
(``efficientnet_lite``), MobileNetV3-Large (``mobilenet_v3``), ResNet-50 (``resnet``). Each returns a
``BackboneBody``: image -> C2..C5 feature maps. Importing this package registers them all.
"""
from bcedge.models.backbones import efficientnet_lite, mobilenet_v3, resnet  # noqa: F401  (registers them)
from bcedge.models.backbones.body import BackboneBody

__all__ = ["BackboneBody"]
