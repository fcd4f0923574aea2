"""The folder service behind ``bcedge watch``: every image that lands in a folder, counted exactly once.

    from bcedge.watch import WatchConfig, run_watch
    code = run_watch(counter, WatchConfig(in_dir, out_dir, once=True))

Modules: ``discovery`` (scan, events, polling), ``completeness`` (settling, format checks),
``state`` (SQLite), ``processor`` (the exactly-once protocol), ``outputs`` (atomic files),
``quarantine``, ``summary``, ``progress`` (logs, status line), ``service`` (the loop).
"""
from bcedge.watch.config import ExitCode, WatchConfig
from bcedge.watch.service import WatchService, open_counter, run_watch

__all__ = ["ExitCode", "WatchConfig", "WatchService", "open_counter", "run_watch"]
