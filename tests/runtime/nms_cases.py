"""Shared NMS test inputs (imported by the NMS tests; also run as a script under the CUDA simulator)."""
import numpy as np


def random_case(seed: int, n: int, n_classes: int = 3, span: float = 400.0, score_decimals: int = 1):
    """Clustered boxes (many overlaps), coarse scores (many ties), integer and fractional coordinates."""
    rng = np.random.default_rng(seed)
    n_centres = max(n // 4, 1)
    centres = rng.uniform(0, span, (n_centres, 2))
    pick = rng.integers(0, n_centres, n)
    xy = centres[pick] + rng.normal(0, 4, (n, 2))
    wh = rng.uniform(4, 40, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    if seed % 2:
        boxes = np.round(boxes)  # integer coordinates: IoU often lands exactly on thresholds
    scores = np.round(rng.random(n), score_decimals).astype(np.float32)
    classes = rng.integers(0, n_classes, n)
    return boxes, scores, classes


def edge_cases():
    """(name, boxes, scores, classes, iou) that trip careless implementations."""
    same = np.tile(np.array([[10, 10, 20, 20]], np.float32), (70, 1))
    half = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 10, 10]], np.float32)  # IoU exactly 1/3, then 1
    degenerate = np.array([[0, 0, 0, 10], [0, 0, 10, 10], [5, 5, 5, 5], [3, 3, 1, 1]], np.float32)
    return [
        ("empty", np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5),
        ("single", np.array([[1, 2, 3, 4]], np.float32), np.array([0.3], np.float32), np.array([7]), 0.5),
        ("all equal boxes and scores", same, np.full(70, 0.5, np.float32), np.zeros(70, np.int64), 0.5),
        ("identical boxes two classes", same, np.full(70, 0.5, np.float32), np.arange(70) % 2, 0.5),
        ("iou exactly at threshold", half, np.array([0.9, 0.8, 0.8], np.float32), np.zeros(3, np.int64), 1 / 3),
        ("iou zero threshold", half, np.array([0.9, 0.8, 0.7], np.float32), np.zeros(3, np.int64), 0.0),
        ("degenerate boxes", degenerate, np.array([0.9, 0.8, 0.7, 0.6], np.float32), np.zeros(4, np.int64), 0.1),
        ("negative class ids", half, np.array([0.1, 0.2, 0.3], np.float32), np.array([-5, -5, 2**40]), 0.2),
    ]


if __name__ == "__main__":  # run under NUMBA_ENABLE_CUDASIM=1 by test_nms_cudasim.py
    import sys

    from bcedge.runtime.nms import nms

    failures = []
    cases = [(f"random {s}", *random_case(s, n, 3, 150.0), 0.4) for s, n in ((0, 150), (1, 130), (2, 64), (3, 65))]
    for name, boxes, scores, classes, iou in cases + edge_cases():
        ref = nms(boxes, scores, classes, iou, backend="numpy")
        got = nms(boxes, scores, classes, iou, backend="cuda")
        if not np.array_equal(ref, got):
            failures.append(f"{name}: numpy kept {ref.tolist()} but cuda kept {got.tolist()}")
    print("\n".join(failures) or f"all {len(cases) + len(edge_cases())} cases agree")
    sys.exit(1 if failures else 0)
