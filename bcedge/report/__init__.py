"""Reports of counts: text tables, COCO-style JSON, CSV and overlay PNGs (no torch)."""
