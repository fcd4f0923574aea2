"""Faster R-CNN (two-stage) on a backbone + FPN P2-P6, anchors from box statistics."""
from __future__ import annotations

from torchvision.models.detection import FasterRCNN
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from bcedge.artifact import ModelMeta
from bcedge.models.detector import WithFPN
from bcedge.models.heads.common import anchor_generator
from bcedge.models.heads.faster_rcnn_deploy import faster_rcnn_deploy  # fixed-shape export graph
from bcedge.models.registry import register_head

FPN_CHANNELS = 128


@register_head("faster_rcnn", faster_rcnn_deploy, two_stage=True)
def build(body, num_classes: int, meta: ModelMeta) -> FasterRCNN:
    backbone = WithFPN(body.module, body.channels, ["0", "1", "2", "3"], FPN_CHANNELS, LastLevelMaxPool())
    anchors = anchor_generator(meta, levels=5, scales_per_level=1)
    roi_pool = MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=7, sampling_ratio=2)
    width, height = meta.input_size
    return FasterRCNN(backbone, num_classes + 1, min(width, height), max(width, height), list(meta.mean), list(meta.std),
                      rpn_anchor_generator=anchors, box_roi_pool=roi_pool,
                      rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500,
                      rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_test=300,
                      box_score_thresh=0.05, box_nms_thresh=meta.nms_iou, box_detections_per_img=meta.max_detections,
                      box_batch_size_per_image=256)
