"""The model and scale options are defined once (cli/options.py) and reach the counter from both
``count`` and ``watch``."""
import argparse

import pytest

from bcedge.cli import build_parser, main
from bcedge.cli.options import add_model_options, add_scale_options, scale_options
from bcedge.runtime.counter import Counter
from bcedge.watch import service


def _options(parser_args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_model_options(parser)
    add_scale_options(parser)
    return parser.parse_args(parser_args)


def test_defaults_are_auto_everywhere():
    args = _options([])
    assert (args.model, args.backend, args.device) == ("default", "auto", "auto")
    assert scale_options(args) == {"cell_size": "auto", "um_per_px": None, "tile": "auto", "denoise": True,
                                   "scale_prior": True, "even_light": True, "fill_surround": True}


def test_values_are_parsed():
    args = _options(["--cell-size", "42.5", "--tile", "512x384", "--no-smoothing", "--no-scale-guess",
                     "--no-light-correction", "--no-surround-fill"])
    assert scale_options(args) == {"cell_size": 42.5, "um_per_px": None, "tile": (512, 384), "denoise": False,
                                   "scale_prior": False, "even_light": False, "fill_surround": False}
    assert _options(["--um-per-px", "0.17"]).um_per_px == 0.17


@pytest.mark.parametrize("argv", [["--cell-size", "0"], ["--cell-size", "big"], ["--um-per-px", "-1"],
                                  ["--um-per-px", "nan"], ["--tile", "64"]])
def test_bad_values_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        _options(argv)
    assert caught.value.code == 2 and argv[0] in capsys.readouterr().err


def _help(command: str) -> dict[str, str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {a.option_strings[0]: a.help for a in sub._actions if a.option_strings}


def test_count_and_watch_share_one_definition():
    count, watch = _help("count"), _help("watch")
    for option in ("--model", "--backend", "--device", "--cell-size", "--um-per-px", "--tile", "--no-smoothing"):
        assert count[option] == watch[option], option


def test_count_passes_the_scale_to_the_counter(tmp_path, monkeypatch):
    calls = []

    def load(model="default", backend="auto", device="auto", **options):
        calls.append(options)
        raise ValueError("stop here")  # the options are what this test is about

    monkeypatch.setattr(Counter, "load", staticmethod(load))
    (tmp_path / "a.png").write_bytes(b"")
    assert main(["count", str(tmp_path / "a.png"), "--um-per-px", "0.2", "--tile", "320x320", "--quiet"]) == 2
    assert calls[0]["um_per_px"] == 0.2 and calls[0]["tile"] == (320, 320) and calls[0]["cell_size"] == "auto"


def test_watch_passes_the_scale_to_the_counter(tmp_path, monkeypatch, capsys):
    calls = []

    def open_counter(model="default", backend="auto", device="auto", **options):
        calls.append(options)
        raise ValueError("stop here")

    monkeypatch.setattr(service, "open_counter", open_counter)
    assert main(["watch", str(tmp_path), "--out", str(tmp_path / "out"), "--cell-size", "40", "--once"]) == 2
    assert calls[0]["cell_size"] == 40.0 and calls[0]["tile"] == "auto" and calls[0]["um_per_px"] is None
    assert calls[0]["denoise"] is True
    assert "stop here" in capsys.readouterr().err


def test_both_scales_given_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from bcedge.runtime.scale import check_scale_options

    def load(model="default", backend="auto", device="auto", **options):
        check_scale_options(options["cell_size"], options["um_per_px"])  # what Counter does first

    monkeypatch.setattr(Counter, "load", staticmethod(load))
    (tmp_path / "a.png").write_bytes(b"")
    assert main(["count", str(tmp_path / "a.png"), "--cell-size", "40", "--um-per-px", "0.2", "--quiet"]) == 2
    assert "not both" in capsys.readouterr().err
