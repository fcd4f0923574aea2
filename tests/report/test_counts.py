"""One counts report for every caller: its JSON fields, CSV columns and table; file names shown escaped."""
import csv
import io
import json
import os

import numpy as np

from bcedge.detections import Detections
from bcedge.report.counts import (
    SCHEMA,
    build_report,
    error_entry,
    image_entry,
    legend_notes,
    report_csv,
    report_table,
    result_entry,
)
from bcedge.report.names import escape_name, escape_text, unique_names


def test_names_that_are_not_utf8_are_escaped_and_never_collide():
    raw = os.fsdecode(b"smear\xff\xfe.png")  # what os.scandir hands over for these bytes
    assert escape_name(raw) == "smear\\xff\\xfe.png" and escape_name(b"smear\xff\xfe.png") == "smear\\xff\\xfe.png"
    json.dumps(escape_name(raw)).encode("utf-8")  # storable and printable
    assert escape_name("a\\xff.png") == "a\\\\xff.png" != escape_name(raw[:5] + ".png")  # a literal backslash
    assert escape_name("line\nbreak.png") == "line\\x0abreak.png"
    assert escape_name("Blutbild_µ_血.png") == "Blutbild_µ_血.png"  # Unicode letters shown as they are
    assert escape_text(f"{raw}: truncated") == "smear\\xff\\xfe.png: truncated"


def test_unique_names_keep_the_shortest_distinguishing_tail(tmp_path):
    paths = [tmp_path / "day1" / "x.png", tmp_path / "day2" / "x.png", tmp_path / "day2" / "y.png"]
    assert unique_names(paths) == ["day1/x.png", "day2/x.png", "y.png"]
    assert unique_names([tmp_path / "a" / "s" / "x.png", tmp_path / "b" / "s" / "x.png"]) == ["a/s/x.png", "b/s/x.png"]


class Result:
    def __init__(self, class_ids, size=(64, 48), flags=()):
        n = len(class_ids)
        self.detections = Detections(np.tile(np.array([[1, 1, 5, 5]], np.float32), (n, 1)), np.ones(n),
                                     np.array(class_ids, int))
        self.class_names, self.image_size, self.tiles, self.flags = ["RBC", "WBC"], size, 2, list(flags)
        self.timings = {"total_s": 0.0123456}

    @property
    def counts(self):
        return self.detections.counts(self.class_names)


def test_the_report_json_csv_and_table_say_the_same():
    images = [result_entry("a/x.png", Result([0, 0, 1]), detections=True),
              result_entry("b/x.png", Result([0], flags=["greyscale", "uneven light"])),
              image_entry("c.png", {"RBC": 4, "WBC": 0}, (10, 20), sha256="ab")]
    failed = [error_entry("d\udcff.png", OSError("d\udcff.png: no such image file"))]
    report = json.loads(json.dumps(build_report(images, failed, {"class_names": ["RBC", "WBC"]})))
    assert report["schema"] == SCHEMA and report["classes"] == ["RBC", "WBC"]
    assert report["totals"] == {"RBC": 7, "WBC": 1} and report["total"] == 8
    assert len(report["images"][0]["detections"]) == 3 and report["images"][0]["timings"] == {"total_s": 0.0123}
    assert report["images"][2]["sha256"] == "ab" and report["images"][2]["tiles"] is None
    assert report["failed"] == [{"path": "d\\xff.png", "status": "skipped", "error": "OSError",
                                 "message": "d\\xff.png: no such image file"}]
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert list(rows[0]) == ["path", "status", "RBC", "WBC", "total", "width", "height", "flags", "error", "scale", "cell_px"]
    assert [(r["path"], r["status"], r["RBC"], r["total"], r["flags"], r["error"]) for r in rows] == [
        ("a/x.png", "done", "2", "3", "", ""), ("b/x.png", "done", "1", "1", "greyscale; uneven light", ""),
        ("c.png", "done", "4", "4", "", ""), ("d\\xff.png", "skipped", "", "", "", "OSError")]
    table = report_table(report)
    assert "a/x.png" in table and "b/x.png *" in table and "flagged: greyscale, uneven light" in table
    assert "  uneven light: unevenly lit" in table    # each flag explained under the table
    assert next(line for line in table.splitlines() if line.startswith("TOTAL")).split() == ["TOTAL", "7", "1", "8"]


def test_the_overlay_legend_says_how_the_image_was_scaled_and_what_it_was_flagged():
    from types import SimpleNamespace

    from bcedge.runtime.scale import Scale

    result = SimpleNamespace(scale=Scale(0.62, "auto", cell_px=103.2, cells=41), flags=["noisy"])
    assert legend_notes(result) == ["scale x0.62 (auto, 41 cells, cell 103px)", "flags: noisy"]
    assert legend_notes(SimpleNamespace(scale=Scale(1.0, "model"), flags=[])) == []
