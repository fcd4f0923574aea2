"""Markdown table, Pareto plot and the side-by-side comparison, from canned results."""
from __future__ import annotations

import json

import pytest

from bench_results import results
from bcedge.bench.report import compare, load, pareto_front, pareto_plot, to_markdown, write_all


def test_markdown_lists_measured_cells_and_why_others_did_not_run():
    text = to_markdown(results())
    summary, every = text.split("## Every cell")
    rows = [line for line in every.splitlines() if line.startswith("| fcos") or line.startswith("| faster")]
    measured = [r for r in rows if "ONNX Runtime CPU" in r]
    assert len(measured) == 4
    assert any("two-stage" in r and "not trained" in r for r in measured)
    assert any("0.880" in r and "3.20/0.10/0.70" in r for r in measured)
    assert "| 1/10 |" in measured[0]                            # outliers shown, out of n
    # the two export failures of one (arch, runner, precision) are one row listing both batches
    failed = [line for line in text.splitlines() if "export failed" in line]
    assert len(failed) == 1 and "| 1, 4 |" in failed[0] and "no ONNX graph / really" in failed[0]
    assert any("unsupported here" in line for line in text.splitlines())
    assert "Test CPU, 2 logical CPUs" in text
    # the summary: one row per (model, runner, precision), batch-1 latency and the best batch's throughput
    fp32 = next(line for line in summary.splitlines() if line.startswith("| fcos") and "| fp32 |" in line)
    assert "| 100.0 | 11.11 (4) | 2.05 (1) | 700 | 0.880 | 0.500 |" in fp32
    assert sum(line.startswith("| f") for line in summary.splitlines()) == 3
    assert measured[0].endswith("| 25% |") and "Other processes used 25% of the machine's CPU" in text


def test_pareto_front_keeps_only_undominated_points():
    points = [(10.0, 0.5), (20.0, 0.9), (15.0, 0.4), (30.0, 0.85), (5.0, 0.1)]
    assert pareto_front(points) == [4, 0, 1]


def test_plot_and_files_are_written(tmp_path):
    md, png = write_all(results(), tmp_path / "matrix_test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert f"]({png.name})" in md.read_text()
    empty = results()
    empty["cells"] = [c for c in empty["cells"] if c.get("accuracy", {}).get("status") != "ok"]
    assert pareto_plot(empty, tmp_path / "empty.png").is_file()     # no trained model: still a plot


def test_compare_puts_machines_side_by_side_with_speedups():
    fast = results(cpu="Fast CPU", scale=0.5, power=True)
    fast["cells"].pop(3)                                     # a cell the other machine did not run
    text = compare([results(), fast], labels=["slow", "fast"])
    assert "**slow**: Test CPU" in text and "**fast**: Fast CPU" in text
    row = next(line for line in text.splitlines() if "onnxruntime:cpu | int8 | 1 |" in line)
    assert "60.0 ms" in row and "30.0 ms" in row and row.rstrip().endswith("2.00x |")
    missing = next(line for line in text.splitlines() if line.startswith("| faster_rcnn") and "| fp32 |" in line)
    assert "| - |" in missing
    assert "export failed" in next(line for line in text.splitlines() if "| fp16 | 1 |" in line and "faster" in line)


def test_power_table_when_a_jetson_reported_power():
    text = to_markdown(results(power=True))
    assert "tiles/J" in text and "| 5.00 | 6.00 | 2.00 |" in text


def test_load_rejects_other_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"cells": []}))
    with pytest.raises(ValueError, match="not a bcedge benchmark results file"):
        load(path)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        load(tmp_path / "bad.json")
