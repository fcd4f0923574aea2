"""``bcedge count``: the main job, on the runtime alone (no torch)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bcedge.cli.options import tile_option
from bcedge.cli.registry import UserError, command


def _image_inputs(paths: list[Path]) -> list[Path]:
    """Files as given, folders expanded to the images they hold (sorted); a missing path is an error."""
    from bcedge.imageio import IMAGE_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
            if not found:
                raise UserError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path}: no such image file or folder")
    return files

@command("count", "Count blood cells in images of any size (no torch needed)")
def _count(p: argparse.ArgumentParser):
    p.add_argument("images", type=Path, nargs="+", help="image files or folders")
    p.add_argument("--model", default="default", help="a bundled model ('default'; 'default-int8': faster on CPUs), or a .onnx / .engine / .pt artifact")
    p.add_argument("--backend", default="auto", help="onnxruntime, tensorrt or torch (default: by model suffix)")
    p.add_argument("--device", default="auto", help="cpu, cuda, tensorrt (ONNX Runtime providers) or auto")
    p.add_argument("--tile", type=tile_option, default="auto", help="auto (model input size), none, or WxH")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in px (default: largest cell size)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--merge", default="core",
                   help="how tile detections become one set: core (default), core+ios (also merges a detector's "
                        "partial box from a neighbouring tile into the whole cell), nms, greedy_nmm (SAHI-like)")
    p.add_argument("--json", type=Path, default=None, help="write counts and COCO-style detections here")
    p.add_argument("--csv", type=Path, default=None, help="write per-image counts as CSV here")
    p.add_argument("--overlay", type=Path, default=None, help="folder for overlay PNGs")

    def run(args) -> int:
        from bcedge.imageio import ImageReadError
        from bcedge.atomic import atomic_write_json
        from bcedge.report.outputs import counts_csv, counts_table
        from bcedge.runtime.counter import Counter

        files = _image_inputs(args.images)
        counter = Counter.load(args.model, backend=args.backend, device=args.device, tile=args.tile,
                               overlap=args.overlap, batch_size=args.batch_size, merge=args.merge)
        results, failed = [], []
        for image_id, path in enumerate(files, start=1):
            try:
                result = counter.count_file(path)
            except (ImageReadError, ValueError) as exc:
                print(f"bcedge: skipped {exc}", file=sys.stderr)
                failed.append({"path": str(path), "error": str(exc)})
                continue
            results.append(result.to_dict(image_id))
            if args.overlay:
                from bcedge.report.overlay import write_source_overlay

                write_source_overlay(args.overlay / f"{path.stem}.overlay.png", path, result.detections, counter.meta.class_names)
        names = counter.meta.class_names
        if results:
            print(counts_table(results, names))
        if args.json:
            totals = {n: sum(r["counts"][n] for r in results) for n in names}
            atomic_write_json(args.json, {"model": {"arch": counter.meta.arch, "classes": names,
                                                     "backend": counter.backend.describe()},
                                          "totals": totals, "total": sum(totals.values()),
                                          "images": results, "failed": failed})
        if args.csv:
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            args.csv.write_text(counts_csv(results, names))
        return 1 if failed else 0

    return run
