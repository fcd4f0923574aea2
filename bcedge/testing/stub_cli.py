"""The ``bcedge`` CLI with the stub counter instead of a model (subprocess tests, the watch soak):

    python -m bcedge.testing.stub_cli watch IN --out OUT --model stub:delay=0.05

``--model stub:delay=SECONDS`` slows each file (``native=1``: inside ONNX Runtime); every file read
is appended to ``$WATCH_STUB_CALLS`` when set. Only ``bcedge.watch.service.open_counter`` is
replaced; the rest is the real CLI.
"""
import sys

import bcedge.watch.service as service
from bcedge.cli import main
from bcedge.testing.squares import StubCounter

service.open_counter = lambda model="default", **options: StubCounter.from_spec(str(model))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
