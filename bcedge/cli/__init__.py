"""The ``bcedge`` command: one subcommand per job, each a few lines calling the library.

Subcommands live in one module per area and register themselves with ``@command`` (registry.py);
the import order below is the order ``bcedge --help`` lists them in.
"""
# isort: off
from bcedge.cli.registry import UserError, build_parser, command, main
from bcedge.cli import data, models, convert, count, live, watch, bench  # noqa: F401  (registers the subcommands)
# isort: on

__all__ = ["UserError", "build_parser", "command", "main"]
