"""Detection heads, registered by name; importing this package registers them all."""
from bcedge.models.heads import faster_rcnn, fcos, fcos_lite, retinanet, ssdlite  # noqa: F401
