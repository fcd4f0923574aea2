"""`bcedge bench ...`: report, compare, machine and a dry run, through the CLI entry point."""
from __future__ import annotations

import json

from bench_results import results
from bcedge.cli import main


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_report_writes_markdown_and_plot(tmp_path, capsys):
    source = _write(tmp_path / "run.json", results())
    assert main(["bench", "report", str(source)]) == 0
    assert (tmp_path / "run.md").read_text().startswith("# Benchmark matrix: cpu")
    assert (tmp_path / "run.png").is_file() and "wrote" in capsys.readouterr().out


def test_compare_prints_or_writes_and_checks_labels(tmp_path, capsys):
    a = _write(tmp_path / "a.json", results(cpu="Machine A"))
    b = _write(tmp_path / "b.json", results(cpu="Machine B", scale=0.25))
    assert main(["bench", "compare", str(a), str(b), "--labels", "A", "B"]) == 0
    out = capsys.readouterr().out
    assert "**A**: Machine A" in out and "4.00x" in out
    assert main(["bench", "compare", str(a), str(b), "--out", str(tmp_path / "side.md")]) == 0
    assert "speed-up" in (tmp_path / "side.md").read_text()
    assert main(["bench", "compare", str(a), "--labels", "A", "B"]) == 2
    assert "2 labels for 1 results files" in capsys.readouterr().err


def test_compare_names_a_file_that_is_not_a_results_file(tmp_path, capsys):
    bad = _write(tmp_path / "other.json", {"hello": 1})
    assert main(["bench", "compare", str(bad)]) == 2
    assert "other.json: not a bcedge benchmark results file" in capsys.readouterr().err


def test_machine_and_dry_run(capsys):
    assert main(["bench", "machine"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["logical_cpus"] >= 1 and "libraries" in described
    assert main(["bench", "run", "--profile", "cpu", "--dry-run", "--archs", "faster_rcnn_efficientnet_lite0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12 and all(line.endswith(": to run") for line in lines if "onnxruntime:cpu" in line)
    assert all(": unsupported here: the torch backend runs FP32" in line for line in lines if "torch:cpu/fp16" in line)


def test_unknown_profile_and_bad_checkpoint_option(capsys):
    assert main(["bench", "run", "--profile", "nope", "--dry-run"]) == 2
    assert "unknown benchmark profile 'nope'" in capsys.readouterr().err
    try:
        main(["bench", "run", "--checkpoint", "no-equals-sign"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "expected ARCH=PATH" in capsys.readouterr().err
