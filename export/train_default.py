"""Recipe of the bundled default model: FCOS-Lite on EfficientNet-Lite0, trained on TXL-PBC train + BCCD train.

    python export/train_default.py --txl ../shared/data/txl-pbc --bccd ../shared/data/bccd --out runs/default

Data (see the model card for figures):
- TXL-PBC train (four sources and microscopes, grouped by frame size) and BCCD train (VOC labels);
- TXL-PBC's 640x480 frames are BCCD frames re-annotated: those that copy a BCCD *val* frame are left
  out, so BCCD val stays unseen; BCCD train frames that TXL-PBC train re-annotates are taken with
  TXL-PBC's labels only, and BCCD train frames that TXL-PBC *val* holds are left out, so TXL-PBC val
  stays unseen too;
- classes mapped by name; sampling balanced over source groups, rare classes repeated.
Scale: every image is brought to the model's working scale (median red cell ``--cell-px`` px) from
its own labelled cells, then jittered over ``--jitter``; the runtime does the same to user images
(``bcedge.runtime.scale``). The schedule runs for ``--minutes`` (cosine decay ends on time), with an
EMA of the weights; on a GPU this is a few minutes, on 2 CPU cores hours (resumable).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bcedge.data.annotations import Dataset  # noqa: E402
from bcedge.data.multisource import SourceSpec, load_sources  # noqa: E402
from bcedge.data.nearcopies import near_copies  # noqa: E402
from bcedge.data.validate import validate  # noqa: E402
from bcedge.train import TrainConfig, train  # noqa: E402
from bcedge.train.augment import AugmentConfig  # noqa: E402

CLASSES = ["RBC", "WBC", "Platelets"]      # the previous default's order, so users' outputs keep their columns
ARCH = "fcos_lite_efficientnet_lite0"


def training_sources(txl: Path, bccd: Path, log=print) -> Dataset:
    """TXL-PBC train + BCCD train with the near-copies of either validation split removed."""
    data = load_sources([SourceSpec(txl, "train", group_by="size"), SourceSpec(bccd, "train")], CLASSES)
    held_out = [r.image_path for r in load_sources([SourceSpec(txl, "val")], CLASSES).images]
    bccd_val = [r.image_path for r in load_sources([SourceSpec(bccd, "val")], CLASSES).images]
    txl_frames = [r.image_path for r in data.images if r.group.startswith(Path(txl).resolve().name)]
    bccd_frames = [r.image_path for r in data.images if r.group == Path(bccd).resolve().name]
    drop = set(near_copies(txl_frames, bccd_val))                 # TXL train copies of BCCD val
    relabelled = set(near_copies(bccd_frames, txl_frames))         # BCCD train frames TXL train re-annotates
    leaked = set(near_copies(bccd_frames, held_out))               # BCCD train frames in TXL val
    log(f"left out: {len(drop)} TXL-PBC train frames copying BCCD val, {len(leaked)} BCCD train frames held in "
        f"TXL-PBC val; {len(relabelled)} BCCD train frames taken with TXL-PBC's labels only")
    keep = [i for i, r in enumerate(data.images) if r.image_path not in drop | relabelled | leaked]
    data = data.subset(keep)
    data.notes.append(f"near-copies removed: {len(drop)} (BCCD val), {len(leaked)} (TXL-PBC val), "
                      f"{len(relabelled)} (double-labelled BCCD train)")
    validate(data, policy="drop", classes=CLASSES)
    return data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--txl", type=Path, default=ROOT.parent / "shared/data/txl-pbc")
    ap.add_argument("--bccd", type=Path, default=ROOT.parent / "shared/data/bccd")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cell-px", type=float, default=56.0, help="the model's working scale: median red cell, px")
    ap.add_argument("--jitter", type=float, nargs=2, default=(0.65, 1.55))
    ap.add_argument("--crop", type=int, default=384, help="training crop side, model pixels")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--epochs", type=int, default=400, help="upper bound; --minutes usually ends training first")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--weights", type=Path, default=None, help="local EfficientNet-Lite0 ImageNet .pth")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--max-iters", type=int, default=None)
    ap.add_argument("--init-from", default=None, help="start from this checkpoint (e.g. the default's, to fine-tune)")
    ap.add_argument("--qat", action="store_true", help="quantization-aware fine-tune (TensorRT INT8 rounding)")
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument("--warmup-iters", type=int, default=150)
    ap.add_argument("--hue", type=float, default=12.0, help="hue jitter, degrees of OpenCV's 0-180 hue (stains)")
    ap.add_argument("--saturation", type=float, default=0.4, help="relative saturation jitter (stain strength)")
    ap.add_argument("--channel-gain", type=float, default=0.15, help="per-channel gain jitter (white balance)")
    ap.add_argument("--blur", type=float, default=0.2, help="probability of a defocus blur")
    ap.add_argument("--greyscale", type=float, default=0.1, help="probability of a greyscale image")
    ap.add_argument("--min-visible", type=float, default=0.35,
                    help="keep a box cut by the crop when this fraction of it is left inside (TXL-PBC labels edge "
                         "slivers down to about 0.15 of a cell)")
    args = ap.parse_args(argv)

    started = time.time()
    data = training_sources(args.txl, args.bccd)
    groups = {}
    for record in data.images:
        groups[record.group] = groups.get(record.group, 0) + 1
    print(json.dumps({"images": len(data), "groups": groups}), flush=True)
    augment = AugmentConfig(scale=tuple(args.jitter), target_cell_px=args.cell_px, min_visible=args.min_visible,
                            hue=args.hue, saturation=args.saturation, channel_gain=args.channel_gain,
                            blur=args.blur, greyscale=args.greyscale)
    cfg = TrainConfig(arch=ARCH, input_size=(args.crop, args.crop), epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, weight_decay=0.05, optimizer="adamw", warmup_iters=args.warmup_iters,
                      workers=args.workers, ema=args.ema, time_budget_s=args.minutes * 60, augment=augment,
                      train_bn=not args.qat,   # a short fine-tune at small batches keeps the trained BatchNorm statistics
                      init_from=args.init_from, qat=args.qat,
                      pretrained=str(args.weights) if args.weights else True, device=args.device,
                      max_iters=args.max_iters, eval_every=10 ** 6)
    path = train(cfg, data, args.out)
    print(f"checkpoint: {path} ({(time.time() - started) / 60:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
