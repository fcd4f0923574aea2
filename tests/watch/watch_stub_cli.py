"""``bcedge`` CLI with the stub counter instead of a model: ``python watch_stub_cli.py watch IN --out OUT``.

Used by the subprocess tests (kill -9, signals, exit codes); ``--model stub:delay=SECONDS`` slows it.
Nothing test-specific lives in the package: this script only replaces ``service.open_counter``.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bcedge.watch.service as service  # noqa: E402
from bcedge.cli import main  # noqa: E402
from watch_stub import StubCounter  # noqa: E402

service.open_counter = lambda model="default", **options: StubCounter.from_spec(str(model))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
