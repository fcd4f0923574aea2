"""Settings of the folder service and the exit codes that say how a run ended."""
from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0              # everything found was counted (or already had been)
    PARTIAL = 1         # finished, but some files were quarantined or failed in this run
    USAGE = 2           # bad arguments (printed by the CLI)
    ABORTED = 3         # stopped after too many failures in a row: the counter or the disk is broken
    STATE = 4           # OUT_DIR unusable: locked by another service, another IN_DIR, corrupt database
    INTERRUPTED = 128 + signal.SIGINT    # 130: stopped by Ctrl-C, in-flight work finished or rolled back
    TERMINATED = 128 + signal.SIGTERM    # 143: stopped by SIGTERM (systemd: SuccessExitStatus=143)


@dataclass
class WatchConfig:
    """What to watch and how. Times are seconds.

    ``settle``: a file is complete once unchanged this long (or renamed into place).
    ``poll``: True polls, False uses filesystem events, None picks (events, polling on network shares).
    ``rescan_interval``: full rescans while using events, a safety net for dropped events.
    ``max_pixels``: quarantine images whose header says they are larger (None or 0: no cap beyond the
    counter's own, which only limits formats that must be decoded whole).
    ``max_attempts``: a transient cause (the file unreadable for now, cut short or empty as if still
    being written, the service dying while counting it) is retried until it has happened this many
    times to the same content; then the file is quarantined.
    ``retry_delay``: wait before the first retry of a transient cause; doubles each time.
    ``output_retry``: while OUT_DIR cannot be written (full, read-only), wait this long before
    trying again; doubles up to ``output_retry_max``.
    ``grace``: on SIGINT/SIGTERM, how long to let files in flight finish before rolling them back.
    """

    in_dir: Path
    out_dir: Path
    recursive: bool = False
    workers: int = 2
    once: bool = False
    poll: bool | None = None
    poll_interval: float = 2.0
    rescan_interval: float = 60.0
    settle: float = 1.0
    overlays: bool = False
    max_pixels: int | None = 500_000_000
    ignore: tuple[str, ...] = ()
    max_attempts: int = 3
    retry_delay: float = 2.0
    output_retry: float = 1.0
    output_retry_max: float = 60.0
    max_failures_in_a_row: int = 5
    grace: float = 30.0
    summary_interval: float = 5.0
    durable: bool = True
    model_name: str = ""

    def __post_init__(self) -> None:
        self.in_dir = Path(self.in_dir).expanduser().resolve()
        self.out_dir = Path(self.out_dir).expanduser().resolve()
        if not self.in_dir.is_dir():
            raise FileNotFoundError(f"{self.in_dir}: no such input folder")
        if self.out_dir == self.in_dir or self.out_dir in self.in_dir.parents:
            raise ValueError(f"--out {self.out_dir} must not be IN_DIR or contain it; use a folder beside it "
                             "(or inside it)")
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if self.settle < 0 or self.poll_interval <= 0:
            raise ValueError("--settle must be >= 0 and --poll-interval > 0 seconds")
        if self.max_attempts < 1 or self.retry_delay < 0 or self.output_retry <= 0:
            raise ValueError("max_attempts must be >= 1, retry_delay >= 0 and output_retry > 0 seconds")
        self.ignore = tuple(self.ignore)

    @property
    def exclude(self) -> Path | None:
        """OUT_DIR when it lies inside IN_DIR: never an input."""
        return self.out_dir if self.in_dir in self.out_dir.parents else None
