"""The subcommand registry, the parser built from it, and ``main``.

Each area module registers its subcommands with ``@command``; library imports happen inside the
handlers so that ``bcedge count`` never loads torch and ``bcedge --help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bcedge.registry import Registry

_COMMANDS: Registry[tuple[str, Callable]] = Registry("command")  # name -> (help, add_arguments)
_EXTRA_OF_MODULE = {"torch": "train", "torchvision": "train", "pycocotools": "train", "onnxslim": "train",
                    "matplotlib": "train", "watchdog": "watch", "onnxruntime": "cpu"}  # optional dependency -> its extra


class UserError(Exception):
    """A problem the user can fix (bad path, bad option): printed without a traceback."""


def command(name: str, help: str):
    """Register ``add_arguments(parser)`` for subcommand ``name`` ("data stats" nests under "data").

    The decorated function sets up arguments and returns the handler ``run(args) -> int``.
    """

    def register(add_arguments: Callable) -> Callable:
        _COMMANDS.add(name, (help, add_arguments))
        return add_arguments

    return register


def build_parser() -> argparse.ArgumentParser:
    from bcedge import __version__

    parser = argparse.ArgumentParser(prog="bcedge", description="Detect and count blood cells in microscope smears.")
    parser.add_argument("--version", action="version", version=f"bcedge {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, (help_text, add_arguments) in _COMMANDS.items():
        *group, leaf = name.split()
        subparsers = top
        if group:
            if group[0] not in groups:
                group_parser = top.add_parser(group[0], help=f"{group[0]} commands")
                groups[group[0]] = group_parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
            subparsers = groups[group[0]]
        sub = subparsers.add_parser(leaf, help=help_text, description=help_text)
        sub.set_defaults(handler=add_arguments(sub))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from bcedge.artifact import ArtifactError
    from bcedge.backends.base import BackendUnavailable

    try:
        return int(args.handler(args) or 0)
    except (UserError, OSError, ValueError, ArtifactError, BackendUnavailable) as exc:
        print(f"bcedge: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        extra = _EXTRA_OF_MODULE.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"bcedge: error: {args.command} needs {exc.name}, which is not installed: "
              f"pip install 'bcedge[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bcedge: interrupted", file=sys.stderr)
        return 130
